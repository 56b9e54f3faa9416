"""Opt-in OpenTelemetry tracing (``server.tracing: true``; extra ``keelwork[otel]``).

The ASGI instrumentation of OpenTelemetry makes the server span (W3C ``traceparent`` is
honoured); keelwork adds the model, version, answering model and prediction ids to it. The SDK
and exporter are configured the standard way (``OTEL_*`` environment variables, or a
``TracerProvider`` set by the embedding application).
"""

from __future__ import annotations

from typing import Any

from keelwork.errors import MissingExtraError

#: Routes that are scraped or polled constantly: no spans for them.
EXCLUDED_URLS = "metrics,v2/health"


def middleware_class() -> Any:
    """OpenTelemetry's pure ASGI middleware class (add it with ``excluded_urls``).

    Raises:
        MissingExtraError: opentelemetry-instrumentation-asgi is not installed.
    """
    try:
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    except ImportError:
        raise MissingExtraError("opentelemetry-instrumentation-asgi", "otel",
                                "Tracing (server.tracing: true)") from None
    return OpenTelemetryMiddleware


def annotate(model: str, version: int, answered_by: str, prediction_ids: list[str]) -> None:
    """Put the prediction's identity on the current span (no-op without a recording span)."""
    from opentelemetry import trace

    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute("keelwork.model", model)
        span.set_attribute("keelwork.model_version", version)
        span.set_attribute("keelwork.answered_by", answered_by)
        span.set_attribute("keelwork.prediction_ids", prediction_ids[:32])

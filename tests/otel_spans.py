"""An in-memory span exporter on the process's OpenTelemetry SDK tracer provider.

The global tracer provider can be set once per process (a second ``set_tracer_provider`` is
refused with a warning), so every test that reads spans adds its own exporter to the one SDK
provider: set here the first time, reused after, whatever the order the tests run in."""

from __future__ import annotations

from typing import Any


def span_exporter() -> Any:
    """A fresh ``InMemorySpanExporter`` receiving every span ended from now on."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter

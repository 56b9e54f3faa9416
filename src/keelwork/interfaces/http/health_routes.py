"""Server health and operations routes: liveness, readiness, server metadata (Open Inference
Protocol) and the Prometheus metrics."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from keelwork import __version__
from keelwork.interfaces.http.context import http_context
from keelwork.interfaces.http.errors import json_response


async def live() -> Response:
    """Liveness."""
    return json_response({"live": True})


async def ready(request: Request) -> Response:
    """Readiness: every model of the spec is loaded (200, else 503).

    A degraded component (its store is down: the prediction log spools, the rollout
    controller and the flags keep what they have) still serves, so the answer stays 200;
    ``degraded`` names such components and ``components`` says why.
    """
    gateway = http_context(request).gateway
    health = gateway.health()
    degraded = sorted(n for n, state in health.items() if state.get("degraded"))
    return json_response({"ready": gateway.ready, "degraded": degraded,
                          "components": health},
                         status=200 if gateway.ready else 503)


async def server_metadata() -> Response:
    """Server metadata (Open Inference Protocol)."""
    return json_response({"name": "keelwork", "version": __version__,
                          "extensions": ["kserve-v1", "prediction-log", "contract"]})


async def metrics(request: Request) -> Response:
    """Prometheus metrics."""
    payload, content_type = http_context(request).gateway.metrics.render()
    return Response(payload, media_type=content_type)


__all__ = ["live", "metrics", "ready", "server_metadata"]

"""The ASGI app: KServe V1, Open Inference Protocol, health, metrics and OpenAPI docs.

Handlers take the raw ``Request`` and answer a ``Response`` built with orjson: on the hot path
that is several times cheaper than FastAPI's model validation, and the contract check the
gateway runs is the validation that matters. The request bodies are still described in the
OpenAPI document (``openapi_extra``) so ``/docs`` and schema-driven clients work.

The handlers are named functions in one module per route group (:mod:`.predict_routes`,
:mod:`.model_routes`, :mod:`.health_routes`; the admin and feedback routers come in
``routers``); what they share is an :class:`~keelwork.interfaces.http.context.HttpContext` on
``app.state.http``. :func:`create_app` only assembles: middleware, routes, exception handlers.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import Enum

from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from keelwork import __version__
from keelwork.errors import ErrorDetail
from keelwork.interfaces.http import health_routes, model_routes, openapi, predict_routes
from keelwork.interfaces.http.access import AccessLogMiddleware
from keelwork.interfaces.http.api_docs import install_api_docs
from keelwork.interfaces.http.auth import install_problem_handler, predict_guard
from keelwork.interfaces.http.context import STICKY_HEADER, HttpContext
from keelwork.interfaces.http.errors import error_response, router_error, validation_error
from keelwork.interfaces.http.limits import BodyLimitMiddleware
from keelwork.interfaces.http.predict_routes import FAST_ROUTES, PredictFastPath
from keelwork.interfaces.http.rate_limit import Guard, rate_guard
from keelwork.service.gateway.gateway import Gateway
from keelwork.service.server_parts import freeze_heap
from keelwork.spec.model import KeelSpec
from keelwork.types import ApiKeyStoreProtocol

log = logging.getLogger("keelwork.http")


def create_app(gateway: Gateway, *,
               on_startup: Callable[[], Awaitable[None]] | None = None,
               on_shutdown: Callable[[], Awaitable[None]] | None = None,
               freeze_gc: bool = False, routers: Sequence[APIRouter] = (),
               api_keys: ApiKeyStoreProtocol | None = None,
               rate_limit: Callable[[str], float | None] | None = None) -> FastAPI:
    """Build the ASGI app around a gateway (its lifecycle follows the app's lifespan).

    Args:
        gateway: The gateway to serve.
        on_startup: Awaited at start-up, before the models load.
        on_shutdown: Awaited at shutdown, after the gateway closed.
        freeze_gc: Once the models are loaded, move every object alive to the garbage
            collector's permanent generation (``gc.freeze``). A served model drags in a few
            hundred thousand long-lived objects (numpy, scikit-learn, often torch) that every
            full collection would otherwise walk again, a pause of tens of milliseconds
            in the request path. For a server process; tests leave it off.
        routers: More routes (feedback, admin...), included as they are.
        api_keys: The key store; needed when keel.yaml sets ``guards.require_api_key`` (the
            predict routes then admit only keys with the ``predict`` scope).
        rate_limit: ``take`` of keel.yaml's ``guards.rate_limit`` limiter (identity -> None
            or seconds to wait); the predict routes answer 429 past it. None: no limit.

    Returns:
        The FastAPI app.

    Raises:
        ValueError: ``guards.require_api_key`` is set but no key store is given.
    """
    spec = gateway.spec
    if spec.guards.require_api_key and api_keys is None:
        raise ValueError("keel.yaml sets guards.require_api_key: create_app needs api_keys.")
    owners = spec.service.owners  # shown in the API docs: who to ask
    app = FastAPI(title=f"keelwork: {spec.service.name}", version=__version__,
                  description=spec.service.description or "Served by keelwork.",
                  contact={"name": ", ".join(owners)},  # who to ask about this API
                  lifespan=_lifespan, docs_url=None, redoc_url=None)
    app.state.lifecycle = _Lifecycle(gateway, on_startup, on_shutdown, freeze_gc)
    app.state.gateway = gateway
    app.state.http = HttpContext(
        gateway=gateway,
        guard=_predict_guard(spec, api_keys, rate_limit, gateway),
        max_body_bytes=spec.guards.max_body_bytes, project_dir=gateway.project_dir,
        contract_fields=[f.name for f in spec.contract.inputs],
        output_names=[f.name for f in spec.contract.outputs],
        tracing=bool(spec.server.tracing))
    install_api_docs(app)  # /docs and /redoc with their scripts from the package, no CDN
    install_problem_handler(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=spec.guards.max_body_bytes,
                       read_timeout_s=spec.guards.body_read_timeout_s)
    if spec.server.tracing:
        from keelwork.interfaces.http import tracing as otel

        app.add_middleware(otel.middleware_class(), excluded_urls=otel.EXCLUDED_URLS)
    # Outermost of the user middleware: every request, 413s and tracing included, is logged.
    app.add_middleware(AccessLogMiddleware)
    _add_serving_routes(app, spec)
    for router in routers:
        app.include_router(router)
    app.add_exception_handler(Exception, _unhandled)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    # Innermost of the user middleware: the body limit and tracing still see every request.
    app.user_middleware.append(Middleware(PredictFastPath, routes=FAST_ROUTES))
    return app


def _predict_guard(spec: KeelSpec, api_keys: ApiKeyStoreProtocol | None,
                   rate_limit: Callable[[str], float | None] | None,
                   gateway: Gateway) -> Guard | None:
    """The API-key check (``guards.require_api_key``), then the rate limit (each 429 counted
    in ``keelwork_guard_hits_total{guard="rate_limit"}`` under the model it asked for, when
    keel.yaml names it: a client cannot grow the series)."""
    keyed = predict_guard(api_keys) if spec.guards.require_api_key and api_keys else None
    limit = spec.guards.rate_limit
    if rate_limit is None or limit is None:
        return keyed
    metrics = gateway.metrics
    known = frozenset(m.name for m in spec.models)

    def refused(model: str) -> None:
        if model in known:
            metrics.child(metrics.guard_hits, "rate_limit", model, "reject").inc()

    return rate_guard(rate_limit, limit.per, spec.service.tenant_header, then=keyed,
                      refused=refused)


def _add_serving_routes(app: FastAPI, spec: KeelSpec) -> None:
    """The serving routes, in the order the API docs list them."""
    v1: list[str | Enum] = ["KServe V1"]
    v2: list[str | Enum] = ["Open Inference Protocol"]
    errors = openapi.ERRORS
    route = app.add_api_route
    route("/v1/models/{name}:predict", predict_routes.v1_predict, methods=["POST"], tags=v1,
          openapi_extra=openapi.v1_request(spec), responses=errors,
          description=openapi.predict_description(spec))
    route("/v1/models/{name}", model_routes.v1_model, methods=["GET"], tags=v1,
          responses=errors)
    route("/v2/models/{name}/infer", predict_routes.v2_infer, methods=["POST"], tags=v2,
          openapi_extra=openapi.v2_request(spec), responses=errors)
    route("/v2/models/{name}/versions/{version}/infer", predict_routes.v2_infer_version,
          methods=["POST"], tags=v2, openapi_extra=openapi.v2_request(spec), responses=errors)
    route("/v2/models/{name}", model_routes.v2_model, methods=["GET"], tags=v2,
          responses=errors)
    route("/v2/models/{name}/versions/{version}", model_routes.v2_model_version,
          methods=["GET"], tags=v2, responses=errors)
    route("/v2/models/{name}/ready", model_routes.v2_model_ready, methods=["GET"], tags=v2,
          responses=errors)
    route("/v2/health/live", health_routes.live, methods=["GET"], tags=v2)
    route("/v2/health/ready", health_routes.ready, methods=["GET"], tags=v2)
    route("/v2", health_routes.server_metadata, methods=["GET"], tags=v2)
    route("/metrics", health_routes.metrics, methods=["GET"], tags=["Operations"],
          response_class=PlainTextResponse)


@dataclass(frozen=True, slots=True)
class _Lifecycle:
    """What the app's lifespan runs around the gateway (``app.state.lifecycle``)."""

    gateway: Gateway
    on_startup: Callable[[], Awaitable[None]] | None
    on_shutdown: Callable[[], Awaitable[None]] | None
    freeze_gc: bool


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    life: _Lifecycle = app.state.lifecycle
    if life.on_startup is not None:
        await life.on_startup()
    await life.gateway.start()
    if life.freeze_gc:
        freeze_heap()
    try:
        yield
    finally:
        await life.gateway.close()
        if life.on_shutdown is not None:
            await life.on_shutdown()


async def _unhandled(_request: Request, exc: Exception) -> Response:
    log.exception("unhandled error")
    return error_response(500, f"Internal error: {type(exc).__name__}",
                          [ErrorDetail("", "internal", type(exc).__name__)])


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    return router_error(request, exc.status_code, exc.detail, dict(exc.headers or {}))


async def _invalid(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return validation_error(exc.errors())


__all__ = ["STICKY_HEADER", "create_app"]

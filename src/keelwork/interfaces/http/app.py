"""The ASGI app: KServe V1, Open Inference Protocol, health, metrics and OpenAPI docs.

Handlers take the raw ``Request`` and answer a ``Response`` built with orjson: on the hot path
that is several times cheaper than FastAPI's model validation, and the contract check the
gateway runs is the validation that matters. The request bodies are still described in the
OpenAPI document (``openapi_extra``) so ``/docs`` and schema-driven clients work.
"""

from __future__ import annotations

import gc
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from keelwork import __version__
from keelwork.adapters.stores.api_keys import ApiKeyStore
from keelwork.core.auth import Principal
from keelwork.core.refs import MODEL_REF_HEADER, request_ref
from keelwork.errors import ContractViolation, ErrorDetail, KeelworkError
from keelwork.interfaces.http import jsonbody, openapi
from keelwork.interfaces.http.access import AccessLogMiddleware, note
from keelwork.interfaces.http.api_docs import install_api_docs
from keelwork.interfaces.http.auth import install_problem_handler, predict_guard
from keelwork.interfaces.http.errors import (
    HTTPProblem,
    error_response,
    json_response,
    response_for,
    router_error,
    validation_error,
)
from keelwork.interfaces.http.limits import BodyLimitMiddleware, read_body
from keelwork.interfaces.http.protocols import (
    PROBA_OUTPUT,
    check_outputs,
    parse_v1,
    parse_v1_parameters,
    parse_v2_request,
    proba_records,
    proba_tensor,
    render_v2_outputs,
    v2_details,
    v2_message,
)
from keelwork.service.gateway.gateway import Gateway, PredictResult, RequestContext
from keelwork.service.gateway.host import ModelHost

log = logging.getLogger("keelwork.http")

#: Header keeping a user on one arm of a rollout (A/B, canary) and in one flag bucket.
STICKY_HEADER = "x-keel-user"


def _parse_json(raw: bytes, content_type: str | None) -> Any:
    if content_type:
        ct = content_type.split(";", 1)[0].strip().lower()
        if ct != "application/json" and not ct.endswith("+json"):
            raise HTTPProblem(415, f"The body must be JSON (Content-Type: application/json); "
                                   f"got {ct!r}.",
                              [ErrorDetail("content-type", "media_type", ct)])
    if not raw:
        raise HTTPProblem(400, "The request body is empty; send a JSON object.",
                          [ErrorDetail("", "json", None)])
    return jsonbody.loads(raw)


def _split_ref(name: str, request: Request, version: str | None = None
               ) -> tuple[str, str | None]:
    """``sentiment@challenger`` / ``sentiment:3`` / V2 version / header -> (name, ref).

    Raises:
        ModelRefError: a malformed reference (400), or two that disagree.
    """
    return request_ref(name, request.headers.get(MODEL_REF_HEADER), version)


def _context(request: Request, gateway: Gateway) -> RequestContext:
    h = request.headers
    principal = getattr(request.state, "principal", None)
    return RequestContext(
        tenant=h.get(gateway.spec.service.tenant_header),
        subject_id=h.get("x-subject-id"),
        sticky_key=h.get(STICKY_HEADER),
        headers=h,
        meta={k: h[k] for k in ("x-request-id", "user-agent") if k in h},
        any_ref=isinstance(principal, Principal) and principal.allows("admin"),
    )


def _result_headers(result: PredictResult) -> dict[str, str]:
    ids = result.prediction_ids
    shown = ",".join(ids[:64]) + (",..." if len(ids) > 64 else "")
    return {"x-prediction-ids": shown, "x-model-version": str(result.version),
            "x-answered-by": result.answered_by}


class _Denied(Exception):
    """Control flow of an info route: the 401/403 answer of the key check."""

    def __init__(self, response: Response) -> None:
        self.response = response


def _output_warnings(result: PredictResult) -> list[dict[str, Any]]:
    """The answers' output-contract violations (``output_policy: warn``), as error details."""
    return [{"path": d.path, "rule": d.rule, "got": d.got,
             "message": f"the answer breaks the output contract: {d.message}".rstrip(": ")}
            for d in result.output_violations[:50]]


#: (path pattern, handler(request, **path parameters)), served by :class:`PredictFastPath`.
FastRoute = tuple[re.Pattern[str], Callable[..., Awaitable[Response]]]


class PredictFastPath:
    """Pure ASGI dispatch of the predict endpoints, ahead of FastAPI's router.

    The handlers are the very functions the FastAPI routes call (the routes stay registered, for
    ``/docs`` and for every other method). What a predict request skips is FastAPI's per-request
    machinery: matching every route, solving dependencies, two AsyncExitStacks and exception
    wrapping, which cost more CPU than the gateway's own work on a one-instance request.
    Unexpected exceptions still reach the app's server-error handler.
    """

    def __init__(self, app: ASGIApp, routes: list[FastRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root):]
            for pattern, handler in self.routes:
                match = pattern.fullmatch(path)
                if match is not None:
                    response = await handler(Request(scope, receive, send), **match.groupdict())
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def create_app(gateway: Gateway, *,
               on_startup: Callable[[], Awaitable[None]] | None = None,
               on_shutdown: Callable[[], Awaitable[None]] | None = None,
               freeze_gc: bool = False, routers: Sequence[APIRouter] = (),
               api_keys: ApiKeyStore | None = None) -> FastAPI:
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

    Returns:
        The FastAPI app.

    Raises:
        ValueError: ``guards.require_api_key`` is set but no key store is given.
    """
    spec = gateway.spec
    if spec.guards.require_api_key and api_keys is None:
        raise ValueError("keel.yaml sets guards.require_api_key: create_app needs api_keys.")
    guard = predict_guard(api_keys) if spec.guards.require_api_key and api_keys else None
    contract_fields = [f.name for f in spec.contract.inputs]
    output_names = [f.name for f in spec.contract.outputs]
    limit = spec.guards.max_body_bytes
    root = gateway.project_dir

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if on_startup is not None:
            await on_startup()
        await gateway.start()
        if freeze_gc:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            await gateway.close()
            if on_shutdown is not None:
                await on_shutdown()

    owners = spec.service.owners  # shown in the API docs: who to ask
    app = FastAPI(title=f"keelwork: {spec.service.name}", version=__version__,
                  description=spec.service.description or "Served by keelwork.",
                  contact={"name": ", ".join(owners)},  # who to ask about this API
                  lifespan=lifespan, docs_url=None, redoc_url=None)
    install_api_docs(app)  # /docs and /redoc with their scripts from the package, no CDN
    install_problem_handler(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=limit,
                       read_timeout_s=spec.guards.body_read_timeout_s)
    app.state.gateway = gateway
    tracing = spec.server.tracing
    if tracing:
        from keelwork.interfaces.http import tracing as otel

        app.add_middleware(otel.middleware_class(), excluded_urls=otel.EXCLUDED_URLS)
    # Outermost of the user middleware: every request, 413s and tracing included, is logged.
    app.add_middleware(AccessLogMiddleware)

    async def _predict(request: Request, name: str, ref: str | None, instances: list[Any],
                       protocol: str, probabilities: bool = False) -> PredictResult:
        ctx = _context(request, gateway)
        ctx.meta["protocol"] = protocol
        ctx.probabilities = probabilities
        note(request.scope, protocol=protocol, model=name, ref=ref, instances=len(instances))
        result = await gateway.predict(name, ref, instances, ctx)
        if tracing:
            from keelwork.interfaces.http.tracing import annotate

            annotate(result.model, result.version, result.answered_by, result.prediction_ids)
        note(request.scope, model=result.model, version=result.version,
             answered_by=result.answered_by, prediction_ids=result.prediction_ids[:16])
        return result

    # ------------------------------------------------------------------ KServe V1
    @app.post("/v1/models/{name}:predict", tags=["KServe V1"],
              openapi_extra=openapi.v1_request(spec), responses=openapi.ERRORS)
    async def v1_predict(request: Request, name: str) -> Response:
        """Predict (KServe V1): ``{"instances": [...]}`` -> ``{"predictions": [...]}``.

        Address an alias or version with ``name@alias`` / ``name@3`` in the path or the
        ``x-keel-model-ref`` header; the default is the champion.
        """
        if guard is not None and (denied := await guard(request)) is not None:
            return denied
        try:
            body = _parse_json(await read_body(request, limit),
                               request.headers.get("content-type"))
            instances = parse_v1(body)
            probabilities = parse_v1_parameters(body)
            model, ref = _split_ref(name, request)
            if probabilities and (await _client_host(request, model, ref)).classes is None:
                raise HTTPProblem(400, f"The model {model!r} has no class probabilities (it is "
                                       "not a classifier); drop parameters.probabilities.",
                                  [ErrorDetail("parameters.probabilities", "probabilities",
                                               True)])
            result = await _predict(request, model, ref, instances, "v1", probabilities)
        except (KeelworkError, HTTPProblem) as exc:
            return response_for(exc, root)
        out: dict[str, Any] = {
            "predictions": result.predictions, "model_name": result.model,
            "model_version": result.version, "prediction_ids": result.prediction_ids,
            "answered_by": result.answered_by}
        if result.probabilities is not None and result.classes is not None:
            out["probabilities"] = proba_records(result.probabilities, result.classes)
        if result.output_violations:
            out["warnings"] = _output_warnings(result)
        return json_response(out, headers=_result_headers(result))

    async def _client_host(request: Request, model: str, ref: str | None) -> ModelHost:
        """The host a request names, loaded: only a reference the client may address
        (``guards.version_refs``), since naming a version loads it."""
        gateway.check_ref(model, ref, _context(request, gateway))
        return await gateway.host(model, ref)

    async def _info_host(request: Request, name: str,
                         version: str | None = None) -> tuple[str, ModelHost]:
        """(model, host) an info route describes: the key rule and the reference rule of
        predict apply (describing a version loads it).

        Raises:
            _Denied: the key check's answer (401/403).
        """
        if guard is not None and (denied := await guard(request)) is not None:
            raise _Denied(denied)
        model, ref = _split_ref(name, request, version)
        return model, await _client_host(request, model, ref)

    @app.get("/v1/models/{name}", tags=["KServe V1"], responses=openapi.ERRORS)
    async def v1_model(request: Request, name: str) -> Response:
        """Model status (KServe V1)."""
        if name.endswith(":predict"):
            return error_response(
                405, "Predict with POST (KServe V1: POST /v1/models/NAME:predict with "
                     '{"instances": [...]}); GET /v1/models/NAME is the model\'s status.',
                [ErrorDetail("method", "method_allowed", "GET")], {"Allow": "POST"})
        try:
            model, host = await _info_host(request, name)
        except _Denied as denied:
            return denied.response
        except KeelworkError as exc:
            return response_for(exc, root)
        return json_response({"name": model, "version": host.target.version,
                              "ready": gateway.ready})

    # ------------------------------------------------------------------ Open Inference Protocol
    async def _v2_infer(request: Request, name: str, version: str | None) -> Response:
        if guard is not None and (denied := await guard(request)) is not None:
            return denied
        try:
            body = _parse_json(await read_body(request, limit),
                               request.headers.get("content-type"))
            req = parse_v2_request(body, contract_fields)
            model, ref = _split_ref(name, request, version)
            if req.outputs is not None:
                check_outputs(req.outputs,
                              _outputs_of(await _client_host(request, model, ref)))
            result = await _predict(request, model, ref, req.instances, "v2",
                                    PROBA_OUTPUT in (req.outputs or ()))
        except ContractViolation as exc:  # raised by the gateway, after req was parsed
            details = v2_details(exc.details, req)
            return response_for(ContractViolation(v2_message(exc.message, exc.details, details),
                                                  details), root)
        except (KeelworkError, HTTPProblem) as exc:
            return response_for(exc, root)
        tensors = render_v2_outputs(result.predictions, output_names)
        if result.probabilities is not None and result.classes is not None:
            tensors.append(proba_tensor(result.probabilities, result.classes))
        if req.outputs is not None:  # what was asked for, in that order
            by_name = {t["name"]: t for t in tensors}
            tensors = [by_name[n] for n in req.outputs if n in by_name]
        out: dict[str, Any] = {
            "model_name": result.model, "model_version": str(result.version),
            "outputs": tensors,
            "parameters": {"prediction_ids": ",".join(result.prediction_ids),
                           "answered_by": result.answered_by},
        }
        if result.output_violations:
            out["parameters"]["warnings"] = _output_warnings(result)
        if req.id is not None:
            out["id"] = req.id
        return json_response(out, headers=_result_headers(result))

    @app.post("/v2/models/{name}/infer", tags=["Open Inference Protocol"],
              openapi_extra=openapi.v2_request(spec), responses=openapi.ERRORS)
    async def v2_infer(request: Request, name: str) -> Response:
        """Inference (Open Inference Protocol / KServe V2 REST)."""
        return await _v2_infer(request, name, None)

    @app.post("/v2/models/{name}/versions/{version}/infer", tags=["Open Inference Protocol"],
              openapi_extra=openapi.v2_request(spec), responses=openapi.ERRORS)
    async def v2_infer_version(request: Request, name: str, version: str) -> Response:
        """Inference on one model version (Open Inference Protocol)."""
        return await _v2_infer(request, name, version)

    async def _v2_metadata(request: Request, name: str, version: str | None) -> Response:
        try:
            name, host = await _info_host(request, name, version)
        except _Denied as denied:
            return denied.response
        except KeelworkError as exc:
            return response_for(exc, root)
        sig = host.runtime.signature
        inputs = [{"name": f.name, "datatype": openapi.v2_dtype(f.type, f.dtype),
                   "shape": [-1, *(f.shape or [])] if f.type == "tensor" else [-1]}
                  for f in spec.contract.inputs] or [t.as_dict() for t in sig.inputs]
        served = sorted({t.version for t in gateway.loaded() if t.name == host.target.name})
        return json_response({"name": name, "versions": [str(v) for v in served],
                      "platform": f"keelwork-{host.target.runtime}", "inputs": inputs,
                      "outputs": _output_tensors(host)})

    def _output_tensors(host: ModelHost) -> list[dict[str, Any]]:
        """The outputs infer can return for ``host``, as metadata lists them: the contract's
        outputs (else the runtime's, else ``predict``), then ``predict_proba`` for a
        classifier."""
        sig = host.runtime.signature
        out: list[dict[str, Any]]
        if spec.contract.outputs:
            out = [{"name": f.name, "datatype": openapi.v2_dtype(f.type, f.dtype),
                    "shape": [-1, *(f.shape or [])] if f.type == "tensor" else [-1]}
                   for f in spec.contract.outputs]
        else:
            named = [t for t in sig.outputs if "prob" not in t.name.lower()]
            if len(named) > 1:  # the runtime answers records, one tensor per field
                out = [t.as_dict() for t in named]
            else:
                out = [{"name": "predict",
                        "datatype": named[0].dtype if named else "BYTES", "shape": [-1]}]
        if host.classes is not None:
            out.append({"name": PROBA_OUTPUT, "datatype": "FP64",
                        "shape": [-1, len(host.classes)],
                        "parameters": {"classes": [str(c) for c in host.classes]}})
        return out

    def _outputs_of(host: ModelHost) -> list[str]:
        return [str(t["name"]) for t in _output_tensors(host)]

    @app.get("/v2/models/{name}", tags=["Open Inference Protocol"], responses=openapi.ERRORS)
    async def v2_model(request: Request, name: str) -> Response:
        """Model metadata (Open Inference Protocol)."""
        return await _v2_metadata(request, name, None)

    @app.get("/v2/models/{name}/versions/{version}", tags=["Open Inference Protocol"],
             responses=openapi.ERRORS)
    async def v2_model_version(request: Request, name: str, version: str) -> Response:
        """Metadata of one model version (Open Inference Protocol)."""
        return await _v2_metadata(request, name, version)

    @app.get("/v2/models/{name}/ready", tags=["Open Inference Protocol"],
             responses=openapi.ERRORS)
    async def v2_model_ready(name: str) -> Response:
        """Model readiness: 200 when loaded, 404 for an unknown model."""
        try:
            gateway.model_section(name)
        except KeelworkError as exc:
            return response_for(exc, root)
        ready = gateway.ready and any(t.name == name for t in gateway.loaded())
        return json_response({"name": name, "ready": ready}, status=200 if ready else 503)

    @app.get("/v2/health/live", tags=["Open Inference Protocol"])
    async def live() -> Response:
        """Liveness."""
        return json_response({"live": True})

    @app.get("/v2/health/ready", tags=["Open Inference Protocol"])
    async def ready() -> Response:
        """Readiness: every model of the spec is loaded (200, else 503).

        A degraded component (its store is down: the prediction log spools, the rollout
        controller and the flags keep what they have) still serves, so the answer stays 200;
        ``degraded`` names such components and ``components`` says why.
        """
        health = gateway.health()
        degraded = sorted(n for n, state in health.items() if state.get("degraded"))
        return json_response({"ready": gateway.ready, "degraded": degraded,
                              "components": health},
                             status=200 if gateway.ready else 503)

    @app.get("/v2", tags=["Open Inference Protocol"])
    async def server_metadata() -> Response:
        """Server metadata (Open Inference Protocol)."""
        return json_response({"name": "keelwork", "version": __version__,
                      "extensions": ["kserve-v1", "prediction-log", "contract"]})

    # ------------------------------------------------------------------ metrics
    @app.get("/metrics", tags=["Operations"], response_class=PlainTextResponse)
    async def metrics() -> Response:
        """Prometheus metrics."""
        payload, content_type = gateway.metrics.render()
        return Response(payload, media_type=content_type)

    for router in routers:
        app.include_router(router)

    @app.exception_handler(Exception)
    async def _unhandled(_request: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, f"Internal error: {type(exc).__name__}",
                              [ErrorDetail("", "internal", type(exc).__name__)])

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return router_error(request, exc.status_code, exc.detail, dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> Response:
        return validation_error(exc.errors())

    # Innermost of the user middleware: the body limit and tracing still see every request.
    app.user_middleware.append(Middleware(PredictFastPath, routes=[
        (re.compile(r"/v1/models/(?P<name>[^/]+):predict"), v1_predict),
        (re.compile(r"/v2/models/(?P<name>[^/]+)/infer"), v2_infer),
        (re.compile(r"/v2/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)/infer"),
         v2_infer_version),
    ]))
    return app


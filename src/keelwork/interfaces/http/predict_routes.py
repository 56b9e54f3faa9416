"""The predict routes: KServe V1 ``:predict`` and Open Inference Protocol ``infer``, and
:class:`PredictFastPath`, the pure-ASGI dispatch that serves them ahead of FastAPI's router.

Each handler parses its protocol into instances, calls the gateway
(:meth:`~keelwork.service.gateway.gateway.Gateway.predict`) and renders the result or the error;
what it needs of the app it reads from :func:`~keelwork.interfaces.http.context.http_context`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from keelwork.errors import ContractViolation, ErrorDetail, InvalidInputError, KeelworkError
from keelwork.interfaces.http import jsonbody
from keelwork.interfaces.http.access import note
from keelwork.interfaces.http.context import (
    HttpContext,
    client_host,
    http_context,
    request_context,
    split_ref,
)
from keelwork.interfaces.http.errors import HTTPProblem, json_response, response_for
from keelwork.interfaces.http.limits import read_body
from keelwork.interfaces.http.model_routes import output_tensors
from keelwork.interfaces.http.protocols import (
    PROBA_OUTPUT,
    V2Request,
    answer_headers,
    check_outputs,
    output_warnings,
    parse_v1,
    parse_v1_parameters,
    parse_v2_request,
    proba_records,
    v2_answer,
    v2_error,
)
from keelwork.service.gateway.context import PredictResult


async def v1_predict(request: Request, name: str) -> Response:
    """Predict (KServe V1): ``{"instances": [...]}`` -> ``{"predictions": [...]}``.

    Address an alias or version with ``name@alias`` / ``name@3`` in the path or the
    ``x-keel-model-ref`` header; the default is the champion.
    """
    ctx = http_context(request)
    if ctx.guard is not None and (denied := await ctx.guard(request)) is not None:
        return denied
    try:
        body = await _json_body(request, ctx)
        instances = parse_v1(body)
        probabilities = parse_v1_parameters(body)
        model, ref = split_ref(name, request)
        if probabilities and (await client_host(ctx, request, model, ref)).classes is None:
            raise HTTPProblem(400, f"The model {model!r} has no class probabilities (it is "
                                   "not a classifier); drop parameters.probabilities.",
                              [ErrorDetail("parameters.probabilities", "probabilities",
                                           True)])
        result = await _predict(ctx, request, model, ref, instances, "v1", probabilities)
    except (KeelworkError, HTTPProblem) as exc:
        return response_for(exc, ctx.project_dir)
    out: dict[str, Any] = {
        "predictions": result.predictions, "model_name": result.model,
        "model_version": result.version, "prediction_ids": result.prediction_ids,
        "answered_by": result.answered_by}
    if result.probabilities is not None and result.classes is not None:
        out["probabilities"] = proba_records(result.probabilities, result.classes)
    if result.output_violations:
        out["warnings"] = output_warnings(result.output_violations)
    return json_response(out, headers=_result_headers(result))


async def v2_infer(request: Request, name: str) -> Response:
    """Inference (Open Inference Protocol / KServe V2 REST)."""
    return await _v2_infer(request, name, None)


async def v2_infer_version(request: Request, name: str, version: str) -> Response:
    """Inference on one model version (Open Inference Protocol)."""
    return await _v2_infer(request, name, version)


async def _v2_infer(request: Request, name: str, version: str | None) -> Response:
    ctx = http_context(request)
    if ctx.guard is not None and (denied := await ctx.guard(request)) is not None:
        return denied
    req: V2Request | None = None
    try:
        body = await _json_body(request, ctx)
        req = parse_v2_request(body, ctx.contract_fields)
        model, ref = split_ref(name, request, version)
        if req.outputs is not None:
            host = await client_host(ctx, request, model, ref)
            check_outputs(req.outputs,
                          [str(t["name"]) for t in output_tensors(ctx.gateway.spec, host)])
        result = await _predict(ctx, request, model, ref, req.instances, "v2",
                                PROBA_OUTPUT in (req.outputs or ()))
        out = v2_answer(model=result.model, version=result.version,
                        predictions=result.predictions, probabilities=result.probabilities,
                        classes=result.classes, output_names=ctx.output_names,
                        requested=req.outputs, prediction_ids=result.prediction_ids,
                        answered_by=result.answered_by, violations=result.output_violations,
                        request_id=req.id)
    except (ContractViolation, InvalidInputError) as exc:  # named by tensor path
        return response_for(v2_error(exc, req), ctx.project_dir)
    except (KeelworkError, HTTPProblem) as exc:
        return response_for(exc, ctx.project_dir)
    return json_response(out, headers=_result_headers(result))


async def _predict(ctx: HttpContext, request: Request, name: str, ref: str | None,
                   instances: list[Any], protocol: str,
                   probabilities: bool = False) -> PredictResult:
    gateway = ctx.gateway
    rctx = request_context(request, gateway)
    rctx.meta["protocol"] = protocol
    rctx.probabilities = probabilities
    note(request.scope, protocol=protocol, model=name, ref=ref, instances=len(instances))
    result = await gateway.predict(name, ref, instances, rctx)
    if ctx.tracing:
        from keelwork.interfaces.http.tracing import annotate

        annotate(result.model, result.version, result.answered_by, result.prediction_ids)
    note(request.scope, model=result.model, version=result.version,
         answered_by=result.answered_by, prediction_ids=result.prediction_ids[:16])
    return result


async def _json_body(request: Request, ctx: HttpContext) -> Any:
    """The body of a predict request: JSON by its content type (if given), not empty."""
    raw = await read_body(request, ctx.max_body_bytes)
    jsonbody.check_media_type(request.headers.get("content-type"))
    return jsonbody.loads(raw)


def _result_headers(result: PredictResult) -> dict[str, str]:
    return answer_headers(result.prediction_ids, result.version, result.answered_by)


#: (path pattern, handler(request, **path parameters)), served by :class:`PredictFastPath`.
FastRoute = tuple[re.Pattern[str], Callable[..., Awaitable[Response]]]

#: The predict routes :class:`PredictFastPath` serves (the same handlers as the app's routes).
FAST_ROUTES: list[FastRoute] = [
    (re.compile(r"/v1/models/(?P<name>[^/]+):predict"), v1_predict),
    (re.compile(r"/v2/models/(?P<name>[^/]+)/infer"), v2_infer),
    (re.compile(r"/v2/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)/infer"),
     v2_infer_version),
]


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


__all__ = ["FAST_ROUTES", "FastRoute", "PredictFastPath", "v1_predict", "v2_infer",
           "v2_infer_version"]

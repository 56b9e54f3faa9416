"""``POST /v1/models/{name}:explain`` (the KServe V1 explain verb).

The body is predict's (``{"instances": [...]}``; the contract check applies, and the instances
are predicted and logged before they are explained) or ``{"prediction_ids": [...]}`` of logged
predictions. The predict routes' key rule (``guards.require_api_key``: the ``predict`` scope)
and rate limit apply. The work is :class:`~keelwork.service.explain.Explainer`'s.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from keelwork.errors import ErrorDetail, ExplainBudgetSpent, KeelworkError
from keelwork.interfaces.http import jsonbody, openapi
from keelwork.interfaces.http.context import (
    ProvideContext,
    http_context,
    request_context,
    route_context,
    split_ref,
)
from keelwork.interfaces.http.errors import (
    HTTPProblem,
    error_response,
    json_response,
    response_for,
)
from keelwork.interfaces.http.limits import read_body
from keelwork.interfaces.http.protocols import parse_v1
from keelwork.service.explain import MAX_INSTANCES, Explainer

_STATE_KEY = "explainer"


def explain_router(explainer: Explainer) -> APIRouter:
    """The explain route over ``explainer``."""
    router = APIRouter(dependencies=[Depends(ProvideContext(_STATE_KEY, explainer))])
    spec = explainer.resolved.spec
    body = {"type": "object", "properties": {
        "instances": {"type": "array", "minItems": 1, "maxItems": MAX_INSTANCES,
                      "items": openapi.record_schema(spec),
                      "description": "New instances: predicted (and logged), then explained."},
        "prediction_ids": {"type": "array", "minItems": 1, "maxItems": MAX_INSTANCES,
                           "items": {"type": "string"},
                           "description": "Instead of 'instances': logged predictions."}},
        "oneOf": [{"required": ["instances"]}, {"required": ["prediction_ids"]}]}
    errors = {**openapi.ERRORS, **openapi.AUTH_ERRORS,
              404: {**openapi.ERRORS[404], "description": "Unknown model or prediction id, "
                    "or explain.enabled is false"},
              422: {**openapi.ERRORS[422], "description": "Contract violation, or a model "
                    "(or logged prediction) that cannot be explained"},
              429: {**openapi.ERRORS[429], "description": "Past guards.rate_limit or "
                    "explain.budget_per_minute (Retry-After)"}}
    router.add_api_route("/v1/models/{name}:explain", v1_explain, methods=["POST"],
                         tags=["KServe V1"], responses=errors,
                         openapi_extra={"requestBody": {"required": True, "content": {
                             "application/json": {"schema": body}}}})
    return router


async def v1_explain(request: Request, name: str) -> Response:
    """Explain (KServe V1): ``{"instances": [...]}`` or ``{"prediction_ids": [...]}`` ->
    ``{"explanations": [{"prediction_id", "attributions", "expected_value", ...}]}``.

    Attributions sum to ``output_value - expected_value``; ``output`` names the explained
    output (docs/explain.md).
    """
    ctx = http_context(request)
    explainer = route_context(request, _STATE_KEY, Explainer)
    if ctx.guard is not None and (denied := await ctx.guard(request)) is not None:
        return denied
    if not explainer.settings.enabled:
        return error_response(404, "Explanations are off here (keel.yaml explain.enabled: "
                                   "false).", [ErrorDetail("explain.enabled", "enabled", False)])
    try:
        body = await _body(request, ctx.max_body_bytes)
        model, ref = split_ref(name, request)
        if isinstance(body, dict) and "prediction_ids" in body:
            ids = _ids(body["prediction_ids"])
            tenant = request_context(request, ctx.gateway).tenant
            out = await explainer.explain_logged(model, ids, tenant)
        else:
            instances = parse_v1(body)
            rctx = request_context(request, ctx.gateway)
            rctx.meta["protocol"] = "v1-explain"
            out = await explainer.explain_instances(model, ref, instances, rctx)
    except ExplainBudgetSpent as exc:
        return error_response(429, exc.message,
                              [ErrorDetail("explain.budget_per_minute", "budget", None)],
                              {"Retry-After": str(max(1, round(exc.retry_after + 0.5)))})
    except (KeelworkError, HTTPProblem) as exc:
        return response_for(exc, ctx.project_dir)
    return json_response(out)


def _ids(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise HTTPProblem(400, "'prediction_ids' must be a list of prediction id strings.",
                          [ErrorDetail("prediction_ids", "type", type(value).__name__)])
    return list(value)


async def _body(request: Request, max_bytes: int) -> Any:
    raw = await read_body(request, max_bytes)
    if not raw:
        raise HTTPProblem(400, "The request body is empty; send a JSON object.",
                          [ErrorDetail("", "json", None)])
    return jsonbody.loads(raw)


__all__ = ["explain_router", "v1_explain"]

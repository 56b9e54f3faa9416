"""Model status and metadata routes: KServe V1 ``GET /v1/models/{name}`` and the Open Inference
Protocol's model metadata and readiness (``GET /v2/models/{name}[/versions/{v}][/ready]``).

Describing a version loads it, so these routes apply predict's key rule and reference rule
(:func:`~keelwork.interfaces.http.context.info_host`).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from keelwork.errors import ErrorDetail, KeelworkError
from keelwork.interfaces.http import openapi
from keelwork.interfaces.http.context import Denied, http_context, info_host
from keelwork.interfaces.http.errors import error_response, json_response, response_for
from keelwork.interfaces.http.protocols import PROBA_OUTPUT, class_names
from keelwork.service.gateway.host import ModelHost
from keelwork.spec.contract import FieldSpec
from keelwork.spec.model import KeelSpec


async def v1_model(request: Request, name: str) -> Response:
    """Model status (KServe V1)."""
    ctx = http_context(request)
    if name.endswith(":predict"):
        return error_response(
            405, "Predict with POST (KServe V1: POST /v1/models/NAME:predict with "
                 '{"instances": [...]}); GET /v1/models/NAME is the model\'s status.',
            [ErrorDetail("method", "method_allowed", "GET")], {"Allow": "POST"})
    try:
        model, host = await info_host(ctx, request, name)
    except Denied as denied:
        return denied.response
    except KeelworkError as exc:
        return response_for(exc, ctx.project_dir)
    return json_response({"name": model, "version": host.target.version,
                          "ready": ctx.gateway.ready})


async def v2_model(request: Request, name: str) -> Response:
    """Model metadata (Open Inference Protocol)."""
    return await _v2_metadata(request, name, None)


async def v2_model_version(request: Request, name: str, version: str) -> Response:
    """Metadata of one model version (Open Inference Protocol)."""
    return await _v2_metadata(request, name, version)


async def v2_model_ready(request: Request, name: str) -> Response:
    """Model readiness: 200 when loaded, 404 for an unknown model."""
    ctx = http_context(request)
    gateway = ctx.gateway
    try:
        gateway.model_section(name)
    except KeelworkError as exc:
        return response_for(exc, ctx.project_dir)
    ready = gateway.ready and any(t.name == name for t in gateway.loaded())
    return json_response({"name": name, "ready": ready}, status=200 if ready else 503)


async def _v2_metadata(request: Request, name: str, version: str | None) -> Response:
    ctx = http_context(request)
    try:
        name, host = await info_host(ctx, request, name, version)
    except Denied as denied:
        return denied.response
    except KeelworkError as exc:
        return response_for(exc, ctx.project_dir)
    served = sorted({t.version for t in ctx.gateway.loaded() if t.name == host.target.name})
    return json_response(v2_metadata(ctx.gateway.spec, name, host, served))


def v2_metadata(spec: KeelSpec, name: str, host: ModelHost,
                served: list[int]) -> dict[str, Any]:
    """A model's metadata (Open Inference Protocol): the ``served`` versions, the inputs
    (the contract's, else the runtime's) and :func:`output_tensors`."""
    sig = host.runtime.signature
    inputs = [{"name": f.name, "datatype": _datatype(f),
               "shape": [-1, *(f.shape or [])] if f.type == "tensor" else [-1]}
              for f in spec.contract.inputs] or [t.as_dict() for t in sig.inputs]
    return {"name": name, "versions": [str(v) for v in served],
            "platform": f"keelwork-{host.target.runtime}", "inputs": inputs,
            "outputs": output_tensors(spec, host)}


def output_tensors(spec: KeelSpec, host: ModelHost) -> list[dict[str, Any]]:
    """The outputs infer can return for ``host``, as metadata lists them: the contract's
    outputs (else the runtime's, else ``predict``), then ``predict_proba`` for a
    classifier."""
    sig = host.runtime.signature
    out: list[dict[str, Any]]
    if spec.contract.outputs:
        out = [{"name": f.name, "datatype": _datatype(f),
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
                    "parameters": {"classes": class_names(host.classes)}})
    return out


def _datatype(f: FieldSpec) -> str:
    """A contract field's OIP datatype, as infer types its values: a category field of
    integer (or boolean) categories is INT64 (BOOL), not BYTES."""
    cats = f.categories
    if f.type == "category" and cats:
        if all(isinstance(c, bool) for c in cats):
            return "BOOL"
        if all(isinstance(c, int) and not isinstance(c, bool) for c in cats):
            return "INT64"
    return openapi.v2_dtype(f.type, f.dtype)


__all__ = ["output_tensors", "v1_model", "v2_metadata", "v2_model", "v2_model_ready",
           "v2_model_version"]

"""OpenAPI descriptions of the raw-request routes, generated from the spec's contract."""

from __future__ import annotations

from typing import Any

from keelwork.spec.contract import FieldSpec
from keelwork.spec.model import KeelSpec

_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "details"],
    "properties": {
        "error": {"type": "string"},
        "details": {"type": "array", "items": {
            "type": "object", "required": ["path", "rule"],
            "properties": {"path": {"type": "string"}, "rule": {"type": "string"},
                           "got": {}, "message": {"type": "string"}}}},
    },
}
_ERR = {"content": {"application/json": {"schema": _ERROR_SCHEMA}}}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed JSON", **_ERR},
    404: {"description": "Unknown model, alias or version", **_ERR},
    413: {"description": "Body too large", **_ERR},
    415: {"description": "Not JSON", **_ERR},
    422: {"description": "Contract violation (every bad field listed)", **_ERR},
    429: {"description": "Past guards.rate_limit (Retry-After)", **_ERR},
    500: {"description": "The model failed (named in the message)", **_ERR},
    503: {"description": "Overloaded (Retry-After) or not ready", **_ERR},
    504: {"description": "The model timed out (named in the message)", **_ERR},
}

#: Errors of routes that need an API key (admin routes; predict and feedback when keyed).
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No API key, or an unknown or revoked one", **_ERR},
    403: {"description": "The API key lacks the scope this route needs", **_ERR},
}
#: Errors of ``POST /v1/feedback``.
FEEDBACK_ERRORS: dict[int | str, dict[str, Any]] = {
    400: ERRORS[400], **AUTH_ERRORS, 413: ERRORS[413],
    422: {"description": "Invalid labels (every bad field listed); nothing was stored", **_ERR},
    503: {"description": "The store is unavailable", **_ERR},
}
#: Errors of the admin routes.
ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    400: ERRORS[400], **AUTH_ERRORS, 404: {"description": "No such object", **_ERR},
    409: {"description": "Conflicts with the current state", **_ERR},
    413: ERRORS[413],
    422: {"description": "Invalid body (every bad field listed)", **_ERR},
    503: {"description": "The store is unavailable", **_ERR},
}

_JSON_TYPES = {"float": "number", "integer": "integer", "boolean": "boolean", "string": "string",
               "category": "string", "text": "string", "tensor": "array"}


def _field_schema(f: FieldSpec) -> dict[str, Any]:
    s: dict[str, Any] = {"type": _JSON_TYPES[f.type]}
    if f.type == "category" and f.categories:
        s = {"enum": list(f.categories)}
    if f.min is not None and f.type in ("float", "integer"):
        s["minimum"] = f.min
    if f.max is not None and f.type in ("float", "integer"):
        s["maximum"] = f.max
    if f.min_length is not None and f.type in ("string", "text"):
        s["minLength"] = f.min_length
    if f.max_length is not None and f.type in ("string", "text"):
        s["maxLength"] = f.max_length
    if f.nullable:
        s = {"anyOf": [s, {"type": "null"}]}
    if f.description:
        s["description"] = f.description
    return s


def record_schema(spec: KeelSpec) -> dict[str, Any]:
    fields = spec.contract.inputs
    if not fields:
        return {}
    return {
        "type": "object",
        "properties": {f.name: _field_schema(f) for f in fields},
        "required": [f.name for f in fields if f.required],
        "additionalProperties": spec.contract.extra_fields != "reject",
    }


def predict_description(spec: KeelSpec) -> str | None:
    """The V1 predict operation's text in the API docs: what each prediction holds, from the
    output contract (``contract.outputs``, with their descriptions); None: no output contract
    (the handler's own docstring is shown)."""
    outputs = spec.contract.outputs
    if not outputs:
        return None
    lines = ["Predict (KServe V1): `{\"instances\": [...]}` -> `{\"predictions\": [...]}`.",
             "", "Each prediction holds (keel.yaml's output contract):", ""]
    for f in outputs:
        said = f": {f.description}" if f.description else ""
        lines.append(f"- `{f.name}` ({f.type}{'' if f.required else ', optional'}){said}")
    return "\n".join(lines)


def v1_request(spec: KeelSpec) -> dict[str, Any]:
    schema = {"type": "object", "required": ["instances"],
              "properties": {
                  "instances": {"type": "array", "minItems": 1, "items": record_schema(spec)},
                  "inputs": {"description": "Instead of 'instances' (KServe V1): the rows, or "
                                            "an object of equal-length columns."},
                  "parameters": {"type": "object", "additionalProperties": False,
                                 "properties": {"probabilities": {
                                     "type": "boolean",
                                     "description": "Also answer each instance's class "
                                                    "probabilities, {class: p} (classifiers)."}}},
              }}
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": schema}}}}


def v2_request(_spec: KeelSpec) -> dict[str, Any]:
    tensor = {"type": "object", "required": ["name", "shape", "datatype", "data"],
              "properties": {"name": {"type": "string"},
                             "shape": {"type": "array", "items": {"type": "integer",
                                                                  "minimum": 0}},
                             "datatype": {"type": "string", "enum": [
                                 "BOOL", "INT32", "INT64", "FP32", "FP64", "BYTES"]},
                             "data": {"type": "array"},
                             "parameters": {"type": "object"}}}
    schema = {"type": "object", "required": ["inputs"],
              "properties": {"id": {"type": "string"},
                             "inputs": {"type": "array", "minItems": 1, "items": tensor},
                             "outputs": {"type": "array", "description": (
                                 "The outputs to answer (GET /v2/models/{name} lists them: "
                                 "the prediction, and predict_proba for a classifier)."),
                                 "items": {"type": "object", "required": ["name"],
                                           "properties": {"name": {"type": "string"},
                                                          "parameters": {"type": "object"}}}},
                             "parameters": {"type": "object"}}}
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": schema}}}}


def v2_dtype(field_type: str, dtype: str | None) -> str:
    if dtype:
        return {"float32": "FP32", "float64": "FP64", "int32": "INT32", "int64": "INT64",
                "bool": "BOOL"}[dtype]
    return {"float": "FP64", "integer": "INT64", "boolean": "BOOL", "tensor": "FP32"}.get(
        field_type, "BYTES")

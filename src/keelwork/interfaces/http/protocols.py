"""Wire formats: KServe V1 and the Open Inference Protocol (KServe V2 / Triton / MLServer REST).

Each protocol is turned into the gateway's neutral form (a list of instances) and back. Errors
name the JSON path that is wrong.
"""

from __future__ import annotations

import math
from typing import Any

from keelwork.errors import ErrorDetail
from keelwork.interfaces.http.errors import HTTPProblem

_V2_DTYPES = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
              "FP16", "FP32", "FP64", "BYTES"}


def _bad(path: str, rule: str, got: Any, message: str) -> HTTPProblem:
    return HTTPProblem(422, message, [ErrorDetail(path, rule, got, message)])


# ---------------------------------------------------------------------------- KServe V1
def parse_v1(body: Any) -> list[Any]:
    """A KServe V1 body -> instances (records as objects, or lists).

    The V1 protocol takes the rows as ``{"instances": [...]}`` or as ``{"inputs": [...]}``;
    ``inputs`` may also be TensorFlow Serving's columnar form, an object of equal-length
    lists (``{"inputs": {"a": [1, 2], "b": [3, 4]}}`` is two records).
    """
    if not isinstance(body, dict):
        raise _bad("", "type", type(body).__name__,
                   "The body must be a JSON object with an 'instances' list.")
    if "instances" in body and "inputs" in body:
        raise _bad("inputs", "exclusive", None,
                   "The body holds both 'instances' and 'inputs'; send the rows in one of them.")
    if "inputs" in body:
        return _v1_inputs(body["inputs"])
    if "instances" not in body:
        raise _bad("instances", "required", None,
                   "The body needs an 'instances' (or 'inputs') list (KServe V1), e.g. "
                   '{"instances": [{"feature": 1.0}]}.')
    instances = body["instances"]
    if not isinstance(instances, list):
        raise _bad("instances", "type", type(instances).__name__,
                   f"'instances' must be a list; got {type(instances).__name__}.")
    return instances


def _v1_inputs(inputs: Any) -> list[Any]:
    if isinstance(inputs, list):
        return inputs
    if not isinstance(inputs, dict):
        raise _bad("inputs", "type", type(inputs).__name__,
                   "'inputs' must be a list of rows or an object of equal-length columns; got "
                   f"{type(inputs).__name__}.")
    if not inputs:
        return []
    lengths = {k: len(v) if isinstance(v, list) else None for k, v in inputs.items()}
    for key, n in lengths.items():
        if n is None:
            raise _bad(f"inputs.{key}", "type", type(inputs[key]).__name__,
                       f"Columnar 'inputs' hold one list per field; inputs.{key} is a "
                       f"{type(inputs[key]).__name__}.")
    rows = next(iter(lengths.values()))
    for key, n in lengths.items():
        if n != rows:
            raise _bad(f"inputs.{key}", "length", n,
                       f"Columnar 'inputs' need lists of one length; inputs.{key} holds {n} "
                       f"values, the first field {rows}.")
    keys = list(inputs)
    return [{k: inputs[k][r] for k in keys} for r in range(rows or 0)]


# ---------------------------------------------------------------------------- Open Inference
def _prod(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if not any(isinstance(x, list) for x in data):
        return data
    out: list[Any] = []
    stack = [data]
    # iterative flatten keeps deep nesting from exhausting the stack
    while stack:
        cur = stack.pop()
        if isinstance(cur, list):
            stack.extend(reversed(cur))
        else:
            out.append(cur)
    return out


def _check_tensor(i: int, t: Any) -> tuple[str, list[int], str, list[Any]]:
    path = f"inputs[{i}]"
    if not isinstance(t, dict):
        raise _bad(path, "type", type(t).__name__, f"{path} must be an object.")
    for key in ("name", "shape", "datatype", "data"):
        if key not in t:
            raise _bad(f"{path}.{key}", "required", None, f"{path} needs '{key}'.")
    name, shape, dtype, data = t["name"], t["shape"], t["datatype"], t["data"]
    if not isinstance(name, str):
        raise _bad(f"{path}.name", "type", type(name).__name__, f"{path}.name must be a string.")
    if (not isinstance(shape, list) or not shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**31
                       for d in shape)):
        raise _bad(f"{path}.shape", "shape", str(shape)[:80],
                   f"{path}.shape must be a non-empty list of non-negative integers.")
    if dtype not in _V2_DTYPES:
        raise _bad(f"{path}.datatype", "datatype", str(dtype)[:40],
                   f"{path}.datatype must be one of {', '.join(sorted(_V2_DTYPES))}.")
    flat = _flatten(data)
    if len(flat) != _prod(shape):
        raise _bad(f"{path}.data", "shape", len(flat),
                   f"{path}.data holds {len(flat)} values but shape {shape} needs "
                   f"{_prod(shape)}.")
    return name, shape, dtype, flat


def parse_v2(body: Any, contract_fields: list[str]) -> tuple[list[Any], str | None]:
    """An OIP inference request -> (instances, request id).

    Tensors named after contract fields are columns of records (``shape[0]`` = rows); a single
    tensor with another name holds positional rows (``[N, F]``) or scalars (``[N]``).
    """
    if not isinstance(body, dict):
        raise _bad("", "type", type(body).__name__, "The body must be a JSON object.")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise _bad("inputs", "required", None,
                   "The body needs a non-empty 'inputs' list of tensors (Open Inference "
                   "Protocol).")
    req_id = body.get("id")
    tensors = [_check_tensor(i, t) for i, t in enumerate(inputs)]
    rows = tensors[0][1][0]
    for i, (_, shape, _, _) in enumerate(tensors):
        if shape[0] != rows:
            raise _bad(f"inputs[{i}].shape", "shape", shape[0],
                       f"every input needs the same first dimension (rows); inputs[0] has "
                       f"{rows}, inputs[{i}] has {shape[0]}.")
    fields = set(contract_fields)
    if len(tensors) == 1 and tensors[0][0] not in fields:
        _, shape, _, flat = tensors[0]
        width = _prod(shape[1:])
        if len(shape) == 1:
            return list(flat), _str_or_none(req_id)
        return [flat[r * width:(r + 1) * width] for r in range(rows)], _str_or_none(req_id)
    records: list[dict[str, Any]] = [{} for _ in range(rows)]
    for name, shape, _, flat in tensors:
        width = _prod(shape[1:])
        for r in range(rows):
            records[r][name] = flat[r] if width == 1 else flat[r * width:(r + 1) * width]
    return records, _str_or_none(req_id)


def _str_or_none(v: Any) -> str | None:
    return None if v is None else str(v)[:128]


def _dtype_of(values: list[Any]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "BOOL"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INT64"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "FP64"
    return "BYTES"


def _tensor(name: str, values: list[Any]) -> dict[str, Any]:
    rows = len(values)
    if rows and all(isinstance(v, list) for v in values):
        width = len(values[0])
        if all(len(v) == width for v in values):
            flat = [x for v in values for x in v]
            return {"name": name, "shape": [rows, width], "datatype": _dtype_of(flat),
                    "data": [_finite(x) for x in flat]}
    if any(isinstance(v, dict | list) for v in values):
        import orjson

        values = [orjson.dumps(v).decode() for v in values]
    return {"name": name, "shape": [rows], "datatype": _dtype_of(values),
            "data": [_finite(x) for x in values]}


def _finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


def render_v2_outputs(predictions: list[Any], output_names: list[str]) -> list[dict[str, Any]]:
    """Predictions -> OIP output tensors (dict predictions become one tensor per key)."""
    if predictions and all(isinstance(p, dict) for p in predictions):
        keys = list(predictions[0])
        if all(list(p) == keys for p in predictions):
            return [_tensor(k, [p[k] for p in predictions]) for k in keys]
    name = output_names[0] if output_names else "predict"
    return [_tensor(name, predictions)]

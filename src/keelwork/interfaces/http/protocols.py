"""Wire formats: KServe V1 and the Open Inference Protocol (KServe V2 / Triton / MLServer REST).

Each protocol is turned into the gateway's neutral form (a list of instances) and back. Errors
name the JSON path that is wrong.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from keelwork.errors import ContractViolation, ErrorDetail, InvalidInputError, KeelworkError
from keelwork.interfaces.http.errors import HTTPProblem

#: The Open Inference Protocol's datatypes: integers by their range, floats by their largest
#: finite value (a JSON number past it is infinite in that type).
_V2_INTS = {"UINT8": (0, 2**8 - 1), "UINT16": (0, 2**16 - 1), "UINT32": (0, 2**32 - 1),
            "UINT64": (0, 2**64 - 1), "INT8": (-2**7, 2**7 - 1), "INT16": (-2**15, 2**15 - 1),
            "INT32": (-2**31, 2**31 - 1), "INT64": (-2**63, 2**63 - 1)}
_V2_FLOATS = {"FP16": 65504.0, "FP32": 3.4028234663852886e38, "FP64": 1.7976931348623157e308}
_V2_DTYPES = {"BOOL", "BYTES", *_V2_INTS, *_V2_FLOATS}


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
    _check_data(path, dtype, flat)
    return name, shape, dtype, flat


def _check_data(path: str, dtype: str, flat: list[Any]) -> None:
    """Refuse (422) the first value of ``flat`` that its tensor's ``dtype`` cannot hold,
    naming it ``inputs[i].data[j]`` (``j`` in row-major order). A null passes whatever the
    type: it is keelwork's missing value, judged by the contract (``nullable``)."""
    found = _bad_value(dtype, flat)
    if found is None:
        return
    j, rule, want = found
    got = flat[j]
    shown = got if isinstance(got, bool | int | float) else str(got)[:80]
    raise _bad(f"{path}.data[{j}]", rule, shown,
               f"{path}.data[{j}] must be {want} ({path}.datatype is {dtype}); got "
               f"{str(got)[:80]}.")


def _bad_value(dtype: str, flat: list[Any]) -> tuple[int, str, str] | None:
    """(index, rule, what was wanted) of the first value ``dtype`` cannot hold; None: none."""
    if dtype in _V2_FLOATS:
        top = _V2_FLOATS[dtype]
        for j, x in enumerate(flat):
            if type(x) is float or type(x) is int:  # the usual value: two type tests
                if not -top <= x <= top:  # (NaN and infinities fail too)
                    return j, "range", f"a finite number within +/-{top:g}"
            elif x is not None:
                return j, "datatype", "a number"
        return None
    if dtype in _V2_INTS:
        lo, hi = _V2_INTS[dtype]
        for j, x in enumerate(flat):
            if type(x) is int:
                if not lo <= x <= hi:
                    return j, "range", f"an integer from {lo} to {hi}"
            elif x is not None:
                return j, "datatype", f"an integer from {lo} to {hi}"
        return None
    kind, want = (bool, "true or false") if dtype == "BOOL" else (str, "a string")
    for j, x in enumerate(flat):
        if type(x) is not kind and x is not None:
            return j, "datatype", want
    return None


@dataclass(frozen=True, slots=True)
class V2Request:
    """An OIP inference request in the gateway's terms."""

    instances: list[Any]
    id: str | None
    #: The input tensors' names, in body order (``inputs[i]``).
    tensors: tuple[str, ...]
    #: Whether one tensor holds positional rows (else tensors are fields of records).
    positional: bool
    #: The requested outputs' names (``outputs[i].name``); None: none asked for.
    outputs: tuple[str, ...] | None


def parse_v2(body: Any, contract_fields: list[str]) -> tuple[list[Any], str | None]:
    """An OIP inference request -> (instances, request id); see :func:`parse_v2_request`."""
    req = parse_v2_request(body, contract_fields)
    return req.instances, req.id


def parse_v2_request(body: Any, contract_fields: list[str]) -> V2Request:
    """An OIP inference request -> :class:`V2Request`.

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
    req_id = _str_or_none(body.get("id"))
    outputs = _requested_outputs(body.get("outputs"))
    tensors = [_check_tensor(i, t) for i, t in enumerate(inputs)]
    names = tuple(t[0] for t in tensors)
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
        rows_out = (list(flat) if len(shape) == 1
                    else [flat[r * width:(r + 1) * width] for r in range(rows)])
        return V2Request(rows_out, req_id, names, True, outputs)
    records: list[dict[str, Any]] = [{} for _ in range(rows)]
    for name, shape, _, flat in tensors:
        width = _prod(shape[1:])
        for r in range(rows):
            records[r][name] = flat[r] if width == 1 else flat[r * width:(r + 1) * width]
    return V2Request(records, req_id, names, False, outputs)


def _requested_outputs(outputs: Any) -> tuple[str, ...] | None:
    if outputs is None:
        return None
    if not isinstance(outputs, list):
        raise HTTPProblem(400, "'outputs' must be a list of {\"name\": ...} objects; got "
                               f"{type(outputs).__name__}.",
                          [ErrorDetail("outputs", "type", type(outputs).__name__)])
    names: list[str] = []
    for i, o in enumerate(outputs):
        name = o.get("name") if isinstance(o, dict) else None
        if not isinstance(name, str):
            raise HTTPProblem(400, f"outputs[{i}] must be an object with a 'name' string.",
                              [ErrorDetail(f"outputs[{i}].name", "required", None)])
        names.append(name)
    return tuple(names)


def check_outputs(requested: tuple[str, ...] | None, allowed: list[str]) -> None:
    """Refuse (400) a requested output the model does not have, naming the allowed ones."""
    for i, name in enumerate(requested or ()):
        if name not in allowed:
            raise HTTPProblem(
                400, f"The model has no output {name[:80]!r} (outputs[{i}].name); its outputs "
                     f"are {', '.join(repr(a) for a in allowed)}.",
                [ErrorDetail(f"outputs[{i}].name", "output", name[:200],
                             f"allowed: {', '.join(allowed)}")])


_INSTANCE_PATH = re.compile(r"instances\[(\d+)\](?:\.([^.\[]+))?")


def v2_details(details: list[ErrorDetail], req: V2Request) -> list[ErrorDetail]:
    """Contract problems named in V2 terms: ``instances[3].a`` -> ``inputs[k].data[3]``.

    ``k`` is the index of the tensor named ``a`` (of the one positional tensor); a field that
    no tensor carries (a required one missing) is ``inputs`` with the field named.
    """
    index = {n: i for i, n in enumerate(req.tensors)}

    def rename(path: str) -> str:
        m = _INSTANCE_PATH.match(path)
        if m is None:
            return path
        row, name = m.group(1), m.group(2)
        if req.positional:
            return f"inputs[0].data[{row}]" + path[m.end():]
        if name is None:
            return f"inputs.data[{row}]" + path[m.end():]
        if name in index:
            return f"inputs[{index[name]}].data[{row}]" + path[m.end():]
        return f"inputs[name={name}]" + path[m.end():]

    out = []
    for d in details:
        new = rename(d.path)
        message = d.message.replace(f"'{d.path}'", f"'{new}'") if d.message else d.message
        out.append(ErrorDetail(new, d.rule, d.got, message, d.line))
    return out


def v2_error(exc: KeelworkError, req: V2Request | None) -> KeelworkError:
    """``exc`` with its V1 paths named in V2 terms (:func:`v2_details`): a contract problem,
    or an input the model's runtime refused; any other error as it is."""
    if req is None or not isinstance(exc, ContractViolation | InvalidInputError):
        return exc
    details = v2_details(exc.details, req)
    if details == exc.details:
        return exc
    return type(exc)(v2_message(exc.message, exc.details, details), details)


def v2_message(message: str, old: list[ErrorDetail], new: list[ErrorDetail]) -> str:
    """``message`` with every V1 path of ``old`` replaced by its V2 path in ``new``."""
    for a, b in zip(old, new, strict=True):
        message = message.replace(f"'{a.path}'", f"'{b.path}'").replace(a.path, b.path)
    return message


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


#: The name of the class-probability output (OIP) and of the V1 parameter asking for it.
PROBA_OUTPUT = "predict_proba"
V1_PROBA_PARAMETER = "probabilities"


def proba_tensor(proba: list[list[float]], classes: tuple[Any, ...]) -> dict[str, Any]:
    """Class probabilities as an OIP tensor ``[N, classes]`` naming its classes."""
    return {"name": PROBA_OUTPUT, "shape": [len(proba), len(classes)], "datatype": "FP64",
            "data": [_finite(float(p)) for row in proba for p in row],
            "parameters": {"classes": class_names(classes)}}


def proba_records(proba: list[list[float]], classes: tuple[Any, ...]) -> list[dict[str, float]]:
    """Class probabilities as one ``{class: probability}`` object per instance (V1)."""
    names = [str(_class_name(c)) for c in classes]
    return [dict(zip(names, (float(p) for p in row), strict=True)) for row in proba]


def class_names(classes: tuple[Any, ...]) -> list[Any]:
    """A classifier's classes as infer names them (``predict_proba``'s ``classes``)."""
    return [_class_name(c) for c in classes]


def _class_name(c: Any) -> Any:
    if isinstance(c, str | bool | int | float) or c is None:
        return c
    item = getattr(c, "item", None)  # numpy scalars
    return item() if callable(item) else str(c)


def parse_v1_parameters(body: dict[str, Any]) -> bool:
    """Whether a V1 body asks for class probabilities (``"parameters": {"probabilities":
    true}``); any other parameter is refused (400), never ignored."""
    params = body.get("parameters")
    if params is None:
        return False
    if not isinstance(params, dict):
        raise HTTPProblem(400, "'parameters' must be an object, e.g. "
                               '{"probabilities": true}.',
                          [ErrorDetail("parameters", "type", type(params).__name__)])
    for key, value in params.items():
        if key != V1_PROBA_PARAMETER:
            raise HTTPProblem(400, f"Unknown parameter {key[:80]!r}; the V1 predict route "
                                   f"takes '{V1_PROBA_PARAMETER}' (true: add class "
                                   "probabilities).",
                              [ErrorDetail(f"parameters.{key[:200]}", "parameter", key[:200],
                                           f"allowed: {V1_PROBA_PARAMETER}")])
        if not isinstance(value, bool):
            raise HTTPProblem(400, f"parameters.{V1_PROBA_PARAMETER} must be true or false; "
                                   f"got {str(value)[:40]}.",
                              [ErrorDetail(f"parameters.{V1_PROBA_PARAMETER}", "type",
                                           type(value).__name__)])
    return bool(params.get(V1_PROBA_PARAMETER, False))


def output_warnings(violations: Sequence[ErrorDetail]) -> list[dict[str, Any]]:
    """Answers' output-contract violations (``output_policy: warn``), as error details."""
    return [{"path": d.path, "rule": d.rule, "got": d.got,
             "message": f"the answer breaks the output contract: {d.message}".rstrip(": ")}
            for d in violations[:50]]


def answer_headers(prediction_ids: Sequence[str], version: int,
                   answered_by: str) -> dict[str, str]:
    """The headers of a predict answer (V1 and V2, every engine): its prediction ids (the
    first 64), the version that answered and ``name:version`` (a fallback's when it did)."""
    shown = ",".join(prediction_ids[:64]) + (",..." if len(prediction_ids) > 64 else "")
    return {"x-prediction-ids": shown, "x-model-version": str(version),
            "x-answered-by": answered_by}


def v2_answer(*, model: str, version: int, predictions: list[Any],
              probabilities: list[list[float]] | None, classes: tuple[Any, ...] | None,
              output_names: list[str], requested: tuple[str, ...] | None,
              prediction_ids: list[str], answered_by: str, violations: Sequence[ErrorDetail],
              request_id: str | None) -> dict[str, Any]:
    """An inference answer body (Open Inference Protocol): the output tensors (the
    ``requested`` ones in that order, when the request named them), the prediction ids and
    who answered in ``parameters``, output-contract warnings, the request's id."""
    tensors = render_v2_outputs(predictions, output_names)
    if probabilities is not None and classes is not None:
        tensors.append(proba_tensor(probabilities, classes))
    if requested is not None:
        by_name = {t["name"]: t for t in tensors}
        missing = [n for n in requested if n not in by_name]
        if missing:  # the model's answer is not of the form its outputs promise
            raise HTTPProblem(
                500, f"The model's answer holds no output {missing[0][:80]!r}; it holds "
                     f"{', '.join(repr(n) for n in by_name)}.",
                [ErrorDetail(f"outputs[{requested.index(missing[0])}].name", "output_missing",
                             missing[0][:200])])
        tensors = [by_name[n] for n in requested]
    out: dict[str, Any] = {
        "model_name": model, "model_version": str(version), "outputs": tensors,
        "parameters": {"prediction_ids": ",".join(prediction_ids), "answered_by": answered_by},
    }
    if violations:
        out["parameters"]["warnings"] = output_warnings(violations)
    if request_id is not None:
        out["id"] = request_id
    return out


def render_v2_outputs(predictions: list[Any], output_names: list[str]) -> list[dict[str, Any]]:
    """Predictions -> OIP output tensors: dict predictions become one tensor per key, and
    list predictions of the contract's outputs (in its order) one tensor per output, as
    metadata lists them."""
    if predictions and all(isinstance(p, dict) for p in predictions):
        keys = list(predictions[0])
        if all(list(p) == keys for p in predictions):
            return [_tensor(k, [p[k] for p in predictions]) for k in keys]
    width = len(output_names)
    if width > 1 and predictions and all(
            isinstance(p, list | tuple) and len(p) == width for p in predictions):
        return [_tensor(k, [p[i] for p in predictions]) for i, k in enumerate(output_names)]
    name = output_names[0] if output_names else "predict"
    return [_tensor(name, predictions)]

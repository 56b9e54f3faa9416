"""Batch conversion for runtimes: instances in, one JSON-compatible output per instance out.

A *batch* is a sequence of *instances*. An instance is one of:

- a record (``{"age": 41, "income": 5200.0}``), turned into a row in
  ``signature.feature_names`` order;
- a list of values already in feature order (``[41, 5200.0]``);
- a scalar, e.g. one text for a text model;
- nested lists, for tensor models.

Conversion problems (a missing feature, a value of the wrong type, a row of the wrong length)
raise :class:`~keelwork.errors.InvalidInputError` with a message that names the instance, the
feature and what was got. Outputs are plain JSON-compatible Python, exactly one per instance.

numpy is imported inside the helpers that need it, never at module import.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from keelwork.errors import ErrorDetail, InvalidInputError, PredictionError
from keelwork.types import Instance, JSONValue

if TYPE_CHECKING:
    from numpy.typing import NDArray

#: How many feature names a message lists before it abbreviates.
_NAMES_SHOWN = 6


# --------------------------------------------------------------------------- input
def as_batch(instances: Sequence[Instance]) -> list[Instance]:
    """Check that ``instances`` is a batch (a list of instances) and return it as a list.

    Raises:
        InvalidInputError: ``instances`` is a mapping, a string or not a sequence.
    """
    if isinstance(instances, list):
        return instances
    if isinstance(instances, (str, bytes, Mapping)) or not isinstance(instances, Sequence):
        raise InvalidInputError(
            "The batch must be a list of instances (records, lists of values or texts); "
            f"got {_describe(instances)}.",
            [ErrorDetail(path="instances", rule="batch_type", got=_type_name(instances))],
        )
    return list(instances)


def rows_from_instances(batch: Sequence[Instance],
                        feature_names: Sequence[str] | None) -> list[Any]:
    """Turn records into value lists in ``feature_names`` order; other instances pass through.

    Extra fields of a record are ignored here (the data contract decides whether they are
    allowed).

    Raises:
        InvalidInputError: a record lacks a feature, or the model has no feature names.
    """
    if not any(isinstance(inst, Mapping) for inst in batch):
        return list(batch)
    if not feature_names:
        raise InvalidInputError(
            "This model does not know its feature names, so records (objects) cannot be put in "
            "order; send each instance as a list of values in feature order, or set "
            "'options.feature_names' on the model in keel.yaml.",
            [ErrorDetail(path="instances", rule="feature_names_unknown", got="record")],
        )
    getter = itemgetter(*feature_names)
    single = len(feature_names) == 1
    rows: list[Any] = []
    for i, inst in enumerate(batch):
        if isinstance(inst, Mapping):
            try:
                values = getter(inst)
            except KeyError:
                missing = [f for f in feature_names if f not in inst]
                raise InvalidInputError(
                    f"Instance {i} is missing the feature {missing[0]!r}"
                    + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                    + f"; every record needs {_names(feature_names)}.",
                    [ErrorDetail(path=f"instances[{i}].{f}", rule="required") for f in missing],
                ) from None
            rows.append([values] if single else list(values))
        else:
            rows.append(inst)
    return rows


def numeric_matrix(instances: Sequence[Instance], *, feature_names: Sequence[str] | None,
                   n_features: int | None, dtype: str = "float64") -> NDArray[Any]:
    """Build one 2-D numeric array (rows = instances) from a batch.

    Fast path: one ``numpy.asarray`` over the whole batch. Only when that fails or yields a
    non-numeric array is the batch walked value by value to name the bad one.

    Args:
        instances: The batch: records, lists of values, or scalars (one-feature models).
        feature_names: Column order for records; None when the model has none.
        n_features: The expected number of columns, when known.
        dtype: The numpy dtype of the result.

    Returns:
        An array of shape ``(len(instances), n_features)``.

    Raises:
        InvalidInputError: a feature is missing, a row has the wrong length, or a value is
            not a number. ``null`` becomes NaN (a missing value).
    """
    import numpy as np

    batch = as_batch(instances)
    if not batch:
        return np.empty((0, n_features or 0), dtype=dtype)
    rows = rows_from_instances(batch, feature_names)
    try:
        arr = np.asarray(rows)
    except (ValueError, TypeError):
        arr = None
    if arr is None or arr.dtype.kind not in "biuf" or arr.ndim not in (1, 2):
        arr = _numeric_slow(rows, feature_names, n_features)
    if arr.ndim == 1:
        if n_features not in (None, 1):
            _raise_row_shape(rows, 0, feature_names, n_features)
        arr = arr.reshape(-1, 1)
    if n_features is not None and arr.shape[1] != n_features:
        _raise_row_shape(rows, 0, feature_names, n_features)
    return arr.astype(dtype, copy=False)


def _numeric_slow(rows: list[Any], feature_names: Sequence[str] | None,
                  n_features: int | None) -> NDArray[Any]:
    """Validate every value; return the float array or raise naming the first bad value."""
    import numpy as np

    width = n_features
    out: list[list[float]] = []
    for i, row in enumerate(rows):
        if _is_scalar(row):
            row = [row]
        elif not isinstance(row, Sequence) or isinstance(row, (str, bytes)):
            _raise_row_shape(rows, i, feature_names, n_features)
        if width is None:
            width = len(row)
        if len(row) != width:
            _raise_row_shape(rows, i, feature_names, width)
        values: list[float] = []
        for j, value in enumerate(row):
            if value is None:
                values.append(math.nan)
            elif isinstance(value, numbers.Real) and not isinstance(value, (str, bytes)):
                values.append(float(value))
            else:
                where = (f"feature {feature_names[j]!r}" if feature_names and j < len(feature_names)
                         else f"value {j}")
                path = (feature_names[j] if feature_names and j < len(feature_names) else str(j))
                raise InvalidInputError(
                    f"The {where} of instance {i} must be a number; got {_describe(value)}.",
                    [ErrorDetail(path=f"instances[{i}].{path}", rule="type_number",
                                 got=_jsonable_got(value))],
                )
        out.append(values)
    return np.asarray(out, dtype="float64")


def _raise_row_shape(rows: list[Any], start: int, feature_names: Sequence[str] | None,
                     n_features: int | None) -> None:
    """Find the first row (from ``start``) of the wrong shape and raise for it."""
    for i in range(start, len(rows)):
        row = rows[i]
        if _is_scalar(row):
            if n_features in (None, 1):
                continue
            got = f"a single value ({_describe(row)})"
        elif isinstance(row, Sequence) and not isinstance(row, (str, bytes)):
            if n_features is None or len(row) == n_features:
                continue
            got = f"{len(row)} value{'s' if len(row) != 1 else ''}"
        else:
            got = _describe(row)
        expected = (f"{n_features} values" if n_features is not None else "a list of values")
        names = f" (one per feature: {_names(feature_names)})" if feature_names else ""
        raise InvalidInputError(
            f"Instance {i} must be a record or a list of {expected}{names}; got {got}.",
            [ErrorDetail(path=f"instances[{i}]", rule="row_length",
                         got=len(row) if isinstance(row, Sequence) else _type_name(row))],
        )
    raise InvalidInputError(
        f"The batch must be a list of rows of {n_features} numeric values each; the values do "
        "not form a rectangular table.",
        [ErrorDetail(path="instances", rule="shape")],
    )


def tensor_batch(values: Sequence[Any], item_shape: Sequence[int | None] | None, dtype: str, *,
                 label: str = "instance") -> NDArray[Any]:
    """Stack per-instance numbers or nested lists into one tensor with a leading batch axis.

    Args:
        values: One number or nested list per instance.
        item_shape: The shape of one instance (None = any size on that axis); None when the
            rank itself is unknown.
        dtype: The numpy dtype of the result.
        label: What one value is, for messages ("instance", "input 'x' of instance").

    Returns:
        An array of shape ``(len(values), *item_shape)``.

    Raises:
        InvalidInputError: the values are not numeric or do not form a tensor of that shape.
    """
    import numpy as np

    want = _shape_text(item_shape) if item_shape is not None else "(any)"
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError):
        arr = None
    if arr is None or arr.dtype.kind not in "biuf":
        shape = f" of shape {want}" if item_shape is not None else " of one shape"
        raise InvalidInputError(
            f"Each {label} must be a number or a nested list of numbers, all{shape}; got "
            "values that are not numbers or lists of different lengths.",
            [ErrorDetail(path="instances", rule="tensor")],
        )
    got = _shape_text(arr.shape[1:])
    if item_shape is not None:
        if arr.ndim != len(item_shape) + 1:
            raise InvalidInputError(
                f"Each {label} must have shape {want}; got {got}.",
                [ErrorDetail(path="instances", rule="tensor_rank", got=list(arr.shape[1:]))],
            )
        for axis, (size, actual) in enumerate(zip(item_shape, arr.shape[1:], strict=True), 1):
            if size is not None and size != actual:
                raise InvalidInputError(
                    f"Each {label} must have shape {want}; got {got} (axis {axis} must be "
                    f"{size}).",
                    [ErrorDetail(path="instances", rule="tensor_shape",
                                 got=list(arr.shape[1:]))],
                )
    return arr.astype(dtype, copy=False)


def text_batch(instances: Sequence[Instance], *, text_field: str | None = None) -> list[str]:
    """Turn a batch of texts (strings, or records with one text field) into a list of str.

    Args:
        instances: The batch.
        text_field: The record field that holds the text; when None, a record must have
            exactly one field.

    Returns:
        One string per instance.

    Raises:
        InvalidInputError: an instance is not a string or a record with one string field.
    """
    batch = as_batch(instances)
    texts: list[str] = []
    for i, inst in enumerate(batch):
        value = inst
        path = f"instances[{i}]"
        if isinstance(inst, Mapping):
            if text_field is not None:
                if text_field not in inst:
                    raise InvalidInputError(
                        f"Instance {i} is missing the text field {text_field!r}; "
                        f"got the fields {sorted(map(str, inst))}.",
                        [ErrorDetail(path=f"{path}.{text_field}", rule="required")],
                    )
                value = inst[text_field]
                path = f"{path}.{text_field}"
            elif len(inst) == 1:
                key, value = next(iter(inst.items()))
                path = f"{path}.{key}"
            else:
                raise InvalidInputError(
                    f"Instance {i} must be a text or a record with exactly one text field; got "
                    f"a record with {len(inst)} fields {sorted(map(str, inst))} (set "
                    "'options.text_field' to choose one).",
                    [ErrorDetail(path=path, rule="text_record", got=sorted(map(str, inst)))],
                )
        if not isinstance(value, str):
            raise InvalidInputError(
                f"Instance {i} must be a text (a string); got {_describe(value)}.",
                [ErrorDetail(path=path, rule="type_string", got=_jsonable_got(value))],
            )
        texts.append(value)
    return texts


# --------------------------------------------------------------------------- output
def to_jsonable(value: Any) -> JSONValue:
    """Convert numpy/torch/pandas values to plain Python (lists, dicts, int, float, str).

    Raises:
        PredictionError: an integer beyond 64 bits, which no answer can carry (JSON encoders
            take -2**63 .. 2**64-1): refused here, as a model error, before it is logged.
    """
    # exact types: numpy.float64 and numpy.str_ subclass float and str but are not plain
    if value is None or type(value) in _PLAIN:
        if type(value) is int and not _INT_LOW <= value <= _INT_HIGH:
            raise PredictionError(
                f"The model returned an integer of {len(str(abs(value)))} digits, beyond the "
                "64 bits an answer carries; return it as a float or a string.")
        return value
    if isinstance(value, Mapping):
        return {_key(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    dtype = getattr(value, "dtype", None)
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        out = tolist()
        # object arrays keep their elements (numpy scalars, dicts) as they are: convert those
        return to_jsonable(out) if getattr(dtype, "kind", None) == "O" else out
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


_PLAIN = frozenset({str, bool, int, float})
#: The integers JSON answers carry (int64 and uint64).
_INT_LOW, _INT_HIGH = -(2**63), 2**64 - 1


def _key(key: Any) -> Any:
    plain = to_jsonable(key)
    return plain if type(plain) in _PLAIN else str(plain)


def one_per_instance(outputs: Any, n: int, *, kind: str, what: str = "outputs") -> list[JSONValue]:
    """Split a model's batch output into exactly ``n`` JSON-compatible values.

    Raises:
        PredictionError: the model returned a different number of outputs than instances.
    """
    values = to_jsonable(outputs)
    if not isinstance(values, list):
        raise PredictionError(
            f"The {kind!r} model returned a single {type(outputs).__name__} for a batch of {n} "
            f"instances; it must return one of its {what} per instance."
        )
    if len(values) != n:
        raise PredictionError(
            f"The {kind!r} model returned {len(values)} {what} for a batch of {n} instances; "
            "it must return exactly one per instance."
        )
    return values


# --------------------------------------------------------------------------- messages
def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (numbers.Number, str, bytes))


def _type_name(value: Any) -> str:
    return type(value).__name__


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a record (object)"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} values"
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{text} ({_type_name(value)})"


def _jsonable_got(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value if not isinstance(value, str) or len(value) <= 80 else value[:77] + "..."
    return _type_name(value)


def _shape_text(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("any" if d is None else str(d) for d in shape) + ")"


def _names(names: Sequence[str] | None) -> str:
    if not names:
        return ""
    shown = ", ".join(repr(n) for n in names[:_NAMES_SHOWN])
    more = len(names) - _NAMES_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def oip_dtype(dtype: Any) -> str:
    """The Open Inference Protocol name of a numpy dtype (BYTES for strings and objects)."""
    kind = getattr(dtype, "kind", "O")
    size = getattr(dtype, "itemsize", 8)
    if kind == "b":
        return "BOOL"
    if kind in "iu":
        return f"{'INT' if kind == 'i' else 'UINT'}{size * 8}"
    if kind == "f":
        return f"FP{size * 8}"
    return "BYTES"


__all__ = [
    "as_batch",
    "numeric_matrix",
    "oip_dtype",
    "one_per_instance",
    "rows_from_instances",
    "tensor_batch",
    "text_batch",
    "to_jsonable",
]

"""Validating a whole table against ``contract.inputs``, column by column, vectorised.

:func:`validate_table` checks every value of every contract column with numpy / pyarrow compute
and reports every failure (lazily: never only the first), summarised per (column, rule): how many
rows, which fraction, and a few example rows with their values. It also gives a boolean mask of
the failing rows and, on demand, one reason string per failing row (built only for those rows).

The rule names and their meaning are those of the per-request validator
(:mod:`keelwork.core.contracts.record`), with a table's view of a record:

* a row is an *array record* in contract order: ``null`` at an optional (``required: false``)
  field means "absent" and passes; ``null`` at a required field breaks ``nullable`` unless the
  field is ``nullable``. A contract column missing from the table breaks ``required`` in every
  row (when the field is required).
* a column not in the contract breaks ``extra_field`` (``extra_fields: reject``) in every row where
  it holds a value (not null).
* a value's type is its Arrow type: an int64 column holds integers, a string column strings
  (``"3"`` is not a number), a boolean column booleans (``true`` is not ``1``). A mixed column
  (:mod:`keelwork.core.contracts.columns`) gives each value its own type, so JSON lines that mix
  strings and numbers are judged value by value.
* one difference, because files keep one type per column (pandas writes an integer column with
  gaps as float64; JSON readers widen a column of integers and decimals to float64): in a floating
  column an integral value (``3.0``) counts as the integer it equals for ``integer`` and
  ``category`` fields, and so does an element of a tensor field of an integer ``dtype`` (Arrow
  lists hold one element type), where a request's ``3.0`` breaks ``type`` / ``dtype``. Decimal
  columns are read as float64.
* ``tensor`` fields are checked value by value by the per-request code (exact, not vectorised).

Pure: no I/O. numpy and pyarrow are imported inside the functions.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from keelwork.core.contracts.columns import MIXED_CHILDREN, is_mixed
from keelwork.core.contracts.record import (
    FLOAT64_MAX,
    INT64_MAX,
    INT64_MIN,
    RULES,
    Explain,
    compile_contract,
    compile_field,
    safe_got,
)
from keelwork.errors import ErrorDetail, InvalidInputError, SpecError
from keelwork.spec.model import ContractSection, FieldSpec

Masks = dict[str, Any]  # rule -> numpy bool array, True where the value breaks the rule
_RULE_ORDER: Final = {rule: i for i, rule in enumerate(RULES)}
_JSON_CHILD: Final = MIXED_CHILDREN.index("json")
_TWO_63: Final = 2.0**63
_THREADS_FROM_ROWS: Final = 100_000
_MAX_THREADS: Final = 8
_BLOCK: Final = 1 << 17


# --------------------------------------------------------------------------- the report
@dataclass(frozen=True, slots=True)
class Example:
    """One failing row: its 0-based index in the table and its value (JSON-safe, short)."""

    row: int
    value: Any


@dataclass(frozen=True)
class RuleFailure:
    """Every row of one column that breaks one rule."""

    column: str
    rule: str
    count: int
    fraction: float
    message: str
    examples: tuple[Example, ...]
    rows: Any = field(repr=False)  # numpy int64 array of the failing rows, ascending

    def as_dict(self) -> dict[str, Any]:
        return {"column": self.column, "rule": self.rule, "count": self.count,
                "fraction": self.fraction, "message": self.message,
                "examples": [{"row": e.row, "value": e.value} for e in self.examples]}


@dataclass(frozen=True)
class BatchReport:
    """The outcome of :func:`validate_table`.

    Attributes:
        rows: Rows in the table.
        failures: One entry per (column, rule) with at least one failing row, in contract
            order then rule order (extra columns last).
        failed: numpy bool array, True for every row that breaks at least one rule.
    """

    rows: int
    failures: tuple[RuleFailure, ...]
    failed: Any = field(repr=False)
    _reasons: Callable[[BatchReport], list[str]] = field(repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """True when every row passes."""
        return not self.failures

    @property
    def failed_rows(self) -> int:
        """How many rows break at least one rule."""
        return int(self.failed.sum())

    @property
    def passed_rows(self) -> int:
        """How many rows pass every rule."""
        return self.rows - self.failed_rows

    def failing_rows(self) -> Any:
        """The 0-based indices of the failing rows, ascending (numpy int64 array)."""
        import numpy as np

        return np.flatnonzero(self.failed)

    def reasons(self) -> list[str]:
        """One reason per failing row, aligned with :meth:`failing_rows`.

        E.g. ``"age must be >= 0; got -3; color must be one of 'red', 'blue'; got 'pink'"``.
        Built on each call, only for the failing rows.
        """
        return self._reasons(self)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (no per-row data beyond the examples)."""
        return {"rows": self.rows, "failed_rows": self.failed_rows,
                "passed_rows": self.passed_rows,
                "failures": [f.as_dict() for f in self.failures]}


# --------------------------------------------------------------------------- contradictions
def check_contract(contract: ContractSection) -> list[ErrorDetail]:
    """Find input fields that no value can satisfy (beyond what the spec model rejects).

    Args:
        contract: The contract.

    Returns:
        One detail per contradiction (path ``inputs[i].<key>``); ``[]`` when there is none.
    """
    out: list[ErrorDetail] = []
    for i, spec in enumerate(contract.inputs):
        where = f"inputs[{i}]"
        lo = math.ceil(spec.min) if spec.min is not None and math.isfinite(spec.min) else None
        hi = math.floor(spec.max) if spec.max is not None and math.isfinite(spec.max) else None
        if spec.type == "integer":
            ints = [c for c in spec.categories or [] if type(c) is int]
            if lo is not None and hi is not None and lo > hi:
                out.append(ErrorDetail(f"{where}.min", "range_empty", [spec.min, spec.max],
                           f"The '{spec.name}' field allows no integer: no integer lies "
                           f"between min {spec.min} and max {spec.max}."))
            elif spec.categories and not [c for c in ints if (lo is None or c >= lo)
                                          and (hi is None or c <= hi)]:
                out.append(ErrorDetail(f"{where}.categories", "categories_empty",
                           spec.categories, f"The '{spec.name}' field allows no value: none of "
                           f"its categories is an integer within its min/max."))
        if spec.type in ("string", "text") and spec.categories:
            short, long_ = spec.min_length or 0, spec.max_length
            fits = [c for c in spec.categories if type(c) is str and len(c) >= short
                    and (long_ is None or len(c) <= long_)]
            if not fits:
                out.append(ErrorDetail(f"{where}.categories", "categories_empty",
                           spec.categories, f"The '{spec.name}' field allows no value: none of "
                           "its categories is a string within its min_length/max_length."))
    return out


# --------------------------------------------------------------------------- array kernels
def _valid(arr: Any) -> Any:
    """numpy bool array: True where ``arr`` holds a value (None when it has no nulls)."""
    import numpy as np

    if arr.null_count == 0:
        return None
    bitmap = arr.buffers()[0]
    if bitmap is None:  # the null type: no bitmap, every value is null
        return np.zeros(len(arr), dtype=bool)
    bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), bitorder="little",
                         count=arr.offset + len(arr))
    return bits[arr.offset:].view(bool)


def _values(arr: Any) -> Any:
    """The numeric values of a primitive array as numpy, zero-copy; null slots hold junk."""
    import numpy as np

    dtype = np.dtype(arr.type.to_pandas_dtype())
    return np.frombuffer(arr.buffers()[1], dtype=dtype,
                         count=arr.offset + len(arr))[arr.offset:]


def _bool_np(arr: Any) -> Any:
    import numpy as np

    return np.asarray(arr.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _all(valid: Any, n: int) -> Any:
    import numpy as np

    return np.ones(n, dtype=bool) if valid is None else valid.copy()


def _keep(masks: Masks, rule: str, mask: Any, valid: Any) -> None:
    if valid is not None:
        mask &= valid
    if mask.any():
        masks[rule] = mask


def _int_bounds(spec: FieldSpec) -> tuple[int | None, int | None]:
    """min/max as integers: for an integer value v, v >= min iff v >= ceil(min)."""
    lo = hi = None
    if spec.min is not None:
        lo = math.ceil(spec.min) if math.isfinite(spec.min) else (
            None if spec.min < 0 else INT64_MAX + 2**64)
    if spec.max is not None:
        hi = math.floor(spec.max) if math.isfinite(spec.max) else (
            None if spec.max > 0 else INT64_MIN - 2**64)
    return lo, hi


def _below(v: Any, bound: int) -> Any:
    import numpy as np

    info = np.iinfo(v.dtype)
    if bound > info.max:
        return np.ones(len(v), dtype=bool)
    if bound <= info.min:
        return np.zeros(len(v), dtype=bool)
    return v < v.dtype.type(bound)


def _above(v: Any, bound: int) -> Any:
    import numpy as np

    info = np.iinfo(v.dtype)
    if bound < info.min:
        return np.ones(len(v), dtype=bool)
    if bound >= info.max:
        return np.zeros(len(v), dtype=bool)
    return v > v.dtype.type(bound)


def _isin(v: Any, members: Sequence[int | float]) -> Any:
    import numpy as np

    if v.dtype.kind in "iu":
        info = np.iinfo(v.dtype)
        members = [m for m in members if info.min <= m <= info.max]
    return np.isin(v, np.asarray(members, dtype=v.dtype))


def _integer_values(spec: FieldSpec, v: Any, valid: Any, masks: Masks) -> None:
    """Range (and, for integer fields, category) rules for integer values ``v``."""
    import numpy as np

    lo, hi = _int_bounds(spec)
    if spec.type == "integer":
        below = _below(v, lo) if lo is not None else np.zeros(len(v), dtype=bool)
        above = ~below & (_above(v, hi) if hi is not None else False)
        if v.dtype.kind == "u":
            above |= ~below & _above(v, INT64_MAX)
        _keep(masks, "min", below, valid)
        _keep(masks, "max", above, valid)
        ints = [c for c in spec.categories or [] if type(c) is int]
        if spec.categories:
            _keep(masks, "category", ~(below | above) & ~_isin(v, ints), valid)
    else:  # float: an integer only needs to fit min/max (every int64 fits a float64)
        below = _below(v, lo) if lo is not None else np.zeros(len(v), dtype=bool)
        _keep(masks, "min", below, valid)
        if hi is not None:
            _keep(masks, "max", ~below & _above(v, hi), valid)


def _float_values(spec: FieldSpec, v: Any, valid: Any, masks: Masks) -> None:
    """All rules for floating values ``v`` (float64) of a float field.

    One pass finds the suspects (outside [min, max], NaN and infinities fail both comparisons
    unless allowed); only those few are then sorted into rules.
    """
    import numpy as np

    lo, hi = spec.min, spec.max
    edge = math.inf if spec.allow_nan else FLOAT64_MAX
    low = lo if lo is not None else -edge
    high = hi if hi is not None else edge
    if valid is None and len(v):
        first, last = v.min(), v.max()  # NaN propagates: a clean array costs two passes
        if low <= first and last <= high:
            return
    suspects = np.flatnonzero(~((v >= low) & (v <= high)))
    if valid is not None:
        suspects = suspects[valid[suspects]]
    if not len(suspects):
        return
    x = v[suspects]
    nan = np.isnan(x)
    if spec.allow_nan:
        checked = ~nan
    else:
        bad = ~np.isfinite(x)
        _set(masks, "finite", suspects[bad], len(v))
        checked = ~bad
    below = (x < lo) & checked if lo is not None else np.zeros(len(x), dtype=bool)
    _set(masks, "min", suspects[below], len(v))
    if hi is not None:
        _set(masks, "max", suspects[(x > hi) & checked & ~below], len(v))


def _set(masks: Masks, rule: str, rows: Any, n: int) -> None:
    import numpy as np

    if len(rows):
        mask = masks.get(rule)
        if mask is None:
            mask = masks[rule] = np.zeros(n, dtype=bool)
        mask[rows] = True


def _integral_floats(spec: FieldSpec, v: Any, valid: Any, masks: Masks) -> None:
    """Integer and category fields over a floating column: integral values count as ints."""
    import numpy as np

    ints = [float(c) for c in spec.categories or [] if type(c) is int]
    if spec.type == "category" and not ints:
        _keep(masks, "type", _all(valid, len(v)), None)
        return
    with np.errstate(invalid="ignore"):
        integral = np.isfinite(v) & (v == np.floor(v))
    _keep(masks, "type", ~integral, valid)
    if spec.type == "category":
        _keep(masks, "category", integral & ~np.isin(v, ints), valid)
        return
    lo, hi = spec.min, spec.max
    with np.errstate(invalid="ignore"):
        below = integral & ((v < -_TWO_63) | ((v < lo) if lo is not None else False))
        above = integral & ~below & ((v >= _TWO_63) | ((v > hi) if hi is not None else False))
    _keep(masks, "min", below, valid)
    _keep(masks, "max", above, valid)
    if spec.categories:
        _keep(masks, "category", integral & ~(below | above) & ~np.isin(v, ints), valid)


def _string_values(spec: FieldSpec, arr: Any, valid: Any, masks: Masks) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if spec.type == "category":
        cats = [c for c in spec.categories or [] if type(c) is str]
        if not cats:
            _keep(masks, "type", _all(valid, len(arr)), None)
        else:
            hit = pc.is_in(arr, value_set=pa.array(cats, arr.type))
            if hit.true_count != len(arr) - arr.null_count:
                _keep(masks, "category", ~_bool_np(hit), valid)
        return
    lo, hi = spec.min_length or 0, spec.max_length
    if lo or hi is not None:
        lengths = pc.utf8_length(arr)
        span = pc.min_max(lengths)
        small, large = span["min"].as_py(), span["max"].as_py()
        if small is not None and (small < lo or (hi is not None and large > hi)):
            n = np.asarray(lengths.fill_null(lo).to_numpy(zero_copy_only=False))
            _keep(masks, "min_length", n < lo, valid)
            if hi is not None:
                _keep(masks, "max_length", n > hi, valid)
    if spec.categories:
        cats = [c for c in spec.categories if type(c) is str]
        hit = pc.is_in(arr, value_set=pa.array(cats, arr.type))
        if hit.true_count != len(arr) - arr.null_count:
            _keep(masks, "category", ~_bool_np(hit), valid)


def _python_values(spec: FieldSpec, values: list[Any], masks: Masks) -> None:
    """The per-request code, value by value: tensors (exact, slow)."""
    import numpy as np

    ok, explain = compile_field(spec)
    n = len(values)
    for i, value in enumerate(values):
        if value is None or ok(value):
            continue
        for rule, _, _ in explain(value):
            if rule not in masks:
                masks[rule] = np.zeros(n, dtype=bool)
            masks[rule][i] = True


def _check(spec: FieldSpec, arr: Any, json_text: bool = False) -> Masks:
    """Masks (one per broken rule) for one array; nulls included."""
    import numpy as np
    import pyarrow as pa

    typ = arr.type
    if pa.types.is_dictionary(typ):
        return _check_dictionary(spec, arr)
    if pa.types.is_union(typ):
        return _check_union(spec, arr)
    masks: Masks = {}
    n = len(arr)
    if n == 0:
        return masks
    valid = _valid(arr)
    if valid is not None and spec.required and not spec.nullable:
        masks["nullable"] = ~valid
    if pa.types.is_null(typ) or (valid is not None and not valid.any()):
        return masks
    kind = spec.type
    if kind == "tensor":
        values = arr.to_pylist()
        if json_text:
            import json

            values = [None if v is None else json.loads(v) for v in values]
        if spec.dtype in ("int32", "int64"):
            values = [_integral(v) for v in values]
        _python_values(spec, values, masks)
        return masks
    if json_text:
        _keep(masks, "type", _all(valid, n), None)
        return masks
    if pa.types.is_decimal(typ):
        try:
            arr, typ = arr.cast(pa.float64()), pa.float64()
        except pa.ArrowInvalid:
            arr, typ = arr.cast(pa.float64(), safe=False), pa.float64()
    if pa.types.is_string_view(typ):
        arr, typ = arr.cast(pa.string()), pa.string()
    is_int = pa.types.is_integer(typ)
    is_float = pa.types.is_floating(typ)
    is_str = pa.types.is_string(typ) or pa.types.is_large_string(typ)
    is_bool = pa.types.is_boolean(typ)
    if kind == "float" and (is_int or is_float):
        v = _values(arr)
        if is_int:
            _integer_values(spec, v, valid, masks)
        else:
            _float_values(spec, v.astype(np.float64, copy=False), valid, masks)
    elif kind in ("integer", "category") and is_int:
        if kind == "category":
            ints = [c for c in spec.categories or [] if type(c) is int]
            v = _values(arr)
            if ints:
                _keep(masks, "category", ~_isin(v, ints), valid)
            else:
                _keep(masks, "type", _all(valid, n), None)
        else:
            _integer_values(spec, _values(arr), valid, masks)
    elif kind in ("integer", "category") and is_float:
        _integral_floats(spec, _values(arr).astype(np.float64, copy=False), valid, masks)
    elif kind == "boolean" and is_bool:
        pass
    elif kind == "category" and is_bool:
        flags = [c for c in spec.categories or [] if type(c) is bool]
        if not flags:
            _keep(masks, "type", _all(valid, n), None)
        elif len(flags) == 1:
            b = _bool_np(arr)
            _keep(masks, "category", b if flags[0] is False else ~b, valid)
    elif kind in ("string", "text", "category") and is_str:
        _string_values(spec, arr, valid, masks)
    else:
        _keep(masks, "type", _all(valid, n), None)
    return masks


def _check_dictionary(spec: FieldSpec, arr: Any) -> Masks:
    """Check each dictionary value once, then spread the results through the indices."""
    import numpy as np

    indices = arr.indices
    valid = _valid(indices)
    masks: Masks = {}
    by_value = _check(spec, arr.dictionary) if len(arr.dictionary) else {}
    if by_value:
        idx = _values(indices)
        if valid is not None:
            idx = np.where(valid, idx, 0)
        for rule, mask in by_value.items():
            _keep(masks, rule, mask[idx], valid)
    if valid is not None and spec.required and not spec.nullable:
        masks["nullable"] = masks.get("nullable", np.zeros(len(arr), dtype=bool)) | ~valid
    return masks


def _check_union(spec: FieldSpec, arr: Any) -> Masks:
    """Check each child of a union by its own type, then map the results to rows."""
    import numpy as np
    import pyarrow as pa

    codes, offsets = _union_codes(arr)
    mixed = is_mixed(arr.type)
    masks: Masks = {}
    for j, code in enumerate(arr.type.type_codes):
        rows = np.flatnonzero(codes == code)
        if not len(rows):
            continue
        child = arr.field(j)
        pos = offsets[rows] if offsets is not None else rows
        json_text = mixed and j == _JSON_CHILD and pa.types.is_string(child.type)
        for rule, mask in _check(spec, child, json_text).items():
            hit = rows[mask[pos]]
            if len(hit):
                if rule not in masks:
                    masks[rule] = np.zeros(len(arr), dtype=bool)
                masks[rule][hit] = True
    return masks


def _union_codes(arr: Any) -> tuple[Any, Any]:
    """Type codes and (dense) offsets of a union array, as numpy, honouring its slice offset.

    (``UnionArray.type_codes`` ignores the offset of a sliced array.)
    """
    import numpy as np

    start, stop = arr.offset, arr.offset + len(arr)
    buffers = arr.buffers()
    codes = np.frombuffer(buffers[1], dtype=np.int8, count=stop)[start:]
    if arr.type.mode != "dense":
        return codes, None
    return codes, np.frombuffer(buffers[2], dtype=np.int32, count=stop)[start:]


def _null_mask(arr: Any) -> Any:
    """numpy bool array: True where ``arr`` is null (through dictionaries and unions)."""
    probe = FieldSpec(name="_", type="boolean", required=True, nullable=False)
    import numpy as np

    mask = _check_nulls_only(probe, arr)
    return mask if mask is not None else np.zeros(len(arr), dtype=bool)


def _check_nulls_only(probe: FieldSpec, arr: Any) -> Any:
    import pyarrow as pa

    typ = arr.type
    if pa.types.is_dictionary(typ) or pa.types.is_union(typ):
        return _check(probe, arr).get("nullable")
    valid = _valid(arr)
    return None if valid is None else ~valid


# --------------------------------------------------------------------------- the table
def _clean(spec: FieldSpec, column: Any) -> bool:
    """A cheap proof that no value of a numeric column breaks a rule (the common case).

    One min and one max per chunk (NaN propagates, so a NaN is never "clean"); any doubt
    returns False and the full check runs.
    """
    import numpy as np
    import pyarrow as pa

    typ = column.type
    if column.null_count and spec.required and not spec.nullable:
        return False
    if column.null_count or not column.num_chunks or spec.type not in ("float", "integer"):
        return False
    is_float = pa.types.is_floating(typ)
    if not (is_float or pa.types.is_signed_integer(typ)) or (
            spec.type == "integer" and (is_float or spec.categories)):
        return False
    lows, highs = [], []
    for chunk in column.chunks:
        v = _values(chunk)
        for i in range(0, len(v), _BLOCK):  # max reads the block min just brought into cache
            block = v[i:i + _BLOCK]
            lows.append(block.min())
            highs.append(block.max())
    if not lows:
        return True
    low, high = np.min(lows), np.max(highs)
    if is_float and not (math.isfinite(low) and math.isfinite(high)):
        return False
    return (spec.min is None or bool(low >= spec.min)) and (spec.max is None
                                                            or bool(high <= spec.max))


def _heavy(spec: FieldSpec, column: Any) -> bool:
    """Columns worth a thread: text checks hash or measure every value."""
    import pyarrow as pa

    return spec.type in ("string", "text", "category") and (
        pa.types.is_string(column.type) or pa.types.is_large_string(column.type))


def _column_rows(spec: FieldSpec, column: Any) -> dict[str, Any]:
    """Failing rows (numpy int64, ascending) per rule for one chunked column."""
    import numpy as np

    if _clean(spec, column):
        return {}
    found: dict[str, list[Any]] = {}
    start = 0
    for chunk in column.chunks:
        for rule, mask in _check(spec, chunk).items():
            found.setdefault(rule, []).append(np.flatnonzero(mask) + start)
        start += len(chunk)
    return {rule: np.concatenate(parts) for rule, parts in found.items()}


def _python_at(column: Any, rows: Any) -> list[Any]:
    """Python values of ``column`` at ``rows`` (mixed JSON text decoded)."""
    import json

    import numpy as np
    import pyarrow as pa

    # ChunkedArray.take concatenates the chunks first: take from each chunk instead.
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    starts = np.cumsum([0] + [len(c) for c in chunks])
    which = np.searchsorted(starts, rows, side="right") - 1
    values: list[Any] = []
    for i in np.unique(which).tolist():
        local = rows[which == i] - starts[i]
        taken = chunks[i].take(pa.array(local, pa.int64()))
        part = taken.to_pylist()
        if is_mixed(taken.type):
            codes = _union_codes(taken)[0]
            for j in np.flatnonzero(codes == _JSON_CHILD).tolist():
                if part[j] is not None:
                    part[j] = json.loads(part[j])
        values += part
    return values


def _integral(value: Any) -> Any:
    """Integral floats as ints, through nested lists (elements of integer tensors)."""
    if type(value) is float and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def _as_request_value(spec: FieldSpec, value: Any) -> Any:
    """The request value that breaks the same rule (see the module docstring)."""
    if isinstance(value, Decimal):
        return float(value)
    if spec.type == "tensor" and spec.dtype in ("int32", "int64"):
        return _integral(value)
    if (spec.type in ("integer", "category") and type(value) is float
            and math.isfinite(value) and value.is_integer()):
        return int(value)
    return value


def _clause(rule: str, explain: Explain, value: Any) -> str:
    for problem_rule, _, clause in explain(value):
        if problem_rule == rule:
            return clause
    return f"breaks the '{rule}' rule"  # pragma: no cover - the kernels and explain agree


def _extra_clause(name: str, value: Any) -> str:
    details = compile_contract(ContractSection(extra_fields="reject")).validate({name: value})
    message = details[0].message if details else ""
    head = f"The '{name}' field "
    if message.startswith(head) and message.endswith("."):
        return message[len(head):-1]
    return "is not in the contract (extra_fields: reject)"  # pragma: no cover


class _Explainer:
    """Clauses ("must be >= 0; got -3") for the failing rows of one report."""

    def __init__(self, table: Any, contract: ContractSection) -> None:
        self.table = table
        self.specs = {f.name: f for f in contract.inputs}
        self.explains: dict[str, Explain] = {}

    def clauses(self, failure: RuleFailure, rows: Any) -> list[str]:
        if failure.rule == "required":
            return ["is required but was not given"] * len(rows)
        if failure.rule == "nullable":
            return ["must not be null; got null"] * len(rows)
        values = _python_at(self.table.column(failure.column), rows)
        spec = self.specs.get(failure.column)
        if spec is None:
            return [_extra_clause(failure.column, v) for v in values]
        explain = self.explains.get(spec.name)
        if explain is None:
            explain = self.explains[spec.name] = compile_field(spec)[1]
        return [_clause(failure.rule, explain, _as_request_value(spec, v)) for v in values]

    def reasons(self, report: BatchReport) -> list[str]:
        import numpy as np

        failing = report.failing_rows()
        parts: list[list[str]] = [[] for _ in range(len(failing))]
        for failure in report.failures:
            where = np.searchsorted(failing, failure.rows)
            for i, clause in zip(where.tolist(), self.clauses(failure, failure.rows),
                                 strict=True):
                parts[i].append(f"{failure.column} {clause}")
        return ["; ".join(p) for p in parts]


def _summary(clause: str) -> str:
    return clause.split("; got ", 1)[0]


def validate_table(table: Any, contract: ContractSection, *, examples: int = 5) -> BatchReport:
    """Validate every row of ``table`` against ``contract.inputs``.

    Args:
        table: A ``pyarrow.Table`` (or a ``RecordBatch``).
        contract: The contract section of keel.yaml.
        examples: How many example rows to keep per (column, rule).

    Returns:
        The report: per (column, rule) counts and examples, the mask of failing rows, and the
        reasons of the failing rows on demand.

    Raises:
        SpecError: The contract contradicts itself (a field no value can satisfy).
        InvalidInputError: The table has two columns of one name.
    """
    import numpy as np
    import pyarrow as pa

    problems = check_contract(contract)
    if problems:
        raise SpecError("The contract contradicts itself:\n" + "\n".join(
            f"  {d.path}: {d.message}" for d in problems), problems)
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    names = table.column_names
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise InvalidInputError(f"The table has more than one column named {twice[0]!r}; "
                                "column names must be unique to match contract fields.")
    n = table.num_rows
    explainer = _Explainer(table, contract)
    present = [spec for spec in contract.inputs if spec.name in names]
    checked = _check_columns(table, present, n)
    found: list[tuple[str, str, Any]] = []
    for spec in contract.inputs:
        if spec.name not in names:
            if spec.required and n:
                found.append((spec.name, "required", np.arange(n, dtype=np.int64)))
            continue
        by_rule = checked[spec.name]
        found += [(spec.name, rule, by_rule[rule]) for rule in sorted(by_rule,
                                                                    key=_RULE_ORDER.__getitem__)]
    if contract.extra_fields == "reject":
        known = {f.name for f in contract.inputs}
        for name in names:
            if name in known:
                continue
            rows = [np.flatnonzero(~_null_mask(chunk)) + start for chunk, start in
                    zip(table.column(name).chunks, _starts(table.column(name)), strict=True)]
            hit = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
            if len(hit):
                found.append((name, "extra_field", hit))
    failed = np.zeros(n, dtype=bool)
    failures = []
    for column, rule, rows in found:
        failed[rows] = True
        head = rows[:examples]
        probe = RuleFailure(column, rule, len(rows), len(rows) / n, "", (), rows)
        values = (_python_at(table.column(column), head)
                  if column in names and len(head) else [None] * len(head))
        clauses = explainer.clauses(probe, head) if len(head) else [f"breaks '{rule}'"]
        failures.append(RuleFailure(
            column=column, rule=rule, count=len(rows), fraction=len(rows) / n,
            message=_summary(clauses[0]),
            examples=tuple(Example(int(r), safe_got(v)) for r, v in
                           zip(head.tolist(), values, strict=True)),
            rows=rows))
    return BatchReport(rows=n, failures=tuple(failures), failed=failed,
                       _reasons=explainer.reasons)


def _check_columns(table: Any, specs: list[FieldSpec], rows: int) -> dict[str, dict[str, Any]]:
    """Failing rows per rule of every column; text columns of big tables on threads (Arrow
    releases the GIL), while this thread checks the others."""
    heavy = [s for s in specs if _heavy(s, table.column(s.name))]
    workers = min(len(heavy), os.cpu_count() or 1, _MAX_THREADS)
    if rows < _THREADS_FROM_ROWS or not heavy or (workers < 2 and len(heavy) == len(specs)):
        return {s.name: _column_rows(s, table.column(s.name)) for s in specs}
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(workers, 1),
                            thread_name_prefix="keel-validate") as pool:
        futures = {s.name: pool.submit(_column_rows, s, table.column(s.name)) for s in heavy}
        out = {s.name: _column_rows(s, table.column(s.name)) for s in specs if s not in heavy}
        out.update((name, future.result()) for name, future in futures.items())
    return {s.name: out[s.name] for s in specs}


def _starts(column: Any) -> list[int]:
    out, start = [], 0
    for chunk in column.chunks:
        out.append(start)
        start += len(chunk)
    return out


__all__ = ["BatchReport", "Example", "RuleFailure", "check_contract", "validate_table"]

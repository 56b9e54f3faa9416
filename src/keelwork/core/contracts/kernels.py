"""The vectorised checks behind :func:`keelwork.core.contracts.batch.validate_table`.

For one contract field and one Arrow array, :func:`check_array` returns a boolean numpy mask per
broken rule. Each (field type, Arrow type) pair has a kernel: numpy on the zero-copy value
buffers for numbers, pyarrow compute for text, the per-request code value by value for tensors
(exact, not vectorised). Dictionary arrays are checked once per dictionary value; unions (mixed
columns) child by child, each value by its own type. The table-level driver (fast paths, threads)
is :mod:`keelwork.core.contracts.table_check`.

Pure: no I/O; numpy and pyarrow are imported inside the functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

from keelwork.core.contracts import string_sets
from keelwork.core.contracts.columns import MIXED_CHILDREN, is_mixed
from keelwork.core.contracts.record import FLOAT64_MAX, INT64_MAX, INT64_MIN, compile_field
from keelwork.spec.model import FieldSpec

Masks = dict[str, Any]  # rule -> numpy bool array, True where the value breaks the rule
JSON_CHILD: Final = MIXED_CHILDREN.index("json")
_TWO_63: Final = 2.0**63

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


def values_view(arr: Any) -> Any:
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


def float_bounds(spec: FieldSpec) -> tuple[float, float]:
    """``[low, high]`` a float value of ``spec`` must lie in to be above suspicion.

    Outside it (NaN included, and infinities unless ``allow_nan``) a value is a *suspect*
    that :func:`sort_float_suspects` sorts into rules.

    Args:
        spec: A float field.

    Returns:
        ``(low, high)``.
    """
    edge = math.inf if spec.allow_nan else FLOAT64_MAX
    return (spec.min if spec.min is not None else -edge,
            spec.max if spec.max is not None else edge)


def sort_float_suspects(spec: FieldSpec, suspects: Any, x: Any) -> dict[str, Any]:
    """The rules the suspect values ``x`` (at rows ``suspects``) of a float field break.

    Args:
        spec: A float field.
        suspects: numpy int64 rows, ascending.
        x: Their values (float64).

    Returns:
        ``{rule: rows}`` for ``finite``, ``min`` and ``max``, only for rules some row breaks.
    """
    import numpy as np

    out: dict[str, Any] = {}
    lo, hi = spec.min, spec.max
    if spec.allow_nan:
        checked = ~np.isnan(x)
    else:
        bad = ~np.isfinite(x)
        if bad.any():
            out["finite"] = suspects[bad]
        checked = ~bad
    below = (x < lo) & checked if lo is not None else np.zeros(len(x), dtype=bool)
    if below.any():
        out["min"] = suspects[below]
    if hi is not None:
        above = (x > hi) & checked & ~below
        if above.any():
            out["max"] = suspects[above]
    return out


def _float_values(spec: FieldSpec, v: Any, valid: Any, masks: Masks) -> None:
    """All rules for floating values ``v`` (float64) of a float field.

    One pass finds the suspects (see :func:`float_bounds`); only those few are then sorted
    into rules.
    """
    import numpy as np

    low, high = float_bounds(spec)
    if valid is None and len(v):
        first, last = v.min(), v.max()  # NaN propagates: a clean array costs two passes
        if low <= first and last <= high:
            return
    suspects = np.flatnonzero(~((v >= low) & (v <= high)))
    if valid is not None:
        suspects = suspects[valid[suspects]]
    for rule, rows in sort_float_suspects(spec, suspects, v[suspects]).items():
        _set(masks, rule, rows, len(v))


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
    import pyarrow.compute as pc

    if spec.type == "category":
        cats = [c for c in spec.categories or [] if type(c) is str]
        if not cats:
            _keep(masks, "type", _all(valid, len(arr)), None)
        else:
            _categories(arr, cats, valid, masks)
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
        _categories(arr, [c for c in spec.categories if type(c) is str], valid, masks)


def _categories(arr: Any, cats: list[str], valid: Any, masks: Masks) -> None:
    """The ``category`` rule of a string array: compiled when it can be, else Arrow's is_in."""
    import pyarrow as pa
    import pyarrow.compute as pc

    fast = string_sets.outside(arr, cats)
    if fast is not None:
        mask, bad = fast
        if bad:
            _keep(masks, "category", mask, valid)
        return
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


def check_array(spec: FieldSpec, arr: Any, json_text: bool = False) -> Masks:
    """Masks (one per broken rule) for one array of ``spec``'s column; nulls included.

    Args:
        spec: The contract field.
        arr: A ``pyarrow.Array``.
        json_text: The array holds arrays/objects as JSON text (a mixed column's json child).

    Returns:
        ``{rule: numpy bool array as long as arr}``, only for rules some value breaks.
    """
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
            values = [integral(v) for v in values]
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
        v = values_view(arr)
        if is_int:
            _integer_values(spec, v, valid, masks)
        else:
            _float_values(spec, v.astype(np.float64, copy=False), valid, masks)
    elif kind in ("integer", "category") and is_int:
        if kind == "category":
            ints = [c for c in spec.categories or [] if type(c) is int]
            v = values_view(arr)
            if ints:
                _keep(masks, "category", ~_isin(v, ints), valid)
            else:
                _keep(masks, "type", _all(valid, n), None)
        else:
            _integer_values(spec, values_view(arr), valid, masks)
    elif kind in ("integer", "category") and is_float:
        _integral_floats(spec, values_view(arr).astype(np.float64, copy=False), valid, masks)
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
    """:func:`dictionary_rows` as masks."""
    import numpy as np

    masks: Masks = {}
    for rule, rows in dictionary_rows(spec, arr).items():
        mask = masks[rule] = np.zeros(len(arr), dtype=bool)
        mask[rows] = True
    return masks


def null_rows(arr: Any) -> Any:
    """The null rows of a flat array, from its validity bitmap (None when it has no nulls).

    Only bitmap bytes holding a zero bit are unpacked, so sparse nulls cost one pass over
    ``len(arr) / 8`` bytes.

    Args:
        arr: A ``pyarrow.Array`` that is not a dictionary or a union.

    Returns:
        A numpy int64 array of 0-based rows, ascending, or None.
    """
    import numpy as np

    if arr.null_count == 0:
        return None
    bitmap = arr.buffers()[0]
    if bitmap is None:  # the null type
        return np.arange(len(arr), dtype=np.int64)
    start, stop = arr.offset, arr.offset + len(arr)
    first, last = start // 8, (stop + 7) // 8
    data = np.frombuffer(bitmap, dtype=np.uint8, count=last)[first:]
    holes = np.flatnonzero(data != 0xFF)
    bits = np.unpackbits(data[holes], bitorder="little").reshape(-1, 8)
    where = ((holes + first) * 8)[:, None] + np.arange(8)
    rows = where[bits == 0]
    return rows[(rows >= start) & (rows < stop)].astype(np.int64) - start


def null_at(arr: Any, rows: Any) -> Any:
    """Whether each of ``rows`` of a flat array is null, reading just their validity bits.

    Args:
        arr: A ``pyarrow.Array`` that is not a dictionary or a union.
        rows: numpy int64 rows of ``arr``.

    Returns:
        A numpy bool array aligned with ``rows``.
    """
    import numpy as np

    bitmap = arr.buffers()[0] if arr.null_count else None
    if bitmap is None:
        return np.full(len(rows), bool(arr.null_count), dtype=bool)  # none, or the null type
    at = rows + arr.offset
    bits = np.frombuffer(bitmap, dtype=np.uint8)[at >> 3] >> (at & 7).astype(np.uint8)
    return (bits & 1) == 0


def drop_rows(rows: Any, nulls: Any) -> Any:
    """``rows`` without those in ``nulls`` (both ascending)."""
    import numpy as np

    if nulls is None or not len(nulls) or not len(rows):
        return rows
    at = np.minimum(np.searchsorted(nulls, rows), len(nulls) - 1)
    return rows[nulls[at] != rows]


def dictionary_rows(spec: FieldSpec, arr: Any) -> dict[str, Any]:
    """Check each dictionary value once, then find the rows holding the bad ones.

    Args:
        spec: The contract field.
        arr: A ``pyarrow.DictionaryArray``.

    Returns:
        ``{rule: numpy int64 array of rows, ascending}``, only for broken rules.
    """
    import numpy as np

    indices = arr.indices
    nulls = null_rows(indices)
    out: dict[str, Any] = {}
    by_value = check_array(spec, arr.dictionary) if len(arr.dictionary) else {}
    if by_value:
        idx = values_view(indices)
        for rule, mask in by_value.items():
            bad = np.flatnonzero(mask)
            if not len(bad):
                continue
            # junk under a null slot may index anywhere: clipped, and those rows dropped
            hit = idx == bad[0] if len(bad) == 1 else np.take(mask, idx, mode="clip")
            rows = drop_rows(np.flatnonzero(hit), nulls)
            if len(rows):
                out[rule] = rows
    if nulls is not None and len(nulls) and spec.required and not spec.nullable:
        out["nullable"] = np.union1d(out["nullable"], nulls) if "nullable" in out else nulls
    return out


def _check_union(spec: FieldSpec, arr: Any) -> Masks:
    """Check each child of a union by its own type, then map the results to rows."""
    import numpy as np
    import pyarrow as pa

    codes, offsets = union_codes(arr)
    mixed = is_mixed(arr.type)
    masks: Masks = {}
    for j, code in enumerate(arr.type.type_codes):
        rows = np.flatnonzero(codes == code)
        if not len(rows):
            continue
        child = arr.field(j)
        pos = offsets[rows] if offsets is not None else rows
        json_text = mixed and j == JSON_CHILD and pa.types.is_string(child.type)
        for rule, mask in check_array(spec, child, json_text).items():
            hit = rows[mask[pos]]
            if len(hit):
                if rule not in masks:
                    masks[rule] = np.zeros(len(arr), dtype=bool)
                masks[rule][hit] = True
    return masks


def union_codes(arr: Any) -> tuple[Any, Any]:
    """Type codes and offsets of a union array as numpy, honouring its slice offset.

    (``UnionArray.type_codes`` ignores the offset of a sliced array.)

    Args:
        arr: A ``pyarrow.UnionArray``.

    Returns:
        ``(codes, offsets)``: int8 type codes per row, and int32 offsets into the children
        (None for a sparse union).
    """
    import numpy as np

    start, stop = arr.offset, arr.offset + len(arr)
    buffers = arr.buffers()
    codes = np.frombuffer(buffers[1], dtype=np.int8, count=stop)[start:]
    if arr.type.mode != "dense":
        return codes, None
    return codes, np.frombuffer(buffers[2], dtype=np.int32, count=stop)[start:]


def null_mask(arr: Any) -> Any:
    """Where an array is null, through dictionaries and unions.

    Args:
        arr: A ``pyarrow.Array``.

    Returns:
        A numpy bool array, True at the nulls.
    """
    import numpy as np

    probe = FieldSpec(name="_", type="boolean", required=True, nullable=False)
    mask = _check_nulls_only(probe, arr)
    return mask if mask is not None else np.zeros(len(arr), dtype=bool)


def _check_nulls_only(probe: FieldSpec, arr: Any) -> Any:
    import pyarrow as pa

    typ = arr.type
    if pa.types.is_dictionary(typ) or pa.types.is_union(typ):
        return check_array(probe, arr).get("nullable")
    valid = _valid(arr)
    return None if valid is None else ~valid


def integral(value: Any) -> Any:
    """``value`` with integral floats as ints, through nested lists.

    Args:
        value: A Python value read from a table.

    Returns:
        The value a request would have sent for it (see the batch module's docstring).
    """
    if type(value) is float and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [integral(v) for v in value]
    return value


__all__ = ["JSON_CHILD", "Masks", "check_array", "dictionary_rows", "drop_rows", "float_bounds",
           "integral", "null_at", "null_mask", "null_rows", "sort_float_suspects", "union_codes",
           "values_view"]

"""The vectorised checks behind :func:`keelwork.core.contracts.batch.validate_table`.

For one contract field and one Arrow array, :func:`check_array` returns a boolean numpy mask per
broken rule. Each (field type, Arrow type) pair has a kernel: numpy on the zero-copy value
buffers for numbers (:mod:`keelwork.core.contracts.number_kernels`), pyarrow compute for text,
the per-request code value by value for tensors (exact, not vectorised). Dictionary arrays are
checked once per dictionary value; unions (mixed columns) child by child, each value by its own
type. The buffers are read by :mod:`keelwork.core.contracts.arrow_buffers`; the table-level
driver (fast paths, threads) is :mod:`keelwork.core.contracts.table_check`.

Pure: no I/O; numpy and pyarrow are imported inside the functions.
"""

from __future__ import annotations

import math
from typing import Any, Final

from keelwork.core.contracts import string_sets
from keelwork.core.contracts.arrow_buffers import (
    bool_values,
    drop_rows,
    null_rows,
    union_codes,
    valid_mask,
    values_view,
)
from keelwork.core.contracts.columns import MIXED_CHILDREN, is_mixed
from keelwork.core.contracts.number_kernels import (
    Masks,
    every,
    float_values,
    integer_values,
    integral_floats,
    isin,
    keep,
)
from keelwork.core.contracts.record import compile_field
from keelwork.spec.contract import FieldSpec

JSON_CHILD: Final = MIXED_CHILDREN.index("json")


def _string_values(spec: FieldSpec, arr: Any, valid: Any, masks: Masks) -> None:
    import numpy as np
    import pyarrow.compute as pc

    if spec.type == "category":
        cats = [c for c in spec.categories or [] if type(c) is str]
        if not cats:
            keep(masks, "type", every(valid, len(arr)), None)
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
            keep(masks, "min_length", n < lo, valid)
            if hi is not None:
                keep(masks, "max_length", n > hi, valid)
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
            keep(masks, "category", mask, valid)
        return
    hit = pc.is_in(arr, value_set=pa.array(cats, arr.type))
    if hit.true_count != len(arr) - arr.null_count:
        keep(masks, "category", ~bool_values(hit), valid)


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
    valid = valid_mask(arr)
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
        keep(masks, "type", every(valid, n), None)
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
            integer_values(spec, v, valid, masks)
        else:
            float_values(spec, v.astype(np.float64, copy=False), valid, masks)
    elif kind in ("integer", "category") and is_int:
        if kind == "category":
            ints = [c for c in spec.categories or [] if type(c) is int]
            v = values_view(arr)
            if ints:
                keep(masks, "category", ~isin(v, ints), valid)
            else:
                keep(masks, "type", every(valid, n), None)
        else:
            integer_values(spec, values_view(arr), valid, masks)
    elif kind in ("integer", "category") and is_float:
        integral_floats(spec, values_view(arr).astype(np.float64, copy=False), valid, masks)
    elif kind == "boolean" and is_bool:
        pass
    elif kind == "category" and is_bool:
        flags = [c for c in spec.categories or [] if type(c) is bool]
        if not flags:
            keep(masks, "type", every(valid, n), None)
        elif len(flags) == 1:
            b = bool_values(arr)
            keep(masks, "category", b if flags[0] is False else ~b, valid)
    elif kind in ("string", "text", "category") and is_str:
        _string_values(spec, arr, valid, masks)
    else:
        keep(masks, "type", every(valid, n), None)
    return masks


def _check_dictionary(spec: FieldSpec, arr: Any) -> Masks:
    """:func:`dictionary_rows` as masks."""
    import numpy as np

    masks: Masks = {}
    for rule, rows in dictionary_rows(spec, arr).items():
        mask = masks[rule] = np.zeros(len(arr), dtype=bool)
        mask[rows] = True
    return masks


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
    valid = valid_mask(arr)
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


__all__ = ["JSON_CHILD", "Masks", "check_array", "dictionary_rows", "integral", "null_mask"]

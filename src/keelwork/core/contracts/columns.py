"""Python values as Arrow columns, keeping each value's own JSON type.

Files hold one type per column, but real data does not always agree: a JSON-lines column with
numbers and strings, a CSV cell ``"n/a"`` in a numeric column. Such a column becomes a *mixed*
column, a dense union with a fixed set of children (:func:`mixed_type`)::

    null    pa.null()     null values
    bool    pa.bool_()    true / false
    int     pa.int64()    integers within int64
    float   pa.float64()  other numbers (also integers beyond int64)
    string  pa.string()   strings
    json    pa.string()   arrays and objects, as JSON text

so that the batch validator can judge every value by its own type, as the per-request validator
does. Every mixed column of every batch has the same type, whatever its values, so batches of one
file concatenate. Pure: no I/O; pyarrow is imported inside the functions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

MIXED_CHILDREN: Final = ("null", "bool", "int", "float", "string", "json")
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1


def mixed_type() -> Any:
    """The Arrow type of a mixed column: a dense union of the children in ``MIXED_CHILDREN``.

    Returns:
        A ``pyarrow.DenseUnionType`` whose type codes are 0..5 in ``MIXED_CHILDREN`` order.
    """
    import pyarrow as pa

    return pa.dense_union([
        pa.field("null", pa.null()), pa.field("bool", pa.bool_()), pa.field("int", pa.int64()),
        pa.field("float", pa.float64()), pa.field("string", pa.string()),
        pa.field("json", pa.string())], type_codes=list(range(len(MIXED_CHILDREN))))


def is_mixed(arrow_type: Any) -> bool:
    """Whether ``arrow_type`` is the mixed-column type of :func:`mixed_type`."""
    return bool(arrow_type == mixed_type())


def _kind(value: Any) -> int:
    """The mixed child (index into ``MIXED_CHILDREN``) that holds ``value``."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return 2 if _INT64_MIN <= value <= _INT64_MAX else 3
    if isinstance(value, float):
        return 3
    if isinstance(value, str):
        return 4
    return 5


def _child_value(kind: int, value: Any) -> Any:
    if kind == 3 and isinstance(value, int):  # an integer beyond int64
        try:
            return float(value)
        except OverflowError:
            return math.copysign(math.inf, value)
    if kind == 5:
        return json.dumps(value, allow_nan=True, default=repr)
    return value


def mixed_array(values: Sequence[Any]) -> Any:
    """Build a mixed column (see the module docstring) from Python values.

    Args:
        values: JSON-like Python values (None, bool, int, float, str, list, dict).

    Returns:
        A ``pyarrow.UnionArray`` of :func:`mixed_type`.
    """
    import pyarrow as pa

    typ = mixed_type()
    kinds = [_kind(v) for v in values]
    parts: list[list[Any]] = [[] for _ in MIXED_CHILDREN]
    offsets: list[int] = []
    for kind, value in zip(kinds, values, strict=True):
        part = parts[kind]
        offsets.append(len(part))
        part.append(_child_value(kind, value))
    children = [pa.array(part, type=typ.field(i).type) for i, part in enumerate(parts)]
    return pa.UnionArray.from_dense(
        pa.array(kinds, pa.int8()), pa.array(offsets, pa.int32()), children,
        list(MIXED_CHILDREN), list(range(len(MIXED_CHILDREN))))


def to_mixed(array: Any) -> Any:
    """Convert any Arrow array to a mixed column, keeping each value's type.

    Args:
        array: A ``pyarrow.Array`` (a mixed one is returned as is).

    Returns:
        A ``pyarrow.UnionArray`` of :func:`mixed_type`, as long as ``array``.
    """
    import numpy as np
    import pyarrow as pa

    if is_mixed(array.type):
        return array
    typ = array.type
    code = None
    if pa.types.is_null(typ):
        code = 0
    elif pa.types.is_boolean(typ):
        code = 1
    elif pa.types.is_signed_integer(typ):
        code = 2
    elif pa.types.is_floating(typ):
        code = 3
    elif pa.types.is_string(typ) or pa.types.is_large_string(typ):
        code = 4
    if code is None:  # unsigned, nested, dates...: value by value (rare)
        return mixed_array(array.to_pylist())
    mixed = mixed_type()
    children = [pa.array([], type=mixed.field(i).type) for i in range(len(MIXED_CHILDREN))]
    children[code] = array.cast(mixed.field(code).type)
    n = len(array)
    return pa.UnionArray.from_dense(
        pa.array(np.full(n, code, dtype=np.int8)), pa.array(np.arange(n, dtype=np.int32)),
        children, list(MIXED_CHILDREN), list(range(len(MIXED_CHILDREN))))


def array_from_values(values: Sequence[Any]) -> Any:
    """One Arrow column from Python values: a plain column when they share a type, else mixed.

    Integers beyond int64, and arrays/objects that Arrow cannot type as one column, make the
    column mixed.

    Args:
        values: JSON-like Python values.

    Returns:
        A ``pyarrow.Array``.
    """
    import pyarrow as pa

    kinds = {_kind(v) for v in values} - {0}
    if not kinds:
        return pa.nulls(len(values))
    if len(kinds) == 1:
        kind = kinds.pop()
        plain = {1: pa.bool_(), 2: pa.int64(), 3: pa.float64(), 4: pa.string()}.get(kind)
        if plain is not None and not (kind == 3 and any(isinstance(v, int) for v in values)):
            return pa.array(values, type=plain)
        if kind == 5:
            try:
                return pa.array(values)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                pass
    return mixed_array(values)


def table_from_records(records: Iterable[Mapping[str, Any]]) -> Any:
    """A table from JSON-like records (mappings); absent keys become nulls.

    Columns appear in the order their keys are first seen. A column whose values do not share
    one type becomes a mixed column (see the module docstring).

    Args:
        records: The records.

    Returns:
        A ``pyarrow.Table``.
    """
    import pyarrow as pa

    rows = list(records)
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    columns = {name: array_from_values([row.get(name) for row in rows]) for name in names}
    if not columns:
        return pa.table({}).append_column("_", pa.nulls(len(rows))).drop_columns(["_"])
    return pa.table(columns)


__all__ = ["MIXED_CHILDREN", "array_from_values", "is_mixed", "mixed_array", "mixed_type",
           "table_from_records", "to_mixed"]

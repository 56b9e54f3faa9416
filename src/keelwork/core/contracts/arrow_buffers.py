"""Arrow buffers read as numpy, zero-copy: validity bitmaps, values, union type codes.

The building blocks the contract kernels (:mod:`keelwork.core.contracts.kernels`,
:mod:`keelwork.core.contracts.number_kernels`) and the table driver use to find rows without
converting a column to Python.

Pure: no I/O; numpy is imported inside the functions.
"""

from __future__ import annotations

from typing import Any


def valid_mask(arr: Any) -> Any:
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


def bool_values(arr: Any) -> Any:
    """A boolean array as numpy, nulls read as False."""
    import numpy as np

    return np.asarray(arr.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


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


__all__ = ["bool_values", "drop_rows", "null_at", "null_rows", "union_codes", "valid_mask",
           "values_view"]

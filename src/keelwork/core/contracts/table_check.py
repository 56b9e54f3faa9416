"""Which rows of which columns break the contract: the table-level driver of the kernels.

:func:`check_columns` gives, per contract field, the failing rows per rule. It spends its time
where the data is:

* a numeric column whose minimum and maximum already satisfy the field is proved clean by one
  blocked min/max scan (each block read once from memory, the second reduction from cache), or
  by one compiled pass when :mod:`keelwork.core.contracts.jit` has loaded the kernels;
* float fields over float columns, and any field over dictionary columns, go straight to row
  indices: the values are scanned block by block, and only blocks whose min/max leave the
  allowed range are compared value by value. Nulls are read from the validity bitmap's bytes
  (only bytes with a zero bit are unpacked). Failures are rare in real data, so no full-length
  boolean mask is built per rule;
* everything else goes through :func:`keelwork.core.contracts.kernels.check_array` (masks);
* on big tables the columns are split over a few threads (numpy reductions and pyarrow compute
  release the GIL), text columns weighted as the expensive ones.

The result is the same as checking every chunk with ``check_array`` (a test compares them).

Pure: no I/O; numpy and pyarrow are imported inside the functions.
"""

from __future__ import annotations

import math
import os
from typing import Any, Final

from keelwork.core.contracts import jit
from keelwork.core.contracts.arrow_buffers import drop_rows, null_rows, values_view
from keelwork.core.contracts.kernels import check_array, dictionary_rows
from keelwork.core.contracts.number_kernels import float_bounds, sort_float_suspects
from keelwork.core.contracts.record import FLOAT64_MAX
from keelwork.spec.contract import FieldSpec

Rows = dict[str, Any]  # rule -> numpy int64 array of failing rows, ascending

_THREADS_FROM_ROWS: Final = 100_000
_MAX_THREADS: Final = 8
_BLOCK: Final = 1 << 17  # 1 MiB of float64: stays in cache between the passes over a block
_TEXT_WEIGHT: Final = 12  # a text value costs about this many float values (hashing, measured)


# --------------------------------------------------------------------------- floats
def _outside(v: Any, low: float, high: float, probe: bool) -> tuple[Any, bool]:
    """Rows of ``v`` not in ``[low, high]`` (NaN included), scanned block by block.

    With ``probe``, a block whose min and max are inside is skipped after two reductions; once a
    block held a suspect, the rest of the column is compared directly (in data with errors
    every block tends to hold some). Returns the rows and whether to keep probing.
    """
    import numpy as np

    found = []
    inside = np.empty(min(len(v), _BLOCK), dtype=bool)
    upper = np.empty_like(inside)
    for i in range(0, len(v), _BLOCK):
        block = v[i:i + _BLOCK]
        if probe and low <= block.min() and block.max() <= high:  # NaN fails both
            continue
        m, u = inside[:len(block)], upper[:len(block)]
        np.greater_equal(block, low, out=m)
        np.less_equal(block, high, out=u)
        m &= u
        np.logical_not(m, out=m)
        rows = np.flatnonzero(m)
        if len(rows):
            found.append(rows + i)
            probe = False
    return (np.concatenate(found) if found else np.zeros(0, dtype=np.int64)), probe


def _float_rows(spec: FieldSpec, column: Any) -> Rows:
    """Every rule of a float field over a floating column, as rows.

    Each chunk gives its nulls and its suspects (values outside [min, max], NaN and infinities
    included unless allowed); the few suspects of the whole column are then sorted into rules
    at once (:func:`keelwork.core.contracts.number_kernels.sort_float_suspects`).
    """
    import numpy as np

    low, high = float_bounds(spec)
    null_parts, suspect_parts, value_parts = [], [], []
    start, probe = 0, True
    for chunk in column.chunks:
        nulls = null_rows(chunk)
        if nulls is not None:
            null_parts.append(nulls + start)
        if nulls is None or len(nulls) < len(chunk):
            v = values_view(chunk).astype(np.float64, copy=False)
            rows, probe = _outside(v, low, high, probe)
            rows = drop_rows(rows, nulls)
            if len(rows):
                suspect_parts.append(rows + start)
                value_parts.append(v[rows])
        start += len(chunk)
    out: Rows = {}
    if null_parts and spec.required and not spec.nullable:
        out["nullable"] = np.concatenate(null_parts)
    if suspect_parts:
        out.update(sort_float_suspects(spec, np.concatenate(suspect_parts),
                                       np.concatenate(value_parts)))
    return out


# --------------------------------------------------------------------------- columns
def _clean(spec: FieldSpec, column: Any) -> bool:
    """A cheap proof that no value of a numeric column breaks a rule (the common case).

    One min and one max per block (NaN propagates, so a NaN is never "clean"); any doubt
    returns False and the full check runs.
    """
    import numpy as np
    import pyarrow as pa

    typ = column.type
    if column.null_count or not column.num_chunks or spec.type not in ("float", "integer"):
        return False
    is_float = pa.types.is_floating(typ)
    if not (is_float or pa.types.is_signed_integer(typ)) or (
            spec.type == "integer" and (is_float or spec.categories)):
        return False
    kernels = jit.loaded()
    if kernels is not None and pa.types.is_float64(typ):  # one compiled pass per chunk
        low = spec.min if spec.min is not None else -FLOAT64_MAX
        high = spec.max if spec.max is not None else FLOAT64_MAX
        return all(kernels.count_outside(values_view(chunk), low, high) == 0
                   for chunk in column.chunks)
    lows, highs = [], []
    for chunk in column.chunks:
        v = values_view(chunk)
        for i in range(0, len(v), _BLOCK):  # max reads the block min just brought into cache
            block = v[i:i + _BLOCK]
            lows.append(block.min())
            highs.append(block.max())
    if not lows:
        return True
    # compared as Python numbers: exact for int64 against float bounds
    low = float(np.min(lows)) if is_float else int(np.min(lows))
    high = float(np.max(highs)) if is_float else int(np.max(highs))
    if is_float and not (math.isfinite(low) and math.isfinite(high)):
        return False
    return (spec.min is None or low >= spec.min) and (spec.max is None or high <= spec.max)


def _is_text(spec: FieldSpec, column: Any) -> bool:
    """Text checks hash or measure every value: the expensive columns."""
    import pyarrow as pa

    return spec.type in ("string", "text", "category") and (
        pa.types.is_string(column.type) or pa.types.is_large_string(column.type))


def chunk_failures(spec: FieldSpec, arr: Any) -> Rows:
    """The failing rows of one array, per rule (fast paths first, then masks).

    Args:
        spec: The contract field.
        arr: A ``pyarrow.Array``.

    Returns:
        ``{rule: numpy int64 array of rows, ascending}``, only for broken rules.
    """
    import numpy as np
    import pyarrow as pa

    typ = arr.type
    if not len(arr):
        return {}
    if pa.types.is_dictionary(typ):
        return dictionary_rows(spec, arr)
    return {rule: np.flatnonzero(mask) for rule, mask in check_array(spec, arr).items()}


def column_failures(spec: FieldSpec, column: Any) -> Rows:
    """The failing rows of one column, per rule.

    Args:
        spec: The contract field.
        column: A ``pyarrow.ChunkedArray``.

    Returns:
        ``{rule: numpy int64 array of rows, ascending}``, only for broken rules.
    """
    import numpy as np
    import pyarrow as pa

    if _clean(spec, column):
        return {}
    if spec.type == "float" and pa.types.is_floating(column.type):
        return _float_rows(spec, column)
    found: dict[str, list[Any]] = {}
    start = 0
    for chunk in column.chunks:
        for rule, rows in chunk_failures(spec, chunk).items():
            found.setdefault(rule, []).append(rows + start)
        start += len(chunk)
    return {rule: np.concatenate(parts).astype(np.int64, copy=False)
            for rule, parts in found.items()}


def _shares(table: Any, specs: list[FieldSpec], workers: int) -> list[list[FieldSpec]]:
    """Split the fields into ``workers`` groups of about equal cost (greedy, costliest first)."""
    cost = {s.name: (_TEXT_WEIGHT if _is_text(s, table.column(s.name)) else 1) for s in specs}
    groups: list[list[FieldSpec]] = [[] for _ in range(workers)]
    load = [0] * workers
    for spec in sorted(specs, key=lambda s: -cost[s.name]):
        i = load.index(min(load))
        groups[i].append(spec)
        load[i] += cost[spec.name]
    return [g for g in groups if g]


def check_columns(table: Any, specs: list[FieldSpec], rows: int) -> dict[str, Rows]:
    """:func:`column_failures` of every field; big tables on a few threads.

    Args:
        table: A ``pyarrow.Table`` holding every field of ``specs``.
        specs: The fields to check.
        rows: Rows in the table.

    Returns:
        ``{field name: {rule: rows}}`` in ``specs`` order.
    """
    workers = min(len(specs), os.cpu_count() or 1, _MAX_THREADS)
    if rows < _THREADS_FROM_ROWS or workers < 2:
        return {s.name: column_failures(s, table.column(s.name)) for s in specs}
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    def run(group: list[FieldSpec]) -> dict[str, Rows]:
        return {s.name: column_failures(s, table.column(s.name)) for s in group}

    mine, *theirs = _shares(table, specs, workers)
    out: dict[str, Rows] = {}
    with ThreadPoolExecutor(max_workers=len(theirs) or 1,
                            thread_name_prefix="keel-validate") as pool:
        # each worker sees the caller's context (the active Jit of core.contracts.jit)
        futures = [pool.submit(contextvars.copy_context().run, run, group)
                   for group in theirs]
        out.update(run(mine))
        for future in futures:
            out.update(future.result())
    return {s.name: out[s.name] for s in specs}


__all__ = ["Rows", "check_columns", "chunk_failures", "column_failures"]

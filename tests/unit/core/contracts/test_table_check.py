"""keelwork.core.contracts.table_check: the fast row paths find what the mask kernels find."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from keelwork.core.contracts import jit
from keelwork.core.contracts.arrow_buffers import null_rows
from keelwork.core.contracts.kernels import check_array
from keelwork.core.contracts.table_check import (
    _BLOCK,
    _clean,
    check_columns,
    column_failures,
)
from keelwork.spec.contract import FieldSpec

NAN, INF = float("nan"), float("inf")


def by_masks(spec: FieldSpec, column: pa.ChunkedArray) -> dict[str, list[int]]:
    """The reference: ``check_array`` chunk by chunk, masks turned into rows; dictionary
    columns decoded to plain values first (an independent path)."""
    out: dict[str, list[int]] = {}
    start = 0
    for chunk in column.chunks:
        if pa.types.is_dictionary(chunk.type):
            chunk = chunk.dictionary_decode()
        for rule, mask in check_array(spec, chunk).items():
            out.setdefault(rule, []).extend((np.flatnonzero(mask) + start).tolist())
        start += len(chunk)
    return {rule: sorted(rows) for rule, rows in out.items() if rows}


def as_lists(found: dict[str, Any]) -> dict[str, list[int]]:
    return {rule: rows.tolist() for rule, rows in found.items()}


def float_column(n: int, seed: int, bad: int) -> pa.ChunkedArray:
    rng = np.random.default_rng(seed)
    values: list[Any] = rng.uniform(-10, 10, n).tolist()
    where = rng.choice(n, bad * 5, replace=False)
    for i, row in enumerate(where.tolist()):
        values[row] = [-11.0, 12.0, NAN, INF, None][i % 5]
    arr = pa.array(values, pa.float64(), from_pandas=False)
    cut = [0, n // 3, n // 3 + 7, n]  # uneven chunks, one of 7 rows
    return pa.chunked_array([arr.slice(a, b - a) for a, b in itertools.pairwise(cut)])


@pytest.mark.parametrize("bad", [0, 1, 40])
@pytest.mark.parametrize("spec", [
    FieldSpec(name="x", type="float", min=-10, max=10),
    FieldSpec(name="x", type="float", min=-10, max=10, allow_nan=True, nullable=True),
    FieldSpec(name="x", type="float", max=10),
    FieldSpec(name="x", type="float"),
    FieldSpec(name="x", type="float", min=0, required=False),
])
def test_float_columns_spanning_many_blocks(spec: FieldSpec, bad: int) -> None:
    column = float_column(3 * _BLOCK + 11, seed=bad, bad=bad)
    assert as_lists(column_failures(spec, column)) == by_masks(spec, column)


@pytest.mark.parametrize("values", [
    [0.0, 10.0, -10.0, 5.5], [0.0, 10.000000001], [-0.0, NAN], [1.0, INF], [-INF, 0.0],
    [1e308, -1e308], [3.0] * 7,
])
@pytest.mark.parametrize("bounds", [(-10.0, 10.0), (None, 10.0), (-10.0, None), (None, None)])
def test_compiled_range_pass_proves_the_same_columns_clean(
        values: list[float], bounds: tuple[float | None, float | None],
        monkeypatch: pytest.MonkeyPatch) -> None:
    if not jit.available():
        pytest.skip("numba is not installed (keelwork[fast])")
    spec = FieldSpec(name="x", type="float", min=bounds[0], max=bounds[1])
    column = pa.chunked_array([pa.array(values * 3), pa.array(values)])
    numpy_clean = _clean(spec, column)  # no active Jit: numpy
    compiled = jit.Jit("on")
    assert compiled.for_text(0) is not None  # loads the kernels
    with compiled.active():
        assert _clean(spec, column) == numpy_clean
    assert as_lists(column_failures(spec, column)) == by_masks(spec, column)
    assert numpy_clean == (not by_masks(spec, column))


def test_a_clean_block_after_a_dirty_one_still_finds_later_suspects() -> None:
    values = np.zeros(4 * _BLOCK)
    values[[5, 2 * _BLOCK + 3, 4 * _BLOCK - 1]] = [-1.0, NAN, 2.0]
    spec = FieldSpec(name="x", type="float", min=0, max=1)
    found = as_lists(column_failures(spec, pa.chunked_array([pa.array(values)])))
    assert found == {"min": [5], "finite": [2 * _BLOCK + 3], "max": [4 * _BLOCK - 1]}


@pytest.mark.parametrize("offset", [0, 1, 5, 8, 13])
def test_null_rows_read_the_bitmap_bytes_at_any_offset(offset: int) -> None:
    rng = np.random.default_rng(offset)
    values = [None if rng.random() < 0.1 else 1.0 for _ in range(1000)]
    arr = pa.array(values, pa.float64()).slice(offset, 900)
    want = [i for i, v in enumerate(values[offset:offset + 900]) if v is None]
    assert null_rows(arr).tolist() == want
    assert null_rows(pa.array([1.0, 2.0])) is None
    assert null_rows(pa.nulls(4)).tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("spec", [
    FieldSpec(name="c", type="category", categories=["a", "b"]),
    FieldSpec(name="c", type="category", categories=["a"], nullable=True),
    FieldSpec(name="c", type="string", max_length=1, required=False),
])
def test_dictionary_columns_with_junk_under_nulls(spec: FieldSpec) -> None:
    rng = np.random.default_rng(3)
    indices = pa.array(rng.integers(0, 4, 5000), pa.int32())
    # a null slot whose index buffer holds an out-of-range value (99)
    raw = np.frombuffer(indices.buffers()[1], dtype=np.int32).copy()
    raw[::97] = 99
    valid = np.ones(5000, dtype=bool)
    valid[::97] = False
    indices = pa.Array.from_buffers(pa.int32(), 5000, [
        pa.py_buffer(np.packbits(valid, bitorder="little")), pa.py_buffer(raw)],
        null_count=int((~valid).sum()))
    arr = pa.DictionaryArray.from_arrays(indices, pa.array(["a", "b", "zz", "q"]))
    column = pa.chunked_array([arr.slice(0, 2500), arr.slice(2500)])
    assert as_lists(column_failures(spec, column)) == by_masks(spec, column)


def test_threads_give_the_same_rows_as_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    n = 150_000
    rng = np.random.default_rng(9)
    specs = [FieldSpec(name=f"f{i}", type="float", min=-10, max=10) for i in range(3)]
    specs += [FieldSpec(name="c", type="category", categories=["a", "b"])]
    table = pa.table({**{s.name: float_column(n, i, 30) for i, s in enumerate(specs[:3])},
                      "c": pa.array(np.asarray(["a", "b", "x"], dtype=object)[
                          rng.integers(0, 3, n)], pa.string())})
    threaded = check_columns(table, specs, n)
    monkeypatch.setattr("keelwork.core.contracts.table_check._THREADS_FROM_ROWS", 10**9)
    single = check_columns(table, specs, n)
    assert list(threaded) == [s.name for s in specs]
    assert {k: as_lists(v) for k, v in threaded.items()} == \
        {k: as_lists(v) for k, v in single.items()}
    assert {k: by_masks(s, table.column(k)) for k, s in zip(threaded, specs, strict=True)} == \
        {k: as_lists(v) for k, v in single.items()}

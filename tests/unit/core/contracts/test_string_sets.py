"""keelwork.core.contracts.string_sets: the compiled category check agrees with Arrow's is_in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keelwork.core.contracts import jit, string_sets
from keelwork.core.contracts.batch import validate_table
from keelwork.spec.contract import ContractSection

pytestmark = pytest.mark.skipif(not jit.available(),
                                reason="numba is not installed (keelwork[fast])")
N = string_sets.MIN_ROWS + 1_000


@pytest.fixture(autouse=True)
def _compiled() -> Iterator[None]:
    """The kernel from the first big array (the default waits for LOAD_AFTER values)."""
    with jit.Jit("on").active():
        yield

LONG = "a" * 8 + "middle" + "b" * 8  # 22 bytes: first, last and middle bytes all checked


def by_arrow(arr: pa.Array, allowed: list[str]) -> list[bool]:
    """True where a value (not a null) is outside ``allowed``."""
    hit = pc.is_in(arr, value_set=pa.array(allowed, arr.type)).to_pylist()
    return [v is not None and not h for v, h in zip(arr.to_pylist(), hit, strict=True)]


def check(arr: pa.Array, allowed: list[str]) -> None:
    got = string_sets.outside(arr, allowed)
    assert got is not None
    mask, bad = got
    want = by_arrow(arr, allowed)
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    assert (mask & valid).tolist() == want
    assert bad >= sum(want)


def values(rng: np.random.Generator, allowed: list[str], others: list[str]) -> list[Any]:
    pool = np.asarray(allowed + others + [None], dtype=object)
    weights = np.asarray([8.0] * len(allowed) + [1.0] * len(others) + [1.0])
    return list(rng.choice(pool, N, p=weights / weights.sum()))


ALLOWED = ["red", "green", "blue", "platinum", "", "ünïcødé", "exactly8", "nine_byte",
           "sixteen_bytes_xx", "seventeen_bytes_x", LONG]
NEAR = ["Red", "gree", "greenn", "blu", "platinun", " ", "unicode", "exactly9", "nine_bytf",
        "sixteen_bytes_xy", "seventeen_bytes_y", "a" * 8 + "middlf" + "b" * 8,
        "a" * 8 + "middle" + "b" * 7 + "c", "\0", "red\0"]


SHORT = [v for v in ALLOWED if len(v.encode()) <= 8]  # the one-word kernel


@pytest.mark.parametrize("allowed", [ALLOWED, SHORT], ids=["any-length", "short"])
@pytest.mark.parametrize("typ", [pa.string(), pa.large_string()])
def test_near_misses_of_every_length_are_told_apart(typ: pa.DataType,
                                                    allowed: list[str]) -> None:
    arr = pa.array(values(np.random.default_rng(1), allowed, NEAR + ALLOWED), typ)
    check(arr, allowed)
    check(arr.slice(17, N - 40), allowed)  # offsets with an offset


def test_values_at_the_very_end_of_the_buffer() -> None:
    # the last values sit in the final bytes, where the kernel reads byte by byte
    for tail in (["x"], ["red"], ["exactly8"], ["nine_byte"], [LONG], ["re"], [""]):
        arr = pa.array(["green"] * N + tail)
        check(arr, ALLOWED)


def test_unaligned_data_buffer_is_copied_not_misread() -> None:
    base = pa.array(["blue", "red", "gold"] * (N // 3))
    offsets, data = base.buffers()[1], base.buffers()[2]
    shifted = pa.py_buffer(b"\0\0\0" + data.to_pybytes())[3:]  # same bytes, odd address
    arr = pa.Array.from_buffers(pa.string(), len(base), [None, offsets, shifted])
    check(arr, ["red", "blue"])


def test_small_arrays_and_unhashable_sets_fall_back() -> None:
    assert string_sets.outside(pa.array(["red"] * 10), ["red"]) is None
    twins = ["a" * 8 + "X" + "b" * 8, "a" * 8 + "Y" + "b" * 8]  # one key: first/last/length
    assert string_sets.outside(pa.array(twins * N), twins) is None
    assert string_sets.outside(pa.array([1] * N), ["1"]) is None


@settings(max_examples=40, deadline=None)
@given(allowed=st.lists(st.text(max_size=20), min_size=1, max_size=40, unique=True),
       others=st.lists(st.text(max_size=20), max_size=10), seed=st.integers(0, 2**16))
def test_any_set_any_values(allowed: list[str], others: list[str], seed: int) -> None:
    arr = pa.array(values(np.random.default_rng(seed), allowed, others), pa.string())
    if string_sets.outside(arr, allowed) is None:  # two allowed values share a key
        return
    check(arr, allowed)


def test_validate_table_reports_the_same_with_and_without_the_kernel(
        monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    table = pa.table({"c": pa.array(values(rng, ALLOWED[:4], NEAR[:3]), pa.string())})
    section = ContractSection.model_validate(
        {"inputs": [{"name": "c", "type": "category", "categories": ALLOWED[:4],
                     "nullable": True}]})
    fast = validate_table(table, section)
    monkeypatch.setattr("keelwork.core.contracts.string_sets.MIN_ROWS", 10**12)
    slow = validate_table(table, section)
    assert [f.as_dict() for f in fast.failures] == [f.as_dict() for f in slow.failures]
    assert fast.failures and fast.reasons() == slow.reasons()


def test_auto_mode_switches_after_enough_values_and_off_never() -> None:
    arr = pa.array(["red", "blue", "pink"] * (N // 3))
    off = jit.Jit("off", load_after=2 * len(arr))
    with off.active():
        assert string_sets.outside(arr, ["red", "blue"]) is None
        assert off.checked == 0 and jit.loaded() is None
    auto = jit.Jit("auto", load_after=2 * len(arr))
    with auto.active():
        assert string_sets.outside(arr, ["red", "blue"]) is None  # one-off work stays on Arrow
        assert string_sets.outside(arr, ["red", "blue"]) is None
        got = string_sets.outside(arr, ["red", "blue"])  # the run keeps validating: switch
        assert got is not None and got[1] == len(arr) // 3
        assert jit.loaded() is not None


def test_without_an_active_jit_the_check_stays_on_arrow() -> None:
    arr = pa.array(["red", "blue", "pink"] * (N // 3))
    seen: list[Any] = []

    def outside_any_jit() -> None:
        seen.append(string_sets.outside(arr, ["red", "blue"]))
        seen.append(jit.loaded())

    import contextvars

    contextvars.Context().run(outside_any_jit)  # a fresh context: no Jit entered
    assert seen == [None, None]

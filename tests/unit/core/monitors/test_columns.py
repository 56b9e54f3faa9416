"""Plain-column profiles (profile_rows) equal the pyarrow profiler's on the same rows."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from typing import Any

import pytest

from keelwork.core.monitors.columns import column_kinds, columns_table, profile_rows
from keelwork.core.monitors.profile import profile_table

KINDS = {"x": "numeric", "n": "numeric", "c": "categorical", "flag": "categorical",
         "label:label": "categorical"}


def _row(rng: random.Random, *, shifted: bool) -> dict[str, Any]:
    odd: list[Any] = [None, float("nan"), float("inf"), -float("inf"), "1.5", "abc", True]
    cats = ["a", "b", "c"] + (["new-1", "new-2", 3.0, 4] if shifted else [])
    return {
        "x": rng.gauss(2.0 if shifted else 0.0, 1.0) if rng.random() > 0.1 else rng.choice(odd),
        "n": rng.randint(0, 9) if rng.random() > 0.05 else None,
        "c": rng.choice(cats) if rng.random() > 0.1 else None,
        "flag": rng.random() > 0.5,
        "label:label": rng.choice([">50K", "<=50K", None]),
    }


@pytest.mark.parametrize("seed", range(8))
def test_equal_to_profiling_the_columns_table(seed: int) -> None:
    rng = random.Random(seed)
    ref_rows = [_row(rng, shifted=False) for _ in range(500)]
    reference = profile_table(columns_table(ref_rows, KINDS), kinds=KINDS)
    for n in (0, 1, 37, 2000):
        rows = [_row(rng, shifted=bool(seed % 2)) for _ in range(n)]
        want = profile_table(columns_table(rows, KINDS), reference=reference)
        got = profile_rows(rows, KINDS, reference)
        assert got.rows == want.rows == n
        assert got.columns.keys() == want.columns.keys()
        for name, col in want.columns.items():
            mine = got.columns[name]
            for field in ("kind", "rows", "nulls", "counts", "edges", "non_finite", "minimum",
                          "maximum", "vocabulary", "closed", "new", "other"):
                assert getattr(mine, field) == getattr(col, field), (name, field)
            assert math.isclose(mine.mean, col.mean, rel_tol=1e-12, abs_tol=1e-12)
            assert math.isclose(mine.m2, col.m2, rel_tol=1e-9, abs_tol=1e-9)


def test_names_pick_the_columns() -> None:
    rows = [{"x": 1.0, "c": "a"}, {"x": 2.0, "c": "b"}]
    kinds = column_kinds(rows)
    reference = profile_table(columns_table(rows, kinds), kinds=kinds)
    got = profile_rows(rows, kinds, reference, ["c"])
    assert list(got.columns) == ["c"] and got.columns["c"].counts == (1, 1)


def test_builds_no_pyarrow_array() -> None:
    """A short-lived process profiling labelled rows never imports pyarrow (nor pandas)."""
    code = (
        "import sys\n"
        "from keelwork.core.monitors.columns import profile_rows\n"
        "from keelwork.core.monitors.profile import ColumnProfile, TableProfile\n"
        "ref = TableProfile(3, {'c': ColumnProfile(name='c', kind='categorical', rows=3,"
        " nulls=0, counts=(2, 1), vocabulary=('a', 'b'), closed=True)})\n"
        "p = profile_rows([{'c': 'a'}, {'c': 'z'}, {}], {'c': 'categorical'}, ref)\n"
        "assert p.columns['c'].counts == (1, 0) and p.columns['c'].new == (('z', 1),)\n"
        "assert p.columns['c'].nulls == 1\n"
        "print(sorted(m for m in ('pyarrow', 'pandas') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"

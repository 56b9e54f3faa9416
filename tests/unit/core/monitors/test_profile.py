"""Monitor profiles: layouts fixed by the reference, exact merges, serialisation."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from keelwork.core.monitors.profile import (
    ColumnProfile,
    ProfileError,
    TableProfile,
    profile_table,
)

SEED = 7


def _data(rng: np.random.Generator, n: int) -> dict[str, Any]:
    x = rng.normal(10, 2, n)
    x[rng.random(n) < 0.05] = np.nan
    labels = np.array(["red", "green", "blue", "grey"], dtype=object)
    c = rng.choice(labels, n, p=[0.5, 0.3, 0.15, 0.05])
    return {"x": x, "c": c, "k": rng.integers(0, 5, n)}


def _assert_same(a: ColumnProfile, b: ColumnProfile) -> None:
    assert (a.rows, a.nulls, a.counts, a.edges, a.non_finite) == (
        b.rows, b.nulls, b.counts, b.edges, b.non_finite)
    assert (a.vocabulary, a.new, a.other, a.closed) == (b.vocabulary, b.new, b.other, b.closed)
    assert (a.minimum, a.maximum) == (b.minimum, b.maximum)
    assert a.mean == pytest.approx(b.mean, rel=1e-12, abs=1e-12)
    assert a.m2 == pytest.approx(b.m2, rel=1e-9)


def test_reference_layout() -> None:
    rng = np.random.default_rng(SEED)
    prof = profile_table(_data(rng, 10_000))
    x = prof.columns["x"]
    assert x.kind == "numeric" and len(x.counts) == len(x.edges) + 1
    assert list(x.edges) == sorted(set(x.edges))
    assert x.counts[0] == 0 and x.counts[-1] == 0  # nothing outside the reference's range
    assert x.finite == sum(x.counts) and x.nulls == x.rows - x.finite
    inner = x.counts[1:-1]
    assert max(inner) <= 1.2 * x.finite / 20  # quantile bins hold ~equal mass
    assert x.std == pytest.approx(2, rel=0.05)
    c = prof.columns["c"]
    assert c.kind == "categorical" and c.vocabulary[0] == "red" and c.closed
    assert sum(c.counts) == 10_000


def test_merge_equals_profile_of_concatenation() -> None:
    rng = np.random.default_rng(SEED)
    ref = profile_table(_data(rng, 5_000))
    a, b = _data(rng, 3_000), _data(rng, 2_000)
    b["x"] = b["x"] * 3 - 5  # values beyond the reference's range land in the outer bins
    b["c"] = np.where(rng.random(2_000) < 0.1, "violet", b["c"]).astype(object)
    both = {k: np.concatenate([a[k], b[k]]) for k in a}
    merged = profile_table(a, reference=ref).merge(profile_table(b, reference=ref))
    whole = profile_table(both, reference=ref)
    assert merged.rows == whole.rows == 5_000
    for name in ref.columns:
        _assert_same(merged.columns[name], whole.columns[name])
    assert merged.columns["x"].counts[0] + merged.columns["x"].counts[-1] > 0
    assert dict(merged.columns["c"].new)["violet"] > 0


def test_merge_keeps_new_category_cap_exact() -> None:
    ref = profile_table({"c": ["a"] * 10})
    a = {"c": ["n3", "n1", "n5", "a"]}
    b = {"c": ["n2", "n4", "n1"]}
    merged = profile_table(a, reference=ref, max_new=2).merge(
        profile_table(b, reference=ref, max_new=2))
    whole = profile_table({"c": a["c"] + b["c"]}, reference=ref, max_new=2)
    _assert_same(merged.columns["c"], whole.columns["c"])
    assert whole.columns["c"].new == (("n1", 2), ("n2", 1))
    assert whole.columns["c"].other == 3


def test_open_vocabulary_puts_unknown_labels_in_other() -> None:
    ref = profile_table({"c": ["a", "a", "b", "c"]}, max_categories=1)
    col = ref.columns["c"]
    assert col.vocabulary == ("a",) and not col.closed and col.other == 2
    cur = profile_table({"c": ["z", "a"]}, reference=ref).columns["c"]
    assert cur.new == () and cur.other == 1


def test_merge_rejects_other_layouts() -> None:
    rng = np.random.default_rng(SEED)
    a = profile_table({"x": rng.normal(size=100)})
    b = profile_table({"x": rng.normal(size=100)})
    with pytest.raises(ProfileError, match="same reference layout"):
        a.merge(b)


def test_round_trip_through_json() -> None:
    rng = np.random.default_rng(SEED)
    prof = profile_table(_data(rng, 1_000))
    text = json.dumps(prof.as_dict(), allow_nan=False)
    back = TableProfile.from_dict(json.loads(text))
    assert back == prof
    assert json.loads(text)["kind"] == "keelwork.monitor-profile"


@pytest.mark.parametrize("data", [{"kind": "other", "version": 1},
                                  {"kind": "keelwork.monitor-profile", "version": 99},
                                  {"kind": "keelwork.monitor-profile", "version": 1}])
def test_from_dict_rejects_foreign_or_malformed(data: dict[str, Any]) -> None:
    with pytest.raises(ProfileError):
        TableProfile.from_dict(data)


def test_bad_columns_profile_without_crashing() -> None:
    table = pa.table({"nulls": pa.array([None, None, None], pa.float64()),
                      "const": [4.0, 4.0, 4.0], "inf": [1.0, float("inf"), None],
                      "when": pa.array([1, 2, 3], pa.timestamp("s"))})
    prof = profile_table(table)
    assert "when" not in prof.columns  # not numeric or categorical: skipped
    nulls = prof.columns["nulls"]
    assert nulls.finite == 0 and nulls.minimum is None and nulls.edges == ()
    const = prof.columns["const"]
    assert len(const.edges) == 2 and const.counts == (0, 3, 0) and const.std == 0
    inf = prof.columns["inf"]
    assert (inf.nulls, inf.non_finite, inf.finite) == (1, 1, 1)
    empty = profile_table(table.slice(0, 0), reference=prof)
    assert empty.rows == 0 and empty.columns["const"].counts == (0, 0, 0)


def test_kinds_override_and_errors() -> None:
    prof = profile_table({"code": [1, 2, 2]}, kinds={"code": "categorical"})
    assert prof.columns["code"].vocabulary == ("2", "1")
    with pytest.raises(ProfileError, match="must be 'numeric' or 'categorical'"):
        profile_table({"code": [1]}, kinds={"code": "text"})
    with pytest.raises(ProfileError, match="must be a pyarrow Table"):
        profile_table([1, 2, 3])

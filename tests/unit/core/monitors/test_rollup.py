"""Monitor rollups: exact sums of bucket profiles, a compact stored form, canonical scores."""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from keelwork.core.monitors.profile import (
    ProfileError,
    TableProfile,
    merge_profiles,
    profile_table,
)
from keelwork.core.monitors.rollup import (
    Rollup,
    canonical_scores,
    combine,
    id_key,
    layout_fingerprint,
    rollup_from_bytes,
)

SEED = 3


def _table(rng: np.random.Generator, n: int, shift: float = 0.0) -> dict[str, Any]:
    x = rng.normal(10 + shift, 2, n)
    x[rng.random(n) < 0.05] = np.nan
    c = rng.choice(np.array(["a", "b", "c", "new-" + str(shift)], dtype=object), n)
    return {"x": x, "c": c}


@pytest.fixture
def reference() -> TableProfile:
    rng = np.random.default_rng(SEED)
    base = _table(rng, 2000)
    base["c"] = np.where(base["c"] == "new-0.0", "a", base["c"])
    return profile_table(base)


def _parts(reference: TableProfile, k: int = 12) -> list[TableProfile]:
    rng = np.random.default_rng(SEED + 1)
    return [profile_table(_table(rng, int(rng.integers(1, 300)), shift=i % 4),
                          reference=reference) for i in range(k)]


def _rollup(reference: TableProfile, prof: TableProfile, seen: int) -> Rollup:
    return Rollup("L", seen=seen, rows=prof.rows, profile=prof,
                  segments={("c", "a"): [prof, prof.rows // 2]}, columns={"x", "c"},
                  versions={1}, scores=[0.1 * seen, 0.5])


def _same(a: TableProfile | None, b: TableProfile | None) -> None:
    assert a is not None and b is not None and a.rows == b.rows
    for n, c in a.columns.items():
        d = b.columns[n]
        assert replace(c, mean=0.0, m2=0.0) == replace(d, mean=0.0, m2=0.0)
        assert (c.mean, c.m2) == pytest.approx((d.mean, d.m2), rel=1e-12)


def test_merge_profiles_equals_merging_one_by_one(reference: TableProfile) -> None:
    parts = _parts(reference)
    assert merge_profiles(parts) == functools.reduce(TableProfile.merge, parts)
    assert merge_profiles([]) is None
    assert merge_profiles(parts[:1]) == parts[0]


def test_merge_profiles_keeps_the_first_new_labels_as_merge_does(
        reference: TableProfile) -> None:
    parts = _parts(reference)
    small = [TableProfile(p.rows, {n: c if c.kind == "numeric" else
                                   replace(c, max_new=1)
                                   for n, c in p.columns.items()}) for p in parts]
    assert merge_profiles(small) == functools.reduce(TableProfile.merge, small)


def test_combine_is_the_sum_in_any_grouping(reference: TableProfile) -> None:
    parts = [_rollup(reference, p, i + 1) for i, p in enumerate(_parts(reference))]
    one = combine("L", parts)
    halves = combine("L", [combine("L", parts[:5]), combine("L", parts[5:])])
    # counts exact; the moments (Chan's formula) up to float rounding, as any merge
    _same(one.profile, halves.profile)
    _same(one.segments[("c", "a")][0], halves.segments[("c", "a")][0])
    assert one.segments[("c", "a")][1] == halves.segments[("c", "a")][1]
    assert (one.seen, one.rows, sorted(one.scores)) == (halves.seen, halves.rows,
                                                        sorted(halves.scores))
    assert one.seen == sum(range(1, 13))
    with pytest.raises(ProfileError, match="same reference layout"):
        combine("other", parts)


def test_stored_form_round_trips_without_layouts(reference: TableProfile) -> None:
    part = _rollup(reference, _parts(reference)[0], 7)
    data = part.to_bytes()
    back = rollup_from_bytes(data, reference.columns)
    assert back.profile == part.profile and back.segments == part.segments
    assert (back.seen, back.rows, back.columns, back.versions, back.scores.tolist()) == (
        7, part.rows, {"x", "c"}, {1}, part.scores)
    # the edges and vocabularies are not stored: the reference's stand for them
    assert b"edges" not in data and b"vocabulary" not in data
    with pytest.raises(ProfileError, match="'x'"):
        rollup_from_bytes(data, {"c": reference.columns["c"]})
    with pytest.raises(ProfileError, match="malformed"):
        rollup_from_bytes(data[:20], reference.columns)


def test_kept_scores_round_trip_and_add_up(reference: TableProfile) -> None:
    """Scores computed again are kept per prediction: stored, read back, combined, found."""
    a, b = (_rollup(reference, part, 5) for part in _parts(reference)[:2])
    a.kept_ids, a.kept_width = [id_key("p1"), id_key("p2")], 2
    a.kept_proba = [0.1, 0.9, 0.7, 0.3]
    b.kept_ids, b.kept_width, b.kept_proba = [id_key("p3")], 2, [0.4, 0.6]
    back = [rollup_from_bytes(r.to_bytes(), reference.columns) for r in (a, b)]
    assert back[0].scores.tolist() == a.scores
    assert back[0].kept_scores([id_key("p2"), id_key("p1")]) == [[0.7, 0.3], [0.1, 0.9]]
    total = combine(a.layout, back)
    keys = [id_key(k) for k in ("p3", "nope", "p1", "p2")]
    assert total.kept_scores(keys) == [[0.4, 0.6], None, [0.1, 0.9], [0.7, 0.3]]
    assert Rollup(a.layout).kept_scores(keys) == [None] * 4
    assert len(total.scores) == len(a.scores) + len(b.scores)
    assert id_key("p1") != id_key("p2") and 0 <= id_key("p1") < 2 ** 64


@pytest.mark.parametrize("seed", range(5))
def test_kept_scores_equal_a_lookup_by_id(seed: int) -> None:
    """Many kept ids, few keys asked for (some twice, some never kept): each key gets the row
    of its id (an id kept twice: its first row), as a plain dictionary lookup gives."""
    rng = np.random.default_rng(seed)
    r = Rollup("layout")
    ids = rng.integers(0, 2 ** 63, size=5_000, dtype=np.uint64).tolist()
    ids[10] = ids[3]  # kept twice
    r.kept_ids, r.kept_width = ids, 3
    r.kept_proba = rng.random(len(ids) * 3).tolist()
    rows = np.asarray(r.kept_proba).reshape(-1, 3).tolist()
    table: dict[int, list[float]] = {}
    for i, row in zip(ids, rows, strict=True):
        table.setdefault(i, row)
    keys = [ids[i] for i in rng.integers(0, len(ids), size=300)] + [ids[3], ids[10]]
    keys += rng.integers(0, 2 ** 63, size=50, dtype=np.uint64).tolist()  # never kept
    keys = [keys[i] for i in rng.permutation(len(keys))]
    assert r.kept_scores(keys) == [table.get(k) for k in keys]


def test_fingerprint_changes_with_what_rows_are_profiled_against(
        reference: TableProfile) -> None:
    schema = {"classes": ["0", "1"]}
    base = layout_fingerprint(schema, reference, ["c"])
    assert base == layout_fingerprint(schema, reference, ["c"])
    other = profile_table(_table(np.random.default_rng(99), 500))
    assert layout_fingerprint(schema, other, ["c"]) != base
    assert layout_fingerprint(schema, reference, []) != base
    assert layout_fingerprint({"classes": ["0", "2"]}, reference, ["c"]) != base
    assert layout_fingerprint(schema, reference, ["c"], {"scores": True}) != base


def test_canonical_scores_do_not_depend_on_order() -> None:
    rng = np.random.default_rng(SEED)
    scores = rng.random(50).tolist()
    assert canonical_scores(scores).tolist() == sorted(scores)
    assert canonical_scores(scores[::-1]).tolist() == canonical_scores(scores).tolist()
    rows = rng.dirichlet([1, 1, 1], 40).tolist()
    assert canonical_scores(rows).tolist() == sorted(rows)
    assert canonical_scores([]) == []

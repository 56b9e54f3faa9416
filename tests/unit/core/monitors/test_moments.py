"""Moments of values near the float64 limit: computed scaled, stored explicitly, merged."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import orjson
import pytest

from keelwork.core.monitors.drift import column_drift
from keelwork.core.monitors.moments import merge_moments, moments
from keelwork.core.monitors.profile import TableProfile, merge_profiles, profile_table
from keelwork.core.monitors.quality import regression_metrics
from keelwork.core.monitors.rollup import Rollup, combine, rollup_from_bytes

NORMAL = [20.0, 22.5, 25.0, 27.5, 30.0, 32.5, 35.0, 28.0]


@pytest.fixture
def reference() -> TableProfile:
    return profile_table({"bmi": NORMAL})


def _stored(profile: TableProfile) -> bytes:
    return Rollup("L", seen=profile.rows, rows=profile.rows, profile=profile).to_bytes()


def test_moments_of_huge_values_are_scaled_not_overflowed() -> None:
    mean, m2 = moments(np.array([1.7e308, 1.7e308, -1.7e308]))
    assert mean == pytest.approx(1.7e308 / 3) and m2 == math.inf
    mean, m2 = moments(np.array([1e200, 3e200]))
    assert mean == pytest.approx(2e200) and m2 == math.inf
    mean, m2 = moments(np.array([1e120, 3e120]))  # scaled, still in range: exact to rounding
    assert (mean, m2) == pytest.approx((2e120, 2e240))


def test_merging_opposite_huge_means_and_infinite_spreads_is_defined() -> None:
    mean, m2 = merge_moments(1, 1.7e308, 0.0, 1, -1.7e308, 0.0)
    assert mean == 0.0 and m2 == math.inf
    assert merge_moments(2, 5.0, math.inf, 3, 6.0, 1.0)[1] == math.inf
    assert merge_moments(0, 0.0, 0.0, 2, 1e300, math.inf) == (1e300, math.inf)


def test_rollups_of_a_huge_value_round_trip_and_merge(reference: TableProfile) -> None:
    """The audit's crash: a bucket with bmi 1e200 stored (m2 inf) and merged with another."""
    huge = profile_table({"bmi": [28.0, 1e200]}, reference=reference)
    plain = profile_table({"bmi": [28.0, 30.0]}, reference=reference)
    parts = [rollup_from_bytes(_stored(p), reference.columns) for p in (huge, plain)]
    col = parts[0].profile.columns["bmi"]  # type: ignore[union-attr]
    assert (col.mean, col.m2) == (pytest.approx(5e199), math.inf)
    merged = combine("L", parts).profile.columns["bmi"]  # type: ignore[union-attr]
    assert merged.finite == 4 and merged.mean == pytest.approx(2.5e199)
    assert merged.m2 == math.inf and merged.maximum == 1e200
    # later windows without the huge bucket are untouched
    alone = combine("L", parts[1:]).profile.columns["bmi"]  # type: ignore[union-attr]
    assert (alone.mean, alone.m2) == pytest.approx((29.0, 2.0))


def test_rollups_stored_by_older_keelwork_with_null_moments_still_merge(
        reference: TableProfile) -> None:
    """A version-2 rollup whose overflowed moments orjson wrote as null: read as unknown."""
    data = _stored(profile_table({"bmi": [28.0, 1e200]}, reference=reference))
    (size,) = struct.unpack_from("<I", data, 0)
    head = orjson.loads(data[4:4 + size])
    head["version"] = 2
    head["profile"][1]["bmi"][6:8] = [None, None]
    new_head = orjson.dumps(head)
    old = struct.pack("<I", len(new_head)) + new_head + data[4 + size:]
    plain = _stored(profile_table({"bmi": [28.0, 30.0]}, reference=reference))
    parts = [rollup_from_bytes(b, reference.columns) for b in (old, plain)]
    merged = combine("L", parts).profile.columns["bmi"]  # type: ignore[union-attr]
    assert merged.finite == 4 and math.isnan(merged.mean) and merged.m2 == math.inf
    report = column_drift(reference.columns["bmi"], merged)
    assert report.status in ("drift", "no_drift")


def test_a_profile_with_an_infinite_spread_is_stored_as_strict_json(
        reference: TableProfile) -> None:
    prof = merge_profiles([profile_table({"bmi": [1e200, -1e200]}, reference=reference)])
    assert prof is not None
    text = json.dumps(prof.as_dict(), allow_nan=False)  # what the monitor store writes
    back = TableProfile.from_dict(json.loads(text)).columns["bmi"]
    assert (back.mean, back.m2) == (0.0, math.inf)


def test_drift_against_a_reference_spread_beyond_float64_says_why() -> None:
    rng = np.random.default_rng(5)
    ref = profile_table({"x": [*rng.normal(28, 4, 2000), 1e200]})
    cur = profile_table({"x": rng.normal(40, 4, 2000)}, reference=ref)
    verdict = column_drift(ref.columns["x"], cur.columns["x"])
    assert verdict.method == "js" and "wasserstein" not in verdict.metrics
    assert "beyond float64" in verdict.reason and verdict.drift is True


def test_regression_quality_with_huge_errors_stays_finite() -> None:
    out = regression_metrics([1.0, 2.0], [1e200, -1e200])
    assert out["mae"] == pytest.approx(1e200) and out["rmse"] == pytest.approx(1e200)
    assert out["bias"] == pytest.approx(0.0, abs=1e186)
    out = regression_metrics([-1.7e308], [1.7e308])
    assert out["rmse"] is None and "beyond float64" in out["notes"][-1]

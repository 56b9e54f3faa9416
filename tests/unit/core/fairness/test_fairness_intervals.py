"""Wilson intervals (checked against published values) and the alert rule they gate: a small
group's large point gap does not alert, the same gap in a large group does."""

from __future__ import annotations

import random

import pytest

from keelwork.core.fairness import FairnessRules, GroupTally, fairness_report
from keelwork.core.fairness.intervals import (
    difference_interval,
    ratio_interval,
    simultaneous,
    wilson,
)


@pytest.mark.parametrize(("x", "n", "lo", "hi"), [
    # Newcombe (1998), Statistics in Medicine 17:857-872, Table I, method 3 (Wilson score)
    (81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718)])
def test_wilson_matches_newcombes_table(x: int, n: int, lo: float, hi: float) -> None:
    got = wilson(x, n, 0.95)
    assert got == pytest.approx((lo, hi), abs=5e-5)


def test_no_trials_say_nothing_and_more_intervals_are_wider() -> None:
    assert wilson(0, 0, 0.95) == (0.0, 1.0)
    one = simultaneous([(30, 100)], 0.95)[0]
    four = simultaneous([(30, 100)] * 4, 0.95)[0]
    assert four[0] < one[0] and four[1] > one[1]


def test_disparity_intervals_contain_the_point_values() -> None:
    bounds = [(0.2, 0.3), (0.5, 0.6), (0.4, 0.45)]
    assert difference_interval(bounds) == pytest.approx((0.2, 0.4))
    assert ratio_interval(bounds) == pytest.approx((0.2 / 0.6, 0.3 / 0.5))
    assert difference_interval([(0.1, 0.5), (0.2, 0.4)])[0] == 0.0


def _two_groups(n_big: int, n_small: int, rate_big: float, rate_small: float,
                seed: int = 0) -> GroupTally:
    rng = random.Random(seed)
    t = GroupTally(["sex"])
    for group, n, rate in (("big", n_big, rate_big), ("small", n_small, rate_small)):
        selected = round(n * rate)
        for i in range(n):
            t.add({"sex": group}, i < selected, rng.random() < 0.3)
    return t


def _status(report: dict, measure: str) -> str:
    [field] = report["fields"]
    return next(m["status"] for m in field["measures"] if m["measure"] == measure)


def test_a_small_group_with_a_big_gap_does_not_alert_a_large_one_does() -> None:
    rules = FairnessRules(("sex",), min_group_size=10)
    # point gap 0.30 - 0.10 = 0.20, twice the threshold, in a group of 20 labelled answers
    small = fairness_report(_two_groups(2000, 20, 0.30, 0.10), rules)
    assert small["fields"][0]["measures"][0]["value"] == pytest.approx(0.20)
    assert _status(small, "demographic_parity_difference") == "uncertain"
    assert _status(small, "demographic_parity_ratio") == "uncertain"
    assert small["alerts"] == []
    # the same gap with 1,000 in the smaller group: the interval excludes the threshold
    large = fairness_report(_two_groups(2000, 1000, 0.30, 0.10), rules)
    assert _status(large, "demographic_parity_difference") == "alert"
    assert _status(large, "demographic_parity_ratio") == "alert"
    assert any(a.startswith("sex: demographic_parity_difference 0.200") for a in large["alerts"])
    # no gap in large groups: ok, not merely uncertain
    equal = fairness_report(_two_groups(2000, 1000, 0.30, 0.30), rules)
    assert _status(equal, "demographic_parity_difference") == "ok"
    assert _status(equal, "demographic_parity_ratio") == "ok"


def test_groups_below_min_size_are_skipped_and_one_group_is_no_data() -> None:
    rules = FairnessRules(("sex",), min_group_size=30)
    report = fairness_report(_two_groups(200, 20, 0.3, 0.1), rules)
    [field] = report["fields"]
    assert [g["value"] for g in field["groups"]] == ["big"]
    assert field["skipped"] == [{"value": "small", "labelled": 20}]
    assert {m["status"] for m in field["measures"]} == {"no_data"}
    assert not field["alerting"]


def test_false_alerts_stay_under_one_minus_confidence_without_a_real_gap() -> None:
    # five groups with the same true rates and small samples: the simultaneous intervals
    # keep false alerts (any measure, any window) rare
    rules = FairnessRules(("g",), min_group_size=10, max_difference=0.05, min_ratio=0.9)
    alerts = 0
    for seed in range(200):
        rng = random.Random(seed)
        t = GroupTally(["g"])
        for i in range(5 * 60):
            actual = rng.random() < 0.4
            t.add({"g": f"g{i % 5}"}, rng.random() < (0.7 if actual else 0.2), actual)
        alerts += bool(fairness_report(t, rules)["alerts"])
    assert alerts / 200 <= 0.05


def test_each_rule_is_applied() -> None:
    tally = _two_groups(400, 400, 0.30, 0.20)
    only_dp = fairness_report(tally, FairnessRules(("sex",), metrics=("demographic_parity",),
                                                   min_ratio=None))
    assert [m["measure"] for m in only_dp["fields"][0]["measures"]] == [
        "demographic_parity_difference"]
    no_diff = fairness_report(tally, FairnessRules(("sex",), max_difference=None))
    assert [m["measure"] for m in no_diff["fields"][0]["measures"]] == [
        "demographic_parity_ratio", "equalized_odds_ratio"]
    # a higher confidence widens every interval
    lo = fairness_report(tally, FairnessRules(("sex",), confidence=0.8))["fields"][0]
    hi = fairness_report(tally, FairnessRules(("sex",), confidence=0.99))["fields"][0]
    for a, b in zip(lo["measures"], hi["measures"], strict=True):
        assert b["interval"][0] <= a["interval"][0] and b["interval"][1] >= a["interval"][1]
        assert a["interval"] != b["interval"]
    # the 0.10 gap is beyond 0.025 with 80 % confidence, not with 99 %
    def status(confidence: float) -> str:
        rules = FairnessRules(("sex",), max_difference=0.025, confidence=confidence)
        return str(fairness_report(tally, rules)["fields"][0]["measures"][0]["status"])

    assert (status(0.8), status(0.99)) == ("alert", "uncertain")
    assert fairness_report(tally, FairnessRules(("sex",), min_group_size=401))["fields"][0][
        "measures"][0]["status"] == "no_data"

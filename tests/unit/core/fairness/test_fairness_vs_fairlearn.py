"""The group rates and disparities equal Fairlearn's (MetricFrame.by_group and the
demographic-parity / equalized-odds functions) to 1e-9, on random data and on edge cases."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest

from keelwork.core.fairness import GroupTally
from keelwork.core.fairness.groups import (
    MAX_TRACKED,
    OTHER,
    disparities,
    rates,
    worst_ratio,
)

fl = pytest.importorskip("fairlearn.metrics", reason="fairlearn (the dev extra) not installed")


def _tally(y_true: Any, y_pred: Any, groups: Any) -> GroupTally:
    t = GroupTally(["g"])
    for a, p, g in zip(y_true, y_pred, groups, strict=True):
        t.add({"g": str(g)}, bool(p), bool(a))
    return t


def _fairlearn(y_true: Any, y_pred: Any, groups: Any) -> tuple[Any, dict[str, float]]:
    from sklearn.metrics import precision_score

    def precision(t: Any, p: Any) -> float:
        return float(precision_score(t, p, zero_division=0.0))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 0/0 ratios: NaN, which we compare as None
        frame = fl.MetricFrame(metrics={"selection_rate": fl.selection_rate,
                                        "tpr": fl.true_positive_rate,
                                        "fpr": fl.false_positive_rate,
                                        "precision": precision},
                               y_true=y_true, y_pred=y_pred, sensitive_features=groups)
        kw = {"sensitive_features": groups}
        values = {
            "demographic_parity_difference": fl.demographic_parity_difference(y_true, y_pred,
                                                                              **kw),
            "demographic_parity_ratio": fl.demographic_parity_ratio(y_true, y_pred, **kw),
            "equalized_odds_difference": fl.equalized_odds_difference(y_true, y_pred, **kw),
            "equalized_odds_ratio": fl.equalized_odds_ratio(y_true, y_pred, **kw),
        }
    return frame.by_group, values


def _same(ours: float | None, theirs: float) -> None:
    if ours is None:
        assert math.isnan(theirs)
    else:
        assert ours == pytest.approx(float(theirs), abs=1e-9)


@pytest.mark.parametrize("seed", range(8))
def test_group_rates_and_disparities_equal_fairlearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 3000))
    k = int(rng.integers(2, 7))
    groups = rng.choice([f"g{i}" for i in range(k)], size=n, p=rng.dirichlet(np.ones(k)))
    base = {g: rng.uniform(0.05, 0.6) for g in set(groups)}
    y_true = np.array([rng.random() < base[g] for g in groups], dtype=int)
    flip = rng.uniform(0.05, 0.4)
    y_pred = np.where(rng.random(n) < flip, 1 - y_true, y_true)
    tally = _tally(y_true, y_pred, groups)
    by_group, values = _fairlearn(y_true, y_pred, groups)
    assert set(tally.counts["g"]) == set(by_group.index)
    for g, row in by_group.iterrows():
        ours = rates(tally.counts["g"][str(g)])
        for metric in ("selection_rate", "tpr", "fpr", "precision"):
            assert ours[metric] == pytest.approx(row[metric], abs=1e-9), (g, metric)
    ours_d = disparities(tally.counts["g"])
    for name, theirs in values.items():
        _same(ours_d[name], theirs)


def test_edge_groups_equal_fairlearn() -> None:
    # a group with no actual positive (TPR 0/0), one with no prediction of the positive class
    # (precision 0/0, selection 0), one where everything is positive (FPR 0/0)
    y_true = [0, 0, 0, 1, 1, 0, 1, 1, 1, 0]
    y_pred = [0, 1, 0, 0, 0, 0, 1, 1, 1, 1]
    groups = ["a", "a", "a", "b", "b", "b", "c", "c", "c", "c"]
    y_true[9] = 1
    tally = _tally(y_true, y_pred, groups)
    by_group, values = _fairlearn(np.array(y_true), np.array(y_pred), np.array(groups))
    for g, row in by_group.iterrows():
        ours = rates(tally.counts["g"][str(g)])
        for metric in row.index:
            assert ours[metric] == pytest.approx(row[metric], abs=1e-9), (g, metric)
    ours_d = disparities(tally.counts["g"])
    for name, theirs in values.items():
        _same(ours_d[name], theirs)


def test_a_ratio_of_all_zero_rates_is_undefined_as_in_fairlearn() -> None:
    y_true, y_pred, groups = [0, 1, 0, 1], [0, 0, 0, 0], ["a", "a", "b", "b"]
    tally = _tally(y_true, y_pred, groups)
    _, values = _fairlearn(np.array(y_true), np.array(y_pred), np.array(groups))
    d = disparities(tally.counts["g"])
    assert d["demographic_parity_ratio"] is None
    assert math.isnan(values["demographic_parity_ratio"])
    assert d["demographic_parity_difference"] == values["demographic_parity_difference"] == 0


def _two_groups(tpr: dict[str, float], fpr: dict[str, float]) -> tuple[Any, Any, Any]:
    """100 actual positives and 100 actual negatives per group, answered at the given rates."""
    y_true, y_pred, groups = [], [], []
    for g in tpr:
        for i in range(100):
            y_true.append(1)
            y_pred.append(int(i < round(tpr[g] * 100)))
            groups.append(g)
        for i in range(100):
            y_true.append(0)
            y_pred.append(int(i < round(fpr[g] * 100)))
            groups.append(g)
    return np.array(y_true), np.array(y_pred), np.array(groups)


@pytest.mark.parametrize(("tpr", "fpr"), [
    # no false positive in any group: the FPR ratio is 0/0, the TPR gap still counts
    ({"a": 0.9, "b": 0.2}, {"a": 0.0, "b": 0.0}),
    # no true positive in any group: the TPR ratio is 0/0, and so is the answer
    ({"a": 0.0, "b": 0.0}, {"a": 0.4, "b": 0.2}),
    # neither
    ({"a": 0.0, "b": 0.0}, {"a": 0.0, "b": 0.0}),
    # every answer positive
    ({"a": 1.0, "b": 1.0}, {"a": 1.0, "b": 1.0}),
    # one group never selected
    ({"a": 0.7, "b": 0.0}, {"a": 0.1, "b": 0.0}),
], ids=["no-false-positive", "no-true-positive", "never-positive", "always-positive",
        "one-group-never-selected"])
def test_undefined_tpr_or_fpr_ratio_answers_as_fairlearn(tpr: dict[str, float],
                                                        fpr: dict[str, float]) -> None:
    y_true, y_pred, groups = _two_groups(tpr, fpr)
    tally = _tally(y_true, y_pred, groups)
    _, values = _fairlearn(y_true, y_pred, groups)
    ours = disparities(tally.counts["g"])
    for name, theirs in values.items():
        _same(ours[name], theirs)


def test_no_false_positive_keeps_the_tpr_gap_in_the_equalized_odds_ratio() -> None:
    y_true, y_pred, groups = _two_groups({"a": 0.9, "b": 0.2}, {"a": 0.0, "b": 0.0})
    d = disparities(_tally(y_true, y_pred, groups).counts["g"])
    assert d["equalized_odds_ratio"] == pytest.approx(0.2 / 0.9)
    assert d["equalized_odds_difference"] == pytest.approx(0.7)


@pytest.mark.parametrize(("tpr_ratio", "fpr_ratio", "expected"), [
    (0.5, 0.8, 0.5), (0.9, 0.3, 0.3), (0.4, None, 0.4), (None, 0.6, None), (None, None, None)])
def test_worst_ratio_follows_fairlearn_min_over_tpr_then_fpr(
        tpr_ratio: float | None, fpr_ratio: float | None, expected: float | None) -> None:
    def nan(v: float | None) -> float:
        return math.nan if v is None else v

    theirs = min(np.array([nan(tpr_ratio), nan(fpr_ratio)]))
    assert worst_ratio(tpr_ratio, fpr_ratio) == expected
    _same(expected, float(theirs))


def test_counts_merge_by_addition_and_groups_stay_bounded() -> None:
    a, b = GroupTally(["g"]), GroupTally(["g"])
    for i in range(100):
        (a if i % 2 else b).add({"g": "x" if i % 3 else "y"}, i % 5 == 0, i % 7 == 0)
    whole = GroupTally(["g"])
    for i in range(100):
        whole.add({"g": "x" if i % 3 else "y"}, i % 5 == 0, i % 7 == 0)
    a.merge(b)
    assert {k: v.as_dict() for k, v in a.counts["g"].items()} == {
        k: v.as_dict() for k, v in whole.counts["g"].items()}
    wide = GroupTally(["id"])
    for i in range(MAX_TRACKED + 500):
        wide.add({"id": str(i)}, True, False)
    wide.add({"id": None}, True, True)
    assert len(wide.counts["id"]) == MAX_TRACKED + 1
    assert wide.counts["id"][OTHER].n == 500
    assert wide.missing["id"] == 1 and wide.labelled == MAX_TRACKED + 501

"""Slice minimum quality and fairness limits, on a real model's answers to labelled rows.

A logistic regression fitted on half of scikit-learn's breast-cancer data is judged on the
other half; slices are the tumour's size (``worst_area`` above or below its median). Every
number is checked against scikit-learn's own metric on the same rows.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from keelwork.core.behaviour.quality import fairness, roc_auc, slices
from keelwork.spec.model_tests import ModelTestsFile

DATA = load_breast_cancer()
NAMES = [n.replace(" ", "_") for n in DATA.feature_names]
# only three features: a model that is good, not perfect, so slices differ
USED = ["mean_texture", "mean_smoothness", "worst_symmetry"]
MODEL = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
MODEL.fit(DATA.data[::2][:, [NAMES.index(n) for n in USED]], DATA.target[::2])
CUT = statistics.median(float(r[NAMES.index("worst_area")]) for r in DATA.data)
ROWS = [{**dict(zip(NAMES, map(float, r), strict=True)), "diagnosis": int(t),
         "size": "large" if r[NAMES.index("worst_area")] > CUT else "small"}
        for r, t in zip(DATA.data[1::2], DATA.target[1::2], strict=True)]


def ask(instances: Sequence[Mapping[str, Any]]) -> tuple[list[Any], list[float | None]]:
    assert all("diagnosis" not in i for i in instances)  # the label never reaches the model
    x = [[i[n] for n in USED] for i in instances]
    return [int(v) for v in MODEL.predict(x)], [float(p[1]) for p in MODEL.predict_proba(x)]


def _test(**fields: Any) -> Any:
    return ModelTestsFile.model_validate({"tests": [fields]}).tests[0]


def _truth(size: str) -> tuple[list[int], list[int], list[float]]:
    rows = [r for r in ROWS if r["size"] == size]
    labels, scores = ask([{k: v for k, v in r.items() if k != "diagnosis"} for r in rows])
    return [r["diagnosis"] for r in rows], labels, [float(s or 0) for s in scores]


@pytest.mark.parametrize("metric", ["accuracy", "roc_auc"])
def test_each_slice_is_measured_as_scikit_learn_measures_it(metric: str) -> None:
    expected = {}
    for size in ("large", "small"):
        actual, labels, scores = _truth(size)
        expected[size] = (accuracy_score(actual, labels) if metric == "accuracy"
                          else roc_auc_score(actual, scores))
    low = min(expected.values())
    passing = _test(kind="slice", name="q", data="x.csv", label="diagnosis", by="size",
                    metric=metric, min=round(low - 0.01, 4))
    result = slices(passing, ROWS, ask, positive=1)
    assert result.passed and result.checked == 2
    for size, value in expected.items():
        assert result.details["slices"][size][metric] == pytest.approx(value)
    worst = min(expected, key=lambda s: expected[s])
    failing = _test(kind="slice", name="q", data="x.csv", label="diagnosis", by="size",
                    metric=metric, min=round(low + 0.001, 4))
    result = slices(failing, ROWS, ask, positive=1)
    assert result.failed >= 1
    assert any(f.input == {"size": worst} and f"{metric} >= " in f.expected
               for f in result.failures)


def test_small_slices_are_reported_not_judged() -> None:
    test = _test(kind="slice", name="q", data="x.csv", label="diagnosis", by="size", min=1.0,
                 min_rows=10_000)
    result = slices(test, ROWS, ask, positive=1)
    assert result.passed and result.checked == 0
    assert result.details["slices"]["large"]["judged"] is False


def test_roc_auc_counts_ties_as_half() -> None:
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == pytest.approx(0.75)
    assert roc_auc([0.5, 0.5], [False, True]) == pytest.approx(0.5)
    assert roc_auc([0.5, 0.7], [True, True]) is None


def test_fairness_gap_is_the_gap_between_the_groups_rates() -> None:
    rates = {}
    for size in ("large", "small"):
        _, labels, _ = _truth(size)
        rates[size] = sum(1 for v in labels if v == 1) / len(labels)
    gap = abs(rates["large"] - rates["small"])
    assert gap > 0.05  # large tumours are malignant far more often: the model's answers differ
    loose = _test(kind="fairness", name="f", data="x.csv", label="diagnosis",
                  protected="size", max_difference=round(gap + 0.01, 4))
    result = fairness(loose, ROWS, ask, positive=1)
    assert result.passed
    assert result.details["demographic_parity_difference"] == pytest.approx(gap)
    tight = _test(kind="fairness", name="f", data="x.csv", label="diagnosis",
                  protected="size", max_difference=round(gap - 0.01, 4))
    result = fairness(tight, ROWS, ask, positive=1)
    assert not result.passed
    assert result.failures[0].expected.startswith("demographic_parity_difference <= ")
    assert result.failures[0].got.startswith(f"{gap:.4f}")


def test_fairness_needs_two_groups() -> None:
    test = _test(kind="fairness", name="f", data="x.csv", label="diagnosis",
                 protected="size", max_difference=0.1)
    with pytest.raises(ValueError, match="a gap needs two"):
        fairness(test, [r for r in ROWS if r["size"] == "large"], ask, positive=1)


def test_fairness_without_a_positive_class_is_refused_not_passed() -> None:
    """with no positive class (a multi-class model, no ``positive:``) every rate was 0.0,
    the gap 0.0, and the test passed without measuring anything."""
    test = _test(kind="fairness", name="f", data="x.csv", label="diagnosis",
                 protected="size", max_difference=0.1)
    with pytest.raises(ValueError, match=r"test 'f': .*set 'positive' in the tests file"):
        fairness(test, ROWS, ask, positive=None)

"""Quality metrics agree with scikit-learn; undefined values are None with a reason, never NaN."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from keelwork.core.monitors.quality import (
    classification_metrics,
    label_coverage,
    multioutput_regression_metrics,
    parse_duration,
    rank_auc,
    regression_metrics,
)
from keelwork.errors import MonitorError


def _same(ours: float | None, theirs: float) -> bool:
    if ours is None:
        return math.isnan(theirs)
    return math.isclose(ours, theirs, rel_tol=1e-12, abs_tol=1e-12)


def _sk_binary(y_true: list[Any], y_pred: list[Any], pos: Any) -> dict[str, float]:
    kw: dict[str, Any] = {"pos_label": pos, "zero_division": np.nan}
    return {"accuracy": skm.accuracy_score(y_true, y_pred),
            "precision": skm.precision_score(y_true, y_pred, **kw),
            "recall": skm.recall_score(y_true, y_pred, **kw),
            "f1": skm.f1_score(y_true, y_pred, **kw)}


@pytest.mark.parametrize("seed", range(8))
def test_binary_metrics_match_sklearn_on_random_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 400))
    y_true = rng.integers(0, 2, n).tolist()
    scores = np.round(rng.random(n), 1)  # rounded: many ties
    y_pred = (scores >= 0.5).astype(int).tolist()
    got = classification_metrics(y_true, y_pred, scores=scores.tolist())
    assert got["task"] == "binary" and got["positive"] == 1 and got["n"] == n
    for key, value in _sk_binary(y_true, y_pred, 1).items():
        assert _same(got[key], value), key
    if len(set(y_true)) == 2:
        assert _same(got["roc_auc"], skm.roc_auc_score(y_true, scores))
    cm = skm.confusion_matrix(y_true, y_pred, labels=[0, 1])
    assert got["confusion"] == {"tp": cm[1, 1], "fp": cm[0, 1], "fn": cm[1, 0],
                                "tn": cm[0, 0]}


def test_positive_is_the_sorted_last_label_unless_given() -> None:
    y_true = ["no", "yes", "yes", "no", "yes"]
    y_pred = ["no", "yes", "no", "no", "no"]
    inferred = classification_metrics(y_true, y_pred)
    assert inferred["positive"] == "yes"
    assert _same(inferred["recall"], skm.recall_score(y_true, y_pred, pos_label="yes"))
    flipped = classification_metrics(y_true, y_pred, positive="no")
    assert flipped["positive"] == "no"
    assert _same(flipped["recall"], skm.recall_score(y_true, y_pred, pos_label="no"))
    assert flipped["per_class"]["no"]["recall"] == flipped["recall"]


@pytest.mark.parametrize("seed", range(6))
def test_multiclass_macro_matches_sklearn_with_nan_exclusion(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(3, 60))
    labels = np.array(["a", "b", "c", "d"])
    # Skewed draws: some classes only predicted or only true, so per-class values go undefined.
    y_true = rng.choice(labels[:3], n, p=[0.6, 0.3, 0.1]).tolist()
    y_pred = rng.choice(labels, n, p=[0.5, 0.2, 0.0, 0.3]).tolist()
    got = classification_metrics(y_true, y_pred)
    assert got["task"] == "multiclass" and got["positive"] is None
    kw: dict[str, Any] = {"average": "macro", "zero_division": np.nan}
    assert _same(got["accuracy"], skm.accuracy_score(y_true, y_pred))
    assert _same(got["precision"], skm.precision_score(y_true, y_pred, **kw))
    assert _same(got["recall"], skm.recall_score(y_true, y_pred, **kw))
    assert _same(got["f1"], skm.f1_score(y_true, y_pred, **kw))
    # Without probability rows there is no multi-class AUC (with them: macro and micro,
    # test_cbpe_multiclass.py); the note used to say "binary only".
    assert got["roc_auc"] is None and any("proba" in note for note in got["notes"])
    assert sum(sum(r.values()) for r in got["confusion"].values()) == n
    per = skm.precision_recall_fscore_support(y_true, y_pred, labels=got["classes"],
                                              zero_division=np.nan)
    for i, cls in enumerate(got["classes"]):
        row = got["per_class"][cls]
        assert [_same(row[k], per[j][i]) for j, k in enumerate(("precision", "recall", "f1"))
                ] == [True] * 3
        assert row["support"] == per[3][i]


def test_class_never_predicted_has_undefined_precision_left_out_of_macro() -> None:
    got = classification_metrics(["a", "b", "c", "c"], ["a", "b", "b", "a"])
    assert got["per_class"]["c"] == {"support": 2, "predicted": 0, "precision": None,
                                     "recall": 0.0, "f1": 0.0}
    assert got["precision"] == pytest.approx(0.5 * (0.5 + 0.5))
    assert any("precision is undefined for class(es) ['c']" in n for n in got["notes"])


def test_numpy_inputs_give_the_same_answer() -> None:
    rng = np.random.default_rng(9)
    y = rng.random(50) < 0.4
    s = rng.random(50)
    as_lists = classification_metrics(y.tolist(), (s > 0.5).tolist(), scores=s.tolist())
    as_arrays = classification_metrics(y, s > 0.5, scores=s)  # type: ignore[arg-type]
    for key in ("n", "positive", "accuracy", "precision", "recall", "f1", "roc_auc"):
        assert as_arrays[key] == as_lists[key], key


def test_rank_auc_matches_sklearn_with_heavy_ties() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        n = int(rng.integers(2, 200))
        y = rng.random(n) < rng.random()
        s = rng.integers(0, 4, n).astype(float)
        if y.all() or not y.any():
            assert rank_auc(y, s) is None
            continue
        assert _same(rank_auc(y, s), skm.roc_auc_score(y, s))
    # Known values: perfect, reversed, all tied.
    y = np.array([False, False, True, True])
    assert rank_auc(y, np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    assert rank_auc(y, np.array([0.4, 0.3, 0.2, 0.1])) == 0.0
    assert rank_auc(y, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5


def test_single_class_gives_none_auc_and_recall_with_notes() -> None:
    got = classification_metrics([0, 0, 0], [0, 1, 0], scores=[0.1, 0.7, 0.2], positive=1)
    assert got["accuracy"] == pytest.approx(2 / 3)
    assert got["precision"] == 0.0 and got["recall"] is None and got["roc_auc"] is None
    assert got["f1"] == 0.0  # 2tp / (2tp + fp + fn) = 0 / 1, as scikit-learn
    assert any("single class" in n for n in got["notes"])
    assert any("recall is undefined" in n for n in got["notes"])
    only = classification_metrics(["x", "x"], ["x", "x"])
    assert only["positive"] == "x" and only["precision"] == 1.0 and only["recall"] == 1.0
    assert only["roc_auc"] is None and any("scores" in n for n in only["notes"])


def test_empty_and_unlabelled_windows() -> None:
    empty = classification_metrics([], [], scores=[])
    assert empty["n"] == 0 and empty["accuracy"] is None and empty["f1"] is None
    assert empty["notes"] == ["No labelled predictions: every metric is undefined."]
    partial = classification_metrics([None, 1, 0, None], [1, 1, 0, 0],
                                     scores=[0.9, 0.8, 0.3, 0.1])
    assert partial["n"] == 2 and partial["unlabelled"] == 2
    assert partial["accuracy"] == 1.0 and partial["roc_auc"] == 1.0
    assert any("2 prediction(s) without a label" in n for n in partial["notes"])
    for value in _all_numbers(partial) + _all_numbers(empty):
        assert not math.isnan(value)


def _all_numbers(out: dict[str, Any]) -> list[float]:
    found: list[float] = []
    for v in out.values():
        if isinstance(v, float):
            found.append(v)
        elif isinstance(v, dict):
            found.extend(_all_numbers(v))
    return found


def test_labels_that_differ_only_in_type_are_flagged() -> None:
    got = classification_metrics(["1", "0", "1"], [1, 0, 1])
    assert got["task"] == "multiclass" and got["accuracy"] == 0.0
    assert any("differ only in type" in n for n in got["notes"])
    assert set(got["per_class"]) == {"'0'", "'1'", "0", "1"}  # repr keys, none lost
    assert got["per_class"]["'1'"]["support"] == 2 and got["per_class"]["1"]["predicted"] == 2


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"y_true": [1, 0], "y_pred": [1]}, "as long as each other"),
    ({"y_true": [1, 0], "y_pred": [1, 0], "scores": [0.2]}, "scores=1"),
    ({"y_true": [1, 0], "y_pred": [1, 0], "scores": [0.2, float("nan")]}, "position 1"),
    ({"y_true": [1, 0], "y_pred": [1, 0], "scores": ["high", 0.1]}, "'high' at position 0"),
])
def test_bad_classification_input_is_refused_clearly(kwargs: dict[str, Any], match: str,
                                                     ) -> None:
    with pytest.raises(MonitorError, match=match):
        classification_metrics(**kwargs)


def test_regression_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(5)
    y = rng.normal(10, 3, 500)
    p = y + rng.normal(0.4, 1, 500)
    got = regression_metrics(y.tolist(), p.tolist())
    assert got["n"] == 500
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, p), rel=1e-12)
    assert got["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(y, p)), rel=1e-12)
    assert got["bias"] == pytest.approx(float(np.mean(p - y)), rel=1e-12)
    assert got["bias"] > 0.3  # over-predicting is a positive bias
    empty = regression_metrics([None, None], [1.0, 2.0])
    assert empty["n"] == 0 and empty["mae"] is None and empty["unlabelled"] == 2
    with pytest.raises(MonitorError, match="true value must be finite; got inf"):
        regression_metrics([1.0, float("inf")], [1.0, 2.0])


def test_multioutput_regression_metrics_match_sklearns_per_field_and_uniform_average() -> None:
    rng = np.random.default_rng(11)
    y = rng.normal([70.0, 35.0, 55.0], [8.0, 3.0, 6.0], size=(300, 3))
    p = y + rng.normal([1.0, -0.5, 0.0], [2.0, 1.0, 4.0], size=(300, 3))
    fields = ("weight", "waist", "pulse")
    got = multioutput_regression_metrics(y.tolist(), p.tolist(), fields)
    assert got["n"] == 300 and got["unlabelled"] == 0
    mae = skm.mean_absolute_error(y, p, multioutput="raw_values")
    rmse = np.sqrt(skm.mean_squared_error(y, p, multioutput="raw_values"))
    for j, name in enumerate(fields):
        assert got["outputs"][name]["mae"] == pytest.approx(mae[j], rel=1e-12)
        assert got["outputs"][name]["rmse"] == pytest.approx(rmse[j], rel=1e-12)
        assert got["outputs"][name]["bias"] == pytest.approx(np.mean(p[:, j] - y[:, j]))
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, p), rel=1e-12)
    assert got["rmse"] == pytest.approx(float(np.mean(rmse)), rel=1e-12)


def test_multioutput_fields_are_scored_on_their_own_labelled_rows() -> None:
    truth = [(1.0, 10.0), (2.0, None), (None, None), (4.0, 40.0)]
    pred = [(2.0, 12.0), (2.0, 25.0), (9.0, 9.0), (3.0, 40.0)]
    got = multioutput_regression_metrics(truth, pred, ("a", "b"))
    assert (got["n"], got["unlabelled"]) == (3, 1)
    assert got["outputs"]["a"]["n"] == 3 and got["outputs"]["b"]["n"] == 2
    assert got["outputs"]["a"]["mae"] == pytest.approx(2 / 3)
    assert got["outputs"]["b"]["mae"] == pytest.approx(1.0)
    assert got["mae"] == pytest.approx((2 / 3 + 1.0) / 2)
    none = multioutput_regression_metrics([(None, None)], [(1.0, 2.0)], ("a", "b"))
    assert none["mae"] is None and none["n"] == 0 and none["outputs"]["a"]["n"] == 0
    with pytest.raises(MonitorError, match="one value per output field"):
        multioutput_regression_metrics([(1.0,)], [(1.0, 2.0)], ("a", "b"))


def test_label_coverage_counts_delays_and_states() -> None:
    pred = [0.0, 10.0, 20.0, 30.0]
    labels = [100.0, None, 50.0, 330.0]
    waiting = label_coverage(pred, labels, window_end=40.0, expected_delay_s=3600.0, now=400.0)
    assert waiting["predictions"] == 4 and waiting["labelled"] == 3
    assert waiting["coverage"] == 0.75
    assert waiting["delay_p50_s"] == pytest.approx(float(np.percentile([100, 30, 300], 50)))
    assert waiting["delay_p90_s"] == pytest.approx(float(np.percentile([100, 30, 300], 90)))
    assert waiting["expected_by"] == 3640.0
    assert (waiting["complete"], waiting["state"]) == (False, "waiting")
    done = label_coverage(pred, labels, window_end=40.0, expected_delay_s=3600.0, now=3640.0)
    assert (done["complete"], done["state"]) == (True, "complete")
    none = label_coverage([], [], window_end=40.0, expected_delay_s=60.0, now=0.0)
    assert none["state"] == "no_predictions" and none["coverage"] is None
    assert none["delay_p50_s"] is None
    skewed = label_coverage([10.0], [5.0], window_end=20.0, expected_delay_s=0, now=30)
    assert skewed["delay_p50_s"] == -5.0 and "before their prediction" in skewed["notes"][0]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"expected_delay_s": -1.0}, "delay must be >= 0"),
    ({"expected_delay_s": float("nan")}, "expected label delay"),
    ({"now": float("inf")}, "window_end / now"),
])
def test_label_coverage_refuses_bad_times(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"window_end": 10.0, "expected_delay_s": 5.0, "now": 20.0, **kwargs}
    with pytest.raises(MonitorError, match=match):
        label_coverage([1.0], [2.0], **args)
    with pytest.raises(MonitorError, match="as long as each other"):
        label_coverage([1.0, 2.0], [2.0], window_end=10.0, expected_delay_s=5.0, now=20.0)


def test_parse_duration_is_the_windows_one() -> None:
    assert [parse_duration(t) for t in ("30s", "5m", "1h", "1d")] == [30, 300, 3600, 86400]
    with pytest.raises(MonitorError):
        parse_duration("100p")


@pytest.mark.parametrize("seed", range(4))
def test_tie_groups_equal_numpy_unique_sorted_or_not(seed: int) -> None:
    import numpy as np
    from scipy.stats import rankdata

    from keelwork.core.monitors.quality import average_ranks, tie_groups

    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 50, size=2_000).astype(float) / 7.0  # many ties
    for values in (raw, np.sort(raw), np.array([1.0]), np.array([2.0, 2.0])):
        inverse, counts = tie_groups(values)
        _, want_inverse, want_counts = np.unique(values, return_inverse=True,
                                                 return_counts=True)
        assert inverse.tolist() == want_inverse.reshape(-1).tolist()
        assert counts.tolist() == want_counts.tolist()
        assert average_ranks(values).tolist() == rankdata(values).tolist()

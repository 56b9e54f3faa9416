"""core/slo/quality: each metric as good/bad events (additive across windows, never an average
of ratios), the quality objectives built from keel.yaml, and their alerts over counts."""

from __future__ import annotations

import random

import pytest

from keelwork.core.monitors.quality import classification_metrics
from keelwork.core.slo import slo_set
from keelwork.core.slo.evaluate import (
    Evaluator,
    QualityWindowCounts,
    conditions,
    quality_windows,
)
from keelwork.core.slo.objectives import SloSet
from keelwork.core.slo.quality import (
    QualityCounts,
    QualityIndicator,
    WindowTally,
    answer_events,
    drifted,
    null_events,
    slice_events,
)
from keelwork.core.slo.runbooks import runbooks
from keelwork.spec.loader import parse_spec

BASE = ("service: {name: bank, owners: [ml@example.com]}\n"
        "models: [{name: credit, runtime: python, artifact: 'a:b'}, "
        "{name: other, runtime: python, artifact: 'a:c'}]\n"
        "contract:\n  inputs: [{name: age, type: float, nullable: true}, "
        "{name: job, type: string, required: false}]\n"
        "  outputs: [{name: label, type: category, categories: ['no', 'yes']}]\n"
        "monitoring: {labels: {expected_delay: 1d}}\n")
TIERS = ("tiers: [{name: fast, severity: page, long_window: 1h, short_window: 5m, "
         "burn_rate: 3}, {name: slow, severity: ticket, long_window: 6h, short_window: 30m, "
         "burn_rate: 1}]")
HOUR, FIVE_MIN, SIX_H, HALF_H, MONTH = 3600, 300, 21_600, 1800, 2_592_000


def _slos(items: str, base: str = BASE) -> SloSet:
    return slo_set(parse_spec(base + "slos:\n  min_events: 20\n  quality:\n" + items, env={}))


# --------------------------------------------------------------------------- event math
def test_f1_events_add_up_to_one_minus_f1_over_any_union_of_windows() -> None:
    ind = QualityIndicator("f1", classes=("no", "yes"), positive="yes")
    rng = random.Random(3)
    truth = [rng.choice(["no", "yes"]) for _ in range(500)]
    pred = [t if rng.random() < 0.8 else rng.choice(["no", "yes"]) for t in truth]
    pairs = [answer_events(ind, p, t) for p, t in zip(pred, truth, strict=True)]
    assert all(p is not None for p in pairs)
    # two "windows" counted apart and added: the same as one count over both
    first, second = pairs[:137], pairs[137:]
    events = sum(p[0] for p in first if p) + sum(p[0] for p in second if p)
    bad = sum(p[1] for p in first if p) + sum(p[1] for p in second if p)
    f1 = classification_metrics(truth, pred, positive="yes")["f1"]
    assert bad / events == pytest.approx(1 - f1, abs=1e-12)


def test_accuracy_and_mae_events_read_the_logged_shapes() -> None:
    acc = QualityIndicator("accuracy", classes=("no", "yes"))
    assert answer_events(acc, "yes", "yes") == (1.0, 0.0)
    assert answer_events(acc, {"label": "no", "probabilities": [0.9, 0.1]}, "yes") == (1.0, 1.0)
    assert answer_events(acc, [0.2, 0.8], {"label": "yes"}) == (1.0, 0.0)  # proba rows
    assert answer_events(acc, None, "yes") is None  # nothing predicted: no event
    assert answer_events(acc, "yes", None) is None
    booleans = QualityIndicator("accuracy")
    assert answer_events(booleans, True, "true") == (1.0, 0.0)
    mae = QualityIndicator("mae")
    assert answer_events(mae, {"value": 10.0}, 7) == (1.0, 3.0)
    assert answer_events(mae, [2.5], {"value": 4}) == (1.0, 1.5)
    assert answer_events(mae, "ten", 7) is None


def test_null_events_count_missing_fields_and_list_positions() -> None:
    ind = QualityIndicator("null_rate", features=("age", "job"), input_names=("age", "job"))
    assert null_events(ind, {"age": None, "job": "x"}) == (2.0, 1.0)
    assert null_events(ind, {"age": 3}) == (2.0, 1.0)  # job absent: null
    assert null_events(ind, [None, None]) == (2.0, 2.0)
    assert null_events(ind, [5.0]) == (2.0, 1.0)
    assert null_events(ind, None) == (0.0, 0.0)  # inputs not logged: no event


def test_the_tally_counts_each_prediction_into_every_window_holding_it() -> None:
    tally = WindowTally(end=10_000.0, windows=(300, 3600))
    tally.add_all([(9_800.0, "m", 1, 1), (9_000.0, "m", 1, 0), (5_000.0, "m", 1, 1),
                   (10_000.0, "m", 1, 1), (9_900.0, "n", 0, 0)])
    assert tally.counts() == {300: {"m": QualityCounts(1, 1)},
                              3600: {"m": QualityCounts(2, 1)}}
    assert QualityCounts().ratio is None and QualityCounts(4, 1).ratio == 0.25


# --------------------------------------------------------------------------- objectives
def test_quality_objectives_take_budgets_lags_models_and_their_own_tiers() -> None:
    slos = _slos(f"    - {{name: acc, metric: accuracy, objective: 0.9, model: credit, {TIERS}}}\n"
                 "    - {name: nulls, metric: null_rate, objective: 0.05, feature: age}\n"
                 f"    - {{name: cover, metric: label_coverage, objective: 0.8, {TIERS}}}\n")
    acc, nulls, cover = slos.quality
    assert slos.objectives == ()
    assert acc.budget == pytest.approx(0.1) and nulls.budget == 0.05
    assert cover.budget == pytest.approx(0.2)
    assert acc.indicator is not None and acc.indicator.lag_s == 86_400
    assert nulls.indicator is not None and nulls.indicator.lag_s == 0
    assert nulls.indicator.features == ("age",)
    assert slos.models_of(acc) == ("credit",) and slos.models_of(nulls) == ("credit", "other")
    assert [t.name for t in slos.tiers_for(acc)] == ["fast", "slow"]
    assert len(slos.tiers_for(nulls)) == 3  # the workbook's
    assert quality_windows(slos, acc) == [FIVE_MIN, HALF_H, HOUR, SIX_H, MONTH]
    names = [a.name for a in slos.alerts()]
    assert names[:3] == ["KeelworkQualityAccBurnFast", "KeelworkQualityAccBurnSlow",
                         "KeelworkQualityAccNoData"]
    books = runbooks(slos)
    assert "keel serve` itself" in books["KeelworkQualityAccBurnFast"]
    assert "keel log tail --model credit -n 50" in books["KeelworkQualityAccBurnFast"]
    assert "a late label can still change them" in books["KeelworkQualityAccNoData"]


def test_f1_takes_the_positive_class_from_the_labels_section_or_the_contract() -> None:
    [f1] = _slos(f"    - {{name: f, metric: f1, objective: 0.7, {TIERS}}}\n").quality
    assert f1.indicator is not None and f1.indicator.positive == "yes"
    [f1] = _slos(f"    - {{name: f, metric: f1, objective: 0.7, {TIERS}}}\n",
                 BASE.replace("expected_delay: 1d", "expected_delay: 1d, positive: 'no'")
                 ).quality
    assert f1.indicator is not None and f1.indicator.positive == "no"


# --------------------------------------------------------------------------- alerts
def _counts(slos: SloSet, key: str, per_window: dict[int, QualityCounts],
            model: str = "credit") -> QualityWindowCounts:
    o = next(o for o in slos.quality if o.key == key)
    fine = QualityCounts(10_000, 100)
    return {key: {w: {model: per_window.get(w, fine)} for w in quality_windows(slos, o)}}


def test_an_accuracy_drop_pages_with_plain_words() -> None:
    slos = _slos(f"    - {{name: acc, metric: accuracy, objective: 0.9, model: credit, {TIERS}}}\n")
    bad = QualityCounts(200, 80)  # 60% right: 4x the 10% budget, over 3x
    burning = {w: bad for w in (FIVE_MIN, HALF_H, HOUR, SIX_H)}
    fired = conditions(slos, {}, quality=_counts(slos, "acc", burning))
    names = sorted(f.alert.name for f in fired)
    assert names == ["KeelworkQualityAccBurnFast", "KeelworkQualityAccBurnSlow"]
    fast = next(f for f in fired if f.alert.name.endswith("Fast"))
    assert fast.labels == {"alertname": "KeelworkQualityAccBurnFast", "severity": "page",
                           "slo": "acc", "tier": "fast", "service": "bank", "model": "credit"}
    text = fast.annotations["description"]
    assert text.startswith("at least 90% of labelled answers right: over the 1h and the 5m up "
                           "to 1d ago (labels are expected 1d after their prediction), the "
                           "accuracy of model credit was under 70%;")
    assert "error budget" in text and "Runbook: runbooks/KeelworkQualityAccBurnFast.md" in text
    # the slower tier is inhibited by the faster one: one page
    step = Evaluator(slos).step({}, 0.0, quality=_counts(slos, "acc", burning))
    assert [f.alert.name for f in step.firing] == ["KeelworkQualityAccBurnFast"]


def test_min_events_and_no_data_are_kept_for_quality_slos() -> None:
    slos = _slos(f"    - {{name: acc, metric: accuracy, objective: 0.9, model: credit, {TIERS}}}\n")
    few = QualityCounts(19, 19)  # all wrong, but under min_events (20)
    assert conditions(slos, {}, quality=_counts(slos, "acc", {HOUR: few, FIVE_MIN: few})) == []
    [nothing] = conditions(slos, {}, quality={})
    assert nothing.alert.name == "KeelworkQualityAccNoData"
    assert nothing.annotations["description"].startswith(
        "model credit has no labelled answers in the 30-day window up to 1d ago")


def test_mae_burns_as_the_error_over_the_objective() -> None:
    base = BASE.replace("type: category, categories: ['no', 'yes']", "type: float")
    slos = _slos(f"    - {{name: err, metric: mae, objective: 2.0, {TIERS}}}\n", base)
    over = QualityCounts(100, 700)  # MAE 7: 3.5x the objective
    under = QualityCounts(100, 500)  # MAE 5: 2.5x, under the fast tier's 3x
    assert [f.alert.name for f in conditions(
        slos, {}, quality=_counts(slos, "err", {SIX_H: under, HALF_H: under}))
        if f.model == "credit"] == ["KeelworkQualityErrBurnSlow"]
    fired = [f for f in conditions(slos, {}, quality=_counts(slos, "err", {HOUR: over,
                                                                           FIVE_MIN: over}))
             if f.model == "credit" and f.alert.tier_label == "fast"]
    assert "the mean absolute error of model credit was over 6" in fired[0].annotations[
        "description"]


def test_a_drift_slice_counts_its_predictions_into_every_window_it_overlaps() -> None:
    by_score = QualityIndicator("drift", features=("age",), threshold=0.2, slice="1h")
    by_verdict = QualityIndicator("drift", features=("prediction",), slice="1h")
    columns = [{"column": "age", "score": 0.31, "drift": False},
               {"column": "prediction:label", "score": 0.01, "drift": True}]
    assert drifted(by_score, columns) is True  # the score, over the threshold
    assert drifted(by_verdict, columns) is True  # the monitor's own verdict
    assert drifted(by_score, [{"column": "age", "score": 0.1}]) is False
    assert drifted(by_score, [{"column": "job", "score": 0.9}]) is None  # not compared
    # a slice [9000, 12600) seen at 12000: in progress, in the 5-minute and 1-hour windows
    assert slice_events(9000, 12_600, 40, True, 12_000, [300, 3600]) == [
        (300, 40.0, 40.0), (3600, 40.0, 40.0)]
    assert slice_events(5000, 8600, 40, False, 12_000, [300, 3600, 7200]) == [
        (3600, 40.0, 0.0), (7200, 40.0, 0.0)]  # it ended 56 minutes ago
    assert slice_events(9000, 12_600, 40, None, 12_000, [300]) == []  # no verdict: no event
    assert slice_events(9000, 12_600, 0, True, 12_000, [300]) == []  # no predictions


def test_a_multi_output_regressors_mae_counts_each_labelled_field() -> None:
    ind = QualityIndicator("mae", outputs=("weight", "pulse"))
    assert answer_events(ind, [70.0, 60.0], {"weight": 72.0, "pulse": 55.0}) == (2.0, 7.0)
    assert answer_events(ind, {"weight": 70.0, "pulse": 60.0}, [71.0, 60.0]) == (2.0, 1.0)
    # A label naming one field (or a scalar: the first field's) is one event.
    assert answer_events(ind, [70.0, 60.0], {"pulse": 50.0}) == (1.0, 10.0)
    assert answer_events(ind, [70.0, 60.0], 68.5) == (1.0, 1.5)
    assert answer_events(ind, [70.0, 60.0], {"height": 1.8}) is None
    # The same answers as one-output answers were never read (no event): the bug this guards.
    assert answer_events(QualityIndicator("mae"), [70.0, 60.0], [72.0, 55.0]) is None


def test_quality_objectives_know_a_multi_output_regressors_fields() -> None:
    base = BASE.replace(
        "[{name: label, type: category, categories: ['no', 'yes']}]",
        "[{name: weight, type: float}, {name: pulse, type: float}]")
    (objective,) = _slos("    - {name: err, metric: mae, objective: 5.0}\n", base).quality
    assert objective.indicator is not None
    assert objective.indicator.outputs == ("weight", "pulse")

"""keel.yaml's slos.quality: what cannot be counted is refused at `keel spec validate`, with
the path, the line and what was got."""

from __future__ import annotations

import pytest

from keelwork.errors import SpecError
from keelwork.spec.loader import parse_spec

CLASSIFIER = ("service: {name: s, owners: [a@example.com]}\n"
              "models: [{name: m, runtime: python, artifact: 'a:b'}]\n"
              "contract:\n  inputs: [{name: age, type: float}]\n"
              "  outputs: [{name: label, type: category, categories: [a, b]}]\n")
REGRESSOR = CLASSIFIER.replace("type: category, categories: [a, b]", "type: float")
NO_OUTPUTS = CLASSIFIER.replace("  outputs: [{name: label, type: category, categories: [a, b]}]"
                                "\n", "")
DRIFT = CLASSIFIER + "monitoring: {reference: ref.jsonl, windows: [1000p, 1h, 1d]}\n"
LOW = "tiers: [{name: t, long_window: 6h, short_window: 30m, burn_rate: 2}]"


def _problems(base: str, item: str) -> list[tuple[str, str, int | None, str]]:
    with pytest.raises(SpecError) as err:
        parse_spec(base + "slos:\n  quality:\n    - " + item + "\n", env={})
    return [(d.path, d.rule, d.line, d.message) for d in err.value.details]


def test_quality_slos_of_every_metric_are_accepted() -> None:
    spec = parse_spec(CLASSIFIER + "slos:\n  quality:\n"
                      f"    - {{name: acc, metric: accuracy, objective: 0.85, {LOW}}}\n"
                      f"    - {{name: f, metric: f1, objective: 0.7, model: m, {LOW}}}\n"
                      "    - {name: v, metric: violation_rate, objective: 0.01}\n"
                      "    - {name: n, metric: null_rate, objective: 0.02, feature: age}\n"
                      f"    - {{name: c, metric: label_coverage, objective: 0.8, {LOW}}}\n",
                      env={})
    assert [q.metric for q in spec.slos.quality] == ["accuracy", "f1", "violation_rate",
                                                     "null_rate", "label_coverage"]
    spec = parse_spec(REGRESSOR + "slos:\n  quality:\n"
                      "    - {name: e, metric: mae, objective: 3.5}\n", env={})
    assert spec.slos.quality[0].objective == 3.5
    spec = parse_spec(DRIFT + "slos:\n  quality:\n"
                      "    - {name: d, metric: drift, objective: 0.05, feature: prediction, "
                      "threshold: 0.2}\n", env={})
    assert spec.slos.quality[0].threshold == 0.2


@pytest.mark.parametrize(("base", "item", "path", "rule", "words"), [
    (CLASSIFIER, "{name: x, metric: auc, objective: 0.9}", "slos.quality[0].metric",
     "quality_metric", "must be one of accuracy, f1, mae"),
    (CLASSIFIER, "{name: x, metric: drift, objective: 0.05, feature: age}",
     "slos.quality[0].metric", "drift_no_reference", "set monitoring.reference"),
    (DRIFT, "{name: x, metric: drift, objective: 0.05}", "slos.quality[0]", "quality_field",
     "metric drift needs a feature"),
    (DRIFT, "{name: x, metric: drift, objective: 0.05, feature: agee}",
     "slos.quality[0].feature", "unknown_feature", "neither an input of the contract"),
    (DRIFT.replace("[1000p, 1h, 1d]", "[1000p]"),
     "{name: x, metric: drift, objective: 0.05, feature: age}", "slos.quality[0].metric",
     "drift_no_slice", "monitoring.windows needs one"),
    (CLASSIFIER, "{name: x, metric: mae, objective: 2}", "slos.quality[0].metric",
     "quality_task", "needs a regression model, and the output contract says it is a "
     "classification model"),
    (REGRESSOR, f"{{name: x, metric: f1, objective: 0.8, {LOW}}}", "slos.quality[0].metric",
     "quality_task", "needs a classification model"),
    (NO_OUTPUTS, f"{{name: x, metric: accuracy, objective: 0.8, {LOW}}}",
     "slos.quality[0].metric", "quality_task", "the output contract does not say"),
    (CLASSIFIER, "{name: x, metric: null_rate, objective: 0.01, feature: agee}",
     "slos.quality[0].feature", "unknown_feature", "not an input of the contract (inputs: "
     "age)"),
    (CLASSIFIER, "{name: x, metric: violation_rate, objective: 0.01, model: nope}",
     "slos.quality[0].model", "unknown_model", "'nope', which is not a model"),
    (CLASSIFIER, "{name: x, metric: accuracy, objective: 1.0}", "slos.quality[0]",
     "quality_objective", "strictly between 0 and 1"),
    (REGRESSOR, "{name: x, metric: mae, objective: 0}", "slos.quality[0]",
     "quality_objective", "greater than 0"),
    (CLASSIFIER, "{name: x, metric: accuracy, objective: 0.9, threshold: 0.2}",
     "slos.quality[0]", "quality_field", "threshold is for metric drift only"),
    (CLASSIFIER, "{name: x, metric: violation_rate, objective: 0.01, feature: age}",
     "slos.quality[0]", "quality_field", "feature is for metrics null_rate and drift only"),
    (CLASSIFIER, "{name: availability, metric: violation_rate, objective: 0.01}",
     "slos.quality[0].name", "quality_name_reserved", "names a request SLO"),
    (CLASSIFIER, "{name: x, metric: accuracy, objective: 0.85}",
     "slos.quality[0].objective", "tier_never_fires", "slos.quality[0].tiers"),
    (CLASSIFIER, "{name: x, metric: violation_rate, objective: 0.01, unknown: 1}",
     "slos.quality[0].unknown", "extra_forbidden", ""),
])
def test_what_cannot_be_counted_is_refused(base: str, item: str, path: str, rule: str,
                                           words: str) -> None:
    [(got_path, got_rule, line, message)] = _problems(base, item)
    assert (got_path, got_rule) == (path, rule)
    assert line == base.count("\n") + 3  # the item's line
    assert words in message


def test_two_quality_slos_of_one_name_are_refused() -> None:
    [(path, rule, _, message)] = _problems(
        CLASSIFIER, "{name: x, metric: violation_rate, objective: 0.01}\n"
        "    - {name: x, metric: violation_rate, objective: 0.02}")
    assert (path, rule) == ("slos", "duplicate_quality_slo") and "'x' appears twice" in message


def test_f1_without_a_positive_class_is_refused_unless_labels_name_it() -> None:
    strings = CLASSIFIER.replace("type: category, categories: [a, b]", "type: string")
    [(path, rule, _, message)] = _problems(strings, f"{{name: x, metric: f1, objective: 0.8, "
                                           f"{LOW}}}")
    assert (path, rule) == ("slos.quality[0].metric", "quality_positive")
    assert "monitoring.labels.positive" in message
    spec = parse_spec(strings + "monitoring: {labels: {positive: yes}}\nslos:\n  quality:\n"
                      f"    - {{name: x, metric: f1, objective: 0.8, {LOW}}}\n", env={})
    assert spec.slos.quality[0].metric == "f1"

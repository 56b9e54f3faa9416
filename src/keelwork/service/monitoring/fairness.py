"""Fairness in a monitoring run, on ``/metrics`` and in a rollout's analysis.

keel.yaml's ``fairness`` section (:mod:`keelwork.spec.fairness`) becomes
:class:`FairnessSettings`. A monitoring window counts each labelled answer in its groups
(:func:`count_labelled`, called where the window collects its labelled rows, whether it is read
from the log or assembled from rollups) and its entry gets ``fairness``
(:func:`window_fairness`: :func:`keelwork.core.fairness.fairness_report`). Only labelled
answers count: equalized odds needs the truth, and every measure is then taken over the same
answers, as Fairlearn's ``MetricFrame(y_true, y_pred, sensitive_features=...)`` takes them.

``/metrics`` (:func:`fairness_families`, from the latest stored window of each model):

- ``keelwork_fairness_disparity{model, field, measure}``: the measure's value;
- ``keelwork_fairness_disparity_bound{model, field, measure, bound}``: its interval
  (``lower``/``upper``);
- ``keelwork_fairness_alert{model, field, measure}``: 1 when the whole interval is beyond the
  threshold;
- ``keelwork_fairness_group_rate{model, field, group, rate}``: selection rate, TPR, FPR and
  precision of the :data:`EXPORTED_GROUPS` largest compared groups of each field; the other
  compared groups together as group ``(other)`` (so a field's series stay bounded).

The rollout gate ``max_fairness_difference``: :func:`arm_fairness` judges one arm's labelled
answers (read by :func:`keelwork.adapters.stores.fairness_rows.labelled_groups`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from prometheus_client.core import GaugeMetricFamily

from keelwork.core.fairness import FairnessRules, GroupCounts, GroupTally, fairness_report
from keelwork.core.fairness.groups import OTHER, rates
from keelwork.core.monitors.windows import category
from keelwork.spec.fairness_checks import fairness_positive
from keelwork.spec.model import KeelSpec

#: Groups of a field exported one by one on /metrics (the largest); the rest as ``other``.
EXPORTED_GROUPS = 10
RATES = ("selection_rate", "tpr", "fpr", "precision")


@dataclass(frozen=True, slots=True)
class FairnessSettings:
    """The ``fairness`` section as a run uses it."""

    rules: FairnessRules
    positive: str


def fairness_settings(spec: KeelSpec) -> FairnessSettings | None:
    """The run's fairness settings; None when keel.yaml has no ``fairness`` section (or no
    positive class: ``keel spec validate`` refuses that)."""
    f = spec.fairness
    positive = fairness_positive(spec)
    if f is None or positive is None:
        return None
    return FairnessSettings(FairnessRules(
        protected=tuple(f.protected), metrics=tuple(f.metrics), max_difference=f.max_difference,
        min_ratio=f.min_ratio, min_group_size=f.min_group_size, confidence=f.confidence),
        positive)


def group_values(cols: Mapping[str, Any], fields: Sequence[str],
                 label: Any = None) -> dict[str, str | None]:
    """The group of each protected field: from a flattened row's inputs, else from the label
    when it is an object carrying the field (``fairness.label_fields``); None: neither has a
    value."""
    attrs = label if isinstance(label, Mapping) else {}
    out: dict[str, str | None] = {}
    for f in fields:
        v = cols.get(f)
        if v is None:
            v = attrs.get(f)
        out[f] = None if v is None or isinstance(v, Mapping | list) else category(v)
    return out


def count_labelled(settings: FairnessSettings | None, tally: GroupTally | None,
                   cols: Mapping[str, Any], truth: Any, predicted: Any,
                   label: Any = None) -> GroupTally | None:
    """``tally`` (a new one when None) with one labelled answer counted (``label``: the stored
    label value, which may carry protected fields); None when fairness is not measured."""
    if settings is None:
        return tally
    if tally is None:
        tally = GroupTally(settings.rules.protected)
    pos = settings.positive
    tally.add(group_values(cols, settings.rules.protected, label),
              category(predicted) == pos, category(truth) == pos)
    return tally


def window_fairness(settings: FairnessSettings, tally: GroupTally | None) -> dict[str, Any]:
    """A window entry's ``fairness``."""
    return fairness_report(tally or GroupTally(settings.rules.protected), settings.rules,
                           settings.positive)


def window_entry(settings: FairnessSettings | None, tally: GroupTally | None
                 ) -> dict[str, Any]:
    """What a window entry gets: ``{"fairness": ...}``, or nothing when not measured."""
    return {} if settings is None else {"fairness": window_fairness(settings, tally)}


def arm_fairness(settings: FairnessSettings, threshold: float,
                 rows: Iterable[tuple[Mapping[str, Any], Any, Any]]
                 ) -> tuple[float | None, float | None, str]:
    """One rollout arm's worst disparity difference over its labelled answers.

    Args:
        settings: The fairness settings (fields, measures, group size, confidence).
        threshold: The gate's largest difference.
        rows: ``(fields, output label, true label)`` per labelled answer: ``fields`` maps
            the protected fields (inputs, and those sent with the label) to their values.

    Returns:
        ``(value, lower bound, where)``: the largest difference of any protected field and
        measure, the largest lower bound of their intervals, and which field and measure hold
        it; ``(None, None, why)`` when no field has two groups to compare.
    """
    tally = GroupTally(settings.rules.protected)
    for fields, output, truth in rows:
        count_labelled(settings, tally, fields, truth, output)
    rules = settings.rules
    judged = replace(rules, max_difference=threshold, min_ratio=None)
    report = fairness_report(tally, judged, settings.positive)
    best: tuple[float, float, str] | None = None
    for f in report["fields"]:
        for m in f["measures"]:
            if m["value"] is None:
                continue
            key = (m["interval"][0], m["value"], f"{f['field']} {m['measure']}")
            if best is None or key[:2] > best[:2]:
                best = key
    if best is None:
        return None, None, (f"no protected field has two groups of {rules.min_group_size} "
                            f"labelled answers")
    return best[1], best[0], best[2]


def live_fairness(engine: Any, spec: KeelSpec, model: str, versions: Sequence[int],
                  since: float, threshold: float
                  ) -> dict[int, tuple[float | None, float | None, str]]:
    """:func:`arm_fairness` of each version's labelled answers since ``since`` (the rollout
    gate's reading; none when keel.yaml has no ``fairness`` section)."""
    from keelwork.adapters.stores.fairness_rows import labelled_inputs

    settings = fairness_settings(spec)
    if settings is None:
        return {}
    found = labelled_inputs(engine, model, versions, since)
    return {v: arm_fairness(settings, threshold, found.get(v, [])) for v in versions}


# --------------------------------------------------------------------------- /metrics
def fairness_families(windows: Iterable[Any]) -> Iterator[GaugeMetricFamily]:
    """The fairness families of the module docstring, from stored windows (``model`` and
    ``body`` each)."""
    value = GaugeMetricFamily("keelwork_fairness_disparity", "Disparity between the groups "
                              "of a protected field in the latest monitoring window.",
                              labels=["model", "field", "measure"])
    bound = GaugeMetricFamily("keelwork_fairness_disparity_bound", "Confidence interval of "
                              "the disparity.", labels=["model", "field", "measure", "bound"])
    alert = GaugeMetricFamily("keelwork_fairness_alert", "1 when the disparity's whole "
                              "interval is beyond its threshold.",
                              labels=["model", "field", "measure"])
    group = GaugeMetricFamily("keelwork_fairness_group_rate", "A group's rate among its "
                              "labelled answers in the latest window.",
                              labels=["model", "field", "group", "rate"])
    for w in windows:
        fair = (w.body or {}).get("fairness") or {}
        for f in fair.get("fields") or []:
            name = str(f["field"])
            for m in f.get("measures") or []:
                labels = [w.model, name, str(m["measure"])]
                if _finite(m.get("value")):
                    value.add_metric(labels, float(m["value"]))
                if m.get("interval"):
                    bound.add_metric([*labels, "lower"], float(m["interval"][0]))
                    bound.add_metric([*labels, "upper"], float(m["interval"][1]))
                if m.get("status") != "no_data":
                    alert.add_metric(labels, 1.0 if m["status"] == "alert" else 0.0)
            _group_rates(group, w.model, name, f.get("groups") or [])
    yield from (value, bound, alert, group)


def _group_rates(family: GaugeMetricFamily, model: str, field: str,
                 groups: Sequence[Mapping[str, Any]]) -> None:
    ranked = sorted(groups, key=lambda g: -int(g["labelled"]))
    other = GroupCounts()
    for i, g in enumerate(ranked):
        if i < EXPORTED_GROUPS:
            for r in RATES:
                family.add_metric([model, field, str(g["value"]), r], float(g[r]))
        else:
            other.merge(GroupCounts(**g["counts"]))
    if other.n:
        for r, v in rates(other).items():
            family.add_metric([model, field, OTHER, r], v)


def _finite(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(float(value)))


__all__ = ["EXPORTED_GROUPS", "FairnessSettings", "arm_fairness", "count_labelled",
           "fairness_families", "fairness_settings", "group_values", "live_fairness",
           "window_entry", "window_fairness"]

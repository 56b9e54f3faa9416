"""A window's fairness: every protected field's groups, disparities, intervals and alerts.

Per field, the groups with at least ``min_group_size`` labelled answers are compared (at most
:data:`MAX_GROUPS` of them, the largest; the others are listed as skipped, so a field of many
rare values neither floods the report nor drives the comparison). Each configured measure
(``demographic_parity``, ``equalized_odds``) is judged twice, as Aequitas and the four-fifths
rule read it:

- its difference against ``max_difference``: ``alert`` when the interval's lower bound exceeds
  it, ``ok`` when the upper bound does not, else ``uncertain``;
- its ratio against ``min_ratio`` (0.8: the four-fifths rule): ``alert`` when the interval's
  upper bound is below it, ``ok`` when the lower bound is not, else ``uncertain``.

``no_data``: fewer than two groups to compare. Intervals: :mod:`.intervals`; point values:
:mod:`.groups` (Fairlearn's definitions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from keelwork.core.fairness.groups import GroupCounts, GroupTally, disparities, rate_parts, rates
from keelwork.core.fairness.intervals import (
    Interval,
    difference_interval,
    ratio_interval,
    simultaneous,
)

#: Groups of one field compared per window (the largest by labelled answers).
MAX_GROUPS = 20
#: Skipped groups listed per field (the largest first).
MAX_SKIPPED = 20
MEASURES = ("demographic_parity", "equalized_odds")
Status = Literal["alert", "ok", "uncertain", "no_data"]


@dataclass(frozen=True, slots=True)
class FairnessRules:
    """What keel.yaml's ``fairness`` section asks (:mod:`keelwork.spec.fairness`)."""

    protected: tuple[str, ...]
    metrics: tuple[str, ...] = MEASURES
    max_difference: float | None = 0.1
    min_ratio: float | None = 0.8
    min_group_size: int = 30
    confidence: float = 0.95


def _status_difference(iv: Interval, threshold: float) -> Status:
    if iv[0] > threshold:
        return "alert"
    return "ok" if iv[1] <= threshold else "uncertain"


def _status_ratio(iv: Interval, threshold: float) -> Status:
    if iv[1] < threshold:
        return "alert"
    return "ok" if iv[0] >= threshold else "uncertain"


def _measures(groups: dict[str, GroupCounts], rules: FairnessRules,
              bounds: dict[str, list[Interval]], eo_bounds: dict[str, list[Interval]]
              ) -> list[dict[str, Any]]:
    values = disparities(groups)
    out: list[dict[str, Any]] = []
    for metric in rules.metrics:
        if metric == "demographic_parity":
            diff_iv = difference_interval(bounds["selection_rate"])
            ratio_iv = ratio_interval(bounds["selection_rate"])
        else:
            tpr, fpr = eo_bounds["tpr"], eo_bounds["fpr"]
            d1, d2 = difference_interval(tpr), difference_interval(fpr)
            r1, r2 = ratio_interval(tpr), ratio_interval(fpr)
            diff_iv = (max(d1[0], d2[0]), max(d1[1], d2[1]))
            ratio_iv = (min(r1[0], r2[0]), min(r1[1], r2[1]))
        if rules.max_difference is not None:
            out.append({"measure": f"{metric}_difference",
                        "value": values[f"{metric}_difference"], "interval": list(diff_iv),
                        "threshold": rules.max_difference,
                        "status": _status_difference(diff_iv, rules.max_difference)})
        if rules.min_ratio is not None:
            out.append({"measure": f"{metric}_ratio", "value": values[f"{metric}_ratio"],
                        "interval": list(ratio_iv), "threshold": rules.min_ratio,
                        "status": _status_ratio(ratio_iv, rules.min_ratio)})
    return out


def field_report(field: str, groups: dict[str, GroupCounts], missing: int,
                 rules: FairnessRules) -> dict[str, Any]:
    """One protected field's groups, measures and alerts (see the module docstring)."""
    ranked = sorted(groups.items(), key=lambda kv: (-kv[1].n, kv[0]))
    compared = [(v, c) for v, c in ranked if c.n >= rules.min_group_size][:MAX_GROUPS]
    names = {v for v, _ in compared}
    skipped = [{"value": v, "labelled": c.n} for v, c in ranked if v not in names]
    chosen = dict(compared)
    parts = {v: rate_parts(c) for v, c in compared}
    keys = ("selection_rate", "tpr", "fpr", "precision")
    # Each rate's intervals hold together over the field's groups; TPR and FPR together
    # (2m intervals) for equalized odds.
    bounds = {k: simultaneous([parts[v][k] for v in chosen], rules.confidence) for k in keys}
    eo = {k: simultaneous([parts[v][k] for v in chosen], rules.confidence,
                          family=2 * len(chosen)) for k in ("tpr", "fpr")}
    rows = []
    for i, (v, c) in enumerate(compared):
        rows.append({"value": v, "labelled": c.n, **rates(c), "counts": c.as_dict(),
                     "intervals": {k: list(bounds[k][i]) for k in keys}})
    if len(compared) >= 2:
        measures = _measures(chosen, rules, bounds, eo)
    else:
        measures = [{"measure": f"{m}_{kind}", "value": None, "interval": None,
                     "threshold": t, "status": "no_data"}
                    for m in rules.metrics
                    for kind, t in (("difference", rules.max_difference),
                                    ("ratio", rules.min_ratio)) if t is not None]
    return {"field": field, "groups": rows, "skipped": skipped[:MAX_SKIPPED],
            "skipped_groups": len(skipped), "missing": missing, "measures": measures,
            "alerting": any(m["status"] == "alert" for m in measures)}


def fairness_report(tally: GroupTally, rules: FairnessRules,
                    positive: str | None = None) -> dict[str, Any]:
    """The fairness of the labelled answers ``tally`` counted.

    Args:
        tally: Confusion counts per protected field and group.
        rules: Thresholds, group size and confidence.
        positive: The positive class the counts were taken against (shown only).

    Returns:
        ``positive_label``, ``labelled``, ``confidence``, ``min_group_size``, ``fields``
        (each :func:`field_report`) and ``alerts``: one sentence per alerting measure.
    """
    fields = [field_report(f, tally.counts.get(f, {}), tally.missing.get(f, 0), rules)
              for f in tally.fields]
    return {"positive_label": positive, "labelled": tally.labelled,
            "confidence": rules.confidence, "min_group_size": rules.min_group_size,
            "fields": fields, "alerts": alert_lines(fields, rules.confidence)}


def alert_lines(fields: Sequence[dict[str, Any]], confidence: float) -> list[str]:
    """One sentence per alerting measure of ``fields``."""
    out = []
    for f in fields:
        for m in f["measures"]:
            if m["status"] != "alert":
                continue
            lo, hi = m["interval"]
            rel = ">" if m["measure"].endswith("_difference") else "<"
            value = "undefined" if m["value"] is None else f"{m['value']:.3f}"
            out.append(f"{f['field']}: {m['measure']} {value} ({confidence:.0%} interval "
                       f"{lo:.3f}-{hi:.3f}) {rel} {m['threshold']:g}")
    return out


__all__ = ["MAX_GROUPS", "MAX_SKIPPED", "MEASURES", "FairnessRules", "alert_lines",
           "fairness_report", "field_report"]

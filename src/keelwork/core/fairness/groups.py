"""Per-group confusion counts of labelled answers, their rates, and the gaps between groups.

A labelled answer of a classifier is one event: its prediction and its ground truth, each
either the positive class (``fairness.positive_label``) or not. Per protected field and group
value, :class:`GroupTally` keeps the four confusion counts, which merge by addition (a window
is the sum of its batches, a run the sum of its windows) and keep no row.

The rates and disparities are Fairlearn's, computed from the same counts:

- selection rate: predicted positive / all (``fairlearn.metrics.selection_rate``);
- TPR: true positives / actual positives; FPR: false positives / actual negatives
  (``true_positive_rate``, ``false_positive_rate``: 0 when the group holds no actual positive,
  resp. negative, as scikit-learn's normalised confusion matrix gives);
- precision: true positives / predicted positives (0 without a predicted positive, as
  ``sklearn.metrics.precision_score`` answers with its default ``zero_division``);
- a difference is the largest group value minus the smallest, a ratio the smallest over the
  largest (``MetricFrame.difference()``/``ratio()``, ``method="between_groups"``); a ratio
  whose largest value is 0 is undefined (None; Fairlearn: NaN);
- demographic parity: of selection rates; equalized odds: the larger of the TPR and FPR
  differences, the smaller of their ratios (``agg="worst_case"``); when the FPR ratio is
  undefined (no group has a false positive) the equalized-odds ratio is the TPR ratio, and
  when the TPR ratio is undefined (no group has a true positive) it is undefined, as
  Fairlearn's ``min`` over the two answers (see :func:`worst_ratio`).

Each protected field is judged on its own (Fairlearn's single ``sensitive_features``), not on
intersections of fields.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: Distinct values tracked per field; later new values are counted together as :data:`OTHER`
#: (a field of unbounded cardinality, e.g. a free-text one, cannot grow a window without
#: bound).
MAX_TRACKED = 1000
#: The group holding the values past :data:`MAX_TRACKED`.
OTHER = "(other)"


@dataclass(slots=True)
class GroupCounts:
    """The confusion counts of one group's labelled answers."""

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    def add(self, predicted: bool, actual: bool) -> None:
        """Count one labelled answer."""
        if predicted and actual:
            self.tp += 1
        elif predicted:
            self.fp += 1
        elif actual:
            self.fn += 1
        else:
            self.tn += 1

    def merge(self, other: GroupCounts) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.tn += other.tn
        self.fn += other.fn

    def as_dict(self) -> dict[str, int]:
        return {"tp": self.tp, "fp": self.fp, "tn": self.tn, "fn": self.fn}


#: Each rate: (numerator, denominator) as functions of the counts.
def rate_parts(c: GroupCounts) -> dict[str, tuple[int, int]]:
    """Every rate of a group as ``(successes, trials)``."""
    return {"selection_rate": (c.tp + c.fp, c.n),
            "tpr": (c.tp, c.tp + c.fn),
            "fpr": (c.fp, c.fp + c.tn),
            "precision": (c.tp, c.tp + c.fp)}


def rates(c: GroupCounts) -> dict[str, float]:
    """The group's rates, each 0 when its denominator is (Fairlearn's and scikit-learn's
    convention; see the module docstring)."""
    return {k: (x / t if t else 0.0) for k, (x, t) in rate_parts(c).items()}


def difference(values: Iterable[float]) -> float:
    """Largest minus smallest (``MetricFrame.difference(method="between_groups")``)."""
    vs = list(values)
    return max(vs) - min(vs)


def ratio(values: Iterable[float]) -> float | None:
    """Smallest over largest (``MetricFrame.ratio(method="between_groups")``); None when the
    largest is 0."""
    vs = list(values)
    top = max(vs)
    return min(vs) / top if top > 0 else None


def disparities(groups: Mapping[str, GroupCounts]) -> dict[str, float | None]:
    """Demographic parity and equalized odds, difference and ratio, over ``groups``.

    Raises:
        ValueError: no group.
    """
    if not groups:
        raise ValueError("disparities need at least one group")
    r = [rates(c) for c in groups.values()]
    sel = [x["selection_rate"] for x in r]
    tpr = [x["tpr"] for x in r]
    fpr = [x["fpr"] for x in r]
    tpr_ratio, fpr_ratio = ratio(tpr), ratio(fpr)
    return {
        "demographic_parity_difference": difference(sel),
        "demographic_parity_ratio": ratio(sel),
        "equalized_odds_difference": max(difference(tpr), difference(fpr)),
        "equalized_odds_ratio": worst_ratio(tpr_ratio, fpr_ratio),
    }


def worst_ratio(tpr_ratio: float | None, fpr_ratio: float | None) -> float | None:
    """The equalized-odds ratio from the TPR and FPR ratios, as Fairlearn answers it.

    Fairlearn takes Python's ``min`` over the ratios in the order TPR, FPR. NaN compares false
    both ways, so an undefined TPR ratio is kept (the answer is undefined) while an undefined
    FPR ratio is passed over (the answer is the TPR ratio): no group with a false positive
    still leaves a TPR gap to measure.
    """
    if tpr_ratio is None:
        return None
    if fpr_ratio is None:
        return tpr_ratio
    return min(tpr_ratio, fpr_ratio)


class GroupTally:
    """Confusion counts per protected field and group value (see the module docstring).

    Args:
        fields: The protected fields, in keel.yaml's order.
    """

    def __init__(self, fields: Iterable[str]) -> None:
        self.fields = tuple(fields)
        self.counts: dict[str, dict[str, GroupCounts]] = {f: {} for f in self.fields}
        #: Labelled answers without a value for the field (not in any of its groups).
        self.missing: dict[str, int] = dict.fromkeys(self.fields, 0)

    def add(self, values: Mapping[str, str | None], predicted: bool, actual: bool) -> None:
        """Count one labelled answer in the group of each field (``values``: field -> the
        answer's group value, None or absent when it has none)."""
        for f in self.fields:
            v = values.get(f)
            if v is None:
                self.missing[f] += 1
                continue
            groups = self.counts[f]
            c = groups.get(v)
            if c is None:
                if len(groups) >= MAX_TRACKED:
                    v = OTHER
                    c = groups.get(v)
                if c is None:
                    c = groups[v] = GroupCounts()
            c.add(predicted, actual)

    def merge(self, other: GroupTally) -> None:
        """Add ``other``'s counts (the same fields) to these."""
        for f in self.fields:
            self.missing[f] += other.missing.get(f, 0)
            for v, c in other.counts.get(f, {}).items():
                mine = self.counts[f].get(v)
                if mine is None:
                    key = v if len(self.counts[f]) < MAX_TRACKED else OTHER
                    mine = self.counts[f].setdefault(key, GroupCounts())
                mine.merge(c)

    @property
    def labelled(self) -> int:
        """Labelled answers counted (those of the first field's groups plus its missing)."""
        if not self.fields:
            return 0
        f = self.fields[0]
        return sum(c.n for c in self.counts[f].values()) + self.missing[f]


__all__ = ["MAX_TRACKED", "OTHER", "GroupCounts", "GroupTally", "difference", "disparities",
           "rate_parts", "rates", "ratio", "worst_ratio"]

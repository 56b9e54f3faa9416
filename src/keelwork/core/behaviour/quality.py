"""Slice minimum quality and fairness limits, on labelled rows.

Each row holds the model's inputs and the ground truth (``label``); the label column and the
``drop`` columns are taken out before the model is asked. Slices and groups are the values
of a column, as text (a missing value is its own slice, ``(missing)``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from keelwork.core.behaviour.results import Ask, Failure, TestResult, same_label
from keelwork.core.fairness.groups import GroupTally, disparities, rates
from keelwork.spec.model_tests import FairnessTest, SliceTest

MISSING = "(missing)"


def accuracy(predicted: Sequence[Any], actual: Sequence[Any]) -> float:
    """Share of answers equal to their label (compared as text)."""
    return sum(same_label(p, a) for p, a in zip(predicted, actual, strict=True)) / len(actual)


def roc_auc(scores: Sequence[float], positive: Sequence[bool]) -> float | None:
    """Area under the ROC curve: the chance a positive outranks a negative (ties count half),
    by average ranks (Mann-Whitney U). None when one class is absent."""
    n_pos = sum(positive)
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    rank_sum = sum(r for r, p in zip(ranks, positive, strict=True) if p)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def features(rows: Sequence[Mapping[str, Any]], leave_out: Sequence[str]) -> list[dict[str, Any]]:
    """The rows without the label and the dropped columns: what the model is given."""
    out = set(leave_out)
    return [{k: v for k, v in r.items() if k not in out} for r in rows]


def _group(value: Any) -> str:
    return MISSING if value is None else str(value)


def slices(test: SliceTest, rows: Sequence[Mapping[str, Any]], ask: Ask,
           positive: Any) -> TestResult:
    """Each slice of ``by`` (or the whole file) with at least ``min_rows`` rows must reach
    ``min`` in ``metric``; smaller slices are reported, not judged.

    Raises:
        ValueError: ROC AUC asked of a model that gives no scores.
    """
    result = TestResult(test.name, "slice")
    labels, scores = ask(features(rows, [test.label, *test.drop]))
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        key = "(all)" if test.by is None else _group(r.get(test.by))
        groups.setdefault(key, []).append(i)
    measured: dict[str, Any] = {}
    for key in sorted(groups):
        idx = groups[key]
        actual = [rows[i][test.label] for i in idx]
        if test.metric == "accuracy":
            value: float | None = accuracy([labels[i] for i in idx], actual)
        else:
            got = [scores[i] for i in idx]
            if any(s is None for s in got):
                raise ValueError(f"test {test.name!r}: roc_auc needs scores; the model gives "
                                 "none (use metric: accuracy)")
            value = roc_auc([float(s) for s in got if s is not None],
                            [same_label(a, positive) for a in actual])
        measured[key] = {"rows": len(idx), test.metric: value}
        if len(idx) < test.min_rows or value is None:
            measured[key]["judged"] = False
            continue
        where = "the whole file" if test.by is None else f"{test.by} = {key}"
        result.check(value >= test.min, Failure(
            f"{test.name}[{where}]", {} if test.by is None else {test.by: key},
            f"{test.metric} >= {test.min:g} on {where}", f"{value:.4f} on {len(idx)} rows"))
    result.details = {"metric": test.metric, "slices": measured}
    return result


def fairness(test: FairnessTest, rows: Sequence[Mapping[str, Any]], ask: Ask,
             positive: Any) -> TestResult:
    """The gap between the groups of ``protected`` (its ``metric``'s difference, as
    :func:`keelwork.core.fairness.groups.disparities` computes it) must be at most
    ``max_difference``.

    Raises:
        ValueError: no positive class (the rates would all be 0: nothing measured), or
            ``protected`` has fewer than two groups.
    """
    if positive is None:
        raise ValueError(f"test {test.name!r}: a fairness test compares the rates of the "
                         "positive class, and none is known for this model (it has more than "
                         "two classes, or does not name them): set 'positive' in the tests "
                         "file (or monitoring.labels.positive in keel.yaml)")
    result = TestResult(test.name, "fairness")
    labels, _ = ask(features(rows, [test.label, *test.drop]))
    tally = GroupTally([test.protected])
    for r, predicted in zip(rows, labels, strict=True):
        value = r.get(test.protected)
        tally.add({test.protected: None if value is None else str(value)},
                  same_label(predicted, positive), same_label(r[test.label], positive))
    groups = tally.counts[test.protected]
    if len(groups) < 2:
        raise ValueError(f"test {test.name!r}: the field {test.protected!r} has "
                         f"{len(groups)} group(s) in {test.data}; a gap needs two")
    key = f"{test.metric}_difference"
    gap = disparities(groups)[key]
    assert gap is not None  # differences are always defined
    result.check(gap <= test.max_difference, Failure(
        test.name, {}, f"{key} <= {test.max_difference:g} across {test.protected}",
        f"{gap:.4f} ({', '.join(f'{g}: n={c.n}' for g, c in sorted(groups.items()))})"))
    result.details = {key: gap, "groups": {g: {"n": c.n, **rates(c)}
                                           for g, c in sorted(groups.items())}}
    return result


__all__ = ["MISSING", "accuracy", "fairness", "features", "roc_auc", "slices"]

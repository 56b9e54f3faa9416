"""Quality SLOs as event counts: what one logged prediction adds to the good and bad events of
a quality metric, and the counts of nested windows (pure).

Every metric is a sum of events, so a window's ratio is bad events over events, weighted by
events and additive across windows and versions, never an average of ratios:

- ``accuracy``: one event per labelled answer, bad when the predicted class is not the label;
  budget ``1 - objective``.
- ``f1`` (binary, the positive class): a true positive adds 2 events, a false positive or a
  false negative 1 event and 1 bad; a true negative nothing. So events are ``2TP + FP + FN``,
  bad ``FP + FN``, and bad / events is exactly ``1 - F1`` (F1 = 2TP / (2TP + FP + FN)) over any
  union of windows; budget ``1 - objective``.
- ``mae``: one event per labelled answer, "bad" its absolute error: bad / events is the MAE,
  and the budget is the objective, so the burn rate is ``MAE / objective`` (a burn of 2 is an
  MAE twice the objective). A multi-output regressor's answer adds one event per labelled
  output field (the MAE over every labelled field; with every field labelled, the mean of the
  fields' MAEs).
- ``violation_rate``: every request (answered, failed or refused, shadow calls aside), bad
  when the input contract refused it; budget the objective.
- ``null_rate``: every value of the counted inputs in answered requests (a missing field is a
  null), bad when null; budget the objective.
- ``label_coverage``: every answered prediction, bad while it has no label; budget
  ``1 - objective``.
- ``drift``: the predictions of each time slice that ``keel serve``'s monitoring stored a
  drift result for (the first time window of ``monitoring.windows``), bad when the slice's
  drift of the feature is over ``threshold`` (or, without one, the monitor's own verdict);
  a slice counts into a window it overlaps, so the short window holds the slice in progress;
  budget the objective. Weighting slices by their predictions keeps ``min_events`` and the
  event-weighting of the other metrics.

The windows of the metrics judged against labels (accuracy, f1, mae, label_coverage) end
``monitoring.labels.expected_delay`` before the evaluation (:attr:`QualityIndicator.lag_s`):
a label counts into the window of its prediction, and a window is read only once its labels
were due. Counts are recomputed from the log at each evaluation, so a label that arrives late
still changes the windows of its prediction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from keelwork.core.monitors.windows import (
    LABEL_FIELD,
    LABEL_LABEL,
    LABEL_VALUE,
    PREDICTION_FIELD,
    PREDICTION_LABEL,
    PREDICTION_VALUE,
    OutputSchema,
    category,
    flatten_label,
    flatten_output,
)

#: Metrics whose events are labelled answers or need labels (their windows lag).
LABELLED = ("accuracy", "f1", "mae", "label_coverage")
#: Metrics counted row by row from payloads (the others are counted by the store in SQL).
FROM_PAYLOADS = ("accuracy", "f1", "mae", "null_rate")

METRIC_TITLES = {"accuracy": "Accuracy", "f1": "F1", "mae": "MAE",
                 "violation_rate": "Contract violations", "null_rate": "Null inputs",
                 "label_coverage": "Label coverage", "drift": "Drift"}
#: The report columns ``feature: prediction`` stands for, the first present is read.
PREDICTION_COLUMNS = ("prediction:label", "prediction:value", "prediction:score")


@dataclass(frozen=True, slots=True)
class QualityIndicator:
    """What a quality SLO counts, and how to read the log for it.

    Attributes:
        metric: One of :data:`METRIC_TITLES`.
        features: null_rate: the input fields counted.
        input_names: The contract's inputs in order (to name the values of a list instance).
        classes: The output contract's classes, when it declares them.
        positive: f1: the positive class.
        lag_s: Seconds before the evaluation the windows end (labelled metrics:
            ``monitoring.labels.expected_delay``; others 0).
        threshold: drift: the score over which a slice is drifted (None: the monitor's
            verdict).
        slice: drift: the monitoring window whose stored results are the slices (``1h``).
    """

    metric: str
    features: tuple[str, ...] = ()
    input_names: tuple[str, ...] = ()
    classes: tuple[str, ...] | None = None
    positive: str | None = None
    lag_s: int = 0
    threshold: float | None = None
    slice: str | None = None
    #: A multi-output regressor's output fields in contract order (None: one output).
    outputs: tuple[str, ...] | None = None

    @property
    def schema(self) -> OutputSchema:
        return OutputSchema(classes=self.classes, positive=self.positive,
                            feature_names=self.input_names or None, outputs=self.outputs)


@dataclass(frozen=True, slots=True)
class QualityCounts:
    """One model's events of one quality SLO in one window (``bad`` is a float for mae)."""

    events: float = 0.0
    bad: float = 0.0

    @property
    def ratio(self) -> float | None:
        """bad / events; None without events (never "all good")."""
        return None if self.events <= 0 else self.bad / self.events


def answer_events(ind: QualityIndicator, output: Any, label: Any) -> tuple[float, float] | None:
    """``(events, bad)`` that one labelled answer adds to accuracy, f1 or mae.

    Args:
        ind: The indicator.
        output: The logged output of the prediction (as stored: a class, a number, an
            object with ``label``/``prediction``/``value``/``probabilities``...).
        label: The stored label (a value, or an object with ``label``/``value``/``y``).

    Returns:
        None when the output or the label cannot be read as the metric needs (no event).
    """
    schema = ind.schema
    got = flatten_output(output, schema)
    truth = flatten_label(label, schema)
    if ind.metric == "mae" and ind.outputs and not ind.classes:
        # One event per labelled output field, so bad / events is the mean absolute error
        # over every labelled field of every answer.
        pairs = [(got.get(PREDICTION_FIELD + f), truth.get(LABEL_FIELD + f)) for f in ind.outputs]
        errors = [abs(p - t) for p, t in pairs if isinstance(p, float) and isinstance(t, float)]
        return (float(len(errors)), sum(errors)) if errors else None
    if ind.metric == "mae":
        pred_v, true_v = got.get(PREDICTION_VALUE), truth.get(LABEL_VALUE)
        if not isinstance(pred_v, float) or not isinstance(true_v, float):
            return None
        return 1.0, abs(pred_v - true_v)
    pred = got.get(PREDICTION_LABEL, got.get(PREDICTION_VALUE))
    true = truth.get(LABEL_LABEL, _class_label(label))
    if pred is None or true is None:
        return None
    p, t = category(pred), category(true)
    if ind.metric == "accuracy":
        return 1.0, float(p != t)
    positive = category(ind.positive)
    if p == positive:
        return (2.0, 0.0) if t == positive else (1.0, 1.0)
    return (1.0, 1.0) if t == positive else (0.0, 0.0)


def _class_label(label: Any) -> str | None:
    """A class label without declared classes: the value (or its ``label``/``value``/``y``)
    as a category, None when there is none."""
    if isinstance(label, Mapping):
        label = next((label[k] for k in ("label", "value", "y") if k in label), None)
    if label is None or not isinstance(label, str | int | float | bool):
        return None
    return category(label)


def null_events(ind: QualityIndicator, instance: Any) -> tuple[float, float]:
    """``(values, nulls)`` of the counted inputs in one logged instance.

    A field that is absent counts as null; an instance that is not an object or a list (not
    logged: ``storage.log_inputs: false``) counts for nothing.
    """
    if isinstance(instance, Mapping):
        values = [instance.get(f) for f in ind.features]
    elif isinstance(instance, list | tuple):
        at = {n: i for i, n in enumerate(ind.input_names)}
        values = [instance[at[f]] if f in at and at[f] < len(instance) else None
                  for f in ind.features]
    else:
        return 0.0, 0.0
    return float(len(values)), float(sum(v is None for v in values))


def drifted(ind: QualityIndicator, columns: Sequence[Mapping[str, Any]]) -> bool | None:
    """Whether a stored drift report's ``columns`` say the feature of ``ind`` drifted; None
    when the report has no verdict on it (not compared: the slice is no event)."""
    names = PREDICTION_COLUMNS if ind.features == ("prediction",) else ind.features
    by_name = {c.get("column"): c for c in columns if isinstance(c, Mapping)}
    col = next((by_name[n] for n in names if n in by_name), None)
    if col is None:
        return None
    if ind.threshold is None:
        verdict = col.get("drift")
        return bool(verdict) if verdict is not None else None
    score = col.get("score")
    if not isinstance(score, int | float) or isinstance(score, bool):
        return None
    return float(score) > ind.threshold


def slice_events(start: float, end: float, predictions: int, drift: bool | None,
                 until: float, windows: Sequence[int]) -> list[tuple[int, float, float]]:
    """``(window, events, bad)`` a drift slice ``[start, end)`` adds to each window ending at
    ``until`` that it overlaps."""
    if drift is None or predictions <= 0:
        return []
    bad = float(predictions) if drift else 0.0
    return [(w, float(predictions), bad) for w in windows if end > until - w and start < until]


@dataclass
class WindowTally:
    """Sums events into nested windows that all end at ``end`` (one pass over the log).

    Args:
        end: Where every window ends (exclusive).
        windows: Window lengths in seconds.
    """

    end: float
    windows: Sequence[int]
    sums: dict[int, dict[str, list[float]]] = field(default_factory=dict)

    def add(self, ts: float, model: str, events: float, bad: float) -> None:
        """Count one prediction of ``model`` at ``ts`` into every window holding it."""
        if events == 0 or ts >= self.end:
            return
        age = self.end - ts
        for w in self.windows:
            if age <= w:
                pair = self.sums.setdefault(w, {}).setdefault(model, [0.0, 0.0])
                pair[0] += events
                pair[1] += bad

    def add_all(self, rows: Iterable[tuple[float, str, float, float]]) -> None:
        """:meth:`add` each ``(ts, model, events, bad)``."""
        for row in rows:
            self.add(*row)

    def counts(self) -> dict[int, dict[str, QualityCounts]]:
        """Per window, per model, the counts (a window or model without events: absent)."""
        return {w: {m: QualityCounts(e, b) for m, (e, b) in per.items()}
                for w, per in self.sums.items()}


__all__ = ["FROM_PAYLOADS", "LABELLED", "METRIC_TITLES", "PREDICTION_COLUMNS", "QualityCounts",
           "QualityIndicator", "WindowTally", "answer_events", "drifted", "null_events",
           "slice_events"]

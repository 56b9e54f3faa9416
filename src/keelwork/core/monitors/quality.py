"""Model quality from ground truth: classification and regression metrics, label coverage.

Ground-truth labels reach keelwork late (see ``keelwork.adapters.stores.label_writes``), so a
window's quality is computed on the predictions that have a label so far, and
:func:`label_coverage` says how far that is from the whole window and whether more labels are
still expected.

Conventions (the same for every caller, so a dashboard never has to guess):

- A metric that is undefined is ``None`` -- never NaN, never an exception -- and ``notes``
  says why (no predicted positives, a single class for ROC AUC, no labelled rows, ...).
  That matches scikit-learn's ``zero_division=np.nan``, with None in place of NaN.
- A pair whose true label is ``None`` is an unlabelled prediction: it is left out and counted
  in ``unlabelled``. A pair whose prediction is ``None`` is left out likewise (``no_prediction``).
- Binary or multi-class is decided by the classes seen (true and predicted labels, plus
  ``positive`` when given): two or fewer is binary. The positive class is ``positive`` when
  given, else the *sorted-last* class (``1`` of ``0/1``, ``True`` of booleans, ``"yes"`` of
  ``"no"/"yes"``: the usual encodings put the event last). Labels of mixed types that cannot
  be compared sort by type name then ``repr``.
- Multi-class precision/recall/F1 are macro averages over the classes seen, leaving out the
  classes where the metric is undefined (as scikit-learn does with ``zero_division=np.nan``);
  ``per_class`` holds every class's values, keyed by ``str(label)``. ROC AUC needs a binary
  problem and scores of the positive class; otherwise it is ``None`` with a note.
- ROC AUC is the Mann-Whitney statistic computed from ranks, tied scores sharing the average
  rank -- exactly the area under the ROC curve with ties counted as half, as
  ``sklearn.metrics.roc_auc_score`` gives. It is written here because the base install has
  no scikit-learn (only numpy and pyarrow), and it is a few lines of numpy.

Pure logic; numpy is imported inside the functions.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from keelwork.core.monitors.windows import parse_duration
from keelwork.errors import MonitorError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

#: The states :func:`label_coverage` reports.
COVERAGE_STATES = ("complete", "waiting", "no_predictions")


# --------------------------------------------------------------------------- helpers
def sorted_labels(values: Any) -> list[Any]:
    """Distinct labels in sorted order; mixed, incomparable types by (type name, repr)."""
    distinct = list(dict.fromkeys(values))
    try:
        return sorted(distinct)
    except TypeError:
        return sorted(distinct, key=lambda v: (type(v).__name__, repr(v)))


def finite_floats(values: Sequence[Any] | npt.NDArray[Any], what: str,
                  ) -> npt.NDArray[np.float64]:
    """``values`` as a float array, refusing what is not a finite number.

    Raises:
        MonitorError: an element is not a number or not finite; names its position.
    """
    import numpy as np

    try:
        fast = np.asarray(values, dtype=np.float64)
        if fast.ndim == 1 and np.isfinite(fast).all():
            return fast
    except (TypeError, ValueError):
        pass  # found below, with its position
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            raise MonitorError(f"Every {what} must be a number; got {v!r} at position {i}.",
                               ) from None
        if not math.isfinite(out[i]):
            raise MonitorError(f"Every {what} must be finite; got {v!r} at position {i}.")
    return out


def tie_groups(values: npt.NDArray[np.float64]
               ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """(group of each value, size of each group): the groups of equal values in increasing
    order, as ``np.unique(..., return_inverse=True, return_counts=True)`` gives them. Values
    already sorted (a window's scores from its rollups are) take a linear pass, not a sort."""
    import numpy as np

    n = len(values)
    if n > 1 and bool(np.all(values[1:] >= values[:-1])):
        first = np.empty(n, dtype=bool)
        first[0] = True
        np.not_equal(values[1:], values[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        return np.cumsum(first) - 1, np.diff(np.append(starts, n))
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    return inverse.reshape(-1), counts


def average_ranks(scores: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """1-based ranks of ``scores``, tied values sharing the average of their ranks."""
    import numpy as np

    inverse, counts = tie_groups(scores)
    ends = np.cumsum(counts).astype(np.float64)
    return ((ends - counts + 1.0 + ends) / 2.0)[inverse]


def rank_auc(is_positive: npt.NDArray[np.bool_], scores: npt.NDArray[np.float64],
             ) -> float | None:
    """ROC AUC by the Mann-Whitney rank formula (ties count half); None for a single class."""
    n1 = int(is_positive.sum())
    n0 = len(is_positive) - n1
    if n1 == 0 or n0 == 0:
        return None
    rank_sum = float(average_ranks(scores)[is_positive].sum())
    return (rank_sum - n1 * (n1 + 1) / 2.0) / (n1 * n0)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def _check_lengths(**seqs: Sequence[Any] | None) -> int:
    lengths = {k: len(v) for k, v in seqs.items() if v is not None}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k}={n}" for k, n in lengths.items())
        raise MonitorError(f"The sequences must be as long as each other; got {shown}.")
    return next(iter(lengths.values()), 0)


def _prf(tp: float, fp: float, fn: float) -> tuple[float | None, float | None, float | None]:
    # F1 as 2tp / (2tp + fp + fn): defined whenever anything was predicted or expected, even
    # where precision or recall alone is not (scikit-learn computes it the same way).
    return _ratio(tp, tp + fp), _ratio(tp, tp + fn), _ratio(2 * tp, 2 * tp + fp + fn)


# --------------------------------------------------------------------------- classification
def classification_metrics(y_true: Sequence[Any], y_pred: Sequence[Any], *,
                           scores: Sequence[float] | None = None,
                           positive: Any | None = None,
                           proba: Sequence[Sequence[float]] | None = None,
                           proba_classes: Sequence[Any] | None = None) -> dict[str, Any]:
    """Accuracy, precision, recall, F1 and ROC AUC of a classifier on labelled predictions.

    Args:
        y_true: the true labels, ``None`` where a prediction has no label yet.
        y_pred: the predicted labels, as long as ``y_true``.
        scores: the score (probability) of the positive class per prediction, for ROC AUC;
            only used for a binary problem.
        positive: the positive class; default the sorted-last class seen (module docstring).
        proba: a multi-class model's probability row per prediction (columns in
            ``proba_classes`` order), for the macro and micro one-vs-rest ROC AUC.
        proba_classes: the classes of ``proba``'s columns (compared with the labels as text).

    Returns:
        ``n`` (labelled pairs used), ``task`` (``binary``/``multiclass``), ``classes``,
        ``positive`` (None for multi-class), ``average`` (``binary``/``macro``),
        ``accuracy``, ``precision``, ``recall``, ``f1``, ``roc_auc`` (floats or None),
        ``per_class`` (``str(label)`` -- ``repr`` if two labels share a ``str`` -- ->
        support, predicted, precision, recall, f1),
        ``confusion`` (binary: tp, fp, fn, tn; multi-class: ``{true: {predicted: count}}``
        by the per_class keys), for multi-class ``roc_auc`` (macro: the mean of each class's
        one-vs-rest AUC over the classes with both outcomes) and ``roc_auc_micro`` (every
        (row, class) cell ranked together) when ``proba`` is given, ``unlabelled``,
        ``no_prediction`` and ``notes`` (why a value is None, anything surprising in the
        labels).

    Raises:
        MonitorError: the sequences differ in length, or a score is not a finite number.
    """
    import numpy as np

    _check_lengths(y_true=y_true, y_pred=y_pred, scores=scores)
    score_arr = finite_floats(scores, "score") if scores is not None else None
    keep = [i for i, (t, p) in enumerate(zip(y_true, y_pred, strict=True))
            if t is not None and p is not None]
    unlabelled = sum(1 for t in y_true if t is None)
    no_prediction = sum(1 for t, p in zip(y_true, y_pred, strict=True)
                        if t is not None and p is None)
    truth = [y_true[i] for i in keep]
    pred = [y_pred[i] for i in keep]
    notes: list[str] = []
    if unlabelled:
        notes.append(f"{unlabelled} prediction(s) without a label were left out.")
    if no_prediction:
        notes.append(f"{no_prediction} label(s) without a predicted label were left out.")
    out: dict[str, Any] = {"n": len(keep), "task": None, "classes": [], "positive": None,
                           "average": None, "accuracy": None, "precision": None,
                           "recall": None, "f1": None, "roc_auc": None, "per_class": {},
                           "confusion": None, "unlabelled": unlabelled,
                           "no_prediction": no_prediction, "notes": notes}
    if not keep:
        notes.append("No labelled predictions: every metric is undefined.")
        return out

    seen = [*truth, *pred] + ([positive] if positive is not None else [])
    classes = sorted_labels(seen)
    key: Callable[[object], str] = str
    if len({str(c) for c in classes}) < len(classes):
        key = repr  # per_class keys must stay distinct
        notes.append(f"Some classes differ only in type ({classes!r}); labels are compared "
                     f"as given, so '1' and 1 are different classes (per_class keys are "
                     f"their repr).")
    out["classes"] = classes
    supports, predicted_counts = Counter(truth), Counter(pred)
    hits = Counter(t for t, p in zip(truth, pred, strict=True) if t == p)
    per_class: dict[str, dict[str, Any]] = {}
    for c in classes:
        tp, support, predicted = hits[c], supports[c], predicted_counts[c]
        precision, recall, f1 = _prf(tp, predicted - tp, support - tp)
        per_class[key(c)] = {"support": support, "predicted": predicted,
                             "precision": precision, "recall": recall, "f1": f1}
    out["per_class"] = per_class
    out["accuracy"] = sum(hits.values()) / len(keep)

    if len(classes) <= 2:
        pos = positive if positive is not None else classes[-1]
        out.update(task="binary", positive=pos, average="binary")
        is_pos = np.array([t == pos for t in truth], dtype=bool)
        said_pos = np.array([p == pos for p in pred], dtype=bool)
        tp = int((is_pos & said_pos).sum())
        fp = int((~is_pos & said_pos).sum())
        fn = int((is_pos & ~said_pos).sum())
        out["confusion"] = {"tp": tp, "fp": fp, "fn": fn, "tn": len(keep) - tp - fp - fn}
        out["precision"], out["recall"], out["f1"] = _prf(tp, fp, fn)
        if tp + fp == 0:
            notes.append(f"precision is undefined: nothing was predicted {pos!r}.")
        if tp + fn == 0:
            notes.append(f"recall is undefined: no true label is {pos!r}.")
        if out["f1"] is None:
            notes.append(f"f1 is undefined: {pos!r} was neither predicted nor true.")
        if score_arr is None:
            notes.append("roc_auc needs scores of the positive class; none were given.")
        else:
            out["roc_auc"] = rank_auc(is_pos, score_arr[keep])
            if out["roc_auc"] is None:
                notes.append("roc_auc is undefined: the true labels hold a single class.")
        return out

    out.update(task="multiclass", average="macro")
    out["confusion"] = {key(t): {key(q): 0 for q in classes} for t in classes}
    for t, q in zip(truth, pred, strict=True):
        out["confusion"][key(t)][key(q)] += 1
    if positive is not None:
        notes.append(f"positive={positive!r} is not used: {len(classes)} classes make a "
                     f"multi-class problem, averaged over classes (macro).")
    for metric in ("precision", "recall", "f1"):
        defined = [v[metric] for v in per_class.values() if v[metric] is not None]
        out[metric] = sum(defined) / len(defined) if defined else None
        left_out = [k for k, v in per_class.items() if v[metric] is None]
        if left_out:
            notes.append(f"{metric} is undefined for class(es) {left_out}, left out of the "
                         f"macro average.")
    if proba is None or proba_classes is None:
        notes.append("roc_auc of several classes needs every class's probability (proba); "
                     "none were given.")
        return out
    out["roc_auc"], out["roc_auc_micro"] = _multiclass_auc(
        [proba[i] for i in keep], truth, proba_classes, notes)
    return out


def _multiclass_auc(proba: Sequence[Sequence[float]], truth: Sequence[Any],
                    classes: Sequence[Any], notes: list[str]) -> tuple[float | None,
                                                                       float | None]:
    """Macro and micro one-vs-rest ROC AUC of probability rows (as scikit-learn's
    ``roc_auc_score(..., multi_class="ovr", average="macro"/"micro")``)."""
    import numpy as np

    names = [str(c) for c in classes]
    arr = np.asarray(proba, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != len(names) or not np.isfinite(arr).all():
        notes.append(f"roc_auc needs one finite probability per class ({len(names)}) in "
                     f"each row; got rows of shape {arr.shape}.")
        return None, None
    onehot = np.array([[str(t) == c for c in names] for t in truth], dtype=bool)
    aucs = [rank_auc(onehot[:, j], arr[:, j]) for j in range(len(names))]
    defined = [a for a in aucs if a is not None]
    skipped = [c for c, a in zip(names, aucs, strict=True) if a is None]
    if skipped:
        notes.append(f"roc_auc leaves out class(es) {skipped}: all or none of the labels are "
                     f"them.")
    micro = rank_auc(onehot.ravel(), arr.ravel())
    return (sum(defined) / len(defined) if defined else None), micro


# --------------------------------------------------------------------------- regression
def regression_metrics(y_true: Sequence[Any], y_pred: Sequence[Any]) -> dict[str, Any]:
    """Mean absolute error, root mean squared error and bias of a regressor.

    ``bias`` is the mean of ``y_pred - y_true``: positive when the model over-predicts.
    Pairs whose true value is ``None`` (not labelled yet) are left out.

    Returns:
        ``n``, ``mae``, ``rmse``, ``bias`` (None when no pair is labelled), ``unlabelled``
        and ``notes``.

    Raises:
        MonitorError: the sequences differ in length, or a value is not a finite number.
    """
    import numpy as np

    _check_lengths(y_true=y_true, y_pred=y_pred)
    keep = [i for i, t in enumerate(y_true) if t is not None]
    unlabelled = len(y_true) - len(keep)
    notes: list[str] = []
    if unlabelled:
        notes.append(f"{unlabelled} prediction(s) without a label were left out.")
    out: dict[str, Any] = {"n": len(keep), "mae": None, "rmse": None, "bias": None,
                           "unlabelled": unlabelled, "notes": notes}
    if not keep:
        notes.append("No labelled predictions: every metric is undefined.")
        return out
    truth = finite_floats([y_true[i] for i in keep], "true value")
    pred = finite_floats([y_pred[i] for i in keep], "predicted value")
    # Scaled by the largest error, so errors near the float64 limit (a huge but valid input
    # through a linear model) give finite metrics rather than an overflow to inf.
    with np.errstate(over="ignore"):
        err = pred - truth
    top = float(np.abs(err).max())
    if not math.isfinite(top):
        notes.append("An error between a prediction and its label is beyond float64; mae, "
                     "rmse and bias are undefined.")
        return out
    scale = top if top > 1e100 else 1.0
    e = err / scale
    out.update(mae=float(np.abs(e).mean()) * scale, rmse=float(np.sqrt((e**2).mean())) * scale,
               bias=float(e.mean()) * scale)
    return out


# --------------------------------------------------------------------------- label coverage
def multioutput_regression_metrics(y_true: Sequence[Sequence[Any]],
                                   y_pred: Sequence[Sequence[Any]],
                                   fields: Sequence[str]) -> dict[str, Any]:
    """:func:`regression_metrics` of a regressor with several output fields.

    Each row of ``y_true`` and ``y_pred`` holds one value per field in ``fields`` order, None
    where the label (or the answer) lacks that field. Every field is scored on its own
    labelled rows (``outputs``); ``mae``, ``rmse`` and ``bias`` are the mean of the fields'
    values over the fields that have labelled rows, as scikit-learn's
    ``multioutput="uniform_average"``.

    Returns:
        ``n`` (rows with at least one labelled field), ``mae``, ``rmse``, ``bias``,
        ``unlabelled``, ``outputs`` (``{field: {n, mae, rmse, bias}}``) and ``notes``.

    Raises:
        MonitorError: the sequences differ in length, a row does not hold one value per
            field, or a value is not a finite number.
    """
    _check_lengths(y_true=y_true, y_pred=y_pred)
    width = len(fields)
    if any(len(t) != width or len(p) != width for t, p in zip(y_true, y_pred, strict=True)):
        raise MonitorError(f"every row must hold one value per output field ({width})")
    per: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(fields):
        pairs = [(t[i], p[i]) for t, p in zip(y_true, y_pred, strict=True)
                 if t[i] is not None and p[i] is not None]
        got = regression_metrics([t for t, _ in pairs], [p for _, p in pairs])
        per[name] = {k: got[k] for k in ("n", "mae", "rmse", "bias")}
    scored = [m for m in per.values() if m["mae"] is not None]
    n = sum(1 for t, p in zip(y_true, y_pred, strict=True)
            if any(a is not None and b is not None for a, b in zip(t, p, strict=True)))
    notes: list[str] = []
    out: dict[str, Any] = {"n": n, "mae": None, "rmse": None, "bias": None,
                           "unlabelled": len(y_true) - n, "outputs": per, "notes": notes}
    if not scored:
        notes.append("No labelled predictions: every metric is undefined.")
        return out
    out.update({k: sum(m[k] for m in scored) / len(scored) for k in ("mae", "rmse", "bias")})
    notes.append(f"mae, rmse and bias are the mean over the {len(scored)} labelled output "
                 f"field(s) of each field's own (outputs).")
    return out


def label_coverage(prediction_ts: Sequence[float], label_ts: Sequence[float | None], *,
                   window_end: float, expected_delay_s: float, now: float) -> dict[str, Any]:
    """How many of a window's predictions have their label, how late labels came, and
    whether more are expected.

    The window's labels are *complete* once ``now >= window_end + expected_delay_s``: by then
    even the window's last prediction has had the whole expected delay to get its label, so
    the quality measured is final (labels still arriving later are late, not missing).

    ``state`` is:

    - ``no_predictions``: the window holds no prediction (nothing to measure);
    - ``complete``: as above, whatever the coverage (a low coverage is then a finding);
    - ``waiting``: labels may still come; quality so far is provisional.

    Args:
        prediction_ts: each prediction's time (unix seconds).
        label_ts: when each prediction's label arrived, ``None`` when it has none yet.
        window_end: the window's end (unix seconds, exclusive).
        expected_delay_s: how long labels take to arrive (``parse_duration('2d')``).
        now: the time of the evaluation (unix seconds).

    Returns:
        ``predictions``, ``labelled``, ``coverage`` (labelled share, None with no
        predictions), ``delay_p50_s``/``delay_p90_s`` (label arrival minus prediction time,
        None without labels), ``expected_by`` (``window_end + expected_delay_s``),
        ``complete``, ``state`` and ``notes``.

    Raises:
        MonitorError: lengths differ, a time is not a finite number, or the delay is < 0.
    """
    import numpy as np

    _check_lengths(prediction_ts=prediction_ts, label_ts=label_ts)
    delay_arr = finite_floats([expected_delay_s], "expected label delay (seconds)")
    if delay_arr[0] < 0:
        raise MonitorError(f"The expected label delay must be >= 0 seconds; "
                           f"got {expected_delay_s!r}.")
    end_now = finite_floats([window_end, now], "window_end / now (unix seconds)")
    pred = finite_floats(prediction_ts, "prediction time")
    labelled = [i for i, t in enumerate(label_ts) if t is not None]
    arrived = finite_floats([label_ts[i] for i in labelled], "label time")
    delays = arrived - pred[labelled]
    expected_by = float(end_now[0] + delay_arr[0])
    complete = bool(end_now[1] >= expected_by)
    notes: list[str] = []
    state = "no_predictions" if len(pred) == 0 else "complete" if complete else "waiting"
    early = int((delays < 0).sum())
    if early:
        notes.append(f"{early} label(s) are dated before their prediction (clock skew or a "
                     f"label time that is the observation's, not the arrival's).")
    p50, p90 = (np.percentile(delays, [50, 90]).tolist() if len(delays) else (None, None))
    return {"predictions": len(pred), "labelled": len(labelled),
            "coverage": len(labelled) / len(pred) if len(pred) else None,
            "delay_p50_s": p50, "delay_p90_s": p90, "expected_by": expected_by,
            "complete": complete, "state": state, "notes": notes}


__all__ = [
    "COVERAGE_STATES",
    "average_ranks",
    "classification_metrics",
    "finite_floats",
    "label_coverage",
    "multioutput_regression_metrics",
    "parse_duration",
    "rank_auc",
    "regression_metrics",
    "sorted_labels",
    "tie_groups",
]

"""CBPE for classifiers of three or more classes: one-vs-rest calibration, as NannyML does.

:mod:`~keelwork.core.monitors.cbpe` estimates a binary classifier from the calibrated chance of
its positive class. A k-class model gives a probability row per prediction; NannyML's
multi-class CBPE ("Estimation of Performance of Multiclass Classification Models") calibrates
each class's column one-vs-rest on the labelled reference (an isotonic :class:`Calibrator` of
"the label is c" on the model's probability of c), normalises each calibrated row to sum to 1,
and reads the expected confusion matrix off it: a prediction of class ``j`` whose calibrated
row is ``p`` adds ``p[i]`` to the expected count of (true ``i``, predicted ``j``). From that
matrix come the expected accuracy (the mean of ``p[predicted]``) and the macro precision,
recall and F1 (per class as ratios of expected counts, averaged over the classes where they are
defined, as :func:`~keelwork.core.monitors.quality.classification_metrics` averages realised
ones); the macro ROC AUC averages each class's one-vs-rest expected AUC (the binary module's
pair formula with that class's calibrated chance and the model's score of it).

The predicted class is the model's: the column of the largest probability (its ``predict``).
Bands, reference chunks, the alert rule and what CBPE cannot see (concept drift) are the binary
module's, unchanged: the band is the central 95 % of the realised metric when each window label
is drawn from its calibrated row.

Pure logic; numpy is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keelwork.core.monitors.cbpe import (
    CBPE_KIND,
    Calibrator,
    CBPEReference,
    _expected,
    estimate_performance,
    isotonic,
)
from keelwork.core.monitors.cbpe_base import (
    BAND_COVERAGE,
    DEFAULT_SAMPLES,
    METRICS,
    ChunkedReference,
    check_samples,
    chunk_deviation,
    chunk_size_of,
    draws_per_batch,
)
from keelwork.core.monitors.profile import check_kind
from keelwork.core.monitors.quality import average_ranks
from keelwork.errors import MonitorError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float64]
    IntArray = npt.NDArray[np.int64]

MULTICLASS_KIND = "keelwork.cbpe-multiclass-reference"
MULTICLASS_VERSION = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class MulticlassCBPEReference(ChunkedReference):
    """What :func:`estimate_multiclass` needs from the reference period.

    Attributes:
        classes: The model's classes, in the column order of its probabilities.
        calibrators: One per class: the model's probability of it -> the chance it is true.

    and the reference statistics of :class:`~keelwork.core.monitors.cbpe_base.ChunkedReference`
    (``n``, macro ``metrics``, ``chunk_size``, ``chunks``, ``chunk_std``), as the binary
    reference holds them.
    """

    classes: tuple[str, ...]
    calibrators: tuple[Calibrator, ...]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-compatible view; :meth:`from_dict` reads it back."""
        return {"kind": MULTICLASS_KIND, "version": MULTICLASS_VERSION, "method": "cbpe",
                "task": "multiclass", "classes": list(self.classes), **self.stats_dict(),
                "calibrators": [c.as_dict() for c in self.calibrators]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MulticlassCBPEReference:
        """Inverse of :meth:`as_dict`.

        Raises:
            MonitorError: another kind, a newer version, or a malformed field.
        """
        check_kind(data, MULTICLASS_KIND, MULTICLASS_VERSION, "A multi-class CBPE reference")
        try:
            classes = tuple(str(c) for c in data["classes"])
            calibrators = tuple(Calibrator.from_dict(c) for c in data["calibrators"])
            if len(classes) != len(calibrators) or len(classes) < 3:
                raise ValueError(f"{len(classes)} classes and {len(calibrators)} calibrators")
            return cls(classes=classes, calibrators=calibrators, **cls.stats_from(data))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MonitorError(f"A multi-class CBPE reference is malformed: {exc!r}.") from None


def cbpe_from_dict(data: Mapping[str, Any]) -> CBPEReference | MulticlassCBPEReference:
    """A stored CBPE reference of either kind (binary or multi-class)."""
    if isinstance(data, Mapping) and data.get("kind") == MULTICLASS_KIND:
        return MulticlassCBPEReference.from_dict(data)
    return CBPEReference.from_dict(data)


# --------------------------------------------------------------------------- arrays
def probability_rows(rows: Sequence[Sequence[float]] | Any, k: int, what: str) -> FloatArray:
    """``rows`` as an ``(n, k)`` array of finite numbers.

    Raises:
        MonitorError: a row is not ``k`` numbers, or a value is not finite; names the row.
    """
    import numpy as np

    if len(rows) == 0:
        return np.zeros((0, k))
    try:
        arr = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.ndim != 2 or (len(arr) and arr.shape[1] != k):
        for i, row in enumerate(rows):
            if not isinstance(row, Sequence) or len(row) != k:
                raise MonitorError(f"Every {what} must be a row of {k} probabilities (one "
                                   f"per class); got {row!r} at position {i}.")
        raise MonitorError(f"Every {what} must be a row of {k} numbers.")
    if len(arr) == 0:
        return arr.reshape(0, k)
    bad = np.argwhere(~np.isfinite(arr))
    if len(bad):
        i = int(bad[0][0])
        raise MonitorError(f"Every {what} must hold finite numbers; got {arr[i].tolist()!r} "
                           f"at position {i}.")
    return arr


def _calibrated(calibrators: Sequence[Calibrator], scores: FloatArray) -> FloatArray:
    """Each class's calibrated chance, rows normalised to sum to 1 (uniform where all 0)."""
    import numpy as np

    k = len(calibrators)
    p = np.column_stack([c.predict(scores[:, j]) for j, c in enumerate(calibrators)]) \
        if len(scores) else np.zeros((0, k))
    total = p.sum(axis=1, keepdims=True)
    return np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / k)


# --------------------------------------------------------------------------- metrics
def _macro(values: Sequence[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return sum(defined) / len(defined) if defined else None


def _expected_mc(p: FloatArray, s: FloatArray, pred: IntArray) -> dict[str, Any]:
    """Expected macro metrics and confusion matrix from calibrated rows ``p``."""
    import numpy as np

    n, k = p.shape
    if n == 0:
        return {**dict.fromkeys(METRICS), "confusion": None}
    onehot = np.zeros((n, k))
    onehot[np.arange(n), pred] = 1.0
    confusion = p.T @ onehot  # [true i, predicted j]: expected counts
    tp = np.diag(confusion)
    predicted = confusion.sum(axis=0)
    support = confusion.sum(axis=1)
    precision = [float(tp[c] / predicted[c]) if predicted[c] > 0 else None for c in range(k)]
    recall = [float(tp[c] / support[c]) if support[c] > 1e-12 else None for c in range(k)]
    f1 = [float(2 * tp[c] / (predicted[c] + support[c]))
          if predicted[c] + support[c] > 1e-12 else None for c in range(k)]
    aucs = [_expected(p[:, c], s[:, c], s[:, c] >= 0.5)["roc_auc"] for c in range(k)]
    return {"accuracy": float(tp.sum() / n), "precision": _macro(precision),
            "recall": _macro(recall), "f1": _macro(f1), "roc_auc": _macro(aucs),
            "confusion": confusion}


def _draws_mc(p: FloatArray, s: FloatArray, pred: IntArray, samples: int, seed: int,
              ) -> dict[str, FloatArray]:
    """Each macro metric realised under ``samples`` label draws from the rows of ``p``."""
    import numpy as np

    n, k = p.shape
    rng = np.random.default_rng(seed)
    cum = np.cumsum(p, axis=1)
    cum[:, -1] = 1.0
    ranks = [average_ranks(s[:, c]) for c in range(k)]
    said = [(pred == c).astype(float) for c in range(k)]
    predicted = np.array([float(x.sum()) for x in said])
    parts: dict[str, list[FloatArray]] = {m: [] for m in METRICS}
    batch = draws_per_batch(n * k)
    with np.errstate(divide="ignore", invalid="ignore"):
        for start in range(0, samples, batch):
            b = min(batch, samples - start)
            u = rng.random((b, n, 1))
            y = (u > cum[None, :, :]).sum(axis=2)  # (b, n): a class index per row
            per = {m: np.full((b, k), np.nan) for m in ("precision", "recall", "f1", "auc")}
            correct = np.zeros(b)
            for c in range(k):
                is_c = (y == c).astype(float)
                pos = is_c.sum(axis=1)
                hit = is_c @ said[c]
                correct += hit
                per["precision"][:, c] = np.where(predicted[c] > 0, hit / predicted[c], np.nan)
                per["recall"][:, c] = np.where(pos > 0, hit / pos, np.nan)
                per["f1"][:, c] = np.where(predicted[c] + pos > 0,
                                           2 * hit / (predicted[c] + pos), np.nan)
                mw = (is_c @ ranks[c] - pos * (pos + 1) / 2) / (pos * (n - pos))
                per["auc"][:, c] = np.where((pos > 0) & (pos < n), mw, np.nan)
            parts["accuracy"].append(correct / n)
            for m, key in (("precision", "precision"), ("recall", "recall"), ("f1", "f1"),
                           ("roc_auc", "auc")):
                defined = ~np.isnan(per[key])
                total = np.where(defined, per[key], 0.0).sum(axis=1)
                count = defined.sum(axis=1)
                parts[m].append(np.where(count > 0, total / np.maximum(count, 1), np.nan))
    return {m: np.concatenate(v) for m, v in parts.items()}


# --------------------------------------------------------------------------- fit / estimate
def fit_cbpe_multiclass(proba: Sequence[Sequence[float]], labels: Sequence[Any],
                        classes: Sequence[Any], *,
                        chunk_size: int | None = None) -> MulticlassCBPEReference:
    """Fits multi-class CBPE on a labelled reference.

    Args:
        proba: The model's probability row per reference row (columns in ``classes``
            order), in time order.
        labels: The true labels, as long as ``proba``; each one of ``classes`` (compared as
            text, so ``1`` and ``"1"`` are one class).
        classes: The model's classes (three or more).
        chunk_size: Rows per reference chunk; default a tenth of the reference.

    Raises:
        MonitorError: fewer than three classes, lengths differ, a row is not one probability
            per class, a label is missing or not a class, fewer than two classes occur in
            the labels, or fewer than two full chunks.
    """
    import numpy as np

    names = tuple(str(c) for c in classes)
    k = len(names)
    if k < 3:
        raise MonitorError(f"Multi-class CBPE needs three or more classes; got {list(names)} "
                           f"(two classes: the binary CBPE).")
    if len(proba) != len(labels):
        raise MonitorError(f"Probability rows and labels must be as long as each other; got "
                           f"{len(proba)} and {len(labels)}.")
    s = probability_rows(proba, k, "probability row")
    index = {c: i for i, c in enumerate(names)}
    y = np.empty(len(labels), dtype=np.int64)
    for i, v in enumerate(labels):
        if v is None or str(v) not in index:
            raise MonitorError(f"Every reference label must be one of the model's classes "
                               f"({', '.join(names)}); got {v!r} at position {i}.")
        y[i] = index[str(v)]
    if len(set(y.tolist())) < 2:
        raise MonitorError(f"A CBPE reference needs at least two classes in its labels; got "
                           f"only {names[int(y[0])] if len(y) else 'none'!r}.")
    n = len(s)
    size = chunk_size_of(n, chunk_size)
    calibrators = []
    for c in range(k):
        kx, ky = isotonic(s[:, c], (y == c).astype(float))
        calibrators.append(Calibrator(x=tuple(kx.tolist()), y=tuple(ky.tolist()),
                                      positive=names[c], n=n))
    p = _calibrated(calibrators, s)
    pred = s.argmax(axis=1)
    chunks = n // size
    per_chunk = [_expected_mc(p[i * size:(i + 1) * size], s[i * size:(i + 1) * size],
                              pred[i * size:(i + 1) * size]) for i in range(chunks)]
    onehot = np.zeros((n, k))
    onehot[np.arange(n), y] = 1.0
    realised = _expected_mc(onehot, s, pred)
    return MulticlassCBPEReference(classes=names, calibrators=tuple(calibrators), n=n,
                                   metrics={m: realised[m] for m in METRICS},
                                   chunk_size=size, chunks=chunks,
                                   chunk_std=chunk_deviation(per_chunk))


def estimate_multiclass(ref: MulticlassCBPEReference, proba: Sequence[Sequence[float]], *,
                        samples: int = DEFAULT_SAMPLES, seed: int = 0) -> dict[str, Any]:
    """Expected macro metrics of a window from its probability rows alone.

    Returns:
        What :func:`~keelwork.core.monitors.cbpe.estimate_performance` returns (``method``,
        ``n``, each metric with its ``<metric>_band``, ``reference``, ``alert_limit``,
        ``alert``, ``alerted``, ``notes``) with ``task`` ``multiclass``, ``average``
        ``macro``, ``classes`` and ``confusion`` (expected counts, ``{true: {predicted:
        count}}``) in place of ``threshold``/``positive``.

    Raises:
        MonitorError: a row is not one finite probability per class, or ``samples`` is
            negative.
    """
    import numpy as np

    check_samples(samples)
    k = len(ref.classes)
    s = probability_rows(proba, k, "probability row")
    n = len(s)
    notes: list[str] = []
    p = _calibrated(ref.calibrators, s)
    pred = s.argmax(axis=1) if n else np.zeros(0, dtype=np.int64)
    estimates = _expected_mc(p, s, pred)
    bands: dict[str, list[float] | None] = dict.fromkeys(METRICS)
    if n == 0:
        notes.append("No probability rows in the window: every estimate is undefined.")
    elif samples:
        tail = (1.0 - BAND_COVERAGE) / 2 * 100
        for m, values in _draws_mc(p, s, pred, samples, seed).items():
            ok = values[~np.isnan(values)]
            if estimates[m] is not None and len(ok):
                bands[m] = np.percentile(ok, [tail, 100 - tail]).tolist()
    if n == 1:
        notes.append("roc_auc is undefined for a single prediction (it ranks pairs).")
    confusion = estimates["confusion"]
    out: dict[str, Any] = {"method": "cbpe", "task": "multiclass", "average": "macro",
                           "n": n, "classes": list(ref.classes)}
    for m in METRICS:
        out[m] = estimates[m]
        out[f"{m}_band"] = bands[m]
    out["confusion"] = None if confusion is None else {
        t: {q: float(confusion[i, j]) for j, q in enumerate(ref.classes)}
        for i, t in enumerate(ref.classes)}
    out.update(**ref.alerts(estimates, n), notes=notes)
    return out


def estimate(ref: CBPEReference | MulticlassCBPEReference, scores: Sequence[Any], *,
             samples: int = DEFAULT_SAMPLES, seed: int = 0) -> dict[str, Any]:
    """Either kind's estimate: binary scores of the positive class, or probability rows."""
    if isinstance(ref, MulticlassCBPEReference):
        return estimate_multiclass(ref, scores, samples=samples, seed=seed)
    return estimate_performance(ref, scores, samples=samples, seed=seed)


__all__ = [
    "CBPE_KIND",
    "MULTICLASS_KIND",
    "MULTICLASS_VERSION",
    "MulticlassCBPEReference",
    "cbpe_from_dict",
    "estimate",
    "estimate_multiclass",
    "fit_cbpe_multiclass",
    "probability_rows",
]

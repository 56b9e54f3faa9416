"""Performance estimated without labels: confidence-based performance estimation (CBPE).

Labels come late or never; a binary classifier's scores come at once. If the scores, once
calibrated, are the probability that the positive class is true, then each prediction's
expected contribution to the confusion matrix is known without its label -- a prediction
said positive with calibrated probability ``p`` adds ``p`` to the expected true positives and
``1 - p`` to the false positives -- and so are the expected accuracy, precision, recall, F1
and ROC AUC of a whole window. This is NannyML's CBPE (its documentation, "Estimation of
Performance of Binary Classification Models"), rebuilt on numpy:

1. :func:`fit_cbpe` takes a labelled *reference* (data the model has not been trained on,
   from a period when it was known to work): it fits a :class:`Calibrator` of scores to
   probabilities, measures the realised metrics, and estimates each metric on consecutive
   reference chunks of ``chunk_size`` to learn how much a window's estimate moves by chance.
2. :func:`estimate_performance` calibrates a window's scores and returns each expected metric
   with a sampling band and an alert flag.

What it assumes, and so what it cannot see: the relation between score and truth,
``P(y | score)``, is the reference's (no *concept* drift). It follows covariate shift -- a
window of harder or easier cases moves the scores and so the estimate -- but a world in
which the same score now means a different chance of being right goes unnoticed; only
labels (:mod:`~keelwork.core.monitors.quality`) show that.

Choices:

- Calibration is isotonic regression fitted by pool-adjacent-violators (PAV): monotone,
  free of a parametric shape, and what NannyML uses. scikit-learn's ``IsotonicRegression``
  does the same, but scikit-learn is not a base dependency (the base install has numpy and
  pyarrow only), and PAV is thirty lines. Between knots the calibrator interpolates linearly
  and clips outside them, exactly as ``IsotonicRegression(out_of_bounds="clip")`` predicts.
  Fitted in-sample, isotonic calibration is slightly over-confident on new data, and coarse
  where the reference is sparse (its tails): on synthetic data with exact probabilities and
  20,000 reference rows this adds about 0.005-0.01 to the error of the estimates.
- Expected precision, recall and F1 are ratios of expected counts (as NannyML computes
  them), not expected ratios; the band shows the difference where it matters (small windows).
- Expected ROC AUC is the expected number of correctly ordered (positive, negative) pairs
  over the expected number of such pairs: with calibrated ``p``,
  ``sum_{i != j} p_i (1 - p_j) ([s_i > s_j] + [s_i == s_j] / 2)`` over
  ``sum_{i != j} p_i (1 - p_j)``, computed in ``O(n log n)`` from the sorted scores. It is the
  Mann-Whitney form of the area under NannyML's expected ROC curve, without the ``i == j``
  terms that curve counts (a prediction cannot be paired with itself).
- The band of a metric is the central 95% of its *realised* value when the window's labels
  are drawn as ``Bernoulli(p)`` (``samples`` = 200 draws, fixed ``seed``: the same window
  gives the same band). It is what the realised metric would be if the calibration holds;
  it leaves out the calibrator's own error.
- Alert: a metric alerts when its estimate falls below the reference's realised value minus
  three standard deviations of the estimate across reference chunks (``ddof=1``). One-sided,
  because a better model is not an incident; three sigma because it is the Shewhart
  control-chart limit NannyML also uses by default: a window drawn like the reference crosses
  it about once in 700 (normal approximation). A window smaller than ``chunk_size`` is
  noisier than the chunks the deviation was measured on, so its deviation is widened by
  ``sqrt(chunk_size / n)``; a larger window keeps the reference's (never narrowed, so that
  a big window does not alert on a shift too small to matter).

Pure logic; numpy is imported inside the functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from keelwork.core.monitors.cbpe_base import (
    ALERT_SIGMAS,
    BAND_COVERAGE,
    DEFAULT_CHUNKS,
    DEFAULT_SAMPLES,
    METRICS,
    ChunkedReference,
    check_samples,
    chunk_deviation,
    chunk_size_of,
    draws_per_batch,
)
from keelwork.core.monitors.profile import check_kind
from keelwork.core.monitors.quality import (
    average_ranks,
    finite_floats,
    sorted_labels,
    tie_groups,
)
from keelwork.errors import MonitorError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float64]
    BoolArray = npt.NDArray[np.bool_]

CALIBRATOR_KIND = "keelwork.calibrator"
CALIBRATOR_VERSION = 1
CBPE_KIND = "keelwork.cbpe-reference"
CBPE_VERSION = 1


# --------------------------------------------------------------------------- calibration
@dataclass(frozen=True, slots=True)
class Calibrator:
    """A monotone map from a score to the probability that the positive class is true.

    ``x`` are increasing score knots, ``y`` the non-decreasing probabilities at them; a score
    between knots is interpolated linearly, one outside them clipped to the end knot.
    """

    x: tuple[float, ...]
    y: tuple[float, ...]
    positive: Any = None
    n: int = 0

    def predict(self, scores: Sequence[float] | FloatArray) -> FloatArray:
        """Calibrated probabilities of the positive class for ``scores``.

        Raises:
            MonitorError: a score is not a finite number.
        """
        import numpy as np

        return np.interp(finite_floats(scores, "score"), self.x, self.y)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-compatible view; :meth:`from_dict` reads it back."""
        return {"kind": CALIBRATOR_KIND, "version": CALIBRATOR_VERSION, "method": "isotonic",
                "positive": self.positive, "n": self.n, "x": list(self.x), "y": list(self.y)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibrator:
        """Inverse of :meth:`as_dict`.

        Raises:
            MonitorError: another kind, a newer version, or knots that are not a calibrator.
        """
        check_kind(data, CALIBRATOR_KIND, CALIBRATOR_VERSION, "A calibrator")
        try:
            x = tuple(float(v) for v in data["x"])
            y = tuple(float(v) for v in data["y"])
            n = int(data.get("n", 0))
        except (KeyError, TypeError, ValueError) as exc:
            raise MonitorError(f"A calibrator needs number lists 'x' and 'y'; got {exc!r}.",
                               ) from None
        ok = (len(x) == len(y) >= 1 and all(map(math.isfinite, x + y))
              and all(a < b for a, b in pairwise(x))
              and all(a <= b for a, b in pairwise(y))
              and y[0] >= 0.0 and y[-1] <= 1.0)
        if not ok:
            raise MonitorError("A calibrator's 'x' must increase and its 'y' must be "
                               "non-decreasing probabilities, as long as 'x'; got "
                               f"x={list(x)[:5]}..., y={list(y)[:5]}...")
        return cls(x=x, y=y, positive=data.get("positive"), n=n)


def _binary_labels(labels: Sequence[Any], positive: Any) -> tuple[BoolArray, Any]:
    """Labels as booleans (True: ``positive``), inferring the sorted-last class."""
    import numpy as np

    missing = next((i for i, v in enumerate(labels) if v is None), None)
    if missing is not None:
        raise MonitorError(f"Every reference label must be given; got None at position "
                           f"{missing}.")
    classes = sorted_labels(labels)
    if positive is None:
        if len(classes) != 2:
            raise MonitorError(f"The positive class can only be inferred from two classes; "
                               f"got {classes!r}. Pass positive=.")
        positive = classes[-1]
    others = [c for c in classes if c != positive]
    if len(others) > 1:
        raise MonitorError(f"CBPE estimates binary classifiers: the labels must hold "
                           f"{positive!r} and one other class; got {classes!r}.")
    return np.array([v == positive for v in labels], dtype=bool), positive


def isotonic(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Least-squares non-decreasing fit of ``y`` on ``x`` by pool-adjacent-violators.

    Equal ``x`` are pooled first (their mean ``y``, weighted by count), as scikit-learn does.

    Returns:
        the knots: each block's first and last distinct ``x`` with the block's value.
    """
    import numpy as np

    ux, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    means = np.bincount(inverse, weights=y) / counts
    # The stack of blocks: value, weight, index of the block's first distinct x.
    values: list[float] = []
    weights: list[float] = []
    starts: list[int] = []
    for i, (m, w) in enumerate(zip(means.tolist(), counts.tolist(), strict=True)):
        values.append(m)
        weights.append(float(w))
        starts.append(i)
        while len(values) > 1 and values[-2] >= values[-1]:
            # Pool equal neighbours too: fewer knots, same fit.
            w2 = weights.pop()
            v2 = values.pop()
            starts.pop()
            total = weights[-1] + w2
            values[-1] = (values[-1] * weights[-1] + v2 * w2) / total
            weights[-1] = total
    ends = [*starts[1:], len(ux)]
    knots_x: list[float] = []
    knots_y: list[float] = []
    for v, s, e in zip(values, starts, ends, strict=True):
        knots_x.append(float(ux[s]))
        knots_y.append(v)
        if e - 1 > s:
            knots_x.append(float(ux[e - 1]))
            knots_y.append(v)
    return np.array(knots_x), np.array(knots_y)


def fit_calibrator(scores: Sequence[float], labels: Sequence[Any], *,
                   positive: Any | None = None) -> Calibrator:
    """Fits an isotonic calibrator of ``scores`` to the chance that the label is ``positive``.

    Args:
        scores: the model's scores (any monotone confidence: a probability, a margin).
        labels: the true labels, as long as ``scores``.
        positive: the positive class; default the sorted-last of the two classes.

    Raises:
        MonitorError: empty input, lengths differ, a score is not finite, a label is None,
            or the labels hold more than two classes.
    """
    if len(scores) != len(labels):
        raise MonitorError(f"Scores and labels must be as long as each other; got "
                           f"{len(scores)} and {len(labels)}.")
    if len(scores) == 0:
        raise MonitorError("A calibrator needs at least one labelled score; got none.")
    s = finite_floats(scores, "score")
    y, positive = _binary_labels(labels, positive)
    kx, ky = isotonic(s, y.astype(float))
    return Calibrator(x=tuple(kx.tolist()), y=tuple(ky.tolist()), positive=positive,
                      n=len(s))


#: Scores past which :func:`_draws` draws the label sums from their normal law.
EXACT_DRAWS_MAX = 10_000


# --------------------------------------------------------------------------- metrics
def _expected(p: FloatArray, s: FloatArray, said: BoolArray) -> dict[str, float | None]:
    """Expected metrics from calibrated probabilities ``p`` (ratios of expected counts)."""
    import numpy as np

    n = len(p)
    if n == 0:
        return dict.fromkeys(METRICS)
    tp = float(p[said].sum())
    fp = float(said.sum()) - tp
    fn = float(p[~said].sum())
    tn = float(n - tp - fp - fn)
    out: dict[str, float | None] = {
        "accuracy": (tp + tn) / n,
        "precision": tp / (tp + fp) if tp + fp > 0 else None,
        "recall": tp / (tp + fn) if tp + fn > 0 else None,
        "f1": 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn > 0 else None,
        "roc_auc": None,
    }
    # Expected ordered pairs: each i weighs p_i as a positive against the negative weight
    # (1 - p_j) of every other j scored lower, and half of those scored the same.
    neg = 1.0 - p
    inverse, _ = tie_groups(s)
    neg_at = np.bincount(inverse, weights=neg)
    neg_below = np.cumsum(neg_at) - neg_at
    num = float((p * (neg_below[inverse] + 0.5 * (neg_at[inverse] - neg))).sum())
    den = float(p.sum() * neg.sum() - (p * neg).sum())
    if den > 1e-12:
        out["roc_auc"] = num / den
    return out


def _realised(y: BoolArray, s: FloatArray, said: BoolArray) -> dict[str, float | None]:
    """The metrics realised with labels ``y`` (same formulas, counts instead of expectations)."""
    # With 0/1 "probabilities" the pair formula is exactly the Mann-Whitney AUC (None on a
    # single class, as quality.rank_auc).
    return _expected(y.astype(float), s, said)


def _draws(p: FloatArray, s: FloatArray, said: BoolArray, samples: int, seed: int,
           ) -> dict[str, FloatArray]:
    """Each metric realised under ``samples`` label draws ``y ~ Bernoulli(p)`` (NaN: undefined)."""
    import numpy as np

    n = len(p)
    rng = np.random.default_rng(seed)
    ranks = average_ranks(s)
    said_f = said.astype(float)
    pred_pos = float(said.sum())
    parts: dict[str, list[FloatArray]] = {m: [] for m in METRICS}
    batch = draws_per_batch(n)
    # Every metric reads three sums of the labels: positives, true positives and the
    # positives' rank sum. Past EXACT_DRAWS_MAX scores they are drawn from their joint normal
    # law (exact means and covariances; the central limit theorem over n independent labels
    # leaves nothing visible in a 95 % band) in O(n) rather than O(samples * n).
    normal = n > EXACT_DRAWS_MAX
    if normal:
        v = p * (1.0 - p)
        weights = np.stack([np.ones(n), said_f, ranks])
        mean = weights @ p
        cov = (weights * v) @ weights.T
        sums = rng.multivariate_normal(mean, cov, size=samples, check_valid="ignore")
    with np.errstate(divide="ignore", invalid="ignore"):
        for start in range(0, samples, samples if normal else batch):
            if normal:
                pos, tp, rank_sum = sums.T
            else:
                y = (rng.random((min(batch, samples - start), n)) < p).astype(float)
                pos, tp, rank_sum = y.sum(axis=1), y @ said_f, y @ ranks
            fp = pred_pos - tp
            fn = pos - tp
            parts["accuracy"].append((n - fp - fn) / n)
            parts["precision"].append(np.where(pred_pos > 0, tp / pred_pos, np.nan))
            parts["recall"].append(np.where(pos > 0, tp / pos, np.nan))
            parts["f1"].append(np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn),
                                        np.nan))
            mw = (rank_sum - pos * (pos + 1) / 2) / (pos * (n - pos))
            parts["roc_auc"].append(np.where((pos > 0) & (pos < n), mw, np.nan))
    return {m: np.concatenate(v) for m, v in parts.items()}


# --------------------------------------------------------------------------- reference
@dataclass(frozen=True, slots=True, kw_only=True)
class CBPEReference(ChunkedReference):
    """What :func:`estimate_performance` needs from the reference period.

    Attributes:
        calibrator: scores -> probability of ``positive``.
        threshold: a score ``>= threshold`` is predicted positive.
        positive: the positive class.

    and the reference statistics of :class:`~keelwork.core.monitors.cbpe_base.ChunkedReference`
    (``n``, ``metrics``, ``chunk_size``, ``chunks``, ``chunk_std``).
    """

    calibrator: Calibrator
    threshold: float
    positive: Any

    def as_dict(self) -> dict[str, Any]:
        """A JSON-compatible view; :meth:`from_dict` reads it back."""
        return {"kind": CBPE_KIND, "version": CBPE_VERSION, "method": "cbpe",
                "threshold": self.threshold, "positive": self.positive, **self.stats_dict(),
                "calibrator": self.calibrator.as_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CBPEReference:
        """Inverse of :meth:`as_dict`.

        Raises:
            MonitorError: another kind, a newer version, or a malformed field.
        """
        check_kind(data, CBPE_KIND, CBPE_VERSION, "A CBPE reference")
        try:
            return cls(calibrator=Calibrator.from_dict(data["calibrator"]),
                       threshold=float(data["threshold"]), positive=data.get("positive"),
                       **cls.stats_from(data))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MonitorError(f"A CBPE reference is malformed: {exc!r}.") from None


def fit_cbpe(scores: Sequence[float], labels: Sequence[Any], *, positive: Any | None = None,
             threshold: float = 0.5, chunk_size: int | None = None) -> CBPEReference:
    """Fits CBPE on a labelled reference.

    Args:
        scores: the model's score of the positive class per reference row, in time order
            (chunks are consecutive rows, as a monitor's windows are).
        labels: the true labels, as long as ``scores``; two classes.
        positive: the positive class; default the sorted-last of the two.
        threshold: the score at and above which the model predicts ``positive``.
        chunk_size: rows per reference chunk for the alert deviation; default a tenth of
            the reference. Use about the size of a monitoring window. A trailing partial
            chunk is left out.

    Raises:
        MonitorError: lengths differ, a score or the threshold is not finite, a label is
            None, the labels do not hold exactly two classes, or there are fewer than two
            full chunks.
    """
    if len(scores) != len(labels):
        raise MonitorError(f"Scores and labels must be as long as each other; got "
                           f"{len(scores)} and {len(labels)}.")
    thr = float(finite_floats([threshold], "threshold")[0])
    s = finite_floats(scores, "score")
    y, positive = _binary_labels(labels, positive)
    if y.all() or not y.any():
        raise MonitorError(f"A CBPE reference needs both classes in its labels; got only "
                           f"{'the positive' if y.any() else 'the negative'} class "
                           f"(positive={positive!r}).")
    n = len(s)
    size = chunk_size_of(n, chunk_size)
    kx, ky = isotonic(s, y.astype(float))
    calibrator = Calibrator(x=tuple(kx.tolist()), y=tuple(ky.tolist()), positive=positive, n=n)
    p = calibrator.predict(s)
    said = s >= thr
    chunks = n // size
    per_chunk = [_expected(p[i * size:(i + 1) * size], s[i * size:(i + 1) * size],
                           said[i * size:(i + 1) * size]) for i in range(chunks)]
    return CBPEReference(calibrator=calibrator, threshold=thr, positive=positive, n=n,
                         metrics=_realised(y, s, said), chunk_size=size, chunks=chunks,
                         chunk_std=chunk_deviation(per_chunk))


# --------------------------------------------------------------------------- estimation
def estimate_performance(ref: CBPEReference, scores: Sequence[float], *,
                         samples: int = DEFAULT_SAMPLES, seed: int = 0) -> dict[str, Any]:
    """Expected metrics of a window from its scores alone.

    Args:
        ref: from :func:`fit_cbpe`.
        scores: the window's scores of the positive class.
        samples: label draws for the bands (0: no bands).
        seed: the draws' seed, so a window always gets the same band.

    Returns:
        ``method`` (``"cbpe"``), ``n``, ``threshold``, ``positive``; per metric in
        :data:`METRICS` its estimate (``accuracy``, ...; None where undefined), its
        ``<metric>_band`` (``[low, high]``, the central 95% of the realised metric under
        ``Bernoulli(p)`` labels, or None); ``reference`` (the reference's realised values),
        ``alert_limit`` (reference value minus 3 scaled chunk deviations, None where
        unknown), ``alert`` (metric -> bool, None where it cannot be judged), ``alerted``
        (the metrics that alert) and ``notes``.

    Raises:
        MonitorError: a score is not finite, or ``samples`` is negative.
    """
    import numpy as np

    check_samples(samples)
    s = finite_floats(scores, "score")
    n = len(s)
    notes: list[str] = []
    p = ref.calibrator.predict(s)
    said = s >= ref.threshold
    estimates = _expected(p, s, said)
    bands: dict[str, list[float] | None] = dict.fromkeys(METRICS)
    if n == 0:
        notes.append("No scores in the window: every estimate is undefined.")
    else:
        if n == 1:
            notes.append("roc_auc is undefined for a single score (it ranks pairs).")
        if estimates["precision"] is None:
            notes.append("precision is undefined: no score reaches the threshold "
                         f"{ref.threshold}.")
        if estimates["recall"] is None:
            notes.append("recall is undefined: the calibrated chance of a positive is 0 "
                         "for every score.")
        if estimates["roc_auc"] is None and n > 1:
            notes.append("roc_auc is undefined: every score is calibrated to a certain "
                         "class, leaving no uncertain pair to rank.")
        if samples:
            tail = (1.0 - BAND_COVERAGE) / 2 * 100
            for m, values in _draws(p, s, said, samples, seed).items():
                ok = values[~np.isnan(values)]
                if estimates[m] is not None and len(ok):
                    low, high = np.percentile(ok, [tail, 100 - tail]).tolist()
                    bands[m] = [low, high]
                    if len(ok) < len(values):
                        notes.append(f"{m}_band: {len(values) - len(ok)} of {len(values)} "
                                     f"label draws left {m} undefined; the band is of the "
                                     f"rest.")
    out: dict[str, Any] = {"method": "cbpe", "n": n, "threshold": ref.threshold,
                           "positive": ref.positive}
    for m in METRICS:
        out[m] = estimates[m]
        out[f"{m}_band"] = bands[m]
    out.update(**ref.alerts(estimates, n), notes=notes)
    return out


__all__ = [
    "ALERT_SIGMAS",
    "BAND_COVERAGE",
    "CALIBRATOR_KIND",
    "CALIBRATOR_VERSION",
    "CBPE_KIND",
    "CBPE_VERSION",
    "DEFAULT_CHUNKS",
    "DEFAULT_SAMPLES",
    "METRICS",
    "CBPEReference",
    "Calibrator",
    "estimate_performance",
    "fit_calibrator",
    "fit_cbpe",
    "isotonic",
]

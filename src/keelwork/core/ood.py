"""Out-of-distribution scores for tabular inputs, calibrated to a false-positive rate (pure,
numpy).

Two detectors look at an instance differently:

- a **robust Mahalanobis distance**: each column mapped to normal scores through its
  reference quantiles (so a skewed column weighs like the others; beyond the reference's range,
  linear in MAD units), covariance of the central rows (those within the 90% quantile of the
  norm), so a few outliers in the reference do not inflate it; it sees joint structure (a
  combination of values never seen together);
- a **histogram density score** (HBOS-like, "isolation-style"): per column, the negative log
  frequency of the value's bin in the reference (categories: their frequency), summed; it sees
  values in empty regions of one column that a covariance misses.

Each score becomes its rank among the calibration rows' scores (an empirical p-value), and
the two are fused by their maximum rank. The threshold is a split-conformal quantile: the
reference rows are split in a fitting half and a calibration half; the fused score of a
reference-like instance then exceeds the ``ceil((n + 1) (1 - alpha))``-th calibration score
with probability at most ``alpha`` (exchangeability), and close to it for large ``n``: the
realised false-positive rate on fresh reference-like data is ``alpha`` up to sampling noise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import Any

import numpy as np

#: Bins of a numeric column's histogram.
BINS = 20
#: Quantiles of each numeric column kept for its normal scores, and their normal values.
_PROBS = np.linspace(0.0, 1.0, 101)
_ZQ = np.array([NormalDist().inv_cdf(min(max(p, 0.0005), 0.9995)) for p in _PROBS])
_EPS = 1e-9


@dataclass(frozen=True)
class OodDetector:
    """A fitted detector (:func:`fit`); :meth:`to_dict` / :meth:`from_dict` store it."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    median: tuple[float, ...]
    scale: tuple[float, ...]
    quantiles: tuple[tuple[float, ...], ...]
    precision: tuple[tuple[float, ...], ...]
    edges: tuple[tuple[float, ...], ...]
    log_freq: tuple[tuple[float, ...], ...]
    cat_log_freq: tuple[Mapping[str, float], ...]
    cat_floor: tuple[float, ...]
    calib_maha: tuple[float, ...]
    calib_hist: tuple[float, ...]
    threshold: float
    alpha: float

    # ------------------------------------------------------------------ scoring
    def _matrix(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        x = np.full((len(rows), len(self.numeric)), np.nan)
        for i, r in enumerate(rows):
            for j, c in enumerate(self.numeric):
                v = r.get(c)
                if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                    x[i, j] = float(v)
        return x

    def _normal_scores(self, x: np.ndarray) -> np.ndarray:
        """Each column mapped to normal scores through the reference's quantiles (skewed
        columns then weigh like the others), linear in robust units beyond the reference's
        range so far-out values stay far; missing values are 0 (no evidence)."""
        z = np.zeros_like(x)
        for j in range(x.shape[1]):
            q, col = np.asarray(self.quantiles[j]), x[:, j]
            inner = np.interp(col, q, _ZQ)
            sc = self.scale[j]
            inner = np.where(col > q[-1], _ZQ[-1] + (col - q[-1]) / sc, inner)
            inner = np.where(col < q[0], _ZQ[0] - (q[0] - col) / sc, inner)
            z[:, j] = np.where(np.isnan(col), 0.0, inner)
        return z

    def raw_scores(self, rows: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """The two detectors' scores of ``rows`` (higher: stranger)."""
        x = self._matrix(rows)
        z = self._normal_scores(x)
        prec = np.asarray(self.precision)
        maha = np.einsum("ij,jk,ik->i", z, prec, z) if len(self.numeric) else np.zeros(len(rows))
        hist = np.zeros(len(rows))
        for j, _c in enumerate(self.numeric):
            edges, lf = np.asarray(self.edges[j]), np.asarray(self.log_freq[j])
            col = x[:, j]
            idx = np.searchsorted(edges, col, side="right") - 1
            inside = (idx >= 0) & (idx < len(lf)) & ~np.isnan(col)
            out_score = -math.log(_EPS)  # outside the reference's range: never seen
            part = np.where(inside, -lf[np.clip(idx, 0, len(lf) - 1)], out_score)
            hist += np.where(np.isnan(col), 0.0, part)  # missing: no evidence
        for k, c in enumerate(self.categorical):
            freqs, floor = self.cat_log_freq[k], self.cat_floor[k]
            # missing: no evidence, as for a numeric value
            hist += np.array([0.0 if (v := r.get(c)) is None else -freqs.get(str(v), floor)
                              for r in rows])
        return maha, hist

    def fused(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The fused score: the larger of the two calibration ranks, in [0, 1]."""
        maha, hist = self.raw_scores(rows)
        fused: np.ndarray = np.maximum(_rank(self.calib_maha, maha),
                                       _rank(self.calib_hist, hist))
        return fused

    def flags(self, rows: Sequence[Mapping[str, Any]]) -> list[bool]:
        """Whether each row is out of distribution (fused score above the threshold)."""
        return [bool(v) for v in self.fused(rows) > self.threshold]

    # ------------------------------------------------------------------ storing
    def to_dict(self) -> dict[str, Any]:
        return {"kind": "keelwork.ood_detector", "version": 1, "numeric": list(self.numeric),
                "categorical": list(self.categorical), "median": list(self.median),
                "scale": list(self.scale),
                "quantiles": [list(q) for q in self.quantiles],
                "precision": [list(r) for r in self.precision],
                "edges": [list(e) for e in self.edges],
                "log_freq": [list(f) for f in self.log_freq],
                "cat_log_freq": [dict(m) for m in self.cat_log_freq],
                "cat_floor": list(self.cat_floor), "calib_maha": list(self.calib_maha),
                "calib_hist": list(self.calib_hist), "threshold": self.threshold,
                "alpha": self.alpha}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OodDetector:
        return cls(tuple(d["numeric"]), tuple(d["categorical"]), tuple(d["median"]),
                   tuple(d["scale"]), tuple(tuple(q) for q in d["quantiles"]),
                   tuple(tuple(r) for r in d["precision"]),
                   tuple(tuple(e) for e in d["edges"]), tuple(tuple(f) for f in d["log_freq"]),
                   tuple(dict(m) for m in d["cat_log_freq"]), tuple(d["cat_floor"]),
                   tuple(d["calib_maha"]), tuple(d["calib_hist"]), float(d["threshold"]),
                   float(d["alpha"]))


def _rank(calib: Sequence[float], scores: np.ndarray) -> np.ndarray:
    """The share of calibration scores strictly below each score."""
    ref = np.asarray(calib)
    return np.searchsorted(ref, scores, side="left") / max(1, len(ref))


def fit(rows: Sequence[Mapping[str, Any]], numeric: Sequence[str], categorical: Sequence[str],
        *, alpha: float = 0.01, seed: int = 0) -> OodDetector:
    """Fit on half of ``rows`` and calibrate on the other half for false-positive rate
    ``alpha``.

    Raises:
        ValueError: fewer than 200 rows, or no column to look at.
    """
    if len(rows) < 200:
        raise ValueError(f"the out-of-distribution guard needs at least 200 reference rows; "
                         f"got {len(rows)}")
    if not numeric and not categorical:
        raise ValueError("the out-of-distribution guard needs numeric or category inputs")
    order = np.random.default_rng(seed).permutation(len(rows))
    half = len(rows) // 2
    fit_rows = [rows[i] for i in order[:half]]
    cal_rows = [rows[i] for i in order[half:]]
    base = OodDetector(tuple(numeric), tuple(categorical), (), (), (), (), (), (), (), (), (),
                       (), 1.0, alpha)
    x = base._matrix(fit_rows)
    med = np.nanmedian(x, axis=0) if numeric else np.zeros(0)
    mad = np.nanmedian(np.abs(x - med), axis=0) * 1.4826 if numeric else np.zeros(0)
    std = np.nanstd(x, axis=0) if numeric else np.zeros(0)
    scale = np.where(mad > _EPS, mad, np.where(std > _EPS, std, 1.0))
    quantiles = tuple(tuple(float(v) for v in np.nanquantile(x[:, j], _PROBS))
                      if not np.all(np.isnan(x[:, j])) else tuple(float(p) for p in _PROBS)
                      for j in range(len(numeric)))
    z = replace(base, scale=tuple(float(v) for v in scale),
                quantiles=quantiles)._normal_scores(x)
    norms = np.sqrt((z ** 2).sum(axis=1)) if numeric else np.zeros(len(fit_rows))
    central = z[norms <= np.quantile(norms, 0.9)] if numeric else z
    cov = np.cov(central, rowvar=False).reshape(len(numeric), len(numeric)) if numeric \
        else np.zeros((0, 0))
    precision = np.linalg.pinv(cov + np.eye(len(numeric)) * 1e-6) if numeric else cov
    edges, log_freq = [], []
    for j in range(len(numeric)):
        col = x[:, j][~np.isnan(x[:, j])]
        lo, hi = (float(col.min()), float(col.max())) if len(col) else (0.0, 1.0)
        e = np.linspace(lo, hi if hi > lo else lo + 1.0, BINS + 1)
        counts, _ = np.histogram(col, bins=e)
        edges.append(tuple(float(v) for v in e))
        log_freq.append(tuple(float(v) for v in np.log((counts + 0.5) / (len(col) + 0.5 * BINS))))
    cat_maps, floors = [], []
    for c in categorical:
        values = [str(v) for r in fit_rows if (v := r.get(c)) is not None]
        uniq, counts = np.unique(values, return_counts=True)
        total = len(values) + 1.0
        cat_maps.append({str(u): float(math.log(n / total)) for u, n in zip(uniq, counts,
                                                                          strict=True)})
        floors.append(float(math.log(0.5 / total)))
    fitted = OodDetector(
        tuple(numeric), tuple(categorical), tuple(float(v) for v in med),
        tuple(float(v) for v in scale), quantiles,
        tuple(tuple(float(v) for v in r) for r in precision),
        tuple(edges), tuple(log_freq), tuple(cat_maps), tuple(floors), (), (), 1.0, alpha)
    maha, hist = fitted.raw_scores(cal_rows)
    # Ranks against the calibration scores themselves, fused; the conformal quantile of those.
    ranked = replace(fitted, calib_maha=tuple(sorted(float(v) for v in maha)),
                     calib_hist=tuple(sorted(float(v) for v in hist)))
    fused = np.sort(ranked.fused(cal_rows))
    n = len(fused)
    k = min(n, math.ceil((n + 1) * (1 - alpha)))
    return replace(ranked, threshold=float(fused[k - 1]))


__all__ = ["BINS", "OodDetector", "fit"]

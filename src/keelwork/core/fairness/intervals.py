"""Confidence intervals of group rates and of the disparities between groups.

Why these: a group of 12 labelled answers with 3 selected has a selection rate of 0.25 whose
95 % interval runs from about 0.09 to 0.53. Comparing point estimates would page on such a
group every other window. The disparity alerts therefore read an interval, and fire only when
the whole interval lies beyond the threshold.

- A rate ``x / n`` gets the Wilson score interval (Wilson 1927; Brown, Cai & DasGupta 2001
  recommend it over the normal approximation, which collapses to a point at 0 or n). A rate of
  no trials (a group without actual positives, for TPR) gets ``[0, 1]``: it says nothing.
- A field's groups are compared at once, so their intervals are made simultaneous with a
  Bonferroni correction: each interval of ``m`` is taken at confidence ``1 - (1 - c) / m``, so
  all ``m`` hold together with probability at least ``c``.
- When every group's interval holds, the difference between groups (largest minus smallest)
  lies in ``[max(lo) - min(hi), max(hi) - min(lo)]`` (floored at 0), and the ratio (smallest
  over largest) in ``[min(lo) / max(hi), min(hi) / max(lo)]`` (capped at 1). Equalized odds
  (the worse of the TPR and FPR disparities) takes the TPR and FPR intervals together (``2m``
  of them) and combines their bounds the same way (the larger differences, the smaller
  ratios).

These bounds are conservative (the true coverage is at least ``c``, often more), deterministic
(no bootstrap draw to seed) and cost nothing per window: what an alert on a live service needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

Interval = tuple[float, float]


def z_value(confidence: float) -> float:
    """The two-sided normal quantile of ``confidence`` (1.96 for 0.95)."""
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(successes: int, trials: int, confidence: float) -> Interval:
    """The Wilson score interval of ``successes / trials`` (``[0, 1]`` without trials)."""
    if trials <= 0:
        return (0.0, 1.0)
    z = z_value(confidence)
    z2 = z * z
    p = successes / trials
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z / (1 + z2 / trials) * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return (max(0.0, centre - half), min(1.0, centre + half))


def simultaneous(parts: Sequence[tuple[int, int]], confidence: float,
                 family: int | None = None) -> list[Interval]:
    """Wilson intervals of ``parts`` (``(successes, trials)`` each) that hold together with
    probability at least ``confidence`` (Bonferroni over ``family`` intervals, default
    ``len(parts)``)."""
    m = max(1, family if family is not None else len(parts))
    each = 1 - (1 - confidence) / m
    return [wilson(x, n, each) for x, n in parts]


def difference_interval(bounds: Sequence[Interval]) -> Interval:
    """Where largest minus smallest lies when every group's rate is within its bounds."""
    los, his = [b[0] for b in bounds], [b[1] for b in bounds]
    return (max(0.0, max(los) - min(his)), max(his) - min(los))


def ratio_interval(bounds: Sequence[Interval]) -> Interval:
    """Where smallest over largest lies when every group's rate is within its bounds."""
    los, his = [b[0] for b in bounds], [b[1] for b in bounds]
    lo = min(los) / max(his) if max(his) > 0 else 0.0
    hi = min(1.0, min(his) / max(los)) if max(los) > 0 else 1.0
    return (lo, hi)


__all__ = ["Interval", "difference_interval", "ratio_interval", "simultaneous", "wilson",
           "z_value"]

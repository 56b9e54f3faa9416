"""Mean and sum of squared deviations of a numeric column: computed, merged and stored so that
values near the float64 limit neither crash nor silently poison later windows.

A finite float64 can be as large as ~1.8e308, so the squared deviations of a value above
~1.3e154 do not fit in a float64 whatever the method. Moments are therefore computed on values
scaled by their largest magnitude (:func:`moments`): the mean is then always finite (it lies
between the minimum and the maximum), and only ``m2`` can overflow, to ``+inf`` -- "the spread
is beyond float64", never NaN. Merging (:func:`merge_moments`, Chan's formula) keeps that
meaning: an infinite ``m2`` stays infinite, two means of opposite huge signs are combined as a
weighted sum (their difference would overflow), and an empty side leaves the other unchanged.

JSON has no infinities (orjson writes them as ``null``, ``json.dumps(allow_nan=False)``
refuses them), so a non-finite moment is stored as the text ``"inf"``, ``"-inf"`` or ``"nan"``
(:func:`encode_moment`). A ``null`` moment was written by an older keelwork whose moments had
overflowed; :func:`decode_moment` reads it as unknown: a NaN mean and an infinite ``m2``.

Pure logic: numpy is imported inside the functions.
"""

from __future__ import annotations

import math
from typing import Any

#: Above this magnitude values are scaled before their moments are taken (squares of values
#: below it, summed over any realistic count, stay far below the float64 limit).
SCALE_ABOVE = 1e100


def moments(finite: Any) -> tuple[float, float]:
    """``(mean, m2)`` of a float64 array of finite values (``(0.0, 0.0)`` when empty).

    Below :data:`SCALE_ABOVE` this is the plain two-pass computation; above, the values are
    divided by their largest magnitude first, so the mean is exact to rounding and ``m2`` is
    ``+inf`` only where its true value exceeds float64.
    """
    import numpy as np

    if not finite.size:
        return 0.0, 0.0
    top = float(np.abs(finite).max())
    if top <= SCALE_ABOVE:
        mean = float(finite.mean())
        return mean, float(((finite - mean) ** 2).sum())
    scaled = finite / top
    mean = float(scaled.mean())
    m2 = float(((scaled - mean) ** 2).sum())
    return mean * top, m2 * top * top  # Python floats: an overflow is inf, not a warning


def merge_moments(n_a: int, mean_a: float, m2_a: float, n_b: int, mean_b: float,
                  m2_b: float) -> tuple[float, float]:
    """``(mean, m2)`` of two groups of ``n_a`` and ``n_b`` values together (Chan's formula;
    see the module docstring for non-finite moments)."""
    n = n_a + n_b
    if not n:
        return 0.0, 0.0
    if not n_b:
        return mean_a, m2_a
    if not n_a:
        return mean_b, m2_b
    delta = mean_b - mean_a
    if math.isfinite(delta):
        mean = mean_a + delta * n_b / n
        spread = delta * delta * n_a * n_b / n
    else:  # opposite huge means (or an unknown one): the weighted sum cannot overflow
        mean = mean_a * (n_a / n) + mean_b * (n_b / n)
        spread = math.inf
    m2 = m2_a + m2_b + spread
    return mean, m2 if math.isfinite(m2) else math.inf


def encode_moment(value: float) -> float | str:
    """``value`` as JSON can hold it: itself when finite, else ``"inf"``/``"-inf"``/``"nan"``."""
    return value if math.isfinite(value) else str(value)


def decode_moment(value: Any, *, spread: bool) -> float:
    """Read :func:`encode_moment` back; ``None`` (an older keelwork's overflowed moment) is
    unknown: ``+inf`` for ``m2`` (``spread=True``), NaN for the mean."""
    if value is None:
        return math.inf if spread else math.nan
    if isinstance(value, str) and value not in ("inf", "-inf", "nan"):
        raise ValueError(f"a stored moment must be a number, 'inf', '-inf' or 'nan'; "
                         f"got {value!r}")
    return float(value)


__all__ = ["SCALE_ABOVE", "decode_moment", "encode_moment", "merge_moments", "moments"]

"""The numeric kernels of the batch contract check: integer and float rules over numpy values.

Each kernel adds to a :data:`Masks` dict one boolean mask per broken rule (``min``, ``max``,
``finite``, ``category``, ``type``). Integer bounds are compared exactly (a float bound is
rounded toward the allowed side, a bound beyond the dtype's range decided without a cast);
float columns are checked in one pass that finds the few *suspects* before sorting them
into rules. Called by :func:`keelwork.core.contracts.kernels.check_array`.

Pure: no I/O; numpy is imported inside the functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

from keelwork.core.contracts.record import FLOAT64_MAX, INT64_MAX, INT64_MIN
from keelwork.spec.contract import FieldSpec

Masks = dict[str, Any]  # rule -> numpy bool array, True where the value breaks the rule
_TWO_63: Final = 2.0**63


def every(valid: Any, n: int) -> Any:
    """A mask set at every valid value (every value when ``valid`` is None)."""
    import numpy as np

    return np.ones(n, dtype=bool) if valid is None else valid.copy()


def keep(masks: Masks, rule: str, mask: Any, valid: Any) -> None:
    """Record ``mask`` (restricted to ``valid`` values) under ``rule`` if any value breaks it."""
    if valid is not None:
        mask &= valid
    if mask.any():
        masks[rule] = mask


def _int_bounds(spec: FieldSpec) -> tuple[int | None, int | None]:
    """min/max as integers: for an integer value v, v >= min iff v >= ceil(min)."""
    lo = hi = None
    if spec.min is not None:
        lo = math.ceil(spec.min) if math.isfinite(spec.min) else (
            None if spec.min < 0 else INT64_MAX + 2**64)
    if spec.max is not None:
        hi = math.floor(spec.max) if math.isfinite(spec.max) else (
            None if spec.max > 0 else INT64_MIN - 2**64)
    return lo, hi


def _below(v: Any, bound: int) -> Any:
    import numpy as np

    info = np.iinfo(v.dtype)
    if bound > info.max:
        return np.ones(len(v), dtype=bool)
    if bound <= info.min:
        return np.zeros(len(v), dtype=bool)
    return v < v.dtype.type(bound)


def _above(v: Any, bound: int) -> Any:
    import numpy as np

    info = np.iinfo(v.dtype)
    if bound < info.min:
        return np.ones(len(v), dtype=bool)
    if bound >= info.max:
        return np.zeros(len(v), dtype=bool)
    return v > v.dtype.type(bound)


def isin(v: Any, members: Sequence[int | float]) -> Any:
    """Where ``v`` holds one of ``members`` (those outside ``v``'s integer dtype never match)."""
    import numpy as np

    if v.dtype.kind in "iu":
        info = np.iinfo(v.dtype)
        members = [m for m in members if info.min <= m <= info.max]
    return np.isin(v, np.asarray(members, dtype=v.dtype))


def integer_values(spec: FieldSpec, v: Any, valid: Any, masks: Masks) -> None:
    """Range (and, for integer fields, category) rules for integer values ``v``."""
    import numpy as np

    lo, hi = _int_bounds(spec)
    if spec.type == "integer":
        below = _below(v, lo) if lo is not None else np.zeros(len(v), dtype=bool)
        above = ~below & (_above(v, hi) if hi is not None else False)
        if v.dtype.kind == "u":
            above |= ~below & _above(v, INT64_MAX)
        keep(masks, "min", below, valid)
        keep(masks, "max", above, valid)
        ints = [c for c in spec.categories or [] if type(c) is int]
        if spec.categories:
            keep(masks, "category", ~(below | above) & ~isin(v, ints), valid)
    else:  # float: an integer only needs to fit min/max (every int64 fits a float64)
        below = _below(v, lo) if lo is not None else np.zeros(len(v), dtype=bool)
        keep(masks, "min", below, valid)
        if hi is not None:
            keep(masks, "max", ~below & _above(v, hi), valid)


def float_bounds(spec: FieldSpec) -> tuple[float, float]:
    """``[low, high]`` a float value of ``spec`` must lie in to be above suspicion.

    Outside it (NaN included, and infinities unless ``allow_nan``) a value is a *suspect*
    that :func:`sort_float_suspects` sorts into rules.

    Args:
        spec: A float field.

    Returns:
        ``(low, high)``.
    """
    edge = math.inf if spec.allow_nan else FLOAT64_MAX
    return (spec.min if spec.min is not None else -edge,
            spec.max if spec.max is not None else edge)


def sort_float_suspects(spec: FieldSpec, suspects: Any, x: Any) -> dict[str, Any]:
    """The rules the suspect values ``x`` (at rows ``suspects``) of a float field break.

    Args:
        spec: A float field.
        suspects: numpy int64 rows, ascending.
        x: Their values (float64).

    Returns:
        ``{rule: rows}`` for ``finite``, ``min`` and ``max``, only for rules some row breaks.
    """
    import numpy as np

    out: dict[str, Any] = {}
    lo, hi = spec.min, spec.max
    if spec.allow_nan:
        checked = ~np.isnan(x)
    else:
        bad = ~np.isfinite(x)
        if bad.any():
            out["finite"] = suspects[bad]
        checked = ~bad
    below = (x < lo) & checked if lo is not None else np.zeros(len(x), dtype=bool)
    if below.any():
        out["min"] = suspects[below]
    if hi is not None:
        above = (x > hi) & checked & ~below
        if above.any():
            out["max"] = suspects[above]
    return out


def float_values(spec: FieldSpec, v: Any, valid: Any, masks: Masks) -> None:
    """All rules for floating values ``v`` (float64) of a float field.

    One pass finds the suspects (see :func:`float_bounds`); only those few are then sorted
    into rules.
    """
    import numpy as np

    low, high = float_bounds(spec)
    if valid is None and len(v):
        first, last = v.min(), v.max()  # NaN propagates: a clean array costs two passes
        if low <= first and last <= high:
            return
    suspects = np.flatnonzero(~((v >= low) & (v <= high)))
    if valid is not None:
        suspects = suspects[valid[suspects]]
    for rule, rows in sort_float_suspects(spec, suspects, v[suspects]).items():
        _set(masks, rule, rows, len(v))


def _set(masks: Masks, rule: str, rows: Any, n: int) -> None:
    import numpy as np

    if len(rows):
        mask = masks.get(rule)
        if mask is None:
            mask = masks[rule] = np.zeros(n, dtype=bool)
        mask[rows] = True


def integral_floats(spec: FieldSpec, v: Any, valid: Any, masks: Masks) -> None:
    """Integer and category fields over a floating column: integral values count as ints."""
    import numpy as np

    ints = [float(c) for c in spec.categories or [] if type(c) is int]
    if spec.type == "category" and not ints:
        keep(masks, "type", every(valid, len(v)), None)
        return
    with np.errstate(invalid="ignore"):
        integral = np.isfinite(v) & (v == np.floor(v))
    keep(masks, "type", ~integral, valid)
    if spec.type == "category":
        keep(masks, "category", integral & ~np.isin(v, ints), valid)
        return
    lo, hi = spec.min, spec.max
    with np.errstate(invalid="ignore"):
        below = integral & ((v < -_TWO_63) | ((v < lo) if lo is not None else False))
        above = integral & ~below & ((v >= _TWO_63) | ((v > hi) if hi is not None else False))
    keep(masks, "min", below, valid)
    keep(masks, "max", above, valid)
    if spec.categories:
        keep(masks, "category", integral & ~(below | above) & ~np.isin(v, ints), valid)


__all__ = ["Masks", "every", "float_bounds", "float_values", "integer_values", "integral_floats",
           "isin", "keep", "sort_float_suspects"]

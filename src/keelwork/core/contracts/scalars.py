"""Scalar fields of a contract (float, integer, boolean, string/text, category) as checks.

Each builder compiles a :class:`~keelwork.spec.contract.FieldSpec` into ``(ok, explain)``: a fast
predicate and the explainer of the values it refuses (see :mod:`keelwork.core.contracts.record`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

from keelwork.core.contracts.render import (
    FLOAT64_MAX,
    INT64_MAX,
    INT64_MIN,
    Problem,
    _categories_text,
    _range_problems,
    _show,
    _type_problem,
    safe_got,
)
from keelwork.spec.contract import FieldSpec

Ok = Callable[[Any], bool]
Explain = Callable[[Any], list[Problem]]

_INF = math.inf


def _category_problem(spec: FieldSpec, v: Any, text: str | None = None) -> Problem:
    """``v`` is none of ``spec``'s categories (``text``: them in words, when already known)."""
    text = text if text is not None else _categories_text(spec.categories or [])
    return ("category", safe_got(v), f"must be {text}; got {_show(v)}")


def _is_int(value: Any) -> bool:
    t = type(value)
    if t is int:
        return True
    return t is not float and isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    t = type(value)
    if t is float or t is int:
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _float_field(spec: FieldSpec) -> tuple[Ok, Explain]:
    lo, hi, allow_nan = spec.min, spec.max, spec.allow_nan
    # Integers must fit in a float64; floats without allow_nan must be finite.
    ilo = max(lo, -FLOAT64_MAX) if lo is not None else -FLOAT64_MAX
    ihi = min(hi, FLOAT64_MAX) if hi is not None else FLOAT64_MAX
    flo = lo if lo is not None else -_INF
    fhi = hi if hi is not None else _INF

    if allow_nan:
        def ok(v: Any) -> bool:
            t = type(v)
            return ((t is float and (v != v or flo <= v <= fhi))
                    or (t is int and ilo <= v <= ihi))
    else:
        def ok(v: Any) -> bool:
            t = type(v)
            return (t is float or t is int) and ilo <= v <= ihi

    def explain(v: Any) -> list[Problem]:
        if not _is_real(v):
            return [_type_problem("a number", v)]
        if _is_int(v):
            return _range_problems(int(v), lo, hi, -FLOAT64_MAX, FLOAT64_MAX, "float64")
        number = float(v)
        if not math.isfinite(number):
            if not allow_nan:
                return [("finite", safe_got(v), f"must be a finite number; got {_show(v)}")]
            if number != number:
                return []
        return _range_problems(number, lo, hi, -_INF, _INF, "float64")

    return ok, explain


def _typed_set(categories: Sequence[Any]) -> frozenset[tuple[type, Any]]:
    return frozenset((type(c), c) for c in categories)


def _integer_field(spec: FieldSpec) -> tuple[Ok, Explain]:
    lo, hi = spec.min, spec.max
    ilo = max(lo, INT64_MIN) if lo is not None else INT64_MIN
    ihi = min(hi, INT64_MAX) if hi is not None else INT64_MAX
    cats = _typed_set(spec.categories) if spec.categories else None

    def ok(v: Any) -> bool:
        return type(v) is int and ilo <= v <= ihi and (cats is None or (int, v) in cats)

    def explain(v: Any) -> list[Problem]:
        if not _is_int(v):
            hint = ""
            if isinstance(v, float) and v.is_integer():
                hint = f"; a float is not accepted even with an integral value, send {int(v)}"
            return [_type_problem("an integer", v, hint)]
        problems = _range_problems(int(v), lo, hi, INT64_MIN, INT64_MAX, "int64")
        if not problems and cats is not None and (int, int(v)) not in cats:
            problems.append(_category_problem(spec, v))
        return problems

    return ok, explain


def _boolean_field(spec: FieldSpec) -> tuple[Ok, Explain]:
    def ok(v: Any) -> bool:
        return v is True or v is False

    def explain(v: Any) -> list[Problem]:
        return [] if isinstance(v, bool) else [_type_problem("a boolean", v)]

    return ok, explain


def _string_field(spec: FieldSpec) -> tuple[Ok, Explain]:
    lo = spec.min_length or 0
    hi = spec.max_length
    ok_hi = hi if hi is not None else INT64_MAX
    cats = _typed_set(spec.categories) if spec.categories else None

    def ok(v: Any) -> bool:
        return type(v) is str and lo <= len(v) <= ok_hi and (cats is None or (str, v) in cats)

    def explain(v: Any) -> list[Problem]:
        if not isinstance(v, str):
            return [_type_problem("a string", v)]
        problems: list[Problem] = []
        if len(v) < lo:
            problems.append(("min_length", safe_got(v), f"must be at least {lo} characters long; "
                             f"got {len(v)} characters"))
        if hi is not None and len(v) > hi:
            problems.append(("max_length", safe_got(v), f"must be at most {hi} characters long; "
                             f"got {len(v)} characters"))
        if cats is not None and (str, str(v)) not in cats:
            problems.append(_category_problem(spec, v))
        return problems

    return ok, explain


def _category_field(spec: FieldSpec) -> tuple[Ok, Explain]:
    categories = list(spec.categories or [])
    typed = _typed_set(categories)
    kinds = frozenset(type(c) for c in categories)
    strings = frozenset(c for c in categories if type(c) is str)
    text = _categories_text(categories)

    if kinds == {str}:
        def ok(v: Any) -> bool:
            return type(v) is str and v in strings
    else:
        def ok(v: Any) -> bool:
            return type(v) in kinds and (type(v), v) in typed

    def explain(v: Any) -> list[Problem]:
        k: type | None = (bool if isinstance(v, bool) else str if isinstance(v, str)
                          else int if _is_int(v) else None)
        if k is None or k not in kinds:
            return [_type_problem(text, v)]
        if (k, k(v)) in typed:
            return []
        return [_category_problem(spec, v, text)]

    return ok, explain


__all__ = ["Explain", "Ok"]

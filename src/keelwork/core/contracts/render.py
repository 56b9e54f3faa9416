"""How contract problems read: JSON-safe ``got`` values, messages and one-line summaries.

A :data:`Problem` is ``(rule, got, clause)``; :func:`safe_got` keeps ``got`` short and JSON-safe,
and a clause reads after the field name ("must be >= 0; got -3"). Pure Python, no numpy.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, Final

from keelwork.errors import ErrorDetail

#: (rule, got, clause); the clause reads after the field name: "must be >= 0; got -3".
Problem = tuple[str, Any, str]

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
FLOAT64_MAX: Final = 1.7976931348623157e308
SUMMARY_ITEMS: Final = 5
_GOT_STR_LEN: Final = 80


class _Missing:
    """The value of a field absent from an object record."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Final = _Missing()


def _kind_of(value: Any) -> str:
    """Name the JSON kind of ``value`` for a message: "a string", "an integer", ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, numbers.Integral):
        return "an integer"
    if isinstance(value, numbers.Real):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"


def _short_str(text: str) -> str:
    if len(text) <= _GOT_STR_LEN:
        return text
    return f"{text[:_GOT_STR_LEN]}... ({len(text)} characters)"


def safe_got(value: Any) -> Any:
    """A JSON-safe, short rendering of ``value`` for ``ErrorDetail.got``.

    Long strings are cut to 80 characters, NaN/Infinity become strings, integers beyond int64
    become a digit count and containers other than short flat arrays become a description.

    Args:
        value: Anything a client sent.

    Returns:
        None, a bool, an int, a float, a str or a short list of those.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral):
        whole = int(value)
        return whole if INT64_MIN <= whole <= INT64_MAX else _big_int(whole)
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isfinite(number):
            return number
        return "NaN" if number != number else ("Infinity" if number > 0 else "-Infinity")
    if isinstance(value, str):
        return _short_str(value)
    if isinstance(value, list | tuple) and len(value) <= 8 and not any(
            isinstance(item, list | tuple | Mapping) for item in value):
        items = [safe_got(item) for item in value]
        if len(repr(items)) <= _GOT_STR_LEN:
            return items
    if isinstance(value, list | tuple):
        return f"<array of {len(value)} items>"
    if isinstance(value, Mapping):
        return f"<object with {len(value)} keys>"
    return f"<{type(value).__name__}>"


def _big_int(number: int) -> str:
    return f"{'-' if number < 0 else ''}an integer of {len(str(abs(number)))} digits"


def _show(value: Any, got: Any = _MISSING) -> str:
    """Render ``value`` in a message: ``-3``, ``'abc'``, ``null``, ``<array of 9 items>``."""
    if got is _MISSING:
        got = safe_got(value)
    if got is None:
        return "null"
    if isinstance(got, bool):
        return "true" if got else "false"
    if isinstance(got, str) and not isinstance(value, str):
        return got  # NaN, Infinity, "<object with 3 keys>", "an integer of 400 digits"
    if isinstance(got, float):
        return show_float(got)
    return repr(got)


def show_float(number: float) -> str:
    """A finite float as messages show it: ``3.0``, ``-2.5``, ``1e+16``.

    Args:
        number: A finite Python float.

    Returns:
        One decimal for integral values below 1e16, else ``repr``.
    """
    if number.is_integer() and abs(number) < 1e16:
        return f"{number:.1f}"
    return repr(number)


def _num(bound: float) -> str:
    if isinstance(bound, float) and bound.is_integer() and abs(bound) < 1e16:
        return str(int(bound))
    return repr(bound)


def _type_problem(expected: str, value: Any, hint: str = "") -> Problem:
    got = safe_got(value)
    return ("type", got, f"must be {expected}; got {_show(value, got)} ({_kind_of(value)}{hint})")


def _range_problems(value: Any, lo: float | None, hi: float | None,
                    lo_limit: float, hi_limit: float, limit_name: str) -> list[Problem]:
    """Check ``lo <= value <= hi``, falling back to the representable limits."""
    if lo is not None and value < lo:
        rule, bound, note = "min", lo, ""
    elif value < lo_limit:
        rule, bound, note = "min", lo_limit, f" (the {limit_name} minimum)"
    elif hi is not None and value > hi:
        rule, bound, note = "max", hi, ""
    elif value > hi_limit:
        rule, bound, note = "max", hi_limit, f" (the {limit_name} maximum)"
    else:
        return []
    got = safe_got(value)
    op = ">=" if rule == "min" else "<="
    return [(rule, got, f"must be {op} {_num(bound)}{note}; got {_show(value, got)}")]


def _categories_text(categories: Sequence[Any]) -> str:
    shown = ", ".join(_show(c) for c in categories[:10])
    more = f", ... ({len(categories)} categories)" if len(categories) > 10 else ""
    return f"one of {shown}{more}"


def _detail(path: str, problem: Problem, noun: str = "field") -> ErrorDetail:
    rule, got, clause = problem
    subject = f"The '{path}' {noun}" if path else f"The {noun}"
    return ErrorDetail(path=path, rule=rule, got=got, message=f"{subject} {clause}.")


def _clause(detail: ErrorDetail) -> str:
    """``detail.message`` without "The '...' field " and the final dot, prefixed by the path."""
    for noun in ("field", "record", "batch"):
        head = f"The '{detail.path}' {noun} " if detail.path else f"The {noun} "
        if detail.message.startswith(head) and detail.message.endswith("."):
            return f"{detail.path or noun} {detail.message[len(head):-1]}"
    return detail.message or f"{detail.path}: {detail.rule}"


def summarise(details: Sequence[ErrorDetail], limit: int = SUMMARY_ITEMS) -> str:
    """One line naming the first ``limit`` problems and counting the rest.

    Args:
        details: The problems, as :meth:`RecordValidator.validate_batch` returns them.
        limit: How many to spell out.

    Returns:
        E.g. "2 fields violate the contract: instances[0].age must be >= 0; got -3; ...".
    """
    n = len(details)
    head = f"{n} field{'s violate' if n != 1 else ' violates'} the contract: "
    shown = "; ".join(_clause(d) for d in details[:limit])
    return head + shown + (f"; and {n - limit} more" if n > limit else "")


__all__ = ["FLOAT64_MAX", "INT64_MAX", "INT64_MIN", "SUMMARY_ITEMS", "Problem", "safe_got",
           "show_float", "summarise"]

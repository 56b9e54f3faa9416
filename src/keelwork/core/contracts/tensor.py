"""Tensor fields of a contract: nested arrays checked for shape, dtype, range and finiteness.

A tensor is a (nested) list or tuple of numbers, a number (rank 0), or an object with ``shape``
and ``tolist`` (a numpy array, converted only on the slow path; numpy is never imported here).
"""

from __future__ import annotations

import math
from itertools import chain
from typing import Any, Final

from keelwork.core.contracts.render import (
    FLOAT64_MAX,
    INT64_MAX,
    INT64_MIN,
    Problem,
    _kind_of,
    _num,
    _show,
    _type_problem,
    safe_got,
)
from keelwork.core.contracts.scalars import Explain, Ok, _is_int, _is_real
from keelwork.spec.contract import FieldSpec

_FLOAT32_MAX: Final = 3.4028234663852886e38
_DTYPES: Final[dict[str | None, tuple[str, float, float]]] = {
    None: ("any", -FLOAT64_MAX, FLOAT64_MAX),
    "float32": ("float", -_FLOAT32_MAX, _FLOAT32_MAX),
    "float64": ("float", -FLOAT64_MAX, FLOAT64_MAX),
    "int32": ("int", -(2**31), 2**31 - 1),
    "int64": ("int", INT64_MIN, INT64_MAX),
    "bool": ("bool", 0, 1),
}
_LEAF_TYPES: Final = {"any": frozenset({int, float, bool}), "float": frozenset({int, float}),
                      "int": frozenset({int}), "bool": frozenset({bool})}
_ARRAYS: Final = frozenset({list, tuple})


def _structure(value: Any) -> tuple[list[int], list[Any], Problem | None]:
    """Flatten a nested list level by level: ``(dims, leaves, ragged-shape problem or None)``."""
    dims: list[int] = []
    level = [value]
    while level:
        kinds = set(map(type, level))
        if not kinds & _ARRAYS:
            break
        if not kinds <= _ARRAYS:
            return dims, level, ("shape", "ragged", "must be a rectangular nested array; got "
                                 f"arrays mixed with scalars at depth {len(dims)}")
        lengths = set(map(len, level))
        if len(lengths) > 1:
            a, b = sorted(lengths)[:2]
            return dims, level, ("shape", "ragged", "must be a rectangular nested array; got "
                                 f"rows of {a} and {b} values at depth {len(dims)}")
        dims.append(lengths.pop())
        level = list(chain.from_iterable(level))
    return dims, level, None


def _at(flat: int, dims: list[int]) -> str:
    index: list[int] = []
    for size in reversed(dims):
        flat, i = divmod(flat, size)
        index.append(i)
    return "".join(f"[{i}]" for i in reversed(index))


def _dimensions(shape: list[int]) -> str:
    return f" ({len(shape)} dimension{'' if len(shape) == 1 else 's'})"


def _tensor_field(spec: FieldSpec) -> tuple[Ok, Explain]:
    family, dlo, dhi = _DTYPES[spec.dtype]
    leaf_types = _LEAF_TYPES[family]
    lo, hi, allow_nan, want = spec.min, spec.max, spec.allow_nan, spec.shape
    elo = max(lo, dlo) if lo is not None else dlo
    ehi = min(hi, dhi) if hi is not None else dhi
    len_lo, len_hi = spec.min_length, spec.max_length
    holds = f"{spec.dtype} values" if spec.dtype else "numbers"
    elem_rule = "dtype" if spec.dtype else "type"

    def shape_problems(dims: list[int]) -> list[Problem]:
        problems: list[Problem] = []
        if want is not None:
            short_ok = bool(dims) and dims[-1] == 0 and len(dims) < len(want)  # [] of rows
            if (len(dims) != len(want) and not short_ok) or any(
                    w >= 0 and w != d for w, d in zip(want, dims, strict=False)):
                ranks = (_dimensions(want), _dimensions(dims)) if len(want) != len(dims) else (
                    "", "")
                problems.append(("shape", dims, f"must have shape {want}{ranks[0]}; got shape "
                                 f"{dims}{ranks[1]}"))
        if dims and len_lo is not None and dims[0] < len_lo:
            problems.append(("min_length", dims[0], f"must hold at least {len_lo} items; got "
                             f"{dims[0]}"))
        if dims and len_hi is not None and dims[0] > len_hi:
            problems.append(("max_length", dims[0], f"must hold at most {len_hi} items; got "
                             f"{dims[0]}"))
        return problems

    def leaves_ok(leaves: list[Any]) -> bool:
        if not set(map(type, leaves)) <= leaf_types:
            return False
        if not leaves or family == "bool":
            return True
        try:  # a finite sum means no NaN/Inf, so min() and max() are meaningful
            finite = math.isfinite(sum(leaves))
        except OverflowError:
            return False
        return finite and elo <= min(leaves) and max(leaves) <= ehi

    def element_problem(x: Any) -> Problem | None:
        if family == "bool" or isinstance(x, bool):
            if isinstance(x, bool) and family in ("bool", "any"):
                return None
            return (elem_rule, safe_got(x), f"must hold {holds}; got {_show(x)} ({_kind_of(x)})")
        if not (_is_int(x) if family == "int" else _is_real(x)):
            return (elem_rule, safe_got(x), f"must hold {holds}; got {_show(x)} ({_kind_of(x)})")
        number = int(x) if _is_int(x) else float(x)
        if isinstance(number, float) and not math.isfinite(number):
            if not allow_nan:
                return ("finite", safe_got(x), f"must hold finite numbers; got {_show(x)}")
            if number != number:
                return None
        if lo is not None and number < lo:
            return ("min", safe_got(x), f"must hold values >= {_num(lo)}; got {_show(x)}")
        if hi is not None and number > hi:
            return ("max", safe_got(x), f"must hold values <= {_num(hi)}; got {_show(x)}")
        if isinstance(number, float) and not math.isfinite(number):
            return None  # Infinity with allow_nan, inside the field's own range
        if not dlo <= number <= dhi:
            rule = elem_rule if spec.dtype else ("min" if number < dlo else "max")
            return (rule, safe_got(x), f"must hold {holds} between {_num(dlo)} and {_num(dhi)}"
                    f"; got {_show(x)}")
        return None

    def ok(v: Any) -> bool:
        if type(v) not in _ARRAYS:
            return False
        dims, leaves, ragged = _structure(v)
        return ragged is None and not shape_problems(dims) and leaves_ok(leaves)

    def explain(v: Any) -> list[Problem]:
        if hasattr(v, "shape") and callable(getattr(v, "tolist", None)):
            v = v.tolist()  # a numpy (or compatible) array: checked like the nested list it is
        if not (isinstance(v, list | tuple | bool) or _is_real(v)):
            return [_type_problem("a tensor (a nested array of numbers)", v)]
        dims, leaves, ragged = _structure(v)
        if ragged is not None:
            return [ragged]
        problems = shape_problems(dims)
        first: dict[str, Problem] = {}
        for i, x in enumerate(leaves):
            p = element_problem(x)
            if p is not None and p[0] not in first:
                first[p[0]] = (p[0], p[1], f"{p[2]} at {_at(i, dims)}" if dims else p[2])
        return problems + list(first.values())

    return ok, explain

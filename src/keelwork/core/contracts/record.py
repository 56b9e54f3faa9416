"""Per-record validation against the ``contract.inputs`` of keel.yaml, compiled once.

:func:`compile_contract` turns a :class:`~keelwork.spec.model.ContractSection` into a
:class:`RecordValidator`. Each field becomes two closures: ``ok`` (a cheap predicate run on
every request) and ``explain`` (run only on values ``ok`` refused, it builds the error details).
A valid record therefore costs one dict lookup and one small call per field. ``explain`` is the
authority: a value ``ok`` refuses but ``explain`` accepts (a numpy scalar, a ``str`` subclass)
passes.

Every problem becomes an :class:`~keelwork.errors.ErrorDetail` ``{path, rule, got, message}``;
all problems of all records are reported, never only the first. Rule names are stable API:

=============  =================================================================================
rule           meaning
=============  =================================================================================
required       a required field is absent from an object record
nullable       ``null`` for a field that is not ``nullable`` (``required: false`` alone only
               lets the field be absent; in an array record ``null`` there means absent)
type           wrong JSON type. No coercion: ``"3"`` is not a number, ``true`` is not an
               integer, ``3.0`` is not an integer (integers are accepted for float fields)
min            below ``min``; also integers below int64 / float64 for integer / float fields
max            above ``max``; also integers beyond int64 / float64 for integer / float fields
finite         NaN or +/-Infinity in a float field or tensor without ``allow_nan``
category       a value of the right type that is not one of ``categories``
min_length     shorter than ``min_length``. For string and text fields the length is Python's
               ``len``: Unicode code points, so an emoji is 1, a family emoji joined by ZWJs
               is 5, and "e" + a combining accent is 2. For tensors: the outermost length
max_length     longer than ``max_length`` (same length as ``min_length``)
shape          tensor rank or a dimension differs from ``shape`` (-1 = any size), or the
               nested arrays are ragged (then the elements are not checked)
dtype          a tensor element does not fit ``dtype`` (``3.5`` in int64, ``1e39`` in float32)
extra_field    a key not in the contract while ``extra_fields: reject``
record_type    the record is neither an object nor an array (or the batch is not an array)
arity          an array record holds a different number of values than the contract has inputs
=============  =================================================================================

``categories`` are compared by type and value (``true`` is not ``1``) and apply to category,
string, text and integer fields. A tensor is a (nested) list or tuple of numbers, a number
(rank 0), or an object with ``shape`` and ``dtype`` (a numpy array; numpy is imported only then).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from itertools import chain, compress, repeat
from operator import call, not_
from typing import Any, Final

from keelwork.errors import ContractViolation, ErrorDetail
from keelwork.spec.model import ContractSection, FieldSpec

#: (rule, got, clause); the clause reads after the field name: "must be >= 0; got -3".
Problem = tuple[str, Any, str]
Ok = Callable[[Any], bool]
Explain = Callable[[Any], list[Problem]]

RULES: Final = ("required", "nullable", "type", "min", "max", "finite", "category", "min_length",
                "max_length", "shape", "dtype", "extra_field", "record_type", "arity")
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
FLOAT64_MAX: Final = 1.7976931348623157e308
SUMMARY_ITEMS: Final = 5
_GOT_STR_LEN: Final = 80
_INF = math.inf


class _Missing:
    """The value of a field absent from an object record."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Final = _Missing()


# --------------------------------------------------------------------------- rendering
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
    if isinstance(got, float) and got.is_integer() and abs(got) < 1e16:
        return f"{got:.1f}"
    return repr(got)


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


# --------------------------------------------------------------------------- scalar fields
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
            problems.append(("category", safe_got(v),
                             f"must be {_categories_text(spec.categories or [])}; "
                             f"got {_show(v)}"))
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
            problems.append(("category", safe_got(v),
                             f"must be {_categories_text(spec.categories or [])}; "
                             f"got {_show(v)}"))
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
        return [("category", safe_got(v), f"must be {text}; got {_show(v)}")]

    return ok, explain


# --------------------------------------------------------------------------- tensor fields
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


# --------------------------------------------------------------------------- assembly
_BUILDERS: Final[dict[str, Callable[[FieldSpec], tuple[Ok, Explain]]]] = {
    "float": _float_field,
    "integer": _integer_field,
    "boolean": _boolean_field,
    "string": _string_field,
    "text": _string_field,
    "category": _category_field,
}


def compile_field(spec: FieldSpec) -> tuple[Ok, Explain]:
    """Compile one field into ``(ok, explain)``.

    ``ok(value)`` is a fast predicate (True: valid); ``explain(value)`` lists the problems of a
    value, ``[]`` when valid. ``value`` is ``MISSING`` when an object record lacks the field.

    Args:
        spec: The field of the contract.

    Returns:
        The predicate and the explainer.
    """
    if spec.type == "tensor":
        ok, body = _tensor_field(spec)
    else:
        ok, body = _BUILDERS[spec.type](spec)
    required, nullable = spec.required, spec.nullable

    def explain(v: Any) -> list[Problem]:
        if v is _MISSING:
            return [("required", None, "is required but was not given")] if required else []
        if v is None:
            return [] if nullable else [("nullable", None, "must not be null; got null")]
        return body(v)

    # Base predicates refuse None and MISSING (both fail every type test).
    if required and not nullable:
        return ok, explain
    if required:
        return (lambda v: v is None or ok(v)), explain
    if nullable:
        return (lambda v: v is None or v is _MISSING or ok(v)), explain
    return (lambda v: v is _MISSING or ok(v)), explain


# --------------------------------------------------------------------------- records
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


def _null_or(ok: Ok) -> Ok:
    return lambda v: v is None or ok(v)


class RecordValidator:
    """The compiled input contract: validates and normalises records; safe to share across threads.

    A record is an object (``dict`` or other mapping) keyed by field name, or an array (``list``
    or ``tuple``) holding one value per input in contract order. In an array record, ``null``
    at an optional (``required: false``) field means "absent", since it cannot be left out.
    """

    __slots__ = ("_absent_if_null", "_all_required", "_contract", "_explains", "_n", "_name_set",
                 "_names", "_oks", "_policy", "_pos_oks", "_reject")

    def __init__(self, contract: ContractSection) -> None:
        """Compile every input field once.

        Args:
            contract: The ``contract`` section of keel.yaml.
        """
        compiled = [compile_field(f) for f in contract.inputs]
        self._contract = contract
        self._names = tuple(f.name for f in contract.inputs)
        self._name_set = frozenset(self._names)
        self._oks = tuple(ok for ok, _ in compiled)
        # An array record cannot leave a field out: null stands for "absent" in optional fields.
        self._absent_if_null = tuple(not f.required for f in contract.inputs)
        self._pos_oks = tuple(_null_or(ok) if absent else ok
                              for ok, absent in zip(self._oks, self._absent_if_null, strict=True))
        self._explains = tuple(explain for _, explain in compiled)
        self._n = len(self._names)
        self._policy = contract.extra_fields
        self._reject = contract.extra_fields == "reject"
        self._all_required = all(f.required for f in contract.inputs)

    @property
    def contract(self) -> ContractSection:
        """The contract this validator was compiled from."""
        return self._contract

    @property
    def field_names(self) -> tuple[str, ...]:
        """The input field names, in contract order (the order of array records)."""
        return self._names

    def _valid(self, record: Any) -> bool:
        """The fast path: True when ``record`` is certainly valid."""
        kind = type(record)
        if kind is dict:
            if not all(map(call, self._oks, map(record.get, self._names, repeat(_MISSING)))):
                return False
            # All fields required and all present: the same length means no extra key.
            return (not self._reject or (self._all_required and len(record) == self._n)
                    or record.keys() <= self._name_set)
        if kind is list or kind is tuple:
            return len(record) == self._n and all(map(call, self._pos_oks, record))
        return False

    def _explain(self, record: Any, base: str) -> list[ErrorDetail]:
        """The slow path: every problem of ``record``; ``base`` is its own path."""
        is_mapping = type(record) is dict or isinstance(record, Mapping)
        if is_mapping:
            values: Sequence[Any] = list(map(record.get, self._names, repeat(_MISSING)))
        elif isinstance(record, list | tuple):
            if len(record) != self._n:
                return [_detail(base, ("arity", f"<array of {len(record)} items>",
                                       f"must hold {self._n} values, one per input field in "
                                       f"contract order; got {len(record)}"), "record")]
            values = [_MISSING if v is None and absent else v
                      for v, absent in zip(record, self._absent_if_null, strict=True)]
        else:
            return [_detail(base, ("record_type", safe_got(record), "must be an object or an "
                                   f"array; got {_show(record)} ({_kind_of(record)})"), "record")]
        out: list[ErrorDetail] = []
        dot = f"{base}." if base else ""
        # Only the fields the fast predicate refuses are explained.
        refused = map(not_, map(call, self._oks, values))
        fields = zip(self._names, self._explains, values, strict=True)
        for name, explain, value in compress(fields, refused):
            out.extend(_detail(dot + name, p) for p in explain(value))
        if self._reject and is_mapping:
            extra = record.keys() - self._name_set
            if extra:  # reported in the record's own key order
                out.extend(_detail(f"{dot}{key}", ("extra_field", safe_got(value),
                                                   "is not in the contract (extra_fields: "
                                                   f"reject); got {_show(value)}"))
                           for key, value in record.items() if key in extra)
        return out

    def validate(self, record: Any, index: int | None = None, *,
                 prefix: str = "instances") -> list[ErrorDetail]:
        """Every contract problem of one record.

        Args:
            record: An object keyed by field name, or an array in contract order.
            index: The record's position in its batch; paths become ``prefix[index].field``.
            prefix: The name of the batch in paths.

        Returns:
            The problems, in field order then extra fields; ``[]`` when the record is valid.
        """
        if self._valid(record):
            return []
        return self._explain(record, f"{prefix}[{index}]" if index is not None else "")

    def validate_batch(self, records: Sequence[Any],
                       prefix: str = "instances") -> list[ErrorDetail]:
        """Every problem of every record, with paths ``prefix[i].field``.

        Args:
            records: The records.
            prefix: The name of the batch in paths.

        Returns:
            All problems, record by record; ``[]`` when all records are valid.
        """
        if isinstance(records, str | bytes | bytearray | Mapping):
            return [_detail(prefix, ("record_type", safe_got(records), "must be an array of "
                                     f"records; got {_show(records)} ({_kind_of(records)})"),
                            "batch")]
        valid, explain = self._valid, self._explain
        out: list[ErrorDetail] = []
        for i, record in enumerate(records):
            if not valid(record):
                out.extend(explain(record, f"{prefix}[{i}]"))
        return out

    def check(self, records: Sequence[Any], prefix: str = "instances") -> None:
        """Raise unless every record is valid.

        Args:
            records: The records.
            prefix: The name of the batch in paths.

        Raises:
            ContractViolation: Some record is invalid; ``details`` holds every problem.
        """
        details = self.validate_batch(records, prefix)
        if details:
            raise ContractViolation(summarise(details), details)

    def normalise(self, record: Any, index: int | None = None, *, prefix: str = "instances",
                  checked: bool = False) -> dict[str, Any]:
        """One record as a dict in contract order, after validating it.

        Absent optional fields become ``None``; extra fields are kept (after the contract's
        fields) under ``extra_fields: keep`` and dropped otherwise. Values are not converted.

        Args:
            record: An object keyed by field name, or an array in contract order.
            index: The record's position in its batch (for paths in errors).
            prefix: The name of the batch in paths.
            checked: The caller has already validated the record; skip validation.

        Returns:
            ``{field: value}``.

        Raises:
            ContractViolation: The record is invalid (only when ``checked`` is false).
        """
        if not checked:
            details = self.validate(record, index, prefix=prefix)
            if details:
                raise ContractViolation(summarise(details), details)
        if isinstance(record, Mapping):
            out = {name: record.get(name) for name in self._names}
            if self._policy == "keep":
                out.update((k, v) for k, v in record.items() if k not in self._name_set)
            return out
        return dict(zip(self._names, record, strict=True))

    def normalise_batch(self, records: Sequence[Any],
                        prefix: str = "instances") -> list[dict[str, Any]]:
        """Validate every record, then normalise each (see :meth:`normalise`).

        Args:
            records: The records.
            prefix: The name of the batch in paths.

        Returns:
            One dict per record.

        Raises:
            ContractViolation: Some record is invalid; ``details`` holds every problem.
        """
        self.check(records, prefix)
        return [self.normalise(r, checked=True) for r in records]


def compile_contract(contract: ContractSection) -> RecordValidator:
    """Compile the input side of a contract into a reusable validator.

    Args:
        contract: The ``contract`` section of keel.yaml.

    Returns:
        A :class:`RecordValidator`; compile once, validate many times.
    """
    return RecordValidator(contract)


MISSING: Final = _MISSING

__all__ = ["MISSING", "RULES", "Problem", "RecordValidator", "compile_contract", "compile_field",
           "safe_got", "summarise"]

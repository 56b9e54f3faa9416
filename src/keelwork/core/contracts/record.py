"""Per-record validation against the ``contract.inputs`` of keel.yaml, compiled once.

:func:`compile_contract` turns a :class:`~keelwork.spec.contract.ContractSection` into a
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

The field checks live in :mod:`~keelwork.core.contracts.scalars` and
:mod:`~keelwork.core.contracts.tensor`, the messages in :mod:`~keelwork.core.contracts.render`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import compress, repeat
from operator import call, not_
from typing import Any, Final

from keelwork.core.contracts.render import (
    _MISSING,
    Problem,
    _detail,
    _kind_of,
    _show,
    safe_got,
    summarise,
)
from keelwork.core.contracts.render import FLOAT64_MAX as FLOAT64_MAX
from keelwork.core.contracts.render import INT64_MAX as INT64_MAX
from keelwork.core.contracts.render import INT64_MIN as INT64_MIN
from keelwork.core.contracts.render import SUMMARY_ITEMS as SUMMARY_ITEMS
from keelwork.core.contracts.scalars import Explain as Explain
from keelwork.core.contracts.scalars import (
    Ok,
    _boolean_field,
    _category_field,
    _float_field,
    _integer_field,
    _string_field,
)
from keelwork.core.contracts.tensor import _tensor_field
from keelwork.errors import ContractViolation, ErrorDetail
from keelwork.spec.contract import ContractSection, FieldSpec

RULES: Final = ("required", "nullable", "type", "min", "max", "finite", "category", "min_length",
                "max_length", "shape", "dtype", "extra_field", "record_type", "arity")


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

    def validate_batch(self, records: Sequence[Any], prefix: str = "instances",
                       limit: int | None = None) -> list[ErrorDetail]:
        """Every problem of every record, with paths ``prefix[i].field``.

        Args:
            records: The records.
            prefix: The name of the batch in paths.
            limit: Name at most this many problems (None: all). Past it the other records
                are only checked, not explained: one last detail (rule ``more_problems``,
                path ``prefix``) counts the invalid records left unexplained, so a request
                of many bad records costs a check per record, not a message per field.

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
                if limit is not None and len(out) >= limit:
                    left = sum(not valid(r) for r in records[i:])
                    return [*out, ErrorDetail(prefix, "more_problems", left,
                                              f"{left} more record(s) break the contract "
                                              f"(the first {limit} problems are named).")]
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


def field_reader(contract: ContractSection, name: str | None) -> Callable[[Any], Any]:
    """What reads input field ``name`` of a record, an object or an array in contract order
    (None when the record does not hold it, or ``name`` is None)."""
    names = [f.name for f in contract.inputs]
    at = names.index(name) if name in names else -1

    def read(record: Any) -> Any:
        if name is None:
            return None
        if isinstance(record, Mapping):
            return record.get(name)
        if at >= 0 and isinstance(record, list | tuple) and at < len(record):
            return record[at]
        return None

    return read


def as_records(instances: list[Any], names: tuple[str, ...]) -> list[Any]:
    """Array instances holding one value per input field (in contract order, ``names``) as
    records keyed by field name; every other instance as it is."""
    n = len(names)
    return [dict(zip(names, inst, strict=True))
            if isinstance(inst, list | tuple) and len(inst) == n else inst
            for inst in instances]


MISSING: Final = _MISSING

__all__ = ["MISSING", "RULES", "Problem", "RecordValidator", "as_records", "compile_contract",
           "compile_field", "field_reader", "safe_got", "summarise"]

"""Validating a whole table against ``contract.inputs``, column by column, vectorised.

:func:`validate_table` checks every value of every contract column with numpy / pyarrow compute
and reports every failure (lazily: never only the first), summarised per (column, rule): how many
rows, which fraction, and a few example rows with their values. It also gives a boolean mask of
the failing rows and, on demand, one reason string per failing row (built only for those rows).

The rule names and their meaning are those of the per-request validator
(:mod:`keelwork.core.contracts.record`), with a table's view of a record:

* a row is an *array record* in contract order: ``null`` at an optional (``required: false``)
  field means "absent" and passes; ``null`` at a required field breaks ``nullable`` unless the
  field is ``nullable``. A contract column missing from the table breaks ``required`` in every
  row (when the field is required).
* a column not in the contract breaks ``extra_field`` (``extra_fields: reject``) in every row where
  it holds a value (not null).
* a value's type is its Arrow type: an int64 column holds integers, a string column strings
  (``"3"`` is not a number), a boolean column booleans (``true`` is not ``1``). A mixed column
  (:mod:`keelwork.core.contracts.columns`) gives each value its own type, so JSON lines that mix
  strings and numbers are judged value by value.
* one difference, because files keep one type per column (pandas writes an integer column with
  gaps as float64; JSON readers widen a column of integers and decimals to float64): in a floating
  column an integral value (``3.0``) counts as the integer it equals for ``integer`` and
  ``category`` fields, and so does an element of a tensor field of an integer ``dtype`` (Arrow
  lists hold one element type), where a request's ``3.0`` breaks ``type`` / ``dtype``. Decimal
  columns are read as float64.
* ``tensor`` fields are checked value by value by the per-request code (exact, not vectorised).

Pure: no I/O. numpy and pyarrow are imported inside the functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from keelwork.core.contracts.arrow_buffers import null_at, union_codes, values_view
from keelwork.core.contracts.columns import is_mixed
from keelwork.core.contracts.kernels import JSON_CHILD, integral, null_mask
from keelwork.core.contracts.record import (
    RULES,
    Explain,
    compile_contract,
    compile_field,
    safe_got,
)
from keelwork.core.contracts.render import show_float
from keelwork.core.contracts.table_check import check_columns
from keelwork.errors import ErrorDetail, InvalidInputError, SpecError
from keelwork.spec.contract import ContractSection, FieldSpec

_RULE_ORDER: Final = {rule: i for i, rule in enumerate(RULES)}


# --------------------------------------------------------------------------- the report
@dataclass(frozen=True, slots=True)
class Example:
    """One failing row: its 0-based index in the table and its value (JSON-safe, short)."""

    row: int
    value: Any


@dataclass(frozen=True)
class RuleFailure:
    """Every row of one column that breaks one rule."""

    column: str
    rule: str
    count: int
    fraction: float
    message: str
    examples: tuple[Example, ...]
    rows: Any = field(repr=False)  # numpy int64 array of the failing rows, ascending

    def as_dict(self) -> dict[str, Any]:
        return {"column": self.column, "rule": self.rule, "count": self.count,
                "fraction": self.fraction, "message": self.message,
                "examples": [{"row": e.row, "value": e.value} for e in self.examples]}


@dataclass(frozen=True)
class BatchReport:
    """The outcome of :func:`validate_table`.

    Attributes:
        rows: Rows in the table.
        failures: One entry per (column, rule) with at least one failing row, in contract
            order then rule order (extra columns last).
        failed: numpy bool array, True for every row that breaks at least one rule.
    """

    rows: int
    failures: tuple[RuleFailure, ...]
    failed: Any = field(repr=False)
    _reasons: Callable[[BatchReport], list[str]] = field(repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """True when every row passes."""
        return not self.failures

    @property
    def failed_rows(self) -> int:
        """How many rows break at least one rule."""
        return int(self.failed.sum())

    @property
    def passed_rows(self) -> int:
        """How many rows pass every rule."""
        return self.rows - self.failed_rows

    def failing_rows(self) -> Any:
        """The 0-based indices of the failing rows, ascending (numpy int64 array)."""
        import numpy as np

        return np.flatnonzero(self.failed)

    def reasons(self) -> list[str]:
        """One reason per failing row, aligned with :meth:`failing_rows`.

        E.g. ``"age must be >= 0; got -3; color must be one of 'red', 'blue'; got 'pink'"``.
        Built on each call, only for the failing rows.
        """
        return self._reasons(self)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (no per-row data beyond the examples)."""
        return {"rows": self.rows, "failed_rows": self.failed_rows,
                "passed_rows": self.passed_rows,
                "failures": [f.as_dict() for f in self.failures]}


# --------------------------------------------------------------------------- contradictions
def check_contract(contract: ContractSection) -> list[ErrorDetail]:
    """Find input fields that no value can satisfy (beyond what the spec model rejects).

    Args:
        contract: The contract.

    Returns:
        One detail per contradiction (path ``inputs[i].<key>``); ``[]`` when there is none.
    """
    out: list[ErrorDetail] = []
    for i, spec in enumerate(contract.inputs):
        where = f"inputs[{i}]"
        lo = math.ceil(spec.min) if spec.min is not None and math.isfinite(spec.min) else None
        hi = math.floor(spec.max) if spec.max is not None and math.isfinite(spec.max) else None
        if spec.type == "integer":
            ints = [c for c in spec.categories or [] if type(c) is int]
            if lo is not None and hi is not None and lo > hi:
                out.append(ErrorDetail(f"{where}.min", "range_empty", [spec.min, spec.max],
                           f"The '{spec.name}' field allows no integer: no integer lies "
                           f"between min {spec.min} and max {spec.max}."))
            elif spec.categories and not [c for c in ints if (lo is None or c >= lo)
                                          and (hi is None or c <= hi)]:
                out.append(ErrorDetail(f"{where}.categories", "categories_empty",
                           spec.categories, f"The '{spec.name}' field allows no value: none of "
                           f"its categories is an integer within its min/max."))
        if spec.type in ("string", "text") and spec.categories:
            short, long_ = spec.min_length or 0, spec.max_length
            fits = [c for c in spec.categories if type(c) is str and len(c) >= short
                    and (long_ is None or len(c) <= long_)]
            if not fits:
                out.append(ErrorDetail(f"{where}.categories", "categories_empty",
                           spec.categories, f"The '{spec.name}' field allows no value: none of "
                           "its categories is a string within its min_length/max_length."))
    return out


def _python_at(column: Any, rows: Any) -> list[Any]:
    """Python values of ``column`` at ``rows`` (mixed JSON text decoded)."""
    import json

    import numpy as np
    import pyarrow as pa

    # ChunkedArray.take concatenates the chunks first: take from each chunk instead.
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    starts = np.cumsum([0] + [len(c) for c in chunks])
    which = np.searchsorted(starts, rows, side="right") - 1
    values: list[Any] = []
    for i in np.unique(which).tolist():
        local = rows[which == i] - starts[i]
        chunk = chunks[i]
        if _plain_numbers(chunk.type):  # numpy reads them without building an Arrow array
            part = values_view(chunk)[local].tolist()
            for j in np.flatnonzero(null_at(chunk, local)).tolist():
                part[j] = None
            values += part
            continue
        taken = chunk.take(pa.array(local, pa.int64()))
        part = taken.to_pylist()
        if is_mixed(taken.type):
            codes = union_codes(taken)[0]
            for j in np.flatnonzero(codes == JSON_CHILD).tolist():
                if part[j] is not None:
                    part[j] = json.loads(part[j])
        values += part
    return values


def _plain_numbers(typ: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_integer(typ) or typ in (pa.float32(), pa.float64())


def _as_request_value(spec: FieldSpec, value: Any) -> Any:
    """The request value that breaks the same rule (see the module docstring)."""
    if isinstance(value, Decimal):
        return float(value)
    if spec.type == "tensor" and spec.dtype in ("int32", "int64"):
        return integral(value)
    if (spec.type in ("integer", "category") and type(value) is float
            and math.isfinite(value) and value.is_integer()):
        return int(value)
    return value


def _clause(rule: str, explain: Explain, value: Any) -> str:
    for problem_rule, _, clause in explain(value):
        if problem_rule == rule:
            return clause
    return f"breaks the '{rule}' rule"  # pragma: no cover - the kernels and explain agree


def _extra_clause(name: str, value: Any) -> str:
    details = compile_contract(ContractSection(extra_fields="reject")).validate({name: value})
    message = details[0].message if details else ""
    head = f"The '{name}' field "
    if message.startswith(head) and message.endswith("."):
        return message[len(head):-1]
    return "is not in the contract (extra_fields: reject)"  # pragma: no cover


class _Explainer:
    """Clauses ("must be >= 0; got -3") for the failing rows of one report.

    The text is the per-request explainer's, value by value. Two shortcuts keep it cheap for
    millions of rows without changing a character (a test compares them with ``fast=False``):
    a value seen before in the same (column, rule) reuses its clause (strings, integers,
    booleans, NaN and infinities: keyed by type and value), and the finite floats below ``min``
    / above ``max`` of a float field read as the fixed start of that rule's clause ("must be
    >= 0; got ") plus each value as the explainer shows it.
    """

    def __init__(self, table: Any, contract: ContractSection, fast: bool = True) -> None:
        self.table = table
        self.specs = {f.name: f for f in contract.inputs}
        self.explains: dict[str, Explain] = {}
        self.fast = fast

    def clauses(self, failure: RuleFailure, rows: Any) -> list[str]:
        if failure.rule == "required":
            return ["is required but was not given"] * len(rows)
        if failure.rule == "nullable":
            return ["must not be null; got null"] * len(rows)
        values = _python_at(self.table.column(failure.column), rows)
        spec = self.specs.get(failure.column)
        if spec is None:
            return [_extra_clause(failure.column, v) for v in values]
        explain = self.explains.get(spec.name)
        if explain is None:
            explain = self.explains[spec.name] = compile_field(spec)[1]
        rule = failure.rule
        if not self.fast:
            return [_clause(rule, explain, _as_request_value(spec, v)) for v in values]
        out: list[str] = []
        if spec.type == "float" and rule in ("min", "max") and values:
            first = _as_request_value(spec, values[0])
            clause = _clause(rule, explain, first)
            if (type(first) is float and math.isfinite(first)
                    and clause.endswith("; got " + show_float(first))
                    and all(type(v) is float and math.isfinite(v) for v in values)):
                head = clause[:len(clause) - len(show_float(first))]
                return [head + show_float(v) for v in values]
        seen: dict[tuple[type, Any], str] = {}
        for v in values:
            v = _as_request_value(spec, v)
            t = type(v)
            if t is str or t is int or t is bool or (t is float and not math.isfinite(v)):
                key = (t, v if t is not float else repr(v))
                clause = seen.get(key) or seen.setdefault(key, _clause(rule, explain, v))
            else:
                clause = _clause(rule, explain, v)
            out.append(clause)
        return out

    def reasons(self, report: BatchReport) -> list[str]:
        import numpy as np

        failing = report.failing_rows()
        out: list[str | None] = [None] * len(failing)
        for failure in report.failures:  # most rows break one rule: no list per row
            where = np.searchsorted(failing, failure.rows)
            prefix = failure.column + " "
            for i, clause in zip(where.tolist(), self.clauses(failure, failure.rows),
                                 strict=True):
                before = out[i]
                out[i] = prefix + clause if before is None else f"{before}; {prefix}{clause}"
        return [text or "" for text in out]


def _summary(clause: str) -> str:
    return clause.split("; got ", 1)[0]


def validate_table(table: Any, contract: ContractSection, *, examples: int = 5) -> BatchReport:
    """Validate every row of ``table`` against ``contract.inputs``.

    Args:
        table: A ``pyarrow.Table`` (or a ``RecordBatch``).
        contract: The contract section of keel.yaml.
        examples: How many example rows to keep per (column, rule).

    Returns:
        The report: per (column, rule) counts and examples, the mask of failing rows, and the
        reasons of the failing rows on demand.

    Raises:
        SpecError: The contract contradicts itself (a field no value can satisfy).
        InvalidInputError: The table has two columns of one name.
    """
    import numpy as np
    import pyarrow as pa

    problems = check_contract(contract)
    if problems:
        raise SpecError("The contract contradicts itself:\n" + "\n".join(
            f"  {d.path}: {d.message}" for d in problems), problems)
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    names = table.column_names
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise InvalidInputError(f"The table has more than one column named {twice[0]!r}; "
                                "column names must be unique to match contract fields.")
    n = table.num_rows
    explainer = _Explainer(table, contract)
    present = [spec for spec in contract.inputs if spec.name in names]
    checked = check_columns(table, present, n)
    found: list[tuple[str, str, Any]] = []
    for spec in contract.inputs:
        if spec.name not in names:
            if spec.required and n:
                found.append((spec.name, "required", np.arange(n, dtype=np.int64)))
            continue
        by_rule = checked[spec.name]
        found += [(spec.name, rule, by_rule[rule]) for rule in sorted(by_rule,
                                                                    key=_RULE_ORDER.__getitem__)]
    if contract.extra_fields == "reject":
        known = {f.name for f in contract.inputs}
        for name in names:
            if name in known:
                continue
            rows = [np.flatnonzero(~null_mask(chunk)) + start for chunk, start in
                    zip(table.column(name).chunks, _starts(table.column(name)), strict=True)]
            hit = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
            if len(hit):
                found.append((name, "extra_field", hit))
    failed = np.zeros(n, dtype=bool)
    failures = []
    for column, rule, rows in found:
        failed[rows] = True
        head = rows[:examples]
        probe = RuleFailure(column, rule, len(rows), len(rows) / n, "", (), rows)
        values = (_python_at(table.column(column), head)
                  if column in names and len(head) else [None] * len(head))
        clauses = explainer.clauses(probe, head) if len(head) else [f"breaks '{rule}'"]
        failures.append(RuleFailure(
            column=column, rule=rule, count=len(rows), fraction=len(rows) / n,
            message=_summary(clauses[0]),
            examples=tuple(Example(int(r), safe_got(v)) for r, v in
                           zip(head.tolist(), values, strict=True)),
            rows=rows))
    return BatchReport(rows=n, failures=tuple(failures), failed=failed,
                       _reasons=explainer.reasons)


def _starts(column: Any) -> list[int]:
    out, start = [], 0
    for chunk in column.chunks:
        out.append(start)
        start += len(chunk)
    return out


__all__ = ["BatchReport", "Example", "RuleFailure", "check_contract", "validate_table"]

"""Inferring a draft contract (``contract.inputs``) from reference data.

:func:`infer_contract` looks at each column of a table once and proposes a field:

=====================  ==========================================================================
column                 field
=====================  ==========================================================================
boolean                ``boolean``
integer                ``integer`` with ``min``/``max``: the observed range widened by ``margin``
                       (a fraction of the range) on each side, whole numbers, never below 0 when
                       no value was negative
floating, decimal      ``float`` likewise (bounds rounded outwards to 4 significant digits);
                       ``allow_nan: true`` when the data holds NaN or infinities
text, few values       ``category`` with the observed values, most frequent first, when there are
                       at most ``max_categories`` of them
text, long values      ``text`` with ``min_length``/``max_length`` (widened like numbers) when the
                       mean length is at least ``text_length`` characters, or most values are
                       distinct and hold spaces (free text)
text, other            ``string`` with length bounds (identifiers, names)
list of numbers        ``tensor`` with ``shape`` ([n] when every list has n items, else [-1]),
                       ``dtype`` and the element range
mixed                  the type of most of its values (the comment says how many differ)
=====================  ==========================================================================

A column with nulls becomes ``nullable: true``. Columns of other types (dates, binary, structs)
and columns holding only nulls are skipped, with the reason. A skipped column that holds values
makes the draft ``extra_fields: ignore`` (else ``reject``): its values are still in the
reference data, and the draft must accept the data it was drafted from. Each field comes with
a one-line comment of what was observed ("observed 17..90; 0 nulls in 32,561 rows"), for the
YAML the user edits. Pure: no I/O; pyarrow and numpy are imported inside the functions.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from keelwork.core.contracts.columns import MIXED_CHILDREN, is_mixed
from keelwork.spec.contract import ContractSection

#: Why a column of nothing but nulls is skipped.
ALL_NULL = "skipped: every value is null"


@dataclass
class InferredContract:
    """A draft contract: the fields, a comment per field, and the columns left out."""

    rows: int
    fields: list[dict[str, Any]] = field(default_factory=list)
    comments: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def untyped(self) -> list[str]:
        """The skipped columns that hold values (all but the ones of only nulls)."""
        return [name for name, why in self.skipped.items() if why != ALL_NULL]

    @property
    def extra_fields(self) -> str:
        """``ignore`` when a column with values was left out, so that the reference data, which
        holds it, passes its own draft (``reject`` would refuse every such row); else
        ``reject``."""
        return "ignore" if self.untyped else "reject"

    def to_dict(self) -> dict[str, Any]:
        """The ``contract`` section as plain data, ready to dump as YAML."""
        return {"inputs": [dict(f) for f in self.fields], "extra_fields": self.extra_fields}

    def section(self) -> ContractSection:
        """The draft as a validated :class:`~keelwork.spec.contract.ContractSection`."""
        return ContractSection.model_validate(self.to_dict())


# --------------------------------------------------------------------------- bounds
def _round_out(value: float, up: bool, digits: int = 4) -> float:
    """``value`` rounded away from the data to ``digits`` significant digits (exactly)."""
    if value == 0 or not math.isfinite(value):
        return value
    exact = Decimal(repr(value))  # the shortest decimal that reads back as value
    step = Decimal(1).scaleb(exact.adjusted() - digits + 1)
    rounded = float(exact.quantize(step, rounding=ROUND_CEILING if up else ROUND_FLOOR))
    # repr(value) reads back as value, and the nearest float to a decimal beyond it is at or
    # beyond it too; the check is a guard
    if (up and rounded < value) or (not up and rounded > value):  # pragma: no cover
        rounded = math.nextafter(rounded, math.inf if up else -math.inf)
    return rounded


def _widen(low: float, high: float, margin: float) -> tuple[float, float]:
    span = high - low
    pad = margin * (span if span > 0 else abs(high)) if margin else 0.0
    lo, hi = low - pad, high + pad
    if low >= 0 > lo:
        lo = 0.0  # no negative bound for data that never was negative
    return lo, hi


def _int_range(low: int, high: int, margin: float) -> tuple[int, int]:
    """Integer bounds (exact arithmetic), that stay outside the data as floats too.

    keel.yaml keeps ``min``/``max`` as floats, so a bound beyond 2**53 moves to the next float
    away from the data.
    """
    pad = math.ceil(margin * ((high - low) if high > low else abs(high))) if margin else 0
    lo, hi = low - pad, high + pad
    if low >= 0 > lo:
        lo = 0
    flo, fhi = float(lo), float(hi)
    if flo > lo:
        flo = math.nextafter(flo, -math.inf)
    if fhi < hi:
        fhi = math.nextafter(fhi, math.inf)
    return int(flo), int(fhi)


def _float_range(low: float, high: float, margin: float) -> tuple[float, float]:
    lo, hi = _widen(low, high, margin)
    return _round_out(lo, up=False), _round_out(hi, up=True)


def _fmt(value: float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return f"{int(value)}"
    return f"{value:.6g}"


# --------------------------------------------------------------------------- per column kind
def _numbers(column: Any, margin: float, integer: bool) -> tuple[dict[str, Any], str]:
    import numpy as np
    import pyarrow as pa

    values = column.drop_null()
    if integer:
        import pyarrow.compute as pc

        span = pc.min_max(values)
        low, high = int(span["min"].as_py()), int(span["max"].as_py())
        lo, hi = _int_range(low, high, margin)
        return {"type": "integer", "min": lo, "max": hi}, f"observed {low}..{high}"
    v = np.asarray(values.cast(pa.float64()).to_numpy(zero_copy_only=False))
    finite = v[np.isfinite(v)]
    odd = len(v) - len(finite)
    spec: dict[str, Any] = {"type": "float"}
    note = ""
    if len(finite):
        fmin, fmax = float(finite.min()), float(finite.max())
        spec["min"], spec["max"] = _float_range(fmin, fmax, margin)
        note = f"observed {_fmt(fmin)}..{_fmt(fmax)}"
    if odd:
        spec["allow_nan"] = True
        note += f"; {odd:,} NaN/infinite"
        # allow_nan lets infinities through, but min/max still apply to them
        if np.isposinf(v).any():
            spec.pop("max", None)
        if np.isneginf(v).any():
            spec.pop("min", None)
    return spec, note.lstrip("; ")


def _strings(column: Any, margin: float, max_categories: int,
             text_length: int) -> tuple[dict[str, Any], str]:
    import pyarrow as pa
    import pyarrow.compute as pc

    values = column.drop_null()
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    lengths = pc.utf8_length(values)
    span = pc.min_max(lengths)
    short, long_ = int(span["min"].as_py()), int(span["max"].as_py())
    mean = float(pc.mean(lengths).as_py())
    distinct = int(pc.count_distinct(values).as_py())
    if distinct <= max_categories and mean < text_length:
        counts = pc.value_counts(values).to_pylist()
        counts.sort(key=lambda c: (-c["counts"], c["values"]))
        cats = [c["values"] for c in counts]
        shown = ", ".join(f"{c['values']} {c['counts']:,}" for c in counts[:4])
        more = ", ..." if len(counts) > 4 else ""
        return {"type": "category", "categories": cats}, f"counts: {shown}{more}"
    spaced = pc.sum(pc.match_substring(values, " ")).as_py() or 0
    free_text = distinct >= 0.5 * len(values) and spaced >= 0.5 * len(values)
    kind = "text" if mean >= text_length or free_text else "string"
    lo, hi = _int_range(short, long_, margin)
    return ({"type": kind, "min_length": lo, "max_length": hi},
            f"{distinct:,} distinct; length {short}..{long_}, mean {mean:.0f}")


def _tensor(column: Any, margin: float) -> tuple[dict[str, Any], str] | None:
    import pyarrow as pa
    import pyarrow.compute as pc

    values = column.drop_null()
    dims: list[int] = []
    while pa.types.is_list(values.type) or pa.types.is_large_list(values.type) or \
            pa.types.is_fixed_size_list(values.type):
        span = pc.min_max(pc.list_value_length(values))
        low, high = span["min"].as_py(), span["max"].as_py()
        dims.append(int(low) if low == high and low is not None else -1)
        values = pc.list_flatten(values)
    typ = values.type
    dtype = {pa.float32(): "float32", pa.float64(): "float64", pa.int32(): "int32",
             pa.int64(): "int64", pa.bool_(): "bool"}.get(typ)
    if dtype is None and not (pa.types.is_integer(typ) or pa.types.is_floating(typ)):
        return None
    spec: dict[str, Any] = {"type": "tensor", "shape": dims}
    if dtype is not None:
        spec["dtype"] = dtype
    note = f"shape {dims}"
    if dtype != "bool" and len(values):
        numbers, detail = _numbers(values, margin, integer=False)
        spec.update({k: v for k, v in numbers.items() if k != "type"})
        note += f"; elements {detail}"
    return spec, note


def _mixed(column: Any) -> tuple[Any, str]:
    """The values of the majority kind of a mixed column, and a note on the others."""
    import numpy as np
    import pyarrow as pa

    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    codes = np.frombuffer(arr.buffers()[1], dtype=np.int8,
                          count=arr.offset + len(arr))[arr.offset:]
    counts = np.bincount(codes, minlength=len(MIXED_CHILDREN))
    counts[0] = 0  # nulls
    number = MIXED_CHILDREN.index("int"), MIXED_CHILDREN.index("float")
    numeric = counts[number[0]] + counts[number[1]]
    best = int(np.argmax(counts))
    if numeric >= counts[best]:
        keep = np.isin(codes, number)
        kind = "numbers"
    else:
        keep = codes == best
        kind = f"{MIXED_CHILDREN[best]} values"
    others = int(counts.sum() - keep.sum())
    values = [v for v, k in zip(arr.to_pylist(), keep.tolist(), strict=True) if k]
    if kind == "numbers" and counts[number[1]]:
        values = [float(v) for v in values]
    return pa.array(values), f"mixed types: {others:,} values are not {kind}"


# --------------------------------------------------------------------------- the table
def infer_field(name: str, column: Any, rows: int, *, margin: float = 0.1,
                max_categories: int = 20,
                text_length: int = 40) -> tuple[dict[str, Any] | None, str]:
    """Propose one field for one column (see the module docstring).

    Args:
        name: The column name.
        column: A ``pyarrow.Array`` or ``ChunkedArray``.
        rows: Rows in the table (for the comment).
        margin: Fraction of the observed range added below and above.
        max_categories: The most distinct values of a ``category`` field.
        text_length: Mean length from which strings are ``text``.

    Returns:
        ``(field, comment)``; ``field`` is None when the column is skipped (the comment says
        why).
    """
    import pyarrow as pa

    note = ""
    if is_mixed(column.type):  # a union has no validity bitmap: its nulls are in the children
        nulls = sum(v is None for v in column.to_pylist())
        column, note = _mixed(column)
    else:
        nulls = column.null_count
    if nulls == rows or not len(column):
        return None, ALL_NULL
    typ = column.type
    if pa.types.is_dictionary(typ):
        typ = typ.value_type
    if pa.types.is_boolean(typ):
        spec, detail = {"type": "boolean"}, ""
    elif pa.types.is_integer(typ):
        spec, detail = _numbers(column, margin, integer=True)
    elif pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        spec, detail = _numbers(column, margin, integer=False)
    elif pa.types.is_string(typ) or pa.types.is_large_string(typ):
        spec, detail = _strings(column, margin, max_categories, text_length)
    elif pa.types.is_list(typ) or pa.types.is_large_list(typ) or \
            pa.types.is_fixed_size_list(typ):
        found = _tensor(column, margin)
        if found is None:
            return None, f"skipped: lists of {typ} have no contract type"
        spec, detail = found
    else:
        return None, f"skipped: {typ} columns have no contract type"
    out: dict[str, Any] = {"name": name, **spec}
    if nulls:
        out["nullable"] = True
    parts = [p for p in (detail, note) if p]
    parts.append(f"{nulls:,} nulls in {rows:,} rows")
    return out, "; ".join(parts)


def infer_contract(table: Any, *, margin: float = 0.1, max_categories: int = 20,
                   text_length: int = 40, exclude: Collection[str] = ()) -> InferredContract:
    """Propose a contract from reference data.

    Args:
        table: A ``pyarrow.Table`` of reference rows.
        margin: Fraction of each observed range added below and above (0 = the exact range).
        max_categories: The most distinct values of a ``category`` field; above it a string
            column becomes ``string`` or ``text``.
        text_length: Mean length (characters) from which a string column is ``text``.
        exclude: Columns to leave out (a label, an identifier).

    Returns:
        The draft: fields, comments and skipped columns.

    Raises:
        ValueError: An option is out of range.
    """
    if not margin >= 0:
        raise ValueError(f"margin must be >= 0; got {margin}.")
    if max_categories < 1:
        raise ValueError(f"max_categories must be >= 1; got {max_categories}.")
    if text_length < 1:
        raise ValueError(f"text_length must be >= 1; got {text_length}.")
    out = InferredContract(rows=table.num_rows)
    for name in table.column_names:
        if name in exclude:
            continue
        spec, comment = infer_field(name, table.column(name), table.num_rows, margin=margin,
                                    max_categories=max_categories, text_length=text_length)
        if spec is None:
            out.skipped[name] = comment
        else:
            out.fields.append(spec)
            out.comments[name] = comment
    return out


# --------------------------------------------------------------------------- held-out check
#: Share of the rows held out to measure how a draft fares on data it was not inferred from.
HELD_OUT = 0.2
#: Margins tried, smallest first, when none is given.
MARGINS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
#: The share of held-out rows a chosen margin may still refuse.
TARGET_FAILING = 0.01
#: Below this many rows, no split is made: too few to say anything.
MIN_ROWS_FOR_CHECK = 50


@dataclass(frozen=True)
class HeldOutCheck:
    """How drafts inferred on part of the data fare on the rest (:func:`held_out_check`).

    Attributes:
        rows: Held-out rows.
        margin: The margin chosen (or the one given).
        share: Share of the held-out rows the draft with ``margin`` refuses.
        tried: Each margin tried -> its share.
        by_field: Held-out rows refused per field, at ``margin``.
    """

    rows: int
    margin: float
    share: float
    tried: dict[float, float]
    by_field: dict[str, int]

    def summary(self) -> str:
        """One sentence for the user."""
        others = ", ".join(f"margin {m:g}: {v:.1%}" for m, v in self.tried.items()
                           if m != self.margin)
        worst = ", ".join(f"{n} {c}" for n, c in sorted(self.by_field.items(),
                                                         key=lambda kv: -kv[1])[:5] if c)
        text = (f"held-out check: inferred on {1 - HELD_OUT:.0%} of the rows, the draft with "
                f"margin {self.margin:g} refuses {self.share:.1%} of the other {self.rows:,}")
        text += f" ({others})" if others else ""
        if worst:
            text += f"; refused by field: {worst}"
        return text + "."


def held_out_check(table: Any, *, margin: float | None = None, max_categories: int = 20,
                   text_length: int = 40, exclude: Collection[str] = (),
                   seed: int = 0) -> HeldOutCheck | None:
    """Infer on a random 80 % of the rows and count how many of the other 20 % fail.

    The held-out rows are checked whole, with every column but those of ``exclude`` (which
    the user names as not inputs), as ``keel validate`` would check them.

    With ``margin=None``, the margins of :data:`MARGINS` are tried from the smallest and the
    first whose held-out share is at most :data:`TARGET_FAILING` is chosen (else the one with
    the lowest share: what still fails then is not a range, e.g. a rare category). The full
    data's draft with that margin then refuses fewer new rows than the split measured, since it
    saw more.

    Returns:
        The check, or None for a table of fewer than :data:`MIN_ROWS_FOR_CHECK` rows.
    """
    import numpy as np

    from keelwork.core.contracts.batch import validate_table

    n = table.num_rows
    if n < MIN_ROWS_FOR_CHECK:
        return None
    order = np.random.default_rng(seed).permutation(n)
    cut = round(n * (1 - HELD_OUT))
    fit, held = table.take(np.sort(order[:cut])), table.take(np.sort(order[cut:]))
    left_out = [c for c in dict.fromkeys(exclude) if c in held.column_names]
    if left_out:
        held = held.drop_columns(left_out)
    tried: dict[float, float] = {}
    fields: dict[float, dict[str, int]] = {}
    for m in (MARGINS if margin is None else (margin,)):
        draft = infer_contract(fit, margin=m, max_categories=max_categories,
                               text_length=text_length, exclude=exclude)
        report = validate_table(held, draft.section())
        tried[m] = report.failed_rows / held.num_rows
        per: dict[str, int] = {}
        for f in report.failures:
            per[f.column] = per.get(f.column, 0) + f.count
        fields[m] = per
        if margin is None and tried[m] <= TARGET_FAILING:
            break
    chosen = margin if margin is not None else min(tried, key=lambda m: (tried[m], m))
    if margin is None and tried[chosen] > TARGET_FAILING:
        # No margin reaches the target: the failures are not ranges; keep the smallest
        # margin that does as well as the best.
        best = tried[chosen]
        chosen = min(m for m, v in tried.items() if v <= best)
    return HeldOutCheck(rows=held.num_rows, margin=chosen, share=tried[chosen], tried=tried,
                        by_field=fields[chosen])


__all__ = ["ALL_NULL", "HELD_OUT", "MARGINS", "TARGET_FAILING", "HeldOutCheck", "InferredContract",
           "held_out_check", "infer_contract", "infer_field"]

"""Mergeable column profiles: the statistics drift monitoring compares.

A reference table is profiled once (:func:`profile_table`); its profile fixes each column's
*layout*: histogram edges for a numeric column (quantiles of the reference), the vocabulary of a
categorical one. Every later window is profiled against that layout (``reference=``), so window
profiles hold counts in the same bins and merge exactly (:meth:`ColumnProfile.merge`):
``profile(a).merge(profile(b)) == profile(concat(a, b))`` for the counts, and up to float
rounding for the moments. Windows can therefore be computed incrementally and combined (hours
into a day) without keeping rows.

Numeric column: ``len(edges) + 1`` bins; bin ``i`` holds ``edges[i-1] <= x < edges[i]``. The
edges (:mod:`keelwork.core.monitors.edges`) are the reference's distinct quantiles at ``0, 1/B,
..., (B-1)/B`` and at a few tail quantiles (narrow tail bins), plus a float just above its
maximum, so the first and last bins hold values below / above the reference's range (empty for
the reference itself). A value that holds more than ``1/B`` of the reference (a point mass: the
40 of a column of weekly hours) gets a bin of its own, ``[v, v + ulp)``. Error bound: within a
bin values are not resolved, so a CDF read from the profile is exact at every edge and off by
at most one bin's mass in between (at most ``1/B`` of the reference: 5 % at the default 20
bins; a point mass is alone in its bin, never split). NaN counts as null; +-inf is counted in
``non_finite`` and kept out of the bins and moments. Moments of values near the float64 limit
are computed scaled; an ``m2`` beyond float64 is ``inf`` and is stored and merged as such
(:mod:`keelwork.core.monitors.moments`).

Categorical column: exact counts for the reference's ``max_categories`` most frequent labels.
When the reference held no more labels than that (a *closed* vocabulary), labels never seen in it
are counted by name in ``new`` (the ``max_new`` first in sort order, which keeps merging exact;
the rest in ``other``); when the reference had more, unknown labels may be the reference's own
tail, so they go to ``other`` unnamed.

Pure logic: pyarrow and numpy are imported inside the functions.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from keelwork.core.monitors.edges import reference_edges
from keelwork.core.monitors.moments import (
    decode_moment,
    encode_moment,
    merge_moments,
    moments,
)
from keelwork.errors import MonitorError

#: ``kind`` and ``version`` stamped on stored profiles.
PROFILE_KIND = "keelwork.monitor-profile"
PROFILE_VERSION = 1
#: Quantile bins of a numeric column (the error bound above is about ``1 / DEFAULT_BINS``).
DEFAULT_BINS = 20
#: Labels of a categorical column counted by name; the rest are summed in ``other``.
DEFAULT_MAX_CATEGORIES = 100
#: Labels unseen in the reference named in a window's profile.
DEFAULT_MAX_NEW = 100


#: Profiles cannot be built, merged or read (mismatched layouts, unknown kind, bad data).
ProfileError = MonitorError


def check_kind(data: Mapping[str, Any], kind: str, version: int, what: str,
               hint: str = "") -> None:
    """Refuse ``data`` unless it is a mapping of ``kind`` at ``version`` or older: what every
    stored monitor thing (profile, reference, text reference, CBPE reference) is checked by.

    Args:
        data: The stored form.
        kind: The kind it must carry.
        version: The newest version this keelwork reads.
        what: What it is, for the message ("A monitor profile").
        hint: Added to the message (what to do about it).

    Raises:
        MonitorError: another kind, a newer version, or not a mapping.
    """
    if not isinstance(data, Mapping) or data.get("kind") != kind or not isinstance(
            data.get("version"), int) or data["version"] > version:
        got = (f"kind {data.get('kind')!r}, version {data.get('version')!r}"
               if isinstance(data, Mapping) else type(data).__name__)
        raise MonitorError(f"{what} must have kind {kind!r} and version <= {version}; "
                           f"got {got}.{hint}")


# --------------------------------------------------------------------------- model
@dataclass(frozen=True, slots=True)
class ColumnProfile:
    """Counts of one column against a fixed layout; see the module docstring.

    ``rows`` counts every row, ``nulls`` null and NaN ones. Numeric: ``edges``, ``counts``
    (``len(edges) + 1`` bins), ``non_finite``, finite ``minimum``/``maximum`` (``None`` when no
    finite value), ``mean`` and ``m2`` (sum of squared deviations). Categorical: ``vocabulary``
    with ``counts`` (one each), ``closed``, ``new`` (label, count pairs sorted by label) and
    ``other``.
    """

    name: str
    kind: str
    rows: int
    nulls: int
    counts: tuple[int, ...]
    edges: tuple[float, ...] = ()
    non_finite: int = 0
    minimum: float | None = None
    maximum: float | None = None
    mean: float = 0.0
    m2: float = 0.0
    vocabulary: tuple[str, ...] = ()
    closed: bool = True
    new: tuple[tuple[str, int], ...] = ()
    other: int = 0
    max_new: int = DEFAULT_MAX_NEW

    @property
    def values(self) -> int:
        """Non-null values (finite or not for a numeric column)."""
        return self.rows - self.nulls

    @property
    def finite(self) -> int:
        """Values in the bins: finite numbers, or all non-null labels."""
        return self.values - self.non_finite

    @property
    def std(self) -> float:
        """Sample standard deviation of the finite values (0.0 for fewer than two)."""
        return math.sqrt(self.m2 / (self.finite - 1)) if self.finite > 1 else 0.0

    def same_layout(self, other: ColumnProfile) -> bool:
        """Whether ``other`` was profiled with the same edges or vocabulary (so they merge)."""
        return (self.kind == other.kind and self.edges == other.edges
                and self.vocabulary == other.vocabulary and self.closed == other.closed)

    def merge(self, other: ColumnProfile) -> ColumnProfile:
        """The profile of both windows' rows together.

        Args:
            other: A profile of the same column with the same layout.

        Returns:
            A new profile; counts are exact, ``mean``/``m2`` combine by Chan's formula.

        Raises:
            ProfileError: the layouts differ (profile both against the same reference).
        """
        if not self.same_layout(other):
            raise ProfileError(
                f"Profiles of column {self.name!r} can only merge when built against the same "
                f"reference layout; got a {self.kind} profile with {len(self.counts)} bins and "
                f"a {other.kind} profile with {len(other.counts)} bins.")
        counts = tuple(a + b for a, b in zip(self.counts, other.counts, strict=True))
        merged = replace(self, rows=self.rows + other.rows, nulls=self.nulls + other.nulls,
                         counts=counts, non_finite=self.non_finite + other.non_finite)
        if self.kind == "numeric":
            mean, m2 = merge_moments(self.finite, self.mean, self.m2, other.finite, other.mean,
                                     other.m2)
            return replace(merged, minimum=_opt(min, self.minimum, other.minimum),
                           maximum=_opt(max, self.maximum, other.maximum), mean=mean, m2=m2)
        named: dict[str, int] = dict(self.new)
        for label, n_new in other.new:
            named[label] = named.get(label, 0) + n_new
        keep = sorted(named)[: self.max_new]
        dropped = sum(named.values()) - sum(named[k] for k in keep)
        return replace(merged, new=tuple((k, named[k]) for k in keep),
                       other=self.other + other.other + dropped)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-compatible view; :func:`column_from_dict` reads it back."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "rows": self.rows,
                               "nulls": self.nulls, "counts": list(self.counts)}
        if self.kind == "numeric":
            out.update(edges=list(self.edges), non_finite=self.non_finite,
                       minimum=self.minimum, maximum=self.maximum,
                       mean=encode_moment(self.mean), m2=encode_moment(self.m2))
        else:
            out.update(vocabulary=list(self.vocabulary), closed=self.closed,
                       new=[[k, n] for k, n in self.new], other=self.other,
                       max_new=self.max_new)
        return out


@dataclass(frozen=True, slots=True)
class TableProfile:
    """Column profiles of one table or window; stored with ``kind`` and ``version``."""

    rows: int
    columns: Mapping[str, ColumnProfile]

    def merge(self, other: TableProfile) -> TableProfile:
        """The profile of both windows together (columns in only one are kept as they are).

        Raises:
            ProfileError: a shared column was profiled against different layouts.
        """
        cols = dict(self.columns)
        for name, col in other.columns.items():
            cols[name] = cols[name].merge(col) if name in cols else col
        return TableProfile(self.rows + other.rows, cols)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-compatible view; :meth:`from_dict` reads it back."""
        return {"kind": PROFILE_KIND, "version": PROFILE_VERSION, "rows": self.rows,
                "columns": [c.as_dict() for c in self.columns.values()]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TableProfile:
        """Inverse of :meth:`as_dict`.

        Raises:
            ProfileError: not a monitor profile, written by a newer keelwork, or malformed.
        """
        check_kind(data, PROFILE_KIND, PROFILE_VERSION, "A monitor profile")
        try:
            columns = [column_from_dict(c) for c in data["columns"]]
            return cls(int(data["rows"]), {c.name: c for c in columns})
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfileError(f"The monitor profile is malformed: {exc!r}.") from exc


def merge_profiles(profiles: Sequence[TableProfile]) -> TableProfile | None:
    """``profiles[0].merge(profiles[1]).merge(...)`` with the same result, built once per
    column instead of once per merge (what summing hundreds of bucket profiles costs).

    Raises:
        ProfileError: a shared column was profiled against different layouts.
    """
    if not profiles:
        return None
    by_name: dict[str, list[ColumnProfile]] = {}
    for prof in profiles:
        for name, col in prof.columns.items():
            by_name.setdefault(name, []).append(col)
    return TableProfile(sum(p.rows for p in profiles),
                        {n: _merge_columns(cols) for n, cols in by_name.items()})


def _merge_columns(cols: list[ColumnProfile]) -> ColumnProfile:
    first = cols[0]
    if len(cols) == 1:
        return first
    for c in cols[1:]:
        if not first.same_layout(c):
            return functools.reduce(ColumnProfile.merge, cols)  # raises with its message
    counts = [sum(x) for x in zip(*(c.counts for c in cols), strict=True)]
    rows, nulls = sum(c.rows for c in cols), sum(c.nulls for c in cols)
    non_finite = sum(c.non_finite for c in cols)
    if first.kind == "numeric":  # Chan's formula in the order merge() applies it
        n_a, mean, m2 = first.finite, first.mean, first.m2
        lo, hi = first.minimum, first.maximum
        for c in cols[1:]:
            mean, m2 = merge_moments(n_a, mean, m2, c.finite, c.mean, c.m2)
            n_a += c.finite
            lo, hi = _opt(min, lo, c.minimum), _opt(max, hi, c.maximum)
        return replace(first, rows=rows, nulls=nulls, counts=tuple(counts),
                       non_finite=non_finite, minimum=lo, maximum=hi, mean=mean, m2=m2)
    named, other = dict(first.new), first.other
    for c in cols[1:]:
        for label, n_new in c.new:
            named[label] = named.get(label, 0) + n_new
        keep = sorted(named)[: first.max_new]
        other += c.other + sum(named.values()) - sum(named[k] for k in keep)
        named = {k: named[k] for k in keep}
    return replace(first, rows=rows, nulls=nulls, counts=tuple(counts),
                   non_finite=non_finite, new=tuple(named.items()), other=other)


def column_from_dict(raw: Mapping[str, Any]) -> ColumnProfile:
    """Read one :meth:`ColumnProfile.as_dict` back."""
    name, kind = str(raw["name"]), str(raw["kind"])
    rows, nulls = int(raw["rows"]), int(raw["nulls"])
    counts = tuple(int(n) for n in raw["counts"])
    if kind == "numeric":
        return ColumnProfile(name, kind, rows, nulls, counts,
                             edges=tuple(float(e) for e in raw["edges"]),
                             non_finite=int(raw["non_finite"]),
                             minimum=_flt(raw["minimum"]), maximum=_flt(raw["maximum"]),
                             mean=decode_moment(raw["mean"], spread=False),
                             m2=decode_moment(raw["m2"], spread=True))
    if kind != "categorical":
        raise ValueError(f"column kind must be 'numeric' or 'categorical'; got {kind!r}")
    return ColumnProfile(name, kind, rows, nulls, counts,
                         vocabulary=tuple(str(v) for v in raw["vocabulary"]),
                         closed=bool(raw["closed"]),
                         new=tuple((str(k), int(n)) for k, n in raw["new"]),
                         other=int(raw["other"]), max_new=int(raw["max_new"]))


# --------------------------------------------------------------------------- computation
def profile_table(table: Any, *, reference: TableProfile | None = None,
                  kinds: Mapping[str, str] | None = None, bins: int = DEFAULT_BINS,
                  max_categories: int = DEFAULT_MAX_CATEGORIES,
                  max_new: int = DEFAULT_MAX_NEW) -> TableProfile:
    """Profile ``table``: the reference (``reference=None``) or a window against one.

    Args:
        table: A ``pyarrow.Table``, a pandas ``DataFrame`` or a mapping of column -> values.
        reference: The reference profile whose layouts to use. Only its columns are profiled;
            a column it has but ``table`` lacks is left out (the drift report names it).
        kinds: ``"numeric"`` or ``"categorical"`` per column, overriding the type-based default
            (numbers numeric; strings, booleans and dictionaries categorical; others skipped).
            Ignored when ``reference`` is given.
        bins: Quantile bins per numeric column (reference only).
        max_categories: Labels per categorical column counted by name (reference only).
        max_new: Labels unseen in the reference named per window.

    Returns:
        The profile.

    Raises:
        ProfileError: ``table`` is not a table, a ``kinds`` entry is unknown, or a column
            cannot be read as its kind.
        MissingExtraError: pyarrow or numpy is missing.
    """
    tbl = _as_table(table)
    names = list(tbl.column_names)
    out: dict[str, ColumnProfile] = {}
    if reference is not None:
        for name, ref in reference.columns.items():
            if name in names:
                out[name] = _profile_column(name, tbl.column(name), ref.kind, ref=ref,
                                            max_new=max_new)
        return TableProfile(tbl.num_rows, out)
    if bins < 1 or max_categories < 1 or max_new < 0:
        raise ProfileError(f"bins and max_categories must be >= 1 and max_new >= 0; got "
                           f"{bins}, {max_categories}, {max_new}.")
    for name in names:
        kind = (kinds or {}).get(name) or _default_kind(tbl.column(name).type)
        if kind is None:
            continue
        if kind not in ("numeric", "categorical"):
            raise ProfileError(f"The kind of column {name!r} must be 'numeric' or "
                               f"'categorical'; got {kind!r}.")
        out[name] = _profile_column(name, tbl.column(name), kind, bins=bins,
                                    max_categories=max_categories, max_new=max_new)
    return TableProfile(tbl.num_rows, out)


def _as_table(table: Any) -> Any:
    try:
        import pyarrow as pa
    except ImportError as exc:  # pragma: no cover - pyarrow is a core dependency
        from keelwork.errors import MissingExtraError

        raise MissingExtraError("pyarrow", "data", "Drift monitoring") from exc
    if isinstance(table, pa.Table):
        return table
    if isinstance(table, pa.RecordBatch):
        return pa.Table.from_batches([table])
    if type(table).__name__ == "DataFrame" and hasattr(table, "to_dict"):
        return pa.Table.from_pandas(table, preserve_index=False)
    if isinstance(table, Mapping):
        return pa.table({str(k): list(v) if not hasattr(v, "__array__") else v
                         for k, v in table.items()})
    raise ProfileError(f"A table to profile must be a pyarrow Table, a pandas DataFrame or a "
                       f"mapping of column -> values; got {type(table).__name__}.")


def _default_kind(typ: Any) -> str | None:
    import pyarrow as pa

    t = pa.types
    if t.is_integer(typ) or t.is_floating(typ) or t.is_decimal(typ):
        return "numeric"
    if t.is_string(typ) or t.is_large_string(typ) or t.is_boolean(typ) or t.is_dictionary(typ):
        return "categorical"
    return None


def _profile_column(name: str, column: Any, kind: str, *, ref: ColumnProfile | None = None,
                    bins: int = DEFAULT_BINS, max_categories: int = DEFAULT_MAX_CATEGORIES,
                    max_new: int = DEFAULT_MAX_NEW) -> ColumnProfile:
    if kind == "numeric":
        return _numeric(name, column, ref, bins)
    return _categorical(name, column, ref, max_categories, max_new)


def _numeric(name: str, column: Any, ref: ColumnProfile | None, bins: int) -> ColumnProfile:
    import pyarrow as pa

    try:
        values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ProfileError(f"Column {name!r} must hold numbers to be profiled as numeric; got "
                           f"type {column.type}.") from exc
    return numeric_profile(name, values, ref, bins)


def numeric_profile(name: str, values: Any, ref: ColumnProfile | None,
                bins: int) -> ColumnProfile:
    """A numeric column's profile from its values as a float64 array (null: NaN); against
    ``ref``'s layout when given, else a new layout of ``bins`` quantile bins."""
    import numpy as np

    rows = len(values)
    nan = np.isnan(values)
    finite = values[np.isfinite(values)]
    if ref is not None:
        edges = np.asarray(ref.edges, dtype=np.float64)
    elif finite.size:
        edges = reference_edges(finite, bins)
    else:
        edges = np.empty(0)
    counts = (np.bincount(np.searchsorted(edges, finite, side="right"),
                          minlength=edges.size + 1) if finite.size
              else np.zeros(edges.size + 1, dtype=np.int64))
    mean, m2 = moments(finite)
    return ColumnProfile(
        name=name, kind="numeric", rows=rows, nulls=int(nan.sum()),
        counts=tuple(int(c) for c in counts), edges=tuple(float(e) for e in edges),
        non_finite=int(rows - nan.sum() - finite.size),
        minimum=float(finite.min()) if finite.size else None,
        maximum=float(finite.max()) if finite.size else None,
        mean=mean, m2=m2)


def _categorical(name: str, column: Any, ref: ColumnProfile | None, max_categories: int,
                 max_new: int) -> ColumnProfile:
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    counted = pc.value_counts(pc.drop_null(column))
    labels = [label_of(v) for v in counted.field("values").to_pylist()]
    numbers = [int(n) for n in counted.field("counts").to_pylist()]
    # int 1 and str "1" may both appear in a mixed column; sum labels that print the same.
    found: dict[str, int] = {}
    for label, n in zip(labels, numbers, strict=True):
        found[label] = found.get(label, 0) + n
    return categorical_profile(name, found, len(column), column.null_count, ref, max_categories,
                           max_new)


def categorical_profile(name: str, found: Mapping[str, int], rows: int, nulls: int,
                    ref: ColumnProfile | None, max_categories: int,
                    max_new: int) -> ColumnProfile:
    """A categorical column's profile from its labels' counts (``found``, labels as
    :func:`profile_table` prints them), its ``rows`` and its ``nulls``; against ``ref``'s
    vocabulary when given, else a new one of at most ``max_categories`` labels."""
    if ref is None:
        ranked = sorted(found, key=lambda k: (-found[k], k))
        vocabulary = tuple(ranked[:max_categories])
        closed = len(ranked) <= max_categories
    else:
        vocabulary, closed = ref.vocabulary, ref.closed
    known = set(vocabulary)
    unknown = sorted(k for k in found if k not in known)
    named = unknown[:max_new] if closed else []
    other = sum(found[k] for k in unknown) - sum(found[k] for k in named)
    return ColumnProfile(
        name=name, kind="categorical", rows=rows, nulls=nulls,
        counts=tuple(found.get(k, 0) for k in vocabulary), vocabulary=vocabulary,
        closed=closed, new=tuple((k, found[k]) for k in named), other=other, max_new=max_new)


# --------------------------------------------------------------------------- helpers
def label_of(value: Any) -> str:
    """A categorical value as profiles count it (``true``/``false`` for booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _opt(pick: Any, a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return float(pick(a, b))


def _flt(value: Any) -> float | None:
    return None if value is None else float(value)


__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_MAX_CATEGORIES",
    "DEFAULT_MAX_NEW",
    "PROFILE_KIND",
    "PROFILE_VERSION",
    "ColumnProfile",
    "ProfileError",
    "TableProfile",
    "categorical_profile",
    "check_kind",
    "column_from_dict",
    "label_of",
    "merge_profiles",
    "numeric_profile",
    "profile_table",
]

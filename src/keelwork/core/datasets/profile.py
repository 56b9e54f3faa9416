"""Per-column profiles of a snapshot: counts, quantiles, histograms and top values."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from keelwork.errors import RegistryError

#: ``kind`` and ``version`` stamped on stored profiles.
PROFILE_KIND = "keelwork.dataset-profile"
PROFILE_VERSION = 1
#: Quantiles kept for numeric columns.
QUANTILES = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)
HISTOGRAM_BINS = 20
#: How many most frequent values a string/boolean column keeps (all of them when fewer).
TOP_VALUES = 50
#: A string column is categorical when it has at most this many distinct values...
CATEGORICAL_MAX_DISTINCT = 50
#: ...or when distinct values are at most this share of its non-null values; else it is text.
CATEGORICAL_MAX_RATIO = 0.05


# --------------------------------------------------------------------------- model
@dataclass(frozen=True, slots=True)
class NumericStats:
    """Summary of the finite values of a numeric column (or of string lengths, epoch seconds)."""

    min: float
    max: float
    mean: float
    std: float
    quantiles: tuple[float, ...]
    edges: tuple[float, ...]
    counts: tuple[int, ...]
    non_finite: int = 0


@dataclass(frozen=True, slots=True)
class CategoryStats:
    """Exact distinct count and the most frequent values (``complete``: all of them)."""

    distinct: int
    top: tuple[tuple[str, int], ...]
    complete: bool


@dataclass(frozen=True, slots=True)
class ColumnProfile:
    """One column: ``kind`` is numeric, categorical, text, temporal, other or redacted (a
    subject column: no values kept, see :func:`compute_profile`)."""

    name: str
    type: str
    kind: str
    count: int
    nulls: int
    numeric: NumericStats | None = None
    categories: CategoryStats | None = None
    lengths: NumericStats | None = None

    @property
    def null_rate(self) -> float:
        total = self.count + self.nulls
        return self.nulls / total if total else 0.0


@dataclass(frozen=True, slots=True)
class DatasetProfile:
    """Per-column profile of a snapshot; stored as JSON with ``kind`` and ``version``."""

    rows: int
    columns: tuple[ColumnProfile, ...]

    def column(self, name: str) -> ColumnProfile | None:
        return next((c for c in self.columns if c.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-compatible view (non-finite floats as ``null``)."""
        cols = []
        for c in self.columns:
            item: dict[str, Any] = {"name": c.name, "type": c.type, "kind": c.kind,
                                    "count": c.count, "nulls": c.nulls}
            for key in ("numeric", "lengths"):
                stats: NumericStats | None = getattr(c, key)
                if stats is not None:
                    item[key] = {
                        "min": _num(stats.min), "max": _num(stats.max), "mean": _num(stats.mean),
                        "std": _num(stats.std), "quantiles": [_num(q) for q in stats.quantiles],
                        "edges": [_num(e) for e in stats.edges], "counts": list(stats.counts),
                        "non_finite": stats.non_finite}
            if c.categories is not None:
                item["categories"] = {"distinct": c.categories.distinct,
                                      "top": [list(t) for t in c.categories.top],
                                      "complete": c.categories.complete}
            cols.append(item)
        return {"kind": PROFILE_KIND, "version": PROFILE_VERSION, "rows": self.rows,
                "quantiles": list(QUANTILES), "columns": cols}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetProfile:
        """Inverse of :meth:`as_dict`.

        Raises:
            RegistryError: the profile was written by a newer keelwork or is malformed.
        """
        if data.get("kind") != PROFILE_KIND or int(data.get("version", 0)) > PROFILE_VERSION:
            raise RegistryError(f"The stored dataset profile is a {data.get('kind')!r} version "
                                f"{data.get('version')!r}; this keelwork reads {PROFILE_KIND!r} "
                                f"up to version {PROFILE_VERSION}. Upgrade keelwork.")

        def stats(raw: Mapping[str, Any] | None) -> NumericStats | None:
            if raw is None:
                return None
            return NumericStats(
                _flt(raw["min"]), _flt(raw["max"]), _flt(raw["mean"]), _flt(raw["std"]),
                tuple(_flt(q) for q in raw["quantiles"]), tuple(_flt(e) for e in raw["edges"]),
                tuple(int(n) for n in raw["counts"]), int(raw.get("non_finite", 0)))

        columns = []
        for c in data["columns"]:
            cat = c.get("categories")
            columns.append(ColumnProfile(
                c["name"], c["type"], c["kind"], int(c["count"]), int(c["nulls"]),
                stats(c.get("numeric")),
                CategoryStats(int(cat["distinct"]), tuple((str(v), int(n)) for v, n in cat["top"]),
                              bool(cat["complete"])) if cat else None,
                stats(c.get("lengths"))))
        return cls(int(data["rows"]), tuple(columns))


# --------------------------------------------------------------------------- computation
def compute_profile(table: Any, *, redact: Collection[str] = ()) -> DatasetProfile:
    """Profile every column of a canonical ``table`` (vectorised with pyarrow and numpy).

    Args:
        table: The output of :func:`canonicalize`.
        redact: Columns whose values must not appear in the profile (the subject column: its
            values identify people). They keep counts, distinct count and lengths only.

    Returns:
        The profile: counts and nulls for all columns; quantiles, moments and a histogram for
        numbers (and epoch seconds for dates/timestamps); distinct count and top values for
        strings and booleans; length statistics for strings.
    """
    columns = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        profile = _profile_column(name, column)
        if name in redact:
            import pyarrow.compute as pc

            distinct = pc.count_distinct(column).as_py()
            profile = ColumnProfile(profile.name, profile.type, "redacted", profile.count,
                                    profile.nulls, categories=CategoryStats(distinct, (), False),
                                    lengths=profile.lengths)
        columns.append(profile)
    return DatasetProfile(table.num_rows, tuple(columns))


def _profile_column(name: str, column: Any) -> ColumnProfile:
    import pyarrow as pa
    import pyarrow.compute as pc

    t = pa.types
    typ = column.type
    nulls = column.null_count
    count = len(column) - nulls
    base = {"name": name, "type": str(typ), "count": count, "nulls": nulls}
    if t.is_integer(typ) or t.is_floating(typ) or t.is_decimal(typ):
        return ColumnProfile(kind="numeric", numeric=_numeric(column.cast(pa.float64())), **base)
    if t.is_timestamp(typ) or t.is_date(typ):
        micros = pc.cast(column, pa.timestamp("us", getattr(typ, "tz", None)), safe=False)
        seconds = micros.cast(pa.int64())
        return ColumnProfile(kind="temporal",
                             numeric=_numeric(pc.divide(seconds.cast(pa.float64()), 1e6)), **base)
    if t.is_time(typ) or t.is_duration(typ):
        micros = pc.cast(column, pa.time64("us") if t.is_time(typ) else pa.duration("us"),
                         safe=False)
        return ColumnProfile(kind="numeric", numeric=_numeric(
            pc.divide(micros.cast(pa.int64()).cast(pa.float64()), 1e6)), **base)
    if t.is_boolean(typ):
        return ColumnProfile(kind="categorical", categories=_categories(column), **base)
    if t.is_large_string(typ):
        cats = _categories(column)
        categorical = (cats.distinct <= CATEGORICAL_MAX_DISTINCT
                       or cats.distinct <= CATEGORICAL_MAX_RATIO * count)
        lengths = _numeric(pc.utf8_length(column).cast(pa.float64()))
        return ColumnProfile(kind="categorical" if categorical else "text", categories=cats,
                             lengths=lengths, **base)
    if t.is_large_binary(typ):
        return ColumnProfile(kind="other", lengths=_numeric(
            pc.binary_length(column).cast(pa.float64())), **base)
    return ColumnProfile(kind="other", **base)


def _numeric(column: Any) -> NumericStats | None:
    import numpy as np
    import pyarrow.compute as pc

    values = pc.drop_null(column).to_numpy()
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    lo, hi = float(finite.min()), float(finite.max())
    # near the float64 limit sums and squares overflow: mean and std of scaled values
    top = max(abs(lo), abs(hi))
    scale = top if top > 1e150 else 1.0
    scaled = finite / scale if scale != 1.0 else finite
    counts, edges = np.histogram(finite, bins=lattice_edges(finite, lo, hi))
    return NumericStats(
        min=lo, max=hi, mean=float(scaled.mean()) * scale,
        std=float(scaled.std(ddof=1)) * scale if finite.size > 1 else 0.0,
        quantiles=tuple(float(q) for q in np.quantile(finite, QUANTILES)),
        edges=tuple(float(e) for e in edges), counts=tuple(int(c) for c in counts),
        non_finite=int(values.size - finite.size))


def lattice_edges(finite: Any, lo: float, hi: float) -> Any:
    """Histogram edges on a shared lattice, so two profiles compare exactly.

    The bin width is a power of two (at least 1 for integer-valued data, whose edges sit at
    half-integers so each integer falls inside a bin), and the edges are its multiples: two
    profiles' grids are then nested, and :func:`keelwork.core.datasets.compare.column_shift`
    compares them on the coarser one without spreading any bin's mass. At most
    ``HISTOGRAM_BINS + 1`` bins; a range too wide for a float lattice falls back to
    ``HISTOGRAM_BINS`` equal bins.

    Args:
        finite: A non-empty numpy float array of finite values.
        lo: Its minimum.
        hi: Its maximum.

    Returns:
        The edges, ascending.
    """
    import numpy as np

    integral = bool(np.all(finite == np.floor(finite)))
    span = hi - lo + (1.0 if integral else 0.0)
    if not math.isfinite(span) or span > 2.0**52:
        return np.histogram_bin_edges(finite, bins=HISTOGRAM_BINS)
    if span == 0:
        return np.asarray([lo - 0.5, hi + 0.5])
    width = 2.0 ** math.ceil(math.log2(span / HISTOGRAM_BINS))
    if integral:
        width = max(width, 1.0)
    shift = 0.5 if integral else 0.0  # integers inside bins, not on edges
    start = math.floor((lo + shift) / width) * width - shift
    bins = math.floor((hi - start) / width) + 1
    return start + width * np.arange(bins + 1, dtype=np.float64)


def _categories(column: Any) -> CategoryStats:
    import pyarrow.compute as pc

    counts = pc.value_counts(pc.drop_null(column))
    values = counts.field("values").to_pylist()
    numbers = counts.field("counts").to_numpy()
    # Most frequent first; ties by value, so the profile of one content is always the same.
    order = sorted(range(len(values)), key=lambda i: (-int(numbers[i]), _label(values[i])))
    top = tuple((_label(values[i]), int(numbers[i])) for i in order[:TOP_VALUES])
    return CategoryStats(distinct=len(values), top=top, complete=len(values) <= TOP_VALUES)


def _label(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --------------------------------------------------------------------------- helpers
def _num(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _flt(value: Any) -> float:
    return math.nan if value is None else float(value)


__all__ = [
    "PROFILE_KIND",
    "PROFILE_VERSION",
    "QUANTILES",
    "CategoryStats",
    "ColumnProfile",
    "DatasetProfile",
    "NumericStats",
    "compute_profile",
]

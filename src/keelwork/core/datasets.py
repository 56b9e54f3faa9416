"""Dataset snapshots' domain: versions, references, the content hash, profiles and diffs.

Pure logic on in-memory Arrow tables (no file or database I/O). Storage lives in
``keelwork.adapters.stores.datasets``; pyarrow and numpy are imported inside the functions.

What the sha256 of a snapshot covers
------------------------------------
A snapshot is identified by its *rows*, not by the bytes of the file they came from, so one table
saved as CSV, Parquet or JSON Lines gets one hash:

1. **Canonical types** (:func:`canonicalize`): integers (8-64 bit, signed, and unsigned up to 32
   bit) become ``int64`` (``uint64`` too when every value fits), floats ``float64``, strings
   ``large_string``, binaries ``large_binary``, dictionaries are decoded, dates ``date32``,
   timestamps/times/durations ``us`` when no value loses precision (else ``ns``; the time zone is
   kept). ``-0.0`` becomes ``0.0`` and every NaN one NaN. Nested columns keep their type. A
   *mixed* column (values of several JSON types, from JSON lines) becomes ``large_string`` holding
   each value as canonical JSON text (``1``, ``"1"``, ``[1,2]``), so the types stay told apart.
   The readers decide the types a file gives: CSV has no date type, so dates from CSV are text.
2. **Canonical order**: the rows are hashed sorted by every column, so the order of the rows in
   the source does not matter: a snapshot is a multiset of records. Column order and names do.
3. **Column-wise streams**: per column, SHA-256 of its validity mask, of its values (fixed-width
   little-endian; nulls as zero) and for variable-width types of the lengths and the bytes;
   nested values contribute a digest of their canonical JSON. The digests are combined with the
   column names, types and the row count under the tag ``keelwork-dataset-content-v1``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from keelwork.errors import DataFileError, RegistryError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

#: Version of the content-hash definition above; a change means new hashes for old rows.
CONTENT_TAG = b"keelwork-dataset-content-v1\0"
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
#: Population stability index from which a column counts as shifted (the usual rule of thumb).
PSI_ALERT = 0.2
#: Bits of the subject-key hash that choose a bucket (the unit of erasure): 4096 buckets.
SUBJECT_BUCKET_BITS = 12

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_SNAPSHOT_REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}:[1-9][0-9]{0,17}$")
_NAME_RULE = ("must start with a letter or digit and hold only letters, digits, '_', '.', '-' "
              "(at most 128 characters)")
_EPS = 1e-4


# --------------------------------------------------------------------------- names
@dataclass(frozen=True, slots=True)
class DatasetRef:
    """``name`` (the latest version) or ``name:version``."""

    name: str
    version: int | None = None

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}:{self.version}"


def check_dataset_name(name: str) -> str:
    """Return ``name`` when it is a valid dataset name.

    Raises:
        RegistryError: it is not.
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise RegistryError(f"The dataset name {name!r} is invalid: a dataset name {_NAME_RULE}.")
    return name


def parse_dataset_ref(text: str) -> DatasetRef:
    """Parse ``name`` or ``name:3``.

    Raises:
        RegistryError: the reference is malformed; the message shows the accepted forms.
    """
    forms = "use NAME (its latest version) or NAME:VERSION, e.g. 'churn-train:3'"
    text = text.strip() if isinstance(text, str) else ""
    if not text:
        raise RegistryError(f"A dataset reference must not be empty; {forms}.")
    name, colon, number = text.partition(":")
    if not _NAME_RE.match(name):
        raise RegistryError(f"The dataset reference {text!r} has an invalid name {name!r}: a "
                            f"dataset name {_NAME_RULE}; {forms}.")
    if not colon:
        return DatasetRef(name)
    if not number.isdigit() or int(number) < 1:
        raise RegistryError(f"The dataset reference {text!r} has an invalid version {number!r}: "
                            f"a version is an integer >= 1; {forms}.")
    return DatasetRef(name, int(number))


def looks_like_snapshot_ref(text: str | None) -> bool:
    """True for ``name:3``: the form a model's ``dataset_version`` uses to name a snapshot.

    A bare name stays free text (it may be anything: a date, a bucket path's last part).
    """
    return bool(text) and bool(_SNAPSHOT_REF_RE.match(str(text).strip()))


# --------------------------------------------------------------------------- profile model
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


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    """One immutable snapshot: ``name:version`` -> content ``sha256`` (see the module doc)."""

    name: str
    version: int
    sha256: str
    schema: tuple[tuple[str, str], ...]
    rows: int
    created_at: datetime
    created_by: str
    source: str
    profile: DatasetProfile
    subject_column: str | None = None
    size: int = 0
    uri: str = ""

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    def as_dict(self, *, profile: bool = True) -> dict[str, Any]:
        """A JSON-compatible view (timestamps in ISO 8601)."""
        out: dict[str, Any] = {
            "name": self.name, "version": self.version, "ref": self.ref, "sha256": self.sha256,
            "rows": self.rows, "schema": [{"column": c, "type": t} for c, t in self.schema],
            "created_at": self.created_at.isoformat(), "created_by": self.created_by,
            "source": self.source, "subject_column": self.subject_column, "size": self.size,
            "uri": self.uri}
        if profile:
            out["profile"] = self.profile.as_dict()
        return out


# --------------------------------------------------------------------------- content
def canonicalize(table: Any, *, source: str = "<table>") -> Any:
    """Cast ``table`` to the canonical types of the module doc and normalise floats.

    Args:
        table: A ``pyarrow.Table``.
        source: What to call the data in errors (its file).

    Returns:
        A new ``pyarrow.Table`` with the same columns, in canonical types.

    Raises:
        DataFileError: a column has a type snapshots cannot hold (a union, an extension type).
    """
    import pyarrow as pa

    arrays = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        arrays.append(_canonical_column(pa, column, name, source))
    return pa.table(arrays, names=table.column_names)


def _canonical_column(pa: Any, column: Any, name: str, source: str) -> Any:
    import pyarrow.compute as pc

    from keelwork.core.contracts.columns import is_mixed

    t = pa.types
    typ = column.type
    if t.is_dictionary(typ):
        column = column.cast(typ.value_type)
        typ = typ.value_type
    if is_mixed(typ):
        return pa.chunked_array([_mixed_as_json(pa, chunk) for chunk in column.chunks],
                                type=pa.large_string())
    target: Any = None
    if t.is_null(typ) or t.is_boolean(typ) or t.is_decimal(typ) or _is_nested(t, typ):
        return column
    if t.is_floating(typ):
        column = pc.add(column.cast(pa.float64()), 0.0)  # -0.0 + 0.0 == +0.0
        return pc.if_else(pc.is_nan(column), pa.scalar(math.nan), column)
    if t.is_integer(typ):
        target = pa.int64()
        if t.is_uint64(typ):
            biggest = pc.max(column).as_py()
            target = pa.int64() if biggest is None or biggest < 2**63 else pa.uint64()
    elif t.is_string(typ) or t.is_large_string(typ) or _is(t, "is_string_view", typ):
        target = pa.large_string()
    elif (t.is_binary(typ) or t.is_large_binary(typ) or t.is_fixed_size_binary(typ)
          or _is(t, "is_binary_view", typ)):
        target = pa.large_binary()
    elif t.is_date(typ):
        target = pa.date32()
    elif t.is_timestamp(typ):
        target = _finest(pa, column, [pa.timestamp("us", typ.tz), pa.timestamp("ns", typ.tz)])
    elif t.is_time(typ):
        target = _finest(pa, column, [pa.time64("us"), pa.time64("ns")])
    elif t.is_duration(typ):
        target = _finest(pa, column, [pa.duration("us"), pa.duration("ns")])
    if target is None:
        raise DataFileError(f"The column '{name}' of '{source}' has the type {typ}, which a "
                            "snapshot cannot hold; snapshots hold numbers, booleans, strings, "
                            "binaries, dates, times and lists/structs of them.",
                            path=source, column=name)
    try:
        return column.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataFileError(f"The column '{name}' of '{source}' cannot be stored as {target}: "
                            f"{exc}.", path=source, column=name) from None


def _mixed_as_json(pa: Any, chunk: Any) -> Any:
    """A mixed column's values as canonical JSON text (``1``, ``"a"``, ``[1,2]``); nulls stay."""
    def text(code: int, value: Any) -> str | None:
        if value is None or code == 0:
            return None
        if code == 5:  # the "json" child already holds arrays/objects as JSON text
            value = json.loads(value)
        return json.dumps(value, sort_keys=True, separators=(",", ":"))

    return pa.array([text(c, v) for c, v in zip(chunk.type_codes.to_pylist(), chunk.to_pylist(),
                                                strict=True)], pa.large_string())


def _finest(pa: Any, column: Any, candidates: list[Any]) -> Any:
    """The first candidate type ``column`` casts to without losing precision."""
    for candidate in candidates:
        try:
            column.cast(candidate)  # safe cast: raises when a value would be truncated
        except pa.ArrowInvalid:
            continue
        return candidate
    return candidates[-1]


def _is(types: Any, predicate: str, typ: Any) -> bool:
    check = getattr(types, predicate, None)  # newer pyarrow only
    return bool(check(typ)) if check is not None else False


def _is_nested(t: Any, typ: Any) -> bool:
    return bool(t.is_list(typ) or t.is_large_list(typ) or t.is_fixed_size_list(typ)
                or t.is_struct(typ) or t.is_map(typ))


def sort_keys(table: Any) -> tuple[Any, list[tuple[str, str]]]:
    """The canonical row order's sort keys for a canonical ``table``.

    Nested columns cannot be sorted by Arrow; each gets a key column ``__keel_key_<i>`` holding
    a digest of its values' canonical JSON (drop those columns after sorting).

    Returns:
        ``(table with any key columns appended, [(column, "ascending"), ...])``.
    """
    import pyarrow as pa

    keys: list[tuple[str, str]] = []
    for i, (name, column) in enumerate(zip(table.column_names, table.columns, strict=True)):
        if pa.types.is_null(column.type):
            continue
        if _is_nested(pa.types, column.type):
            key = f"__keel_key_{i}"
            table = table.append_column(key, _nested_digests(pa, column))
            keys.append((key, "ascending"))
        else:
            keys.append((name, "ascending"))
    return table, keys


def _nested_digests(pa: Any, column: Any) -> Any:
    def digest(value: Any) -> bytes | None:
        if value is None:
            return None
        text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.blake2b(text.encode(), digest_size=16).digest()

    return pa.chunked_array([pa.array([digest(v) for v in chunk.to_pylist()], pa.large_binary())
                             for chunk in column.chunks], type=pa.large_binary())


def content_sha256(table: Any) -> str:
    """The content hash of a canonical ``table`` (see the module doc): row order is ignored.

    Args:
        table: The output of :func:`canonicalize`.

    Returns:
        64 lowercase hex digits.
    """
    import pyarrow.compute as pc

    keyed, keys = sort_keys(table)
    ordered = keyed.take(pc.sort_indices(keyed, sort_keys=keys)) if keys else keyed
    digest = hashlib.sha256(CONTENT_TAG)
    digest.update(f"{table.num_rows}\0{table.num_columns}\0".encode())
    for i, name in enumerate(table.column_names):
        column = ordered.column(i)
        digest.update(name.encode("utf-8", "surrogatepass") + b"\0")
        digest.update(str(column.type).encode() + b"\0")
        key = f"__keel_key_{i}"
        digest.update(_column_digest(ordered.column(key) if key in ordered.column_names
                                     else column))
    return digest.hexdigest()


def _column_digest(column: Any) -> bytes:
    """SHA-256 of a column's validity, values (and lengths): independent of its chunking."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    t = pa.types
    typ = column.type
    valid, values, lengths = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()
    if t.is_null(typ):
        return valid.digest()
    if t.is_decimal(typ):
        column, typ = column.cast(pa.large_string()), pa.large_string()
    variable = t.is_large_string(typ) or t.is_large_binary(typ) or t.is_binary(typ)
    for chunk in column.chunks:
        valid.update(pc.is_valid(chunk).to_numpy(zero_copy_only=False).view(np.uint8).tobytes())
        if variable:
            chunk = chunk.cast(pa.large_binary()).fill_null(b"")
            lengths.update(pc.binary_length(chunk).to_numpy().astype("<i8").tobytes())
            offsets = np.frombuffer(chunk.buffers()[1], dtype="<i8")
            start, end = int(offsets[chunk.offset]), int(offsets[chunk.offset + len(chunk)])
            data = chunk.buffers()[2]
            if data is not None and end > start:
                values.update(memoryview(data)[start:end])
        elif t.is_boolean(typ):
            values.update(chunk.fill_null(False).to_numpy(zero_copy_only=False)
                          .view(np.uint8).tobytes())
        elif t.is_floating(typ):
            values.update(chunk.fill_null(0.0).to_numpy().astype("<f8").tobytes())
        else:  # integers and temporal types: their integer storage
            width = typ.bit_width
            storage = chunk.view(pa.int32() if width == 32 else pa.int64()) if not \
                t.is_integer(typ) else chunk
            zeros = storage.fill_null(0).to_numpy()
            values.update(zeros.astype(f"<{'u' if t.is_uint64(typ) else 'i'}{width // 8}")
                          .tobytes())
    return hashlib.sha256(valid.digest() + values.digest() + lengths.digest()).digest()


def subject_buckets(column: Any, bits: int = SUBJECT_BUCKET_BITS) -> npt.NDArray[np.int64]:
    """The erasure bucket of every row: the top ``bits`` of a 64-bit hash of its subject key.

    The key is the value's text (``42`` and ``"42"`` are one subject, whatever a file format
    inferred); null keys share one bucket. Each distinct key is hashed once.

    Args:
        column: The subject column (a ``pyarrow`` array or chunked array).
        bits: Bucket bits (4096 buckets by default).

    Returns:
        One bucket number per row (``int64``).
    """
    import numpy as np
    import pyarrow.compute as pc

    distinct = pc.unique(column)
    hashes = np.fromiter((subject_hash(v) for v in distinct.to_pylist()), dtype=np.uint64,
                         count=len(distinct))
    index = pc.index_in(column, value_set=distinct).to_numpy(zero_copy_only=False)
    buckets: npt.NDArray[np.int64] = (hashes[index.astype(np.int64)]
                                      >> np.uint64(64 - bits)).astype(np.int64)
    return buckets


def subject_hash(value: Any) -> int:
    """64-bit hash of one subject key (its text; ``None`` -> the null key)."""
    if value is None:
        data = b"\0null"
    elif isinstance(value, bytes):
        data = value
    else:
        data = str(value).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8, person=b"keel-subject").digest(),
                          "big")


# --------------------------------------------------------------------------- profile
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
    counts, edges = np.histogram(finite, bins=HISTOGRAM_BINS)
    return NumericStats(
        min=float(finite.min()), max=float(finite.max()), mean=float(finite.mean()),
        std=float(finite.std(ddof=1)) if finite.size > 1 else 0.0,
        quantiles=tuple(float(q) for q in np.quantile(finite, QUANTILES)),
        edges=tuple(float(e) for e in edges), counts=tuple(int(c) for c in counts),
        non_finite=int(values.size - finite.size))


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


# --------------------------------------------------------------------------- diff
@dataclass(frozen=True, slots=True)
class SchemaChange:
    """A column ``added``, ``removed`` or ``type_changed`` between two snapshots."""

    column: str
    change: str
    before: str | None
    after: str | None


@dataclass(frozen=True, slots=True)
class ColumnShift:
    """How one column's distribution moved. ``mean_shift`` is in standard deviations of
    *before*; ``psi`` / ``js`` compare histograms (or category shares); ``js`` is the
    Jensen-Shannon distance in [0, 1]."""

    column: str
    kind: str
    null_rate_before: float
    null_rate_after: float
    mean_before: float | None = None
    mean_after: float | None = None
    std_before: float | None = None
    std_after: float | None = None
    mean_shift: float | None = None
    psi: float | None = None
    js: float | None = None
    new_categories: tuple[str, ...] = ()
    missing_categories: tuple[str, ...] = ()

    @property
    def shifted(self) -> bool:
        return (self.psi is not None and self.psi >= PSI_ALERT) or bool(
            self.new_categories or self.missing_categories)


@dataclass(frozen=True, slots=True)
class DatasetDiff:
    """``keel data diff``: schema changes, row counts and per-column shifts, *before* -> *after*."""

    before: str
    after: str
    same_content: bool
    rows_before: int
    rows_after: int
    schema_changes: tuple[SchemaChange, ...]
    columns: tuple[ColumnShift, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-compatible view."""
        return {
            "before": self.before, "after": self.after, "same_content": self.same_content,
            "rows": {"before": self.rows_before, "after": self.rows_after,
                     "change": self.rows_after - self.rows_before},
            "schema_changes": [{"column": s.column, "change": s.change, "before": s.before,
                                "after": s.after} for s in self.schema_changes],
            "columns": [{
                "column": c.column, "kind": c.kind, "null_rate_before": c.null_rate_before,
                "null_rate_after": c.null_rate_after, "mean_before": _num(c.mean_before),
                "mean_after": _num(c.mean_after), "std_before": _num(c.std_before),
                "std_after": _num(c.std_after), "mean_shift": _num(c.mean_shift),
                "psi": _num(c.psi), "js": _num(c.js), "new_categories": list(c.new_categories),
                "missing_categories": list(c.missing_categories), "shifted": c.shifted,
            } for c in self.columns],
        }


def diff(a: DatasetVersion, b: DatasetVersion) -> DatasetDiff:
    """Compare two snapshots: schema, row counts and, for columns in both, their distributions.

    Args:
        a: The *before* snapshot.
        b: The *after* snapshot.

    Returns:
        The differences; ``same_content`` when both have one content hash.
    """
    before, after = dict(a.schema), dict(b.schema)
    changes = [SchemaChange(c, "removed", t, None) for c, t in a.schema if c not in after]
    changes += [SchemaChange(c, "added", None, t) for c, t in b.schema if c not in before]
    changes += [SchemaChange(c, "type_changed", before[c], t) for c, t in b.schema
                if c in before and before[c] != t]
    shifts = []
    for name, _ in a.schema:
        pa_, pb = a.profile.column(name), b.profile.column(name)
        if name in after and pa_ is not None and pb is not None:
            shifts.append(column_shift(pa_, pb))
    return DatasetDiff(a.ref, b.ref, a.sha256 == b.sha256, a.rows, b.rows, tuple(changes),
                       tuple(shifts))


def column_shift(a: ColumnProfile, b: ColumnProfile) -> ColumnShift:
    """The shift of one column between two profiles (see :class:`ColumnShift`)."""
    shift = ColumnShift(a.name, b.kind if a.kind == b.kind else f"{a.kind}->{b.kind}",
                        a.null_rate, b.null_rate)
    if a.numeric is not None and b.numeric is not None:
        sa, sb = a.numeric, b.numeric
        psi, js = _distances(*_histogram_masses(sa, sb))
        moved = (sb.mean - sa.mean) / sa.std if sa.std > 0 else (
            0.0 if sb.mean == sa.mean else math.inf)
        return _replace(shift, mean_before=sa.mean, mean_after=sb.mean, std_before=sa.std,
                        std_after=sb.std, mean_shift=moved, psi=psi, js=js)
    if a.categories is not None and b.categories is not None and "redacted" not in (
            a.kind, b.kind) and ("categorical" in (a.kind, b.kind) or a.lengths is None
                                 or b.lengths is None):
        ca, cb = a.categories, b.categories
        seen_a, seen_b = {v for v, _ in ca.top}, {v for v, _ in cb.top}
        new = tuple(v for v, _ in cb.top if v not in seen_a) if ca.complete else ()
        gone = tuple(v for v, _ in ca.top if v not in seen_b) if cb.complete else ()
        psi, js = _distances(*_category_masses(ca, a.count, cb, b.count))
        return _replace(shift, psi=psi, js=js, new_categories=new, missing_categories=gone)
    if a.lengths is not None and b.lengths is not None:
        la, lb = a.lengths, b.lengths
        psi, js = _distances(*_histogram_masses(la, lb))
        return _replace(shift, mean_before=la.mean, mean_after=lb.mean, std_before=la.std,
                        std_after=lb.std, psi=psi, js=js)
    return shift


def _replace(shift: ColumnShift, **changes: Any) -> ColumnShift:
    from dataclasses import replace

    return replace(shift, **changes)


def _histogram_masses(a: NumericStats, b: NumericStats) -> tuple[list[float], list[float]]:
    """Both histograms' shares on one grid: ``a``'s edges plus ``b``'s ends (linear CDFs)."""
    import numpy as np

    grid = np.unique(np.concatenate([a.edges, [b.edges[0], b.edges[-1]]]))

    def masses(s: NumericStats) -> list[float]:
        cdf = np.concatenate([[0.0], np.cumsum(s.counts)]) / max(sum(s.counts), 1)
        return [float(m) for m in np.diff(np.interp(grid, s.edges, cdf, left=0.0, right=1.0))]

    return masses(a), masses(b)


def _category_masses(a: CategoryStats, a_count: int, b: CategoryStats,
                     b_count: int) -> tuple[list[float], list[float]]:
    labels = list(dict.fromkeys([v for v, _ in a.top] + [v for v, _ in b.top]))

    def masses(s: CategoryStats, count: int) -> list[float]:
        known = dict(s.top)
        shares = [known.get(v, 0) / count if count else 0.0 for v in labels]
        return [*shares, max(0.0, 1.0 - sum(shares)) if count else 0.0]  # the rest: "other"

    return masses(a, a_count), masses(b, b_count)


def _distances(p: Sequence[float], q: Sequence[float]) -> tuple[float | None, float | None]:
    """(PSI, Jensen-Shannon distance base 2) of two share vectors; ``None`` when one is empty."""
    import numpy as np

    ps, qs = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    if ps.sum() <= 0 or qs.sum() <= 0:
        return None, None
    ps, qs = ps / ps.sum(), qs / qs.sum()
    pc_, qc = np.clip(ps, _EPS, None), np.clip(qs, _EPS, None)
    psi = float(np.sum((qc - pc_) * np.log(qc / pc_)))
    m = (ps + qs) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(ps > 0, ps * np.log2(ps / m), 0.0).sum()
        kl_q = np.where(qs > 0, qs * np.log2(qs / m), 0.0).sum()
    return psi, float(math.sqrt(max(0.0, (kl_p + kl_q) / 2)))


# --------------------------------------------------------------------------- helpers
def _num(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _flt(value: Any) -> float:
    return math.nan if value is None else float(value)


def utc_now() -> datetime:
    """The current time in UTC (the one clock snapshots are stamped with)."""
    return datetime.now(UTC)


__all__ = [
    "CONTENT_TAG",
    "PROFILE_KIND",
    "PROFILE_VERSION",
    "PSI_ALERT",
    "QUANTILES",
    "SUBJECT_BUCKET_BITS",
    "CategoryStats",
    "ColumnProfile",
    "ColumnShift",
    "DatasetDiff",
    "DatasetProfile",
    "DatasetRef",
    "DatasetVersion",
    "NumericStats",
    "SchemaChange",
    "canonicalize",
    "check_dataset_name",
    "column_shift",
    "compute_profile",
    "content_sha256",
    "diff",
    "looks_like_snapshot_ref",
    "parse_dataset_ref",
    "sort_keys",
    "subject_buckets",
    "subject_hash",
    "utc_now",
]

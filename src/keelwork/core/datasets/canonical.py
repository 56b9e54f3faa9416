"""Canonical types, the content hash of a snapshot and subject-key hashing.

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
from typing import TYPE_CHECKING, Any

from keelwork.errors import DataFileError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

#: Version of the content-hash definition above; a change means new hashes for old rows.
CONTENT_TAG = b"keelwork-dataset-content-v1\0"
#: Bits of the subject-key hash that choose a bucket (the unit of erasure): 4096 buckets.
SUBJECT_BUCKET_BITS = 12


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


__all__ = [
    "CONTENT_TAG",
    "SUBJECT_BUCKET_BITS",
    "canonicalize",
    "content_sha256",
    "sort_keys",
    "subject_buckets",
    "subject_hash",
]

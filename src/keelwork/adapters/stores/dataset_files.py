"""The files of a dataset snapshot: Parquet parts and their manifest, laid out by subject.

Under the store's root, ``<sha256>/<layout>/``: ``layout`` is ``rows`` without a subject column,
else ``subject-<16 hex digits of the column name's hash>``: rows sorted by the subject key's
erasure bucket, parts cut only at bucket boundaries, and each part's and row group's bucket
range in the manifest, so that the rows of one data subject live in one known part (see
docs/design/erasure-in-snapshots.md).
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from hashlib import blake2b
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keelwork.adapters.stores.artifacts import hash_file
from keelwork.adapters.stores.dataset_sealing import Erased, open_part, schema_of
from keelwork.core.datasets import SUBJECT_BUCKET_BITS, sort_keys, subject_buckets
from keelwork.errors import DataFileError, StoreError

if TYPE_CHECKING:
    from keelwork.adapters.stores.subject_keys import SubjectKeys

MANIFEST_KIND = "keelwork.dataset-manifest"
MANIFEST_VERSION = 1
#: ``progress(stage, done, total)``: stage ``reading`` (rows, total unknown) or ``writing``.
Progress = Callable[[str, int, int | None], None]


def write_parts(root: Path, table: Any, sha: str, subject_column: str | None, final: Path,
                progress: Progress | None, *, part_rows: int, row_group_rows: int,
                transform: Callable[[Any], Any] | None = None,
                extra: dict[str, Any] | None = None) -> bool:
    """Write the parts and manifest of a snapshot to a temp dir, then rename it to ``final``.

    ``transform`` turns each part's rows (in layout order) into what the file holds (sealing:
    :func:`keelwork.adapters.stores.dataset_sealing.seal_part`); ``extra`` goes into the
    manifest.

    Returns whether this call created ``final`` (False: a concurrent snapshot did).
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    keyed, keys = sort_keys(table)
    buckets = None
    if subject_column is not None:
        buckets = subject_buckets(table.column(subject_column))
        keyed = keyed.append_column("__keel_bucket", pa.array(buckets))
        keys = [("__keel_bucket", "ascending"), *keys]
    order = pc.sort_indices(keyed, sort_keys=keys)
    ordered = table.take(order)
    if buckets is not None:
        buckets = buckets[order.to_numpy()]
    tmp = root / "tmp" / uuid.uuid4().hex
    try:
        tmp.mkdir(parents=True)
        parts = []
        spans = _plan_parts(buckets, table.num_rows, part_rows)
        for i, (start, stop) in enumerate(spans):
            file = tmp / f"part-{i:05d}.parquet"
            rows = ordered.slice(start, stop - start)
            pq.write_table(rows if transform is None else transform(rows), file,
                           row_group_size=row_group_rows, compression="zstd")
            parts.append(part_entry(file, start, stop, buckets, np))
            if progress is not None:
                progress("writing", i + 1, len(spans))
        manifest = {
            "kind": MANIFEST_KIND, "version": MANIFEST_VERSION, "sha256": sha,
            "rows": table.num_rows, "subject_column": subject_column,
            "subject_hash": "blake2b-64/keel-subject" if subject_column else None,
            "bucket_bits": SUBJECT_BUCKET_BITS if subject_column else None,
            "order": (["subject_bucket", "all columns"] if subject_column
                      else ["all columns"]),
            "parts": parts, **(extra or {}),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            tmp.rename(final)
        except OSError:
            if not (final / "manifest.json").is_file():
                raise
            return False  # the same content, written by a concurrent snapshot
        return True
    except OSError as exc:
        raise StoreError(f"Writing the snapshot to '{root}' failed: {exc}. Check free "
                         "disk space and permissions.") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def check_subject(table: Any, column: str, source: str) -> None:
    import pyarrow as pa

    if column not in table.column_names:
        raise DataFileError(f"The subject column '{column}' is not in '{source}' (columns: "
                            f"{', '.join(table.column_names)}).", path=source, column=column)
    typ = table.schema.field(column).type
    if pa.types.is_nested(typ) or pa.types.is_floating(typ):
        raise DataFileError(f"The subject column '{column}' of '{source}' must hold identifiers "
                            f"(strings or integers); got {typ}.", path=source, column=column)


def layout_of(subject_column: str | None, sealed: bool = False) -> str:
    """The layout directory's name: ``rows``, ``subject-<hash>``, or ``sealed-<hash>`` for
    rows sealed under per-subject keys (:mod:`keelwork.adapters.stores.dataset_sealing`)."""
    if subject_column is None:
        return "rows"
    name = blake2b(subject_column.encode("utf-8", "surrogatepass"), digest_size=8)
    return ("sealed-" if sealed else "subject-") + name.hexdigest()


def read_part(file: Path, manifest: dict[str, Any], keys: SubjectKeys | None,
              columns: list[str] | None = None, *, erased: Erased = "drop") -> tuple[Any, int]:
    """The rows of one part file of a snapshot, opened when sealed, and how many rows did
    not open (their subject's key is gone: erased).

    Raises:
        OSError: the file cannot be read.
    """
    import pyarrow.parquet as pq

    if not manifest.get("sealed"):
        return pq.read_table(file, columns=columns), 0
    return open_rows(pq.read_table(file), manifest, keys, columns, erased=erased)


def open_rows(stored: Any, manifest: dict[str, Any], keys: SubjectKeys | None,
              columns: list[str] | None = None, *, erased: Erased = "drop") -> tuple[Any, int]:
    """:func:`read_part` on rows read from a part file already (whole, or some row groups)."""
    sealed = manifest.get("sealed")
    if not sealed:
        return (stored.select(columns) if columns is not None else stored), 0
    table, gone = open_part(stored, schema_of(sealed["schema"]), manifest["sha256"], keys,
                            erased=erased)
    return (table.select(columns) if columns is not None else table), gone


def _plan_parts(buckets: Any, rows: int, part_rows: int) -> list[tuple[int, int]]:
    """Row spans of the parts: ``part_rows`` each, but never splitting a bucket."""
    import numpy as np

    if buckets is None:
        return [(s, min(s + part_rows, rows)) for s in range(0, rows, part_rows)]
    boundaries = np.flatnonzero(np.diff(buckets)) + 1  # first row of each new bucket
    spans, start = [], 0
    while start < rows:
        cut = np.searchsorted(boundaries, start + part_rows)
        stop = int(boundaries[cut]) if cut < len(boundaries) else rows
        spans.append((start, stop))
        start = stop
    return spans


def part_entry(file: Path, start: int, stop: int, buckets: Any, np: Any) -> dict[str, Any]:
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(file).metadata
    groups, offset = [], start
    for i in range(meta.num_row_groups):
        n = meta.row_group(i).num_rows
        span = buckets[offset:offset + n] if buckets is not None else None
        groups.append({"rows": n, **_range(span, np)})
        offset += n
    sha, size = hash_file(file)
    return {"file": file.name, "rows": stop - start, "bytes": size, "sha256": sha,
            **_range(buckets[start:stop] if buckets is not None else None, np),
            "row_groups": groups}


def _range(span: Any, np: Any) -> dict[str, int | None]:
    if span is None or len(span) == 0:
        return {"bucket_min": None, "bucket_max": None}
    return {"bucket_min": int(np.min(span)), "bucket_max": int(np.max(span))}


__all__ = ["MANIFEST_KIND", "MANIFEST_VERSION", "Progress", "check_subject", "layout_of",
           "open_rows", "part_entry", "read_part", "write_parts"]

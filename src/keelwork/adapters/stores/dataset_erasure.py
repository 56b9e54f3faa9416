"""Erasing one data subject's rows from dataset snapshots (docs/design/erasure-in-snapshots.md).

A snapshot taken with a subject column keeps each subject's rows in one known part
(:meth:`~keelwork.adapters.stores.datasets.DatasetStore.locate_subject`). Erasing a subject
rewrites only those parts: the rows whose subject key text (``str(value)``, so ``42`` and
``"42"`` are one subject) equals the key are dropped, the new part is written beside the old
one and renamed over it, and the manifest gets the part's new hash, row count and bucket
ranges, an ``erasures`` entry (when, who, why, rows removed; never the key) and
``current_sha256``, the content hash of the rows now held. The snapshot's identity
(``NAME:VERSION`` and its ``sha256``, what a model was trained on) never changes, so lineage
still resolves; :meth:`~keelwork.adapters.stores.datasets.DatasetStore.verify` checks the
current rows against ``current_sha256``. Every other part file stays byte-for-byte the same.

A directory is shared by every version with the same content and layout; each is rewritten once.
Snapshots without a subject column cannot be searched cheaply: they are reported, not scanned.

A snapshot whose rows are sealed under per-subject keys (:mod:`.dataset_sealing`) is not
rewritten at all: the caller has destroyed the subject's snapshot key already, which makes its
rows unreadable in every copy of the files. Here its rows are only counted (by key id, in the
row groups that may hold them), and the manifest gets the ``erasures`` entry and the
``current_sha256`` of the rows that still open; every part file stays byte-for-byte the same.
The rewrite remains for snapshots stored in clear: those taken before sealing, without the
project's key store attached, or with a column the sealing codec cannot carry.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Connection

from keelwork.adapters.stores.dataset_files import open_rows, part_entry
from keelwork.adapters.stores.dataset_sealing import KEY_ID_COLUMN, key_ids, redacted
from keelwork.adapters.stores.datasets import DatasetStore, dataset_versions
from keelwork.adapters.stores.engine import is_sqlite
from keelwork.adapters.stores.subject_keys import keys_for
from keelwork.adapters.stores.transactions import retrying_transaction
from keelwork.core.datasets import (
    canonicalize,
    compute_profile,
    content_sha256,
    subject_buckets,
)

#: Rows per row group of a rewritten part (as snapshots write them).
ROW_GROUP_ROWS = 65_536


@dataclass
class SnapshotErasure:
    """What erasing one subject did to the snapshots."""

    #: ``NAME:VERSION`` -> rows removed, for each version whose rows held the subject.
    removed: dict[str, int] = field(default_factory=dict)
    #: Versions taken without a subject column (not searched: every part may hold anyone).
    unsearchable: list[str] = field(default_factory=list)


def erase_from_snapshots(store: DatasetStore, key: str, *, actor: str, reason: str,
                         key_id: str | None = None) -> SnapshotErasure:
    """Drop subject ``key``'s rows from every snapshot that has a subject column.

    Args:
        store: The snapshot store.
        key: The subject (its text).
        actor: Who erases; recorded in the manifest.
        reason: Why; recorded.
        key_id: The id of the subject's snapshot key (destroyed by the caller): sealed
            snapshots count the subject's rows by it (None: sealed snapshots are skipped).

    Raises:
        StoreError: a part could not be rewritten (the old part stays as it was).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    out = SnapshotErasure()
    by_dir: dict[str, list[Any]] = {}
    for v in store.list_versions():
        if v.subject_column is None:
            out.unsearchable.append(v.ref)
        else:
            by_dir.setdefault(v.uri, []).append(v)
    for versions in by_dir.values():
        first = versions[0]
        column = first.subject_column
        manifest = store.manifest(first)
        directory = store.path_of(first)
        removed = 0
        for file, groups in store.locate_subject(first, key):
            if manifest.get("sealed"):
                if key_id is not None and groups:
                    ids = pq.ParquetFile(file).read_row_groups(groups, columns=[KEY_ID_COLUMN])
                    removed += key_ids(ids).count(key_id)
                continue
            table = pq.read_table(file)
            keys = pc.cast(table.column(column), pa.string())
            keep = pc.fill_null(pc.not_equal(keys, pa.scalar(key, pa.string())), True)
            kept = table.filter(keep)
            gone = table.num_rows - kept.num_rows
            if not gone:
                continue
            tmp = file.with_name(f".{file.name}.{uuid.uuid4().hex}.partial")
            pq.write_table(kept, tmp, row_group_size=ROW_GROUP_ROWS, compression="zstd")
            tmp.replace(file)
            import numpy as np

            buckets = subject_buckets(kept.column(column))
            entry = part_entry(file, 0, kept.num_rows, buckets, np)
            manifest["parts"] = [entry if p["file"] == file.name else p
                                 for p in manifest["parts"]]
            removed += gone
        if not removed:
            continue
        manifest["rows"] = int(manifest["rows"]) - removed
        manifest.setdefault("erasures", []).append(
            {"at": datetime.now(UTC).isoformat(), "actor": actor, "reason": reason,
             "rows_removed": removed,
             "how": "key_destroyed" if manifest.get("sealed") else "part_rewritten"})
        current = canonicalize(store.read(first), source=str(directory))
        manifest["current_sha256"] = content_sha256(current)
        _write_manifest(directory / "manifest.json", manifest)
        # The stored profile summarised the erased rows too (top values, min/max): recompute
        # it from the rows now held.
        profile = compute_profile(current, redact=redacted(
            current.schema, column, sealed=bool(manifest.get("sealed")))).as_dict()
        _replace_profiles(store, [v.name for v in versions], first.uri, profile)
        for v in versions:
            out.removed[v.ref] = removed
    return out


def rows_of_subject(store: DatasetStore, key: str) -> dict[str, list[dict[str, Any]]]:
    """The rows of subject ``key`` (its text) held in each snapshot with a subject column,
    by ``NAME:VERSION``; sealed rows are opened (an erased subject's do not open: none)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    out: dict[str, list[dict[str, Any]]] = {}
    for v in store.list_versions():
        if v.subject_column is None:
            continue
        manifest = store.manifest(v)
        keys = keys_for(store.engine) if manifest.get("sealed") else None
        for file, groups in store.locate_subject(v, key):
            if not groups:
                continue
            table = pq.ParquetFile(file).read_row_groups(groups)
            table = open_rows(table, manifest, keys)[0]
            names = pc.cast(table.column(v.subject_column), pa.string())
            hit = table.filter(pc.fill_null(pc.equal(names, pa.scalar(key, pa.string())),
                                            False))
            if hit.num_rows:
                out.setdefault(v.ref, []).extend(hit.to_pylist())
    return out


def _replace_profiles(store: DatasetStore, names: list[str], uri: str,
                      profile: dict[str, Any]) -> None:
    """Store ``profile`` for every version stored at ``uri`` (old values securely deleted on
    SQLite)."""
    sqlite = is_sqlite(store.engine)

    def work(conn: Connection) -> None:
        if sqlite:
            conn.exec_driver_sql("PRAGMA secure_delete = ON")
        conn.execute(update(dataset_versions).where(dataset_versions.c.uri == uri)
                     .values(profile=profile))

    retrying_transaction(store.engine, work, store="dataset store",
                         what=f"updating the profiles of {', '.join(sorted(set(names)))}")


def _write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    tmp = path.with_name(f".manifest.{uuid.uuid4().hex}.partial")
    tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    tmp.replace(path)


__all__ = ["SnapshotErasure", "erase_from_snapshots", "rows_of_subject"]

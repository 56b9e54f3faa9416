"""Copies of a store for the drills: the online backup holds what was committed (the WAL's
pages too, while a writer holds the file open), counts per table, prediction ids found; the
raw-bytes reader lists the stores' files (not artifacts or keys) and gives text runs whole
across its chunks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from keelwork.adapters.stores import raw_bytes
from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.prediction_store import ensure_schema, insert_records
from keelwork.adapters.stores.raw_bytes import store_files, text_runs
from keelwork.adapters.stores.store_copy import (
    is_postgres,
    sqlite_backup,
    sqlite_file,
    stored_prediction_ids,
    table_counts,
)
from keelwork.core.predictions import PredictionRecord, new_prediction_id
from keelwork.errors import StoreError


def test_backup_of_a_live_wal_database_holds_every_committed_row(tmp_path: Path) -> None:
    db = tmp_path / "keel.db"
    writer = sqlite3.connect(db)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE t (x INTEGER)")
    writer.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(500)])
    writer.commit()
    assert Path(f"{db}-wal").stat().st_size > 0  # the rows are in the WAL, not yet the file
    try:
        sqlite_backup(db, tmp_path / "copy" / "keel.db")
    finally:
        writer.close()
    assert table_counts(f"sqlite:///{tmp_path / 'copy' / 'keel.db'}") == {"t": 500}


def test_backup_of_a_missing_database_says_so(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="Backing up"):
        sqlite_backup(tmp_path / "nope.db", tmp_path / "copy.db")


def test_urls() -> None:
    assert sqlite_file("sqlite:////x/keel.db") == Path("/x/keel.db")
    assert sqlite_file("sqlite://") is None
    assert sqlite_file("postgresql+psycopg://u@h/db") is None
    assert is_postgres("postgresql+psycopg://u@h/db") and not is_postgres("sqlite:///x.db")


def test_stored_prediction_ids(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'keel.db'}"
    engine = make_engine(url)
    ensure_schema(engine)
    ids = [new_prediction_id() for _ in range(3)]
    with engine.begin() as conn:
        insert_records(conn, [PredictionRecord(id=i, ts=1.0, model="m", version=1, inputs={},
                                               outputs=1, latency_ms=1.0) for i in ids[:2]])
    engine.dispose()
    assert stored_prediction_ids(url, ids) == set(ids[:2])


def test_store_files_are_the_stores_not_artifacts_or_keys(tmp_path: Path) -> None:
    keel = tmp_path / ".keel"
    for rel in ("keel.db", "keel.db-wal", "artifacts/sha256/aa/x/model.onnx", "pii.key",
                "subject.key", "subject_keys.db", "datasets/d1/part.csv", "spool/spool-1.jsonl"):
        (keel / rel).parent.mkdir(parents=True, exist_ok=True)
        (keel / rel).write_text("x")
    found = {str(p.relative_to(keel)) for p in store_files(keel, keel / "spool",
                                                             keel / "keel.db")}
    assert found == {"keel.db", "keel.db-wal", "datasets/d1/part.csv", "spool/spool-1.jsonl"}


def test_text_runs_stay_whole_across_chunks(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(raw_bytes, "CHUNK", 16)
    path = tmp_path / "f"
    path.write_bytes(b"\x00\x01abc\x00" + b"someone@example.org" + b"\x00\x02" + b"tail")
    assert list(text_runs(path)) == ["someone@example.org", "tail"]


def test_a_backup_past_its_time_stops(tmp_path: Path) -> None:
    db = tmp_path / "keel.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE t (x BLOB)")
        con.executemany("INSERT INTO t VALUES (?)", [(b"x" * 4000,) for _ in range(6000)])
    with pytest.raises(StoreError, match="ran past"):
        sqlite_backup(db, tmp_path / "copy.db", timeout_s=0)

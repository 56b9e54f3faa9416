"""Retention on a real store (SQLite and PostgreSQL) with a fake clock.

Old and new predictions, payloads, labels and dead letters go in, each old row carrying a
canary string; ``apply_retention`` at a chosen "now" deletes exactly the old ones, in batches;
after ``vacuum`` the canaries are gone from the database's raw bytes (the SQLite file and its
WAL; the PostgreSQL files of the tables), the new rows' are still there. Audit entries expire
behind a checkpoint: ``verify`` still passes, the anchor still advances, and a forged
checkpoint is caught.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text, update

from keelwork.adapters.stores.audit_anchor import AnchorFile
from keelwork.adapters.stores.audit_checkpoints import audit_checkpoints
from keelwork.adapters.stores.audit_store import AuditLog
from keelwork.adapters.stores.engine import is_sqlite, make_engine
from keelwork.adapters.stores.ingest_ledger_store import Ledger
from keelwork.adapters.stores.ingest_tables import dead_letters, labels
from keelwork.adapters.stores.prediction_store import (
    ensure_schema,
    insert_records,
    prediction_payloads,
    predictions,
)
from keelwork.core.predictions import PredictionRecord, new_prediction_id
from keelwork.service.retention import apply_retention
from keelwork.spec.model import RetentionSection

DAY = 86_400.0
NOW = time.time()
OLD_CANARY = "canary-old-7f3a9c"
NEW_CANARY = "canary-new-2b8d1e"


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    made = make_engine(store_url)
    try:
        yield made
    finally:
        made.dispose()


def _fill(engine: Engine, old: int, new: int) -> tuple[list[str], list[str]]:
    ensure_schema(engine)
    Ledger(engine).ensure_schema()
    old_ids, new_ids = [], []
    recs = []
    for i in range(old + new):
        is_old = i < old
        ts = NOW - (100 if is_old else 1) * DAY + i
        rid = new_prediction_id()
        (old_ids if is_old else new_ids).append(rid)
        recs.append(PredictionRecord(
            id=rid, ts=ts, model="m", version=1, subject_id=f"s{i}",
            inputs={"note": f"{OLD_CANARY if is_old else NEW_CANARY}-{i}", "x": float(i)},
            outputs=1, latency_ms=1.0))
    at = datetime.now(UTC)
    with engine.begin() as conn:
        insert_records(conn, recs)
        conn.execute(labels.insert(), [
            {"prediction_id": r.id, "label": "1", "ts": r.ts, "source": "test",
             "source_row": None, "ingested_at": at} for r in recs[::2]])
        conn.execute(dead_letters.insert(), [
            {"file_sha": "f" * 64, "kind": "labels", "target": "m", "path": "x.csv",
             "row_index": i, "line_no": i + 2, "reasons": [{"field": "label"}],
             "raw": {"text": f"{OLD_CANARY if i < 5 else NEW_CANARY}-dead-{i}"},
             "created_at": datetime.fromtimestamp(NOW - (100 if i < 5 else 1) * DAY, UTC)}
            for i in range(10)])
    return old_ids, new_ids


def _count(engine: Engine, table: object, cond: object = None) -> int:
    stmt = select(func.count()).select_from(table)  # type: ignore[arg-type]
    if cond is not None:
        stmt = stmt.where(cond)  # type: ignore[arg-type]
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def _raw_bytes(engine: Engine, url: str) -> bytes:
    """Every byte the database keeps for the tables that hold payloads and dead letters."""
    if is_sqlite(engine):
        path = Path(url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    with engine.connect() as conn:
        data_dir = Path(conn.execute(text("SHOW data_directory")).scalar_one())
        files = [conn.execute(text("SELECT pg_relation_filepath(:t)"), {"t": t}).scalar_one()
                 for t in ("prediction_payloads", "predictions", "dead_letters")]
        toast = conn.execute(text(
            "SELECT pg_relation_filepath(reltoastrelid) FROM pg_class WHERE relname IN "
            "('prediction_payloads', 'dead_letters') AND reltoastrelid <> 0")).scalars().all()
    out = b""
    for rel in [*files, *toast]:
        for part in sorted((data_dir / rel).parent.glob(Path(rel).name + "*")):
            out += part.read_bytes()
    return out


def test_expires_old_rows_in_batches_and_leaves_the_raw_bytes(engine: Engine,
                                                               store_url: str) -> None:
    old_ids, new_ids = _fill(engine, old=1200, new=300)
    assert len(old_ids) == 1200
    audit = AuditLog(engine)
    audit.ensure_schema()
    seen: list[tuple[str, int]] = []
    report = apply_retention(
        engine, RetentionSection(predictions_days=30, labels_days=30, dead_letters_days=30),
        audit=audit, actor="ops", now=NOW, batch=500,
        progress=lambda table, done: seen.append((table, done)))
    assert report.deleted == {"predictions": 1200, "labels": 600, "dead_letters": 5}
    # Batches of at most 500: 1200 predictions take three.
    assert [d for t, d in seen if t == "predictions"] == [500, 1000, 1200]
    assert _count(engine, predictions) == 300
    assert _count(engine, prediction_payloads) == 300
    assert _count(engine, predictions, predictions.c.id.in_(new_ids)) == 300
    assert _count(engine, labels) == 150
    assert _count(engine, dead_letters) == 5
    # The run is in the audit log, with its counts.
    entry = audit.query(action="retention.apply", limit=1)[-1]
    assert entry.details["deleted"] == {"predictions": 1200, "labels": 600, "dead_letters": 5}
    assert audit.verify().ok

    # Before the space is reclaimed PostgreSQL still holds old tuples; after, nothing.
    apply_retention(engine, RetentionSection(predictions_days=30), audit=audit, actor="ops",
                    now=NOW, vacuum=True)
    engine.dispose()
    raw = _raw_bytes(engine, store_url)
    assert OLD_CANARY.encode() not in raw
    assert NEW_CANARY.encode() in raw


def test_dry_run_counts_and_deletes_nothing(engine: Engine) -> None:
    _fill(engine, old=40, new=10)
    audit = AuditLog(engine)
    audit.ensure_schema()
    report = apply_retention(engine, RetentionSection(predictions_days=30, labels_days=30),
                             audit=audit, actor="ops", now=NOW, dry_run=True)
    assert report.deleted == {"predictions": 40, "labels": 20}
    assert _count(engine, predictions) == 50
    assert audit.query(action="retention.apply") == []


def test_periods_are_per_table(engine: Engine) -> None:
    _fill(engine, old=20, new=20)
    audit = AuditLog(engine)
    audit.ensure_schema()
    # Labels kept 200 days: none of them is old enough; predictions kept 30 days.
    report = apply_retention(engine, RetentionSection(predictions_days=30, labels_days=200),
                             audit=audit, actor="ops", now=NOW)
    assert report.deleted == {"predictions": 20, "labels": 0}
    assert _count(engine, labels) == 20


def test_audit_entries_expire_behind_a_checkpoint(engine: Engine, tmp_path: Path) -> None:
    anchor = AnchorFile(tmp_path / "anchor.json")
    audit = AuditLog(engine, [anchor])
    audit.ensure_schema()
    for i in range(30):
        audit.append(actor="ana", action="model.register", target=f"m{i}")
    time.sleep(0.01)
    split = time.time()
    time.sleep(0.01)
    for i in range(5):
        audit.append(actor="ana", action="flag.put", target=f"f{i}")
    # audit_days=10 with "now" 10 days after the split: the first 30 entries expire.
    report = apply_retention(engine, RetentionSection(audit_days=10), audit=audit,
                             actor="ops", now=split + 10 * DAY, batch=7)
    assert report.deleted == {"audit": 30}
    kept = list(audit.entries())
    assert kept[0].seq == 31
    assert kept[-1].action == "audit.expire"
    assert kept[-1].details["through_seq"] == 30
    result = audit.verify()
    assert result.ok, result.message
    assert result.checked == 6
    # The chain goes on after the checkpoint, and the anchor keeps moving.
    audit.append(actor="ana", action="flag.put", target="after")
    assert anchor.read(audit.store_key) == audit.head()
    assert audit.verify().ok
    # Expiring again with nothing old enough does nothing.
    again = apply_retention(engine, RetentionSection(audit_days=10), audit=audit,
                            actor="ops", now=split + 10 * DAY)
    assert again.deleted == {"audit": 0}


def test_a_forged_checkpoint_fails_verification(engine: Engine) -> None:
    audit = AuditLog(engine)
    audit.ensure_schema()
    for i in range(10):
        audit.append(actor="ana", action="model.register", target=f"m{i}")
    apply_retention(engine, RetentionSection(audit_days=1), audit=audit, actor="ops",
                    now=time.time() + 2 * DAY)
    assert audit.verify().ok
    # Someone deletes more entries and moves the checkpoint to hide it.
    with engine.begin() as conn:
        conn.execute(update(audit_checkpoints).values(seq=10, hash="a" * 64))
    result = audit.verify()
    assert not result.ok
    assert result.reason == "checkpoint_mismatch"

"""The audit log on both backends: concurrent appenders, queries, and raw-SQL tampering found."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from keelwork.adapters.stores.audit_store import (
    PREDICTIONS_ACTION,
    AuditLog,
    open_audit_log,
    prediction_ids_digest,
)
from keelwork.adapters.stores.engine import make_engine
from keelwork.core.audit import ChainHead
from keelwork.core.audit.merkle import merkle_root, verify_inclusion
from keelwork.errors import AuditError
from keelwork.types import AuditSink


@pytest.fixture
def log(store_url: str) -> Iterator[AuditLog]:
    audit = AuditLog(make_engine(store_url))
    audit.ensure_schema()
    audit.ensure_schema()  # idempotent
    yield audit
    audit.close()


def _fill(log: AuditLog, n: int) -> None:
    for i in range(n):
        log.append(actor=f"user{i % 3}", action="alias.set" if i % 2 else "model.register",
                   target=f"m:{i}", details={"i": i, "note": "héllo"})


def _sql(log: AuditLog, statement: str, **params: object) -> None:
    with log.engine.begin() as conn:
        conn.execute(text(statement), params)


def test_append_returns_the_stored_entry_and_verifies(log: AuditLog) -> None:
    assert isinstance(log, AuditSink)
    assert log.verify().ok and log.verify().checked == 0
    first = log.append(actor="ann", action="model.register", target="m:1", details={"v": 1})
    second = log.append(actor="bob", action="alias.set", target="m@champion")
    assert (first.seq, second.seq) == (1, 2) and second.prev_hash == first.hash
    assert log.head() == ChainHead(2, second.hash, 2)
    result = log.verify()
    assert result.ok and result.checked == 2 and result.head == log.head()
    with pytest.raises(AuditError, match="details"):
        log.append(actor="ann", action="x", target="y", details={"bad": float("inf")})
    assert log.head().seq == 2  # nothing written


def test_concurrent_appenders_never_fork_the_chain(log: AuditLog, store_url: str) -> None:
    # Each thread has its own engine, as separate processes would.
    logs = [AuditLog(make_engine(store_url)) for _ in range(6)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(logs))

    def work(k: int) -> None:
        try:
            barrier.wait()
            for i in range(15):
                logs[k].append(actor=f"t{k}", action="flag.put", target=f"f{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(logs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for other in logs:
        other.close()
    assert errors == []
    result = log.verify()
    assert result.ok, result.message
    assert result.checked == 90 and log.head().count == 90
    assert [e.seq for e in log.query(limit=None)] == list(range(1, 91))


_APPENDER = """
import sys
from keelwork.adapters.stores.audit_store import AuditLog
from keelwork.adapters.stores.engine import make_engine
log = AuditLog(make_engine(sys.argv[1]))
for i in range(25):
    log.append(actor=sys.argv[2], action="flag.put", target=f"f{i}")
log.close()
"""


def test_concurrent_processes_never_fork_the_chain(log: AuditLog, store_url: str) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", _APPENDER, store_url, f"p{k}"],
                              stderr=subprocess.PIPE) for k in range(3)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    result = log.verify()
    assert result.ok and result.checked == 75, result.message
    assert {e.actor for e in log.query(limit=None)} == {"p0", "p1", "p2"}


def test_query_filters_by_actor_action_target_and_time(log: AuditLog) -> None:
    _fill(log, 9)
    assert {e.actor for e in log.query(actor="user1")} == {"user1"}
    assert len(log.query(actor="user1")) == 3
    assert [e.target for e in log.query(action="alias.*")] == ["m:1", "m:3", "m:5", "m:7"]
    assert [e.seq for e in log.query(action="alias.set", limit=2)] == [6, 8]  # latest, in order
    assert [e.seq for e in log.query(target="m:4")] == [5]
    assert log.query(action="alias%") == []  # LIKE wildcards are literal
    now = datetime.now(UTC)
    assert len(log.query(since=now - timedelta(minutes=5), limit=None)) == 9
    assert log.query(since=now + timedelta(minutes=5)) == []
    assert log.query(until=now - timedelta(minutes=5)) == []
    assert log.query(limit=None)[0].details == {"i": 0, "note": "héllo"}


def test_edited_field_is_found(log: AuditLog) -> None:
    _fill(log, 6)
    _sql(log, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 4")
    result = log.verify()
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 4, "hash_mismatch")
    assert result.checked == 4


def test_edited_details_json_is_found(log: AuditLog) -> None:
    _fill(log, 4)
    _sql(log, "UPDATE audit_log SET details = :d WHERE seq = 2", d='{"i":99,"note":"héllo"}')
    result = log.verify()
    assert (result.first_bad_seq, result.reason) == (2, "hash_mismatch")


def test_deleted_middle_row_is_a_gap(log: AuditLog) -> None:
    _fill(log, 6)
    _sql(log, "DELETE FROM audit_log WHERE seq = 3")
    result = log.verify()
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 3, "gap")


def test_swapped_rows_are_a_reordering(log: AuditLog) -> None:
    _fill(log, 6)
    cols = "ts, actor, action, target, details, prev_hash, hash"
    with log.engine.begin() as conn:
        rows = {r[0]: r[1:] for r in conn.execute(
            text(f"SELECT seq, {cols} FROM audit_log WHERE seq IN (3, 4)"))}
        for seq, other in ((3, 4), (4, 3)):
            conn.execute(text("UPDATE audit_log SET ts = :ts, actor = :actor, action = :action, "
                              "target = :target, details = :details, prev_hash = :prev_hash, "
                              "hash = :hash WHERE seq = :seq"),
                         dict(zip(cols.split(", "), rows[other], strict=True), seq=seq))
    result = log.verify()
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 3, "order")
    assert "entry 4" in result.message


def test_deleted_last_row_is_caught_by_the_head(log: AuditLog) -> None:
    _fill(log, 5)
    _sql(log, "DELETE FROM audit_log WHERE seq = 5")
    result = log.verify()
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 5, "truncated")
    assert result.checked == 4


def test_outside_anchor_catches_a_rewrite_that_moved_the_head(log: AuditLog) -> None:
    _fill(log, 5)
    anchor = log.head()
    # Someone with full write access deletes the tail and moves the head to match.
    _sql(log, "DELETE FROM audit_log WHERE seq >= 4")
    with log.engine.begin() as conn:
        last = conn.execute(text("SELECT hash FROM audit_log WHERE seq = 3")).scalar_one()
    _sql(log, "UPDATE audit_head SET seq = 3, hash = :h, count = 3", h=last)
    assert log.verify().ok  # the database alone is consistent again
    result = log.verify(anchor=anchor)
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 5, "truncated")


def test_verify_reads_page_by_page(log: AuditLog) -> None:
    _fill(log, 11)
    assert log.verify(page=3).ok and log.verify(page=3).checked == 11
    anchor = ChainHead(5, log.query(limit=None)[4].hash, 5)
    assert log.verify(anchor=anchor, page=3).ok
    _sql(log, "DELETE FROM audit_log WHERE seq = 7")
    result = log.verify(page=3)
    assert (result.first_bad_seq, result.reason, result.checked) == (7, "gap", 7)
    bad_anchor = ChainHead(5, "ab" * 32, 5)
    assert log.verify(anchor=bad_anchor, page=3).reason == "anchor_mismatch"


def test_prediction_batches_are_one_entry_each(log: AuditLog) -> None:
    ids = [f"p-{i}" for i in range(1000)]
    entry = log.append_predictions(ids, model="sentiment")
    assert entry is not None and log.append_predictions([], model="sentiment") is None
    assert entry.action == PREDICTIONS_ACTION and entry.details["count"] == 1000
    assert entry.details["ids_sha256"] == prediction_ids_digest(ids)
    assert entry.details["ids_sha256"] != prediction_ids_digest(ids[:-1])
    assert log.verify().ok


def test_merkle_root_and_inclusion_proofs(log: AuditLog) -> None:
    _fill(log, 7)
    size, root = log.merkle_root()
    entries = log.query(limit=None)
    assert size == 7 and root == merkle_root([bytes.fromhex(e.hash) for e in entries]).hex()
    for entry in entries:
        proof = log.inclusion_proof(entry.seq)
        assert proof["leaf"] == entry.hash and proof["root"] == root
        assert verify_inclusion(proof["index"], proof["size"], bytes.fromhex(proof["leaf"]),
                                [bytes.fromhex(p) for p in proof["proof"]],
                                bytes.fromhex(root))
    old_size, old_root = log.merkle_root(size=4)
    assert old_size == 4 and log.inclusion_proof(2, size=4)["root"] == old_root
    with pytest.raises(AuditError, match="Entry 8"):
        log.inclusion_proof(8)
    # An edited entry no longer proves against the published root.
    _sql(log, "UPDATE audit_log SET hash = :h WHERE seq = 3", h="ab" * 32)
    assert log.inclusion_proof(3)["root"] != root


def test_open_audit_log_defaults_to_the_project_sqlite_file(tmp_path: Path) -> None:
    log = open_audit_log(tmp_path)
    try:
        log.append(actor="a", action="b", target="c")
    finally:
        log.close()
    assert (tmp_path / ".keel" / "keel.db").is_file()

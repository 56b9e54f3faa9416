"""Every store passes the same suite, on SQLite and on a real PostgreSQL.

For each concern: the store is an instance of its Protocol in ``keelwork.types`` (what the
service layer relies on), and a round trip of its core behaviour gives back what was put in.
Each case runs once per backend (the ``store_url`` fixture: a SQLite file, or a fresh database on
a throw-away PostgreSQL server on loopback, see tests/pg.py). The stores' own integration tests
go deeper; this suite keeps every backend honest about the same contract.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from keelwork import types
from keelwork.adapters.stores.alert_store import AlertStore
from keelwork.adapters.stores.api_keys import ApiKeyStore
from keelwork.adapters.stores.audit_store import AuditLog
from keelwork.adapters.stores.datasets import ensure_schema as dataset_schema
from keelwork.adapters.stores.datasets import open_dataset_store
from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.flag_store import FlagStore
from keelwork.adapters.stores.ingest_ledger_store import Ledger, remember_keys, scored_keys
from keelwork.adapters.stores.label_store import LabelStore
from keelwork.adapters.stores.monitor_store import MonitorStore
from keelwork.adapters.stores.prediction_log import PredictionLog
from keelwork.adapters.stores.prediction_store import (
    PredictionReader,
    insert_records,
    prediction_outputs,
)
from keelwork.adapters.stores.registry_store import open_registry
from keelwork.adapters.stores.rollout_store import RolloutStore
from keelwork.core.alerting.notification import AlertChange
from keelwork.core.ingest import DeadLetter, IngestCounts
from keelwork.core.predictions import PredictionRecord, new_prediction_id
from keelwork.core.rollout.state import Rollout
from keelwork.core.slo.evaluate import SloCounts


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    made = make_engine(store_url)
    try:
        yield made
    finally:
        made.dispose()


def _record(model: str = "m", version: int = 1, ts: float | None = None) -> PredictionRecord:
    return PredictionRecord(id=new_prediction_id(), ts=time.time() if ts is None else ts,
                            model=model, version=version, inputs={"x": 1.0}, outputs=1,
                            latency_ms=1.0)


# --------------------------------------------------------------------------- round trips
def registry_round_trip(engine: Engine, tmp_path: Path) -> Any:
    registry = open_registry(tmp_path, engine.url.render_as_string(hide_password=False))
    v1 = registry.register("scorer", "my_pkg.rules:score", "python", created_by="ana")
    v2 = registry.register("scorer", "my_pkg.rules:score_v2", "python", aliases=["champion"],
                           created_by="ana")
    assert (v1.version, v2.version) == (1, 2)
    assert registry.resolve("scorer").version == 2  # the champion
    assert registry.resolve("scorer:1").artifact_uri == v1.artifact_uri
    registry.set_alias("scorer", 1, "champion", actor="ana", reason="back")
    assert registry.resolve("scorer@champion").version == 1
    assert [(c.from_version, c.to_version) for c in registry.alias_history("scorer")] == [
        (None, 2), (2, 1)]
    assert [s.name for s in registry.list_models()] == ["scorer"]
    assert registry.alias_revision() >= 2
    return registry


def prediction_log_round_trip(engine: Engine, tmp_path: Path) -> Any:
    log = PredictionLog(engine, tmp_path / "spool")
    log.start()
    records = [_record(ts=1000.0 + i) for i in range(5)]
    log.write_blocking(records)
    assert log.flush(5.0)
    reader = PredictionReader(engine)
    assert reader.has_log() and reader.count(model="m") == 5
    assert [r.id for r in reader.iter_records(model="m")] == [r.id for r in records]
    assert isinstance(reader, types.PredictionReaderStore)
    _slo_counts_as_the_rules_count(log, reader)
    with engine.connect() as conn:
        assert prediction_outputs(conn, [records[1].id, "absent"]) == {records[1].id: 1}
        assert prediction_outputs(conn, []) == {}
    return log


def _slo_counts_as_the_rules_count(log: PredictionLog, reader: PredictionReader) -> None:
    """One grouped query: refusals by the contract and shadow calls count for nothing, bad
    input the model refused is an error, an overload is its own, latency is answered <= the
    threshold, and ``[since, until)`` is half-open."""
    def rec(model: str, status: str, guard: str | None = None, ms: float = 1.0,
            ts: float = 2000.0) -> PredictionRecord:
        return PredictionRecord(id=new_prediction_id(), ts=ts, model=model, version=1,
                                inputs=None, outputs=None, latency_ms=ms, status=status,
                                guard=guard)

    log.write_blocking([
        rec("a", "ok", ms=250.0), rec("a", "ok", ms=250.1), rec("a", "fallback", ms=10.0),
        rec("a", "ok", "output"), rec("a", "error"), rec("a", "error", "timeout"),
        rec("a", "rejected", "input"), rec("a", "rejected", "concurrency"),
        rec("a", "rejected", "contract"), rec("a", "ok", "shadow"),
        rec("a", "ok", ts=2010.0), rec("b", "error", ts=2001.0)])
    assert log.flush(5.0)
    counts = reader.slo_counts(2000.0, 2010.0, latency_ms=250.0)
    assert counts["a"] == SloCounts(answered=4, errors=3, overloaded=1, fast=3)
    assert counts["a"].total == 8 and counts["b"] == SloCounts(errors=1)
    assert reader.slo_counts(2000.0, 2011.0)["a"] == SloCounts(5, 3, 1, 0)
    assert reader.slo_counts(3000.0, 4000.0) == {}


def label_round_trip(engine: Engine, tmp_path: Path) -> Any:
    store = LabelStore(engine)
    assert not store.has_labels()  # a fresh store: no label was ever stored
    store.ensure_schema()
    assert store.has_labels() and store.label_values(["absent"]) == {}
    known = _record()
    store.ledger.transaction("seed", lambda conn: insert_records(conn, [known]))
    first = store.submit([{"prediction_id": known.id, "label": 1}])
    again = store.submit([{"prediction_id": known.id, "label": 1}])
    changed = store.submit([{"prediction_id": known.id, "label": 0},
                            {"prediction_id": "not-yet", "label": 1}])
    assert (first.counts.ingested, again.counts.duplicates) == (1, 1)
    assert (changed.counts.relabelled, changed.counts.unknown) == (1, 1)
    current = store.get(known.id)
    assert current is not None and current.label == 0
    assert [h.label for h in store.history(known.id)] == [1]
    assert store.count() == {"labels": 1, "label_history": 1, "unknown_labels": 1}
    assert store.label_values([known.id, "not-yet"]) == {known.id: (0, current.ts)}
    return store


def ledger_round_trip(engine: Engine, tmp_path: Path) -> Any:
    ledger = Ledger(engine)
    ledger.ensure_schema()
    sha = "ab" * 32
    cp = ledger.start_job(sha, "labels", "", "a.csv", 3)
    letter = DeadLetter(source="a.csv", row=2, line=4, reasons=[{"rule": "required"}],
                        raw={"x": None})
    cp, counts = ledger.commit(cp, 3, "commit rows 0-2 of a.csv",
                               lambda conn: (IngestCounts(ingested=2, dead_lettered=1), [letter]))
    assert (cp.committed_rows, counts.ingested) == (3, 2)
    done = ledger.finish(cp)
    assert done.done and ledger.start_job(sha, "labels", "", "b.csv", 3).done
    job = ledger.job(sha, "labels")
    assert job is not None and (job.counts.ingested, job.counts.dead_lettered) == (2, 1)
    assert ledger.dead_letters(file_sha=sha) == [letter]
    assert [j.checkpoint.file_sha for j in ledger.jobs("labels")] == [sha]
    ledger.transaction("remember keys", lambda conn: remember_keys(
        conn, "m:1", sha, [("k1", "p1", 0), ("k2", "p2", 1)], datetime.now(UTC)))
    assert ledger.transaction("read keys", lambda conn: scored_keys(
        conn, "m:1", ["k2", "k1", "k3"])) == {"k1": "p1", "k2": "p2"}
    assert ledger.transaction("read keys", lambda conn: scored_keys(conn, "m:2", ["k1"])) == {}
    return ledger


def rollout_round_trip(engine: Engine, tmp_path: Path) -> Any:
    store = RolloutStore(engine)
    store.ensure_schema()
    before = store.revision()
    started, event = store.create(Rollout(model="m", champion=1, challenger=2), actor="ana")
    assert started.id > 0 and started.phase == "progressing" and event.actor == "ana"
    moved, _ = store.transition(started.id, "pause", actor="ana", reason="look")
    assert moved.phase == "paused" and store.revision() > before
    latest = store.latest("m")
    assert latest is not None and latest == store.get(started.id)
    assert (latest.id, latest.phase, latest.reason) == (moved.id, "paused", "look")
    assert [r.id for r in store.active()] == [started.id]
    store.transition(started.id, "abort", actor="ana", reason="stop")
    assert store.active() == [] and len(store.events(started.id)) == 3
    return store


def flag_round_trip(engine: Engine, tmp_path: Path) -> Any:
    store = FlagStore(engine)
    store.ensure_schema()
    before = store.revision()
    flag = store.put({"name": "eu", "model": "m", "rules": [{"tenants": ["acme"],
                                                               "serve": "2"}]}, actor="ops")
    assert flag.name == "eu" and store.revision() > before
    assert [b["name"] for b in store.bodies()] == ["eu"]
    assert store.delete("eu", actor="ops") and not store.delete("eu", actor="ops")
    assert store.bodies() == []
    return store


def audit_round_trip(engine: Engine, tmp_path: Path) -> Any:
    log = AuditLog(engine)
    log.ensure_schema()
    first = log.append(actor="ana", action="model.register", target="m:1", details={"a": 1})
    second = log.append(actor="bo", action="alias.set", target="m@champion")
    assert (first.seq, second.seq) == (1, 2) and log.head().seq == 2
    got = log.get(1)
    assert got is not None and got.details == {"a": 1}
    assert [e.seq for e in log.query(actor="bo")] == [2]
    assert log.verify().ok
    return log


def api_key_round_trip(engine: Engine, tmp_path: Path) -> Any:
    store = ApiKeyStore(engine, cache_seconds=0.0)
    store.ensure_schema()
    assert not store.has_active_keys()
    created = store.create(scopes=["predict"], name="ci", created_by="ana")
    principal = store.verify(created.plaintext)
    assert principal is not None and store.has_active_keys()
    assert store.verify(created.plaintext[:-1] + "x") is None
    assert store.cached(created.plaintext) is None  # cache_seconds=0: nothing is remembered
    # cached() answers from what verify() remembered, never from the store; a revocation
    # through the same store drops it at once.
    caching = ApiKeyStore(engine, cache_seconds=60.0)
    assert caching.cached(created.plaintext) is None
    assert caching.verify(created.plaintext) == principal
    assert caching.cached(created.plaintext) == principal
    assert caching.cached(created.plaintext[:-1] + "x") is None
    assert caching.cached(None) is None
    caching.revoke(created.info.key_id, actor="ana")
    assert caching.cached(created.plaintext) is None
    assert store.verify(created.plaintext) is None
    assert [k.name for k in store.list()] == ["ci"]
    return store


def dataset_round_trip(engine: Engine, tmp_path: Path) -> Any:
    import pyarrow as pa

    dataset_schema(engine)
    store = open_dataset_store(tmp_path, engine.url.render_as_string(hide_password=False))
    table = pa.table({"id": ["a", "b", "c"], "x": [1.0, 2.0, 3.0]})
    first = store.snapshot_table(table, "churn", source="mem", created_by="ana")
    same = store.snapshot_table(table.take([2, 0, 1]), "churn", source="mem")
    assert first == same and first.rows == 3  # equal rows: no new version
    second = store.snapshot_table(table.slice(1), "churn", "id", source="mem")
    assert second.version == 2 and store.latest("churn") == second
    assert store.read("churn:1").num_rows == 3 and store.verify("churn:2") == second
    assert [v.version for v in store.list_versions("churn")] == [1, 2]
    return store


def monitor_round_trip(engine: Engine, tmp_path: Path) -> Any:
    store = MonitorStore(engine)
    store.ensure_schema()
    store.put_reference("m", 1, "train.csv", {"columns": {"x": {"kind": "numeric"}}})
    ref = store.latest_reference("m", 1)
    assert ref is not None and ref.body == {"columns": {"x": {"kind": "numeric"}}}
    store.put_window("m", "1h", 0.0, 3600.0, 1, 10, {"drift": []})
    store.put_window("m", "1h", 3600.0, 7200.0, 1, 12, {"drift": []})
    assert [w.predictions for w in store.windows("m", "1h")] == [12, 10]  # newest first
    assert [w.predictions for w in store.latest_windows()] == [12]
    return store


def alert_round_trip(engine: Engine, tmp_path: Path) -> Any:
    store = AlertStore(engine)
    store.ensure_schema()
    labels = {"alertname": "Burn", "service": "s", "severity": "page"}
    firing = AlertChange(labels, "firing", 100.0, {"summary": "burns"})
    assert store.record(firing, "s-on-call") and not store.record(firing, "s-on-call")
    assert store.record(firing, "s-owners")  # per receiver
    assert [r.receiver for r in store.due(100.0)] == ["s-on-call", "s-owners"]
    store.failed(firing.fingerprint, "s-on-call", "firing", "down", 100.0, 102.0)
    assert [r.receiver for r in store.due(101.0)] == ["s-owners"]  # backing off
    row = store.get(firing.fingerprint, "s-on-call")
    assert row is not None and (row.attempts, row.last_error, row.pending) == (1, "down", True)
    assert row.labels == labels and row.annotations == {"summary": "burns"}
    assert store.delivered(firing.fingerprint, "s-on-call", "firing", 103.0)
    assert not store.delivered(firing.fingerprint, "s-on-call", "resolved", 103.0)
    row = store.get(firing.fingerprint, "s-on-call")
    assert row is not None and (row.notified_state, row.attempts, row.last_notified) == (
        "firing", 0, 103.0)
    assert store.record(AlertChange(labels, "resolved", 200.0), "s-on-call")
    assert [r.state for r in store.alerts(state="resolved")] == ["resolved"]
    assert [r.receiver for r in store.due(200.0)] == ["s-owners", "s-on-call"]  # oldest first
    return store


@dataclass(frozen=True)
class Case:
    protocol: type
    round_trip: Callable[[Engine, Path], Any]


CASES = {
    "alerts": Case(types.AlertStateStore, alert_round_trip),
    "registry": Case(types.ModelRegistryStore, registry_round_trip),
    "prediction_log": Case(types.PredictionWriter, prediction_log_round_trip),
    "labels": Case(types.LabelStoreProtocol, label_round_trip),
    "ingest_ledger": Case(types.IngestLedger, ledger_round_trip),
    "rollouts": Case(types.RolloutStoreProtocol, rollout_round_trip),
    "flags": Case(types.FlagStoreProtocol, flag_round_trip),
    "audit": Case(types.AuditStore, audit_round_trip),
    "api_keys": Case(types.ApiKeyStoreProtocol, api_key_round_trip),
    "datasets": Case(types.DatasetStoreProtocol, dataset_round_trip),
    "monitor": Case(types.MonitorStoreProtocol, monitor_round_trip),
}


@pytest.mark.parametrize("concern", sorted(CASES))
def test_store_conforms_and_round_trips(concern: str, engine: Engine, tmp_path: Path) -> None:
    case = CASES[concern]
    store = case.round_trip(engine, tmp_path)
    try:
        assert isinstance(store, case.protocol), f"{type(store).__name__} is no {case.protocol}"
        missing = [name for name in dir(case.protocol)
                   if not name.startswith("_") and not hasattr(store, name)]
        assert not missing, f"{type(store).__name__} lacks {missing}"
    finally:
        close = getattr(store, "close", None)
        if callable(close):
            close()


def test_every_store_protocol_has_a_case() -> None:
    protocols = {name for name in types.__all__ if name.endswith(("Store", "Protocol"))
                 and name not in ("AuditSink",)} | {"IngestLedger", "PredictionWriter",
                                                     "PredictionReaderStore"}
    covered = {c.protocol.__name__ for c in CASES.values()} | {"PredictionReaderStore"}
    assert protocols == covered

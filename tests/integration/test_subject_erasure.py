"""Erasure and access by data subject on a real store (SQLite and PostgreSQL).

Twice: with the snapshot stored in clear (erased by rewriting its part) and sealed under
per-subject keys (erased by destroying the keys: no file changes, and a copy of the files
taken before the erasure does not open the erased rows either).

1,000 subjects across the prediction log (payloads with an e-mail address), the labels and a
dataset snapshot taken with a subject column; 100 are erased. Then: nothing of the 100 is in
the raw bytes of the database or of the snapshot files, the 900 are intact, the snapshot's
other parts are byte-for-byte the same, the snapshot and the audit chain verify, the tombstone
and the audit entry never name the subject, and the model trained on the snapshot is named.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import Engine, func, select, text

from keelwork.adapters.stores import subject_keys
from keelwork.adapters.stores.audit_store import AuditLog
from keelwork.adapters.stores.datasets import DatasetStore
from keelwork.adapters.stores.datasets import ensure_schema as dataset_schema
from keelwork.adapters.stores.engine import is_sqlite, make_engine
from keelwork.adapters.stores.explanation_store import ExplanationStore, explanations
from keelwork.adapters.stores.ingest_ledger_store import Ledger
from keelwork.adapters.stores.ingest_tables import labels
from keelwork.adapters.stores.prediction_store import ensure_schema, insert_records, predictions
from keelwork.adapters.stores.registry_store import open_registry
from keelwork.adapters.stores.review_store import ReviewStore, review_items, review_verdicts
from keelwork.adapters.stores.subject_keys import SubjectKeys, attach
from keelwork.adapters.stores.subject_store import subject_erasures
from keelwork.core.predictions import PredictionRecord, new_prediction_id
from keelwork.errors import RegistryError
from keelwork.service.subjects import erase, export, subject_digest

SUBJECTS = 1_000
ERASED = 100
KEY = b"k" * 32


def _subject(i: int) -> str:
    return f"cust-{i:05d}-zq"


def _email(i: int) -> str:
    return f"person{i:05d}.qx@example.org"


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    made = make_engine(store_url)
    try:
        yield made
    finally:
        made.dispose()


def _fill(engine: Engine, root: Path, project: Path, url: str) -> DatasetStore:
    ensure_schema(engine)
    Ledger(engine).ensure_schema()
    now = time.time()
    recs = [PredictionRecord(id=new_prediction_id(), ts=now - 3600 + i, model="m", version=1,
                             subject_id=_subject(i % SUBJECTS),
                             inputs={"email": _email(i % SUBJECTS), "x": float(i)},
                             outputs=i % 2, latency_ms=1.0) for i in range(2 * SUBJECTS)]
    with engine.begin() as conn:
        insert_records(conn, recs)
        conn.execute(labels.insert(), [
            {"prediction_id": r.id, "label": str(i % 2), "ts": r.ts, "source": "test",
             "source_row": None, "ingested_at": datetime.now(UTC)}
            for i, r in enumerate(recs)])
    # What is derived from the first subjects' predictions: explanations, review verdicts.
    derived = recs[:ERASED]
    explained = ExplanationStore(engine, 10_000)
    explained.ensure_schema()
    explained.put([(r.id, "m", 1, {"attributions": {_email(i): 0.5}})
                   for i, r in enumerate(derived)])
    review = ReviewStore(engine)
    review.ensure_schema()
    review.enqueue([{"prediction_id": r.id, "model": "m", "reason": "sample",
                     "priority": 0.5, "wanted": 1} for r in derived])
    for i, r in enumerate(derived):
        review.record(r.id, "rita", f"spoke to {_email(i)}")
    dataset_schema(engine)
    store = DatasetStore(engine, root, part_rows=100)
    table = pa.table({"customer": [_subject(i) for i in range(SUBJECTS)],
                      "email": [_email(i) for i in range(SUBJECTS)],
                      "income": [float(i) for i in range(SUBJECTS)]})
    store.snapshot_table(table, "people", "customer", source="people.csv", created_by="ana")
    registry = open_registry(project, url)
    registry.register("scorer", "my_pkg.rules:score", "python", created_by="ana",
                      dataset_version="people:1")
    registry.close()
    return store


def _raw(engine: Engine, url: str, root: Path) -> bytes:
    out = b"".join(p.read_bytes() for p in root.rglob("*.parquet"))
    if is_sqlite(engine):
        path = Path(url.removeprefix("sqlite:///"))
        return out + b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal"))
                              if p.exists())
    with engine.connect() as conn:
        data_dir = Path(conn.execute(text("SHOW data_directory")).scalar_one())
        rels = [conn.execute(text("SELECT pg_relation_filepath(:t)"), {"t": t}).scalar_one()
                for t in ("predictions", "prediction_payloads", "labels", "explanations",
                          "review_items", "review_verdicts")]
    for rel in rels:
        for part in (data_dir / rel).parent.glob(Path(rel).name + "*"):
            out += part.read_bytes()
    return out


def test_erasing_100_of_1000_subjects_leaves_nothing_of_them(engine: Engine, store_url: str,
                                                             tmp_path: Path) -> None:
    root = tmp_path / ".keel" / "datasets"
    store = _fill(engine, root, tmp_path, store_url)
    parts_before = {p.name: p.read_bytes() for p in root.rglob("part-*.parquet")}
    audit = AuditLog(engine)
    audit.ensure_schema()
    registry = open_registry(tmp_path, store_url)
    # A reason that names the subject is kept without it.
    reports = [erase(engine, audit, store, registry, _subject(0), key=KEY, actor="dpo",
                     reason=f"ticket 0, from {_subject(0)}", rewrite=True)]
    # One subject's erasure rewrites the one part that held it, no other file.
    parts_after = {p.name: p.read_bytes() for p in root.rglob("part-*.parquet")}
    assert len(parts_before) >= 5
    assert [n for n in parts_before if parts_before[n] != parts_after[n]] == [
        store.locate_subject("people:1", _subject(0))[0][0].name]
    reports += [erase(engine, audit, store, registry, _subject(i), key=KEY, actor="dpo",
                      reason=f"ticket {i}", rewrite=True) for i in range(1, ERASED)]
    registry.close()
    assert {(r.predictions, r.labels) for r in reports} == {(2, 2)}
    assert all(r.snapshots == {"people:1": 1} for r in reports)
    assert reports[0].models == ["scorer:1"]
    engine.dispose()

    raw = _raw(engine, store_url, root)
    for i in range(ERASED):
        assert _subject(i).encode() not in raw, i
        assert _email(i).encode() not in raw, i
    # The 900 others are all still there, in the log and in the snapshot.
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(predictions)).scalar_one() == 1800
        for table in (explanations, review_items, review_verdicts):  # all of the 100's
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 0
        assert conn.execute(select(func.count(func.distinct(predictions.c.subject_id))))\
            .scalar_one() == SUBJECTS - ERASED
    rows = store.read("people:1")
    assert rows.num_rows == SUBJECTS - ERASED
    assert set(rows.column("customer").to_pylist()) == {_subject(i)
                                                        for i in range(ERASED, SUBJECTS)}
    store.verify("people:1")
    assert store.resolve("people:1").sha256  # the identity (lineage) is kept
    # Tombstones and the audit log never name the subject; the chain verifies.
    assert audit.verify().ok
    entries = json.dumps([e.as_dict() for e in audit.query(action="subject.erase",
                                                           limit=None)])
    assert _subject(0) not in entries and subject_digest(KEY, _subject(0)) in entries
    with engine.connect() as conn:
        tomb = conn.execute(select(subject_erasures)).mappings().all()
    assert len(tomb) == ERASED
    assert _subject(0) not in json.dumps([dict(t) for t in tomb], default=str)


def test_export_gives_everything_about_one_subject(engine: Engine, store_url: str,
                                                   tmp_path: Path) -> None:
    root = tmp_path / ".keel" / "datasets"
    store = _fill(engine, root, tmp_path, store_url)
    got = export(engine, store, _subject(7), key=KEY)
    assert [p["inputs"]["email"] for p in got["predictions"]] == [_email(7)] * 2
    assert all(len(p["labels"]) == 1 for p in got["predictions"])
    assert got["snapshot_rows"] == {"people:1": [
        {"customer": _subject(7), "email": _email(7), "income": 7.0}]}
    assert got["erasures"] == []
    audit = AuditLog(engine)
    audit.ensure_schema()
    erase(engine, audit, store, None, _subject(7), key=KEY, actor="dpo", reason="ticket 7")
    after = export(engine, store, _subject(7), key=KEY)
    assert after["predictions"] == [] and after["snapshot_rows"] == {}
    assert [e["counts"] for e in after["erasures"]] == [{"predictions": 2, "labels": 2}]


def test_a_snapshot_of_the_same_rows_again_is_refused_after_an_erasure(
        engine: Engine, store_url: str, tmp_path: Path) -> None:
    root = tmp_path / ".keel" / "datasets"
    store = _fill(engine, root, tmp_path, store_url)
    audit = AuditLog(engine)
    audit.ensure_schema()
    erase(engine, audit, store, None, _subject(3), key=KEY, actor="dpo", reason="t")
    table = pa.table({"customer": [_subject(i) for i in range(SUBJECTS)],
                      "email": [_email(i) for i in range(SUBJECTS)],
                      "income": [float(i) for i in range(SUBJECTS)]})
    with pytest.raises(Exception, match="erased"):
        store.snapshot_table(table, "people", "customer", source="people.csv")


def test_erasing_from_a_sealed_snapshot_destroys_keys_and_rewrites_nothing(
        engine: Engine, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subject_keys, "_ATTACHED", {})  # this test's key store only
    attach(engine, SubjectKeys(tmp_path / "keys" / "subject_keys.db", KEY))
    root = tmp_path / ".keel" / "datasets"
    store = _fill(engine, root, tmp_path, store_url)
    assert "/sealed-" in f"/{store.resolve('people:1').uri}"
    parts_before = {p: p.read_bytes() for p in root.rglob("part-*.parquet")}
    sealed = b"".join(parts_before.values())
    assert not any(_email(i).encode() in sealed or _subject(i).encode() in sealed
                   for i in range(SUBJECTS))  # no subject's value is in clear
    audit = AuditLog(engine)
    audit.ensure_schema()
    registry = open_registry(tmp_path, store_url)
    reports = [erase(engine, audit, store, registry, _subject(i), key=KEY, actor="dpo",
                     reason=f"ticket {i}", rewrite=True) for i in range(ERASED)]
    registry.close()
    assert all(r.snapshot_key_destroyed and r.snapshots == {"people:1": 1} for r in reports)
    assert reports[0].models == ["scorer:1"]
    # Nothing rewritten: the files are the copy taken before, and in it the 100 do not open.
    assert {p: p.read_bytes() for p in root.rglob("part-*.parquet")} == parts_before
    engine.dispose()
    raw = _raw(engine, store_url, root)
    for i in range(ERASED):
        assert _subject(i).encode() not in raw and _email(i).encode() not in raw, i
    rows = store.read("people:1")
    assert sorted(rows.column("customer").to_pylist()) == [
        _subject(i) for i in range(ERASED, SUBJECTS)]
    assert rows.column("email").to_pylist()[0].endswith("@example.org")
    assert store.read("people:1", erased="null").num_rows == SUBJECTS
    store.verify("people:1")
    manifest = store.manifest(store.resolve("people:1"))
    assert [e["how"] for e in manifest["erasures"]] == ["key_destroyed"] * ERASED
    assert export(engine, store, _subject(7), key=KEY)["snapshot_rows"] == {}
    assert export(engine, store, _subject(700), key=KEY)["snapshot_rows"] == {"people:1": [
        {"customer": _subject(700), "email": _email(700), "income": 700.0}]}
    # Erasing again finds no key and counts nothing twice.
    again = erase(engine, AuditLog(engine), store, None, _subject(3), key=KEY, actor="dpo",
                  reason="again")
    assert not again.snapshot_key_destroyed and again.snapshots == {}


def test_a_sealed_snapshot_without_its_key_store_says_so(
        engine: Engine, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subject_keys, "_ATTACHED", {})
    attach(engine, SubjectKeys(tmp_path / "keys" / "subject_keys.db", KEY))
    store = _fill(engine, tmp_path / ".keel" / "datasets", tmp_path, store_url)
    store.verify("people:1")
    monkeypatch.setattr(subject_keys, "_ATTACHED", {})  # a reader that attached no key store
    with pytest.raises(RegistryError, match=r"1000 sealed rows .* do not open"):
        store.verify("people:1")
    assert store.read("people:1").num_rows == 0

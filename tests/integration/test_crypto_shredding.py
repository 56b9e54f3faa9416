"""Crypto-shredding, as a user meets it: predictions of 20 data subjects go through a real
server into the prediction log, someone takes a copy of the database (a backup), two subjects
are erased (admin HTTP route and ``keel erase``). Then the backup still holds their rows, but
their payloads do not open with the keys that are left, and the copy never held the canary
values in clear; the other subjects read back intact from the backup; ``keel log tail``,
``keel export`` and ``keel monitor run`` keep working over a log with erased payloads.
A dataset snapshot taken with ``keel data snapshot --subject-column`` holds the subjects' rows
sealed: no canary in its files, the erasures change none of its bytes, and the erased
subjects' rows no longer read while the others' do.
Predictions loaded by ``keel ingest`` are sealed too, and ``keel retention apply`` destroys the
key of a subject whose predictions have all expired."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from sqlalchemy import select
from starlette.testclient import TestClient

from journey import keel
from keelwork.adapters.stores.datasets import open_dataset_store
from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.prediction_store import (
    PredictionReader,
    prediction_payloads,
    predictions,
)
from keelwork.adapters.stores.subject_keys import (
    ERASED,
    SubjectKeys,
    key_id,
    sealed_key_id,
    unseal,
)
from keelwork.interfaces.http.server import build_server_app
from keelwork.service.payload_keys import subject_key
from keelwork.spec import load_spec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SPEC = f"""\
service: {{name: shred, owners: [t@example.com]}}
models:
  - name: adder
    runtime: python
    artifact: "fakes:total"
    options: {{path: "{FIXTURES}"}}
contract:
  inputs: [{{name: a, type: float}}, {{name: b, type: integer}}, {{name: note, type: string}}]
monitoring:
  reference: reference.csv
  windows: [1h]
"""
SUBJECTS = [f"subj-{i:02d}" for i in range(20)]
GONE = {"subj-03", "subj-04"}


def _canary(subject: str, n: int) -> str:
    return f"cnry{subject[-2:]}x{n}qz"


def _backup(src: Path, dst: Path) -> None:
    """A consistent copy of a live SQLite database, as a backup tool takes it."""
    a, b = sqlite3.connect(src), sqlite3.connect(dst)
    try:
        a.backup(b)
    finally:
        a.close()
        b.close()


def test_erased_subjects_payloads_do_not_open_in_a_backup(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text(SPEC)
    (tmp_path / "reference.csv").write_text(
        "a,b,note\n" + "".join(f"{i / 10},{i % 7},ref{i}\n" for i in range(200)))
    admin = keel(tmp_path, "keys", "create", "--scope", "admin", "--name", "dpo").stdout.strip()
    resolved = load_spec(tmp_path / "keel.yaml")
    auth = {"Authorization": f"Bearer {admin}"}
    with TestClient(build_server_app(resolved, freeze_gc=False)) as client:
        for subject in SUBJECTS:
            for n in range(3):
                r = client.post("/v1/models/adder:predict", headers={"X-Subject-Id": subject},
                                json={"instances": [{"a": n / 2, "b": n,
                                                     "note": _canary(subject, n)}]})
                assert r.status_code == 200, r.text
        r = client.post("/v1/models/adder:predict",
                        json={"instances": [{"a": 1.0, "b": 1, "note": "anonymousqz"}]})
        assert r.status_code == 200, r.text

    (tmp_path / "people.csv").write_text("customer,note,score\n" + "".join(
        f"{s},{_canary(s, 9)},{i}\n" for i, s in enumerate(SUBJECTS)))
    keel(tmp_path, "data", "snapshot", "people.csv", "--name", "people",
         "--subject-column", "customer")
    parts = {p: p.read_bytes() for p in (tmp_path / ".keel" / "datasets").rglob("*.parquet")}
    assert parts and not any(_canary(s, 9).encode() in b"".join(parts.values())
                             or s.encode() in b"".join(parts.values()) for s in SUBJECTS)
    # Nor in the database: the snapshot's stored profile keeps no text value.
    db = b"".join(p.read_bytes() for p in (tmp_path / ".keel").glob("keel.db*"))
    assert not any(_canary(s, 9).encode() in db for s in SUBJECTS)

    keel_dir = tmp_path / ".keel"
    wal = keel_dir / "keel.db-wal"
    raw = (keel_dir / "keel.db").read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    assert b"anonymousqz" in raw  # the scan sees payloads in clear when they are
    assert not any(_canary(s, n).encode() in raw for s in SUBJECTS for n in range(3))
    backup_dir = tmp_path / "backup"
    backup_dir.mkdir()
    _backup(keel_dir / "keel.db", backup_dir / "keel.db")

    with TestClient(build_server_app(resolved, freeze_gc=False)) as client:
        done = client.post("/v1/admin/subjects:erase", headers=auth,
                           json={"subject": "subj-04", "reason": "ticket 7"})
        assert done.status_code == 200, done.text
        assert done.json()["payload_key_destroyed"] is True
        assert done.json()["predictions"] == 3
        assert done.json()["snapshot_key_destroyed"] is True
        assert done.json()["snapshot_rows"] == {"people:1": 1}
    shown = keel(tmp_path, "erase", "--subject", "subj-03", "--reason", "ticket 8").stdout
    assert "erased: 3 predictions" in shown and "payload key destroyed" in shown
    assert "1 snapshot rows" in shown and "snapshot key destroyed" in shown
    # The snapshot's files are as they were (the copy a backup holds), yet its erased rows
    # are gone for every reader, and it still verifies.
    assert {p: p.read_bytes() for p in parts} == parts
    snap = json.loads(keel(tmp_path, "export", "--subject", "subj-05").stdout)["snapshot_rows"]
    assert snap == {"people:1": [{"customer": "subj-05", "note": _canary("subj-05", 9),
                                  "score": 5}]}
    assert json.loads(keel(tmp_path, "export", "--subject", "subj-03").stdout)[
        "snapshot_rows"] == {}
    with open_dataset_store(tmp_path) as ds:
        assert sorted(ds.read("people:1").column("customer").to_pylist()) == sorted(
            set(SUBJECTS) - GONE)
        ds.verify("people:1")

    # The backup holds the erased subjects' rows; with the keys left, they do not open.
    left = SubjectKeys(keel_dir / "subject_keys.db")
    restore = make_engine(f"sqlite:///{backup_dir / 'keel.db'}")
    with restore.connect() as conn:
        rows = conn.execute(select(predictions.c.subject_id, prediction_payloads.c.inputs)
                            .join(prediction_payloads, prediction_payloads.c.id
                                  == predictions.c.id)).all()
    sealed = [(s, v) for s, v in rows if s in GONE]
    assert len(sealed) == 6
    remaining = list(left.keys([k for _, v in rows if (k := sealed_key_id(v))]).values())
    assert len(remaining) == len(SUBJECTS) - len(GONE)
    for _, value in sealed:
        for key in remaining:
            try:
                unseal(key, "inputs", value)
            except ValueError:
                continue
            raise AssertionError("an erased subject's payload opened with a remaining key")
    # Restored beside the key file as it is now: the others intact, the erased ones erased.
    (backup_dir / "subject_keys.db").write_bytes((keel_dir / "subject_keys.db").read_bytes())
    got = {r.id: r for r in PredictionReader(restore).iter_records()}
    assert len(got) == 61
    for rec in got.values():
        if rec.subject_id in GONE:
            assert rec.inputs is None and rec.outputs is None
            assert rec.request_meta == json.loads(ERASED["request_meta"])
        elif rec.subject_id is not None:
            n = rec.inputs["b"]
            assert rec.inputs == {"a": n / 2, "b": n, "note": _canary(rec.subject_id, n)}
            assert rec.outputs == n / 2 + n
    restore.dispose()

    # What a user reads over the live log: the export, the tail, the monitoring run.
    exported = json.loads(keel(tmp_path, "export", "--subject", "subj-05").stdout)
    assert sorted(p["inputs"]["note"] for p in exported["predictions"]) == [
        _canary("subj-05", n) for n in range(3)]
    tail = keel(tmp_path, "log", "tail", "-n", "100", "--json").stdout
    assert _canary("subj-19", 2) in tail and _canary("subj-03", 0) not in tail
    run = keel(tmp_path, "monitor", "run", "--since", "2h", "--json")
    windows = [w for w in json.loads(run.stdout)["windows"] if w["predictions"]]
    assert sum(w["predictions"] for w in windows) == 55

    # A restore of the backup: the erased subjects' rows are back, their payloads are not,
    # and monitoring runs over them (as erased rows) rather than failing. The restore goes
    # through SQLite's backup API, which replaces the live database and its WAL together.
    _backup(backup_dir / "keel.db", keel_dir / "keel.db")
    run = keel(tmp_path, "monitor", "run", "--since", "2h", "--json")
    windows = [w for w in json.loads(run.stdout)["windows"] if w["predictions"]]
    assert sum(w["predictions"] for w in windows) == 61
    assert _canary("subj-04", 1) not in keel(tmp_path, "log", "tail", "-n", "100",
                                             "--json").stdout

    # Records loaded by `keel ingest --kind predictions` are sealed too; once all of a
    # subject's predictions expire (`keel retention apply`), its key is destroyed with them.
    old = time.time() - 40 * 86_400
    (tmp_path / "recs.jsonl").write_text("".join(json.dumps(
        {"id": f"ing{n}", "ts": old + n, "model": "adder", "version": 1,
         "subject_id": "subj-old", "inputs": {"a": 0.5, "b": n, "note": f"cnryoldx{n}qz"},
         "outputs": 0.5 + n, "latency_ms": 1.0}) + "\n" for n in range(2)))
    keel(tmp_path, "ingest", "--kind", "predictions", "recs.jsonl")
    raw = (keel_dir / "keel.db").read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    assert b"cnryoldx" not in raw
    assert "cnryoldx1qz" in keel(tmp_path, "export", "--subject", "subj-old").stdout
    old_key = next(iter(SubjectKeys(keel_dir / "subject_keys.db").keys(
        [key_id(subject_key(tmp_path), "subj-old")]).values()))
    with (tmp_path / "keel.yaml").open("a") as fh:
        fh.write("retention: {predictions_days: 30}\n")
    applied = keel(tmp_path, "retention", "apply").stdout
    assert "predictions: deleted 2" in applied and "subject keys: destroyed 1" in applied
    assert old_key not in (keel_dir / "subject_keys.db").read_bytes()

"""Crypto-shredding on a PostgreSQL store, as a user meets it: predictions of data subjects
reach the log through a real server, ``keel ingest --kind predictions`` and ``keel score``;
the raw table files of the database never hold their canary values in clear, and the database
holds no key: they live in the project's ``.keel/subject_keys.db``, or in the database
``storage.subject_keys_url`` names (a fleet's shared key store). A backup of the database is
taken; two subjects are erased (admin HTTP route and ``keel erase``) and
``keel retention apply`` expires a subject whose rows are all old, destroying its key. In the
backup, those three subjects' payloads no longer open; every other subject's do; ``keel log
tail``, ``keel export`` and ``keel monitor run`` read the sealed log from the CLI; and the
destroyed keys' bytes are gone from the key store's files."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from journey import keel
from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.prediction_store import PredictionReader
from keelwork.adapters.stores.subject_keys import ERASED, SubjectKeys, key_id
from keelwork.interfaces.http.server import build_server_app
from keelwork.service.payload_keys import project_keys, subject_key
from keelwork.spec import load_spec
from pg import create_database, drop_database, table_file_bytes

pytestmark = pytest.mark.postgres

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SPEC = """\
service: {{name: shredpg, owners: [t@example.com]}}
models:
  - name: adder
    runtime: python
    artifact: "fakes:total"
    options: {{path: "{fx}"}}
contract:
  inputs: [{{name: a, type: float}}, {{name: b, type: integer}}, {{name: note, type: string}},
           {{name: who, type: string, required: false}}]
  subject_field: who
storage:
  url: "{url}"{keys}
monitoring:
  reference: reference.csv
  windows: [1h]
"""
SERVED = [f"srv-{i}" for i in range(6)]       # through the server
LOADED = [f"ing-{i}" for i in range(3)]       # keel ingest --kind predictions
SCORED = [f"sco-{i}" for i in range(3)]       # keel score (contract.subject_field)
OLD = "ing-old"                               # loaded 40 days old: retention expires it
GONE = {"srv-1", "sco-2", OLD}


def _canary(subject: str, n: int) -> str:
    return f"cnry{subject.replace('-', '')}x{n}qz"


def _raw(url: str, tables: tuple[str, ...]) -> bytes:
    """The raw bytes of ``tables`` (and their TOAST) after a checkpoint."""
    engine = create_engine(make_url(url))
    try:
        return table_file_bytes(engine, *tables)
    finally:
        engine.dispose()


def _key_bytes(where: str | Path) -> bytes:
    """The raw bytes of a key store: the SQLite file (and WAL), or the PostgreSQL table's."""
    if isinstance(where, Path):
        return b"".join(p.read_bytes() for p in (where, Path(f"{where}-wal")) if p.exists())
    return _raw(where, ("subject_keys",))


def _backup(pg_url: str, url: str) -> str:
    """A file-level copy of the database (``CREATE DATABASE ... TEMPLATE``), as a backup."""
    source = make_url(url).database
    name = f"{source}_bak"
    admin = create_engine(make_url(pg_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": source})
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{source}"'))
    admin.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["project_file", "subject_keys_url"])
def key_store(request: pytest.FixtureRequest, pg_url: str) -> Iterator[str | None]:
    """None: the default key file; else the URL of a second database, for
    ``storage.subject_keys_url``."""
    if request.param == "project_file":
        yield None
        return
    url = create_database(pg_url)
    try:
        yield url
    finally:
        drop_database(pg_url, url)


def test_postgresql_payloads_are_sealed_and_erased_subjects_leave_backups(
        tmp_path: Path, pg_url: str, pg_database: str, key_store: str | None) -> None:
    keys_line = f'\n  subject_keys_url: "{key_store}"' if key_store else ""
    (tmp_path / "keel.yaml").write_text(SPEC.format(fx=FIXTURES, url=pg_database,
                                                    keys=keys_line))
    (tmp_path / "reference.csv").write_text(
        "a,b,note,who\n" + "".join(f"{i / 10},{i % 7},ref{i},\n" for i in range(200)))
    admin = keel(tmp_path, "keys", "create", "--scope", "admin", "--name", "dpo").stdout.strip()
    resolved = load_spec(tmp_path / "keel.yaml")
    with TestClient(build_server_app(resolved, freeze_gc=False)) as client:
        for subject in SERVED:
            for n in range(2):
                r = client.post("/v1/models/adder:predict", headers={"X-Subject-Id": subject},
                                json={"instances": [{"a": n / 2, "b": n,
                                                     "note": _canary(subject, n)}]})
                assert r.status_code == 200, r.text
        r = client.post("/v1/models/adder:predict",
                        json={"instances": [{"a": 1.0, "b": 1, "note": "anonymousqz"}]})
        assert r.status_code == 200, r.text

    now = time.time()
    recs = [{"id": f"ing{i}{n}", "ts": now - 60 + n, "model": "adder", "version": 1,
             "subject_id": s, "inputs": {"a": 0.5, "b": n, "note": _canary(s, n)},
             "outputs": 0.5 + n, "latency_ms": 1.0} for i, s in enumerate(LOADED)
            for n in range(2)]
    recs += [{"id": f"old{n}", "ts": now - 40 * 86_400 + n, "model": "adder", "version": 1,
              "subject_id": OLD, "inputs": {"a": 0.5, "b": n, "note": _canary(OLD, n)},
              "outputs": 0.5 + n, "latency_ms": 1.0} for n in range(2)]
    (tmp_path / "recs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    keel(tmp_path, "ingest", "--kind", "predictions", "recs.jsonl")
    (tmp_path / "batch.jsonl").write_text("".join(
        json.dumps({"a": 0.25, "b": n, "note": _canary(s, n), "who": s}) + "\n"
        for s in SCORED for n in range(2)))
    keel(tmp_path, "score", "batch.jsonl", "--model", "adder")

    everyone = [*SERVED, *LOADED, *SCORED, OLD]
    raw = _raw(pg_database, ("prediction_payloads", "predictions"))
    assert b"anonymousqz" in raw  # the scan sees payloads in clear when they are
    held = [_canary(s, n) for s in everyone for n in range(2) if _canary(s, n).encode() in raw]
    assert held == []
    store = make_engine(pg_database)
    assert not inspect(store).has_table("subject_keys")  # the database holds no key
    store.dispose()
    key_file = tmp_path / ".keel" / "subject_keys.db"
    assert key_file.exists() == (key_store is None)
    where: str | Path = key_store or key_file
    ids = {s: key_id(subject_key(tmp_path), s) for s in everyone}
    reader = SubjectKeys(where)
    held = reader.keys(ids.values())
    reader.close()
    assert set(held) == set(ids.values())  # one key per subject, in the key store
    backup = _backup(pg_url, pg_database)

    with TestClient(build_server_app(resolved, freeze_gc=False)) as client:
        done = client.post("/v1/admin/subjects:erase",
                           headers={"Authorization": f"Bearer {admin}"},
                           json={"subject": "srv-1", "reason": "ticket 7"})
        assert done.status_code == 200, done.text
        assert done.json()["payload_key_destroyed"] is True
    shown = keel(tmp_path, "erase", "--subject", "sco-2", "--reason", "ticket 8").stdout
    assert "erased: 2 predictions" in shown and "payload key destroyed" in shown
    with (tmp_path / "keel.yaml").open("a") as fh:
        fh.write("retention: {predictions_days: 30}\n")
    applied = keel(tmp_path, "retention", "apply").stdout
    assert "predictions: deleted 2" in applied and "subject keys: destroyed 1" in applied

    # The destroyed keys' bytes are gone from the key store's files; the others are there.
    raw_keys = _key_bytes(where)
    assert [s for s in GONE if held[ids[s]] in raw_keys] == []
    assert all(held[ids[s]] in raw_keys for s in everyone if s not in GONE)

    # The backup, restored beside the key file as it is now: the three subjects do not open,
    # every other one does.
    restore = make_engine(backup)
    project_keys(tmp_path, restore, seal=False)
    try:
        got = list(PredictionReader(restore).iter_records())
    finally:
        restore.dispose()
    assert len(got) == 2 * len(everyone) + 1
    for rec in got:
        if rec.subject_id in GONE:
            assert rec.inputs is None and rec.outputs is None
            assert rec.request_meta == json.loads(ERASED["request_meta"])
        elif rec.subject_id is not None:
            n = rec.inputs["b"]
            assert rec.inputs["note"] == _canary(rec.subject_id, n), rec

    # The CLI reads the sealed PostgreSQL log (it finds the project's key file).
    tail = keel(tmp_path, "log", "tail", "-n", "100", "--json").stdout
    assert _canary("srv-5", 1) in tail and _canary("ing-2", 0) in tail
    assert _canary("srv-1", 0) not in tail and _canary(OLD, 0) not in tail
    exported = json.loads(keel(tmp_path, "export", "--subject", "sco-0").stdout)
    assert sorted(p["inputs"]["note"] for p in exported["predictions"]) == [
        _canary("sco-0", n) for n in range(2)]
    run = json.loads(keel(tmp_path, "monitor", "run", "--since", "2h", "--json").stdout)
    assert sum(w["predictions"] for w in run["windows"]) == 2 * (len(everyone) - 3) + 1

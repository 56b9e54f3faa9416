"""The drills of ``keel check`` on a PostgreSQL project: the scratch copy is a new database on
the same server (dropped afterwards); the backup drill goes through the real ``pg_dump`` and
``pg_restore`` into a scratch database and catches a tampered audit chain; the PII scan says
the server's files were not read."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import text

from keelwork.adapters.stores.audit_store import open_audit_log
from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.prediction_store import ensure_schema, insert_records
from keelwork.adapters.stores.store_copy import table_counts
from keelwork.core.predictions import PredictionRecord, new_prediction_id
from keelwork.service.drills.backup import backup_drill
from keelwork.service.drills.pii_scan import pii_scan
from keelwork.service.drills.scratch import URL_VARIABLE, scratch_project
from keelwork.spec import load_spec

pytestmark = pytest.mark.postgres

SPEC = """\
service: {name: pg-drills, owners: [t@example.com]}
models:
  - {name: m, runtime: python, artifact: "fakes:total"}
contract:
  inputs:
    - {name: note, type: text, pii: redact}
"""


def _fill(url: str, project: Path) -> None:
    engine = make_engine(url)
    ensure_schema(engine)
    with engine.begin() as conn:
        insert_records(conn, [PredictionRecord(id=new_prediction_id(), ts=1.0, model="m",
                                               version=1, inputs={"note": "fine"}, outputs=1,
                                               latency_ms=1.0) for _ in range(7)])
    engine.dispose()
    log = open_audit_log(project, url)
    for i in range(3):
        log.append(actor="t", action="test", target=f"x{i}")
    log.close()


def test_scratch_database_on_the_same_server_dropped_after(pg_database: str,
                                                           tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text(SPEC)
    _fill(pg_database, tmp_path)
    before = table_counts(pg_database)
    with scratch_project(load_spec(tmp_path / "keel.yaml"), pg_database) as scratch:
        assert not scratch.copied_store and scratch.url != pg_database
        assert scratch.load().storage_url == scratch.url
        written = scratch.spec_path.read_text()
        assert URL_VARIABLE in written and scratch.url not in written  # no URL on disk
        assert table_counts(scratch.url) == {}  # empty: keel serve registers keel.yaml's models
        made = scratch.url
    engine = make_engine(pg_database)
    with engine.connect() as conn:
        name = made.rsplit("/", 1)[1]
        assert conn.execute(text("SELECT count(*) FROM pg_database WHERE datname = :n"),
                            {"n": name}).scalar_one() == 0
    engine.dispose()
    assert table_counts(pg_database) == before


@pytest.mark.skipif(shutil.which("pg_dump") is None, reason="pg_dump is not installed")
def test_backup_restore_through_pg_dump(pg_database: str, tmp_path: Path) -> None:
    _fill(pg_database, tmp_path)
    good = backup_drill(pg_database)
    assert good.status == "pass", good
    assert good.facts["method"].startswith("pg_dump") and good.facts["audit_entries"] == 3
    engine = make_engine(pg_database)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2"))
    engine.dispose()
    bad = backup_drill(pg_database)
    assert bad.status == "fail" and "audit chain does not verify" in bad.detail


def test_pii_scan_of_a_server_store_reads_the_log_not_the_files(pg_database: str,
                                                                 tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text(SPEC)
    _fill(pg_database, tmp_path)
    item = pii_scan(load_spec(tmp_path / "keel.yaml"), pg_database)
    assert item.status == "not_checked" and "database server" in item.detail
    assert item.facts["payloads_read"] == 14  # 7 predictions: inputs and outputs
    engine = make_engine(pg_database)
    with engine.begin() as conn:
        insert_records(conn, [PredictionRecord(
            id=new_prediction_id(), ts=1.0, model="m", version=1,
            inputs={"note": "mail jane.doe@example.org"}, outputs=1, latency_ms=1.0)])
    engine.dispose()
    item = pii_scan(load_spec(tmp_path / "keel.yaml"), pg_database)
    assert item.status == "fail" and item.facts["found_in_redacted_fields"] == {
        "note": {"EMAIL_ADDRESS": 1}}

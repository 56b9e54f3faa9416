"""The drills' parts that need no server: the scratch copy (its own store, the user's never
written), the rollback verdict, the kill drill's count after the spool's replay, the backup
drill on a good and a tampered store, and the PII scan of the stores' raw bytes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from keelwork.adapters.stores.audit_store import open_audit_log
from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.prediction_spool import Spool
from keelwork.adapters.stores.prediction_store import (
    ensure_schema,
    insert_records,
    record_to_row,
)
from keelwork.adapters.stores.store_copy import stored_prediction_ids, table_counts
from keelwork.core.predictions import PredictionRecord, new_prediction_id
from keelwork.errors import DrillUnavailable
from keelwork.service.drills import kill
from keelwork.service.drills.backup import backup_drill
from keelwork.service.drills.live import Answer, contract_rows, drill_rows, rule_of
from keelwork.service.drills.pii_scan import pii_scan
from keelwork.service.drills.rollback import verdict
from keelwork.service.drills.scratch import URL_VARIABLE, scratch_project
from keelwork.spec import load_spec
from keelwork.spec.contract import ContractSection, FieldSpec

SPEC = """\
service: {{name: drills, owners: [t@example.com]}}
models:
  - {{name: m, runtime: python, artifact: "fakes:total"}}
contract:
  inputs:
    - {{name: note, type: text{pii}}}
    - {{name: memo, type: text}}
{extra}"""
EMAIL = "jane.doe@example.org"


def _project(tmp: Path, pii: str = ", pii: redact", extra: str = "") -> Path:
    (tmp / "keel.yaml").write_text(SPEC.format(pii=pii, extra=extra))
    return tmp


def _log(project: Path, inputs: list[dict[str, str]]) -> str:
    url = f"sqlite:///{project / '.keel' / 'keel.db'}"
    (project / ".keel").mkdir(exist_ok=True)
    engine = make_engine(url)
    ensure_schema(engine)
    with engine.begin() as conn:
        insert_records(conn, [PredictionRecord(id=new_prediction_id(), ts=1.0, model="m",
                                               version=1, inputs=i, outputs=1, latency_ms=1.0)
                              for i in inputs])
    engine.dispose()
    return url


# --------------------------------------------------------------------------- scratch copy
def test_scratch_copy_has_its_own_store_and_leaves_the_users_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = _project(tmp_path, extra="storage: {spool_dir: /elsewhere/spool}\n")
    (project / "data.csv").write_text("note,memo\nx,y\n")
    url = _log(project, [{"note": "a", "memo": "b"}])
    monkeypatch.setenv("KEELWORK_STORAGE_URL", url)
    before = table_counts(url)
    resolved = load_spec(project / "keel.yaml")
    with scratch_project(resolved, url) as scratch:
        assert scratch.copied_store and (scratch.root / "data.csv").is_file()
        assert "KEELWORK_STORAGE_URL" not in scratch.env
        assert scratch.env[URL_VARIABLE] == scratch.url != url
        copy = scratch.load()
        assert copy.storage_url == scratch.url
        assert copy.spool_dir == scratch.root / ".keel" / "spool"  # not the user's spool
        assert table_counts(scratch.url) == before
        _log(scratch.root, [{"note": "more", "memo": "rows"}] * 5)
        root = scratch.root
    assert not root.exists()
    assert table_counts(url) == before


# --------------------------------------------------------------------------- rollback
def test_rollback_verdict_counts_by_send_time() -> None:
    ok = [Answer(0.5, 200, "2"), Answer(0.9, 200, "1"), Answer(1.2, 200, "2"),
          Answer(2.5, 200, "1"), Answer(3.0, 200, "1")]
    good = verdict(ok, 1.0, "2", "1")
    assert good.status == "pass", good
    assert good.facts["canary_last_answer_after_rollback_ms"] == 200
    late = verdict([*ok, Answer(2.4, 200, "2")], 1.0, "2", "1")
    assert late.status == "fail" and "1.40 s after the rollback" in late.detail
    failed = verdict([*ok, Answer(1.5, 503, "")], 1.0, "2", "1")
    assert failed.status == "fail" and failed.facts["failed"] == 1


def test_rollback_verdict_counts_guard_and_contract_refusals_apart() -> None:
    ok = [Answer(0.5, 200, "2"), Answer(0.9, 200, "1"), Answer(1.2, 200, "2"),
          Answer(2.5, 200, "1"), Answer(3.0, 200, "1")]
    refusals = [Answer(0.7, 422, "", rule="out_of_distribution"),
                Answer(2.6, 422, "", rule="out_of_distribution"),
                Answer(2.7, 422, "1", rule="type"),
                Answer(2.8, 403, "", rule="prompt_injection"),
                Answer(2.9, 429, "", rule="rate_limit")]
    item = verdict([*ok, *refusals], 1.0, "2", "1")
    assert item.status == "pass", item
    assert item.facts["failed"] == 0 and item.facts["refused"] == 5
    assert item.facts["refused_by_rule"] == {"out_of_distribution": 2, "type": 1,
                                             "prompt_injection": 1, "rate_limit": 1}
    assert item.facts["versions_answering_after_1s"] == ["1"]  # no "" of a refusal
    assert "5 refused by a guard or the contract" in item.detail


@pytest.mark.parametrize("bad", [
    Answer(2.6, 0, ""),  # no answer at all
    Answer(2.6, 500, "1", rule="error"),
    Answer(2.6, 503, "", rule="overloaded"),
    Answer(2.6, 404, "", rule="model_not_found"),  # a 4xx no guard answers
    Answer(2.6, 422, ""),  # a refusal naming no rule
    Answer(2.6, 403, "", rule="error"),
])
def test_rollback_verdict_stays_strict_about_real_failures(bad: Answer) -> None:
    ok = [Answer(0.5, 200, "2"), Answer(2.5, 200, "1"), Answer(3.0, 200, "1")]
    item = verdict([*ok, bad], 1.0, "2", "1")
    assert item.status == "fail" and item.facts["failed"] == 1, item
    assert item.facts["refused"] == 0


def test_rollback_verdict_fails_when_only_refusals_come_after_the_rollback() -> None:
    seen = [Answer(0.5, 200, "2"), Answer(0.9, 200, "1"),
            Answer(2.5, 422, "", rule="out_of_distribution")]
    item = verdict(seen, 1.0, "2", "1")
    assert item.status == "fail" and "nothing shows the champion serving" in item.detail


def test_the_rule_of_a_refusal_is_read_from_its_error_body() -> None:
    body = json.dumps({"error": "x", "details": [{"path": "instances[0]",
                                                   "rule": "out_of_distribution", "got": 1}]})
    assert rule_of(body.encode()) == "out_of_distribution"
    assert rule_of(b"not json") == rule_of(b"[1]") == rule_of(b'{"details": []}') == ""
    assert rule_of(b'{"details": [{"rule": 3}]}') == ""


# --------------------------------------------------------------------------- kill
def test_kill_count_replays_the_spool_then_counts(tmp_path: Path) -> None:
    project = _project(tmp_path)
    url = _log(project, [{"note": "a", "memo": "b"}])
    with scratch_project(load_spec(project / "keel.yaml"), url) as scratch:
        stored = [new_prediction_id() for _ in range(30)]
        engine = make_engine(scratch.url)
        with engine.begin() as conn:
            insert_records(conn, [PredictionRecord(id=i, ts=1.0, model="m", version=1,
                                                   inputs={}, outputs=1, latency_ms=1.0)
                                  for i in stored[:25]])
        engine.dispose()
        spool = Spool(scratch.load().spool_dir)  # the last five only reached the spool
        spool.open()
        spool.append([record_to_row(PredictionRecord(id=i, ts=1.0, model="m", version=1,
                                                     inputs={}, outputs=1, latency_ms=1.0))
                      for i in stored[25:]])
        spool.close()
        assert stored_prediction_ids(scratch.url, stored) == set(stored[:25])
        assert kill._count(scratch, stored, "sync", 10).status == "pass"
        lost = kill._count(scratch, [*stored, new_prediction_id()], "async", 10)
        assert lost.status == "fail" and lost.facts["lost"] == 1
        assert "durability: sync" in lost.fix


# --------------------------------------------------------------------------- backup
def test_backup_restore_passes_then_fails_on_a_tampered_chain(tmp_path: Path) -> None:
    project = _project(tmp_path)
    url = _log(project, [{"note": "a", "memo": "b"}] * 3)
    log = open_audit_log(project, url)
    for i in range(3):
        log.append(actor="t", action="test", target=f"x{i}")
    log.close()
    good = backup_drill(url)
    assert good.status == "pass", good
    assert good.facts["audit_entries"] == 3 and good.facts["differing_tables"] == {}
    with sqlite3.connect(project / ".keel" / "keel.db") as db:
        db.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    bad = backup_drill(url)
    assert bad.status == "fail" and "audit chain does not verify" in bad.detail
    assert backup_drill(f"sqlite:///{tmp_path / 'none.db'}").status == "not_checked"


# --------------------------------------------------------------------------- PII scan
def test_pii_scan_fails_on_an_email_in_a_redacted_field_never_showing_it(
        tmp_path: Path) -> None:
    project = _project(tmp_path)
    url = _log(project, [{"note": f"write to {EMAIL} please", "memo": "fine"}])
    item = pii_scan(load_spec(project / "keel.yaml"), url)
    assert item.status == "fail", item
    assert item.facts["found_in_redacted_fields"] == {"note": {"EMAIL_ADDRESS": 1}}
    assert item.facts["found_in_redacted_fields_raw"] == {"note": {"EMAIL_ADDRESS": 1}}
    assert EMAIL not in json.dumps(item.as_dict()) and "jane" not in json.dumps(item.as_dict())


def test_pii_scan_passes_when_the_email_is_in_a_field_kept_whole(tmp_path: Path) -> None:
    project = _project(tmp_path)
    url = _log(project, [{"note": "nothing here", "memo": f"write to {EMAIL}"}])
    item = pii_scan(load_spec(project / "keel.yaml"), url)
    assert item.status == "pass", item
    assert item.facts["files"][".keel/keel.db"]["EMAIL_ADDRESS"] >= 1  # counted, not failed


def test_pii_scan_with_redaction_on_watches_every_field_and_the_spool(tmp_path: Path) -> None:
    project = _project(tmp_path, pii="", extra="guards: {pii_redaction: true}\n")
    url = _log(project, [{"note": "nothing", "memo": "nothing"}])
    assert pii_scan(load_spec(project / "keel.yaml"), url).status == "pass"
    spool = project / ".keel" / "spool"
    spool.mkdir()
    (spool / "spool-00000001.jsonl").write_text(json.dumps(
        {"inputs": json.dumps({"memo": f"from {EMAIL}"})}) + "\n")  # escaped, as spooled
    item = pii_scan(load_spec(project / "keel.yaml"), url)
    assert item.status == "fail" and item.facts["found_in_redacted_fields_raw"] == {
        "memo": {"EMAIL_ADDRESS": 1}}
    assert item.facts["found_in_redacted_fields"] == {}  # not in the log: only on disk
    assert "in the files' bytes only" in item.detail


# --------------------------------------------------------------------------- rows
def test_rows_made_from_the_contract_pass_it_or_the_drill_says_why(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text(SPEC.format(pii="", extra="").replace(
        "    - {name: memo, type: text}\n",
        "    - {name: memo, type: text}\n    - {name: age, type: integer, min: 18, max: 99}\n"
        "    - {name: kind, type: category, categories: [a, b]}\n"
        "    - {name: ok, type: boolean}\n    - {name: x, type: float, max: -1}\n"))
    rows = drill_rows(load_spec(tmp_path / "keel.yaml"))
    assert [r["age"] for r in rows] == [18, 59, 99] and [r["x"] for r in rows] == [-3, -2, -1]
    assert {r["kind"] for r in rows} == {"a", "b"}
    odd = ContractSection(inputs=[FieldSpec(name="t", type="tensor", shape=[2])])
    with pytest.raises(DrillUnavailable, match="'t', cannot be made up"):
        contract_rows(odd)
    short = ContractSection(inputs=[FieldSpec(name="s", type="string", max_length=3,
                                              min_length=3)])
    assert contract_rows(short)[0] == {"s": "kee"}


def test_pii_scan_reads_long_values_whole(tmp_path: Path) -> None:
    """A value longer than one scan of the engine is scanned in pieces, not skipped."""
    project = _project(tmp_path)
    url = _log(project, [{"note": "word " * 3000 + EMAIL, "memo": "fine"}])
    item = pii_scan(load_spec(project / "keel.yaml"), url)
    assert item.facts["found_in_redacted_fields"] == {"note": {"EMAIL_ADDRESS": 1}}, item

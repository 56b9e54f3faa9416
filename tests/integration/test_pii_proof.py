"""Proof that personal data marked in keel.yaml is never stored: canary PII goes through the
predict route and every error path (422, 413, 504, 500), the feedback route (unknown ids) and
``keel ingest`` (dead letters); then every byte the project keeps (the SQLite file and its WAL,
the spool, anchors, every file under .keel/), the server's log output, its OpenTelemetry
spans (tracing on: attributes, events, recorded exceptions), /metrics and the reports a user
exports (``keel log export`` as Parquet and CSV, with labels) are scanned. Nothing of the
canaries may be found. The scan covers every file under .keel/, so a new store added there is
scanned without changing this test.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from journey import keel
from keelwork.interfaces.http.server import build_server_app
from keelwork.spec import load_spec
from otel_spans import span_exporter

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EMAIL = "zzcanary.person@example.org"
PHONE = "+44 20 7946 0958"
NAME_IN_TEXT = f"please call me on {PHONE} or write to {EMAIL}"
#: The phone as written, without its spaces, and its first half: not a bare "7946", which
#: random digits hold by chance (a latency of 0.8695779979461804 ms failed a run).
CANARIES = ("zzcanary", "7946 0958", "79460958", "20 7946")

SPEC = """\
service: {{name: private, owners: [t@example.com]}}
models:
  - name: moody
    runtime: python
    artifact: "pii_models:moody"
    options: {{path: "{fixtures}"}}
    timeout_ms: 200
contract:
  inputs:
    - {{name: email, type: string, pii: pseudonymise}}
    - {{name: phone, type: string, required: false, pii: drop}}
    - {{name: note, type: text, max_length: 200}}
    - {{name: x, type: float, min: 0, max: 10}}
    - {{name: ref, type: string, required: false}}
guards:
  pii_redaction: true
  max_body_bytes: 4096
server: {{tracing: true}}
storage:
  url: "{url}"
"""


#: A value nobody marked personal: it must be found, or the scan reads nothing.
VISIBLE = "kept-visible-4b1d"


def _instance(x: float, note: str = NAME_IN_TEXT) -> dict[str, object]:
    return {"email": EMAIL, "phone": PHONE, "note": note, "x": x, "ref": VISIBLE}


def _body(x: float, note: str = NAME_IN_TEXT) -> dict[str, object]:
    return {"instances": [_instance(x, note)]}


def _leaks(data: bytes) -> list[str]:
    return [c for c in CANARIES if c.encode() in data]


def _database_bytes(url: str) -> dict[str, bytes]:
    """PostgreSQL: every file of every relation of the database (tables, their TOAST tables
    and indexes), after a CHECKPOINT; so a new table is scanned without naming it here."""
    from sqlalchemy import text

    from keelwork.adapters.stores.engine import make_engine

    engine = make_engine(url)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("CHECKPOINT"))
        data_dir = Path(conn.execute(text("SHOW data_directory")).scalar_one())
        rels = conn.execute(text(
            "SELECT c.relname, pg_relation_filepath(c.oid) FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = 'public' OR c.relname LIKE "
            "'pg_toast_%'")).all()
    engine.dispose()
    assert any(name == "predictions" for name, _ in rels)
    out = {}
    for name, rel in rels:
        if rel is None:
            continue
        for part in (data_dir / rel).parent.glob(Path(rel).name + "*"):
            out[f"pg:{name}:{part.name}"] = part.read_bytes()
    return out


def test_no_canary_reaches_any_store_log_or_metric(tmp_path: Path, store_url: str,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    pytest.importorskip("opentelemetry.sdk")
    spans: Any = span_exporter()
    url = store_url if not store_url.startswith("sqlite") else \
        f"sqlite:///{tmp_path / '.keel' / 'keel.db'}"
    (tmp_path / "keel.yaml").write_text(SPEC.format(fixtures=FIXTURES, url=url))
    keel(tmp_path, "spec", "validate")
    resolved = load_spec(tmp_path / "keel.yaml")
    with TestClient(build_server_app(resolved, freeze_gc=False),
                    raise_server_exceptions=False) as client:
        ok = client.post("/v1/models/moody:predict", json=_body(1))
        assert ok.status_code == 200, ok.text
        pid = ok.json()["prediction_ids"][0]
        # An array instance holds the same fields in contract order: the same policy
        # applies. (Sent before the timeout below, whose model call goes on running.)
        row = client.post("/v1/models/moody:predict",
                          json={"instances": [[EMAIL, PHONE, NAME_IN_TEXT, 1, VISIBLE]]})
        assert row.status_code == 200, row.text
        row_id = row.json()["prediction_ids"][0]
        # What the contract does not name is scanned too: a bare string, an unknown key.
        others = [client.post("/v1/models/moody:predict", json=body) for body in (
            {"instances": [NAME_IN_TEXT]},
            {"instances": [{**_instance(1), "contact": NAME_IN_TEXT}]})]
        assert [a.status_code for a in others] == [422, 422]
        assert [_leaks(a.content) for a in others] == [[], []], [a.text for a in others]
        # A label that is an object or an array is scanned as a string label is.
        for label in ({"who": NAME_IN_TEXT}, [NAME_IN_TEXT]):
            fb = client.post("/v1/feedback", json={"labels": [
                {"prediction_id": row_id, "label": label}]})
            assert fb.status_code in (200, 422) and not _leaks(fb.content), fb.text
        statuses = {
            "contract": client.post("/v1/models/moody:predict", json=_body(99)).status_code,
            "too_long": client.post("/v1/models/moody:predict",
                                    json=_body(1, NAME_IN_TEXT * 10)).status_code,
            "too_large": client.post("/v1/models/moody:predict",
                                     json=_body(1, NAME_IN_TEXT * 100)).status_code,
            "model_error": client.post("/v1/models/moody:predict", json=_body(3)).status_code,
            "timeout": client.post("/v1/models/moody:predict", json=_body(2)).status_code,
        }
        assert statuses == {"contract": 422, "too_long": 422, "too_large": 413,
                            "timeout": 504, "model_error": 500}
        for path in ("/v1/models/moody:predict",):
            answers = [client.post(path, json=_body(x)) for x in (99,)]
            for a in answers:  # error bodies name the field, never the value
                assert not _leaks(a.content), a.text
        fb = client.post("/v1/feedback", json={"labels": [
            {"prediction_id": pid, "label": 3.0},
            {"prediction_id": f"{EMAIL}", "label": 1.0}]})
        assert fb.status_code in (200, 422), fb.text
        metrics = client.get("/metrics").content
    labels = tmp_path / "labels.csv"
    labels.write_text(f"prediction_id,label\n{pid},{EMAIL}\nnot-an-id-{PHONE},2\n")
    keel(tmp_path, "ingest", "--labels", str(labels), check=False)
    # Batch scoring writes to the same log under the same policy, dead letters included.
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in (
        _instance(1), _instance(99), _instance(3))))
    scored = keel(tmp_path, "score", str(rows), "--model", "moody", check=False)
    assert not _leaks((scored.stdout + scored.stderr).encode()), scored.stdout + scored.stderr
    assert scored.stdout.count("dead letter ") == 2, scored.stdout  # the contract, the model

    assert not _leaks(metrics)
    # /metrics counts what the redactor found in the note (entity labels only) and fail-closed
    assert b'keelwork_pii_detections_total{entity="EMAIL_ADDRESS"}' in metrics
    assert b'keelwork_pii_detections_total{entity="PHONE_NUMBER"}' in metrics
    assert b'keelwork_pii_fail_closed_total{reason="too_long"}' in metrics
    traced = [json.loads(sp.to_json()) for sp in spans.get_finished_spans()]
    assert any(t["attributes"].get("keelwork.model") == "moody" for t in traced)
    assert any(t["status"]["status_code"] == "ERROR" for t in traced)  # error paths traced
    assert not _leaks(json.dumps(traced).encode())
    exported = []
    for fmt in ("parquet", "csv"):
        out = tmp_path / f"export.{fmt}"
        keel(tmp_path, "log", "export", "--out", str(out), "--format", fmt, "--with-labels")
        exported.append(out.read_bytes())
    import pyarrow.parquet as pq  # Parquet pages may be compressed: scan the values

    values = json.dumps(pq.read_table(tmp_path / "export.parquet").to_pylist(),
                        default=str).encode()
    assert VISIBLE.encode() in values and VISIBLE.encode() in exported[1]  # rows are there
    assert [_leaks(b) for b in (*exported, values)] == [[], [], []]
    logged = "\n".join(r.getMessage() for r in caplog.records).encode()
    assert not _leaks(logged), [r.getMessage() for r in caplog.records if _leaks(
        r.getMessage().encode())][:3]
    kept = [p for p in (tmp_path / ".keel").rglob("*") if p.is_file()]
    found = {str(p.relative_to(tmp_path)): _leaks(p.read_bytes()) for p in kept}
    if url.startswith("sqlite"):
        assert any(p.name == "keel.db" for p in kept)
    else:
        found.update({k: _leaks(v) for k, v in _database_bytes(url).items()})
    assert {k: v for k, v in found.items() if v} == {}
    scanned = b"".join(p.read_bytes() for p in kept) + (
        b"".join(_database_bytes(url).values()) if not url.startswith("sqlite") else b"")
    assert VISIBLE.encode() in scanned  # the scan does read what is stored
    # The prediction was logged, with what may be kept of it.
    tail = [json.loads(line) for line in
            keel(tmp_path, "log", "tail", "--json").stdout.splitlines() if line.strip()]
    first = next(r for r in tail if r["id"] == pid)
    assert first["inputs"]["email"].startswith("pii:")
    assert "phone" not in first["inputs"]
    assert first["inputs"]["x"] == 1
    positional = next(r for r in tail if r["id"] == row_id)["inputs"]
    assert positional[0] == first["inputs"]["email"] and positional[1] is None
    assert positional[3:] == [1, VISIBLE]

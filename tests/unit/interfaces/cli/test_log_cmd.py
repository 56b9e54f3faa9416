"""``keel log tail`` / ``keel log export``: against a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.prediction_log import PredictionLog
from keelwork.core.predictions import PredictionRecord, new_prediction_id
from keelwork.interfaces.cli.log_cmd import app, parse_when

runner = CliRunner()
NOW = time.time()


def _rec(i: int, ts: float, model: str = "churn") -> PredictionRecord:
    return PredictionRecord(
        id=new_prediction_id(), ts=ts, model=model, version=2, tenant="acme",
        subject_id=f"s{i}", inputs={"i": i, "text": "a,b \"quoted\"\nline"},
        outputs={"label": i % 2}, latency_ms=3.25, status="ok" if i % 4 else "fallback",
        guard="timeout" if i % 4 == 0 else None, request_meta={"client": "cli-test"})


def _history(now: float) -> list[PredictionRecord]:
    """3 days of history, newest last, one every 3 hours, half an hour away from whole hours."""
    return [_rec(i, now - 3 * 86400 + i * 10800 + 1800, "churn" if i % 3 else "upsell")
            for i in range(24)]


# For tests whose queries do not depend on the clock. A query relative to the clock ("1d")
# uses ``Fresh``: history built when the test runs, not when the module was imported (a full
# suite runs a module's tests 30 minutes or more after it imports them).
RECORDS = _history(NOW)


def _fill(url: str, tmp_path: Path, records: list[PredictionRecord]) -> None:
    engine = make_engine(url)
    log = PredictionLog(engine, tmp_path / "spool")
    log.start()
    log.write_blocking(records)
    log.close()
    engine.dispose()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project whose default SQLite store holds RECORDS."""
    proj = tmp_path / "proj"
    proj.mkdir()
    _fill(f"sqlite:///{proj / '.keel' / 'keel.db'}", tmp_path, RECORDS)
    return proj


@dataclass(frozen=True)
class Fresh:
    project: Path
    now: float
    records: list[PredictionRecord]


@pytest.fixture
def fresh(tmp_path: Path) -> Fresh:
    """A project holding history that ends at the moment the test starts."""
    now = time.time()
    records = _history(now)
    proj = tmp_path / "fresh"
    proj.mkdir()
    _fill(f"sqlite:///{proj / '.keel' / 'keel.db'}", tmp_path, records)
    return Fresh(proj, now, records)


@pytest.fixture(autouse=True)
def _no_env_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEELWORK_STORAGE_URL", raising=False)


def test_tail_json_prints_the_latest_oldest_first(project: Path) -> None:
    result = runner.invoke(app, ["tail", "-n", "5", "--json", "--project", str(project)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert [x["id"] for x in lines] == [r.id for r in RECORDS[-5:]]
    assert PredictionRecord.from_dict(lines[-1]) == RECORDS[-1]


def test_tail_text_and_model_filter(project: Path) -> None:
    result = runner.invoke(app, ["tail", "-n", "2", "--model", "upsell", "--project",
                                 str(project)])
    assert result.exit_code == 0, result.output
    upsell = [r for r in RECORDS if r.model == "upsell"][-2:]
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    for line, r in zip(lines, upsell, strict=True):
        assert r.id in line and "upsell@2" in line and f"subject={r.subject_id}" in line


def test_tail_status_filter_shows_errors_with_their_message(tmp_path: Path) -> None:
    proj = tmp_path / "errs"
    proj.mkdir()
    failed = PredictionRecord(
        id=new_prediction_id(), ts=NOW, model="churn", version=2, inputs={"i": 1},
        outputs=None, latency_ms=100.5, status="error", guard="timeout",
        request_meta={"error": "The model churn:2 did not answer within 100 ms."})
    _fill(f"sqlite:///{proj / '.keel' / 'keel.db'}", tmp_path, [*RECORDS[:4], failed])
    result = runner.invoke(app, ["tail", "--status", "error", "--project", str(proj)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and failed.id in lines[0]
    assert "error=The model churn:2 did not answer within 100 ms." in lines[0]
    result = runner.invoke(app, ["tail", "--status", "fallback", "--json", "--project",
                                 str(proj)])
    assert [json.loads(x)["id"] for x in result.stdout.splitlines()] == [RECORDS[0].id]


def test_export_csv_since_relative(fresh: Fresh, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["export", "--since", "1d", "--format", "csv", "--out", str(out),
                                 "--project", str(fresh.project)])
    assert result.exit_code == 0, result.output
    expected = [r for r in fresh.records if r.ts >= fresh.now - 86400]
    assert 0 < len(expected) < len(fresh.records)
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [row["id"] for row in rows] == [r.id for r in expected]
    first, rec = rows[0], expected[0]
    assert json.loads(first["inputs"]) == rec.inputs  # commas, quotes, newlines survive
    assert datetime.fromisoformat(first["ts"]).timestamp() == pytest.approx(rec.ts, abs=1e-5)
    assert first["guard"] == (rec.guard or "") and float(first["latency_ms"]) == 3.25
    assert f"exported {len(expected)} prediction(s)" in result.stdout
    assert not out.with_name("out.csv.partial").exists()


def test_export_parquet_reads_back(fresh: Fresh, tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    now = fresh.now
    since = datetime.fromtimestamp(now - 2 * 86400, UTC).isoformat()
    result = runner.invoke(app, ["export", "--since", since, "--until", "6h", "--model",
                                 "churn", "--out", str(out), "--project", str(fresh.project),
                                 "--batch-size", "3"])
    assert result.exit_code == 0, result.output
    expected = [r for r in fresh.records if now - 2 * 86400 <= r.ts < now - 6 * 3600
                and r.model == "churn"]
    table = pq.read_table(out)
    assert table.num_rows == len(expected) > 3  # more than one batch
    assert table.column("id").to_pylist() == [r.id for r in expected]
    assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    got_ts = [t.timestamp() for t in table.column("ts").to_pylist()]
    assert got_ts == pytest.approx([r.ts for r in expected], abs=1e-5)
    assert [json.loads(x) for x in table.column("outputs").to_pylist()] == [
        r.outputs for r in expected]
    assert table.schema.metadata[b"keelwork.kind"] == b"predictions"


def test_export_from_the_storage_url_env(store_url: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(store_url, tmp_path, RECORDS[:7])
    monkeypatch.setenv("KEELWORK_STORAGE_URL", store_url)
    out = tmp_path / "env.parquet"
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    result = runner.invoke(app, ["export", "--out", str(out), "--project", str(empty)])
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).column("id").to_pylist() == [r.id for r in RECORDS[:7]]


def test_storage_url_from_keel_yaml(tmp_path: Path) -> None:
    proj = tmp_path / "withspec"
    proj.mkdir()
    db = tmp_path / "elsewhere" / "store.db"
    spec = (Path(__file__).parents[4] / "src/keelwork/templates/sentiment/keel.yaml").read_text()
    assert "\nstorage:\n" in spec
    (proj / "keel.yaml").write_text(spec.replace("\nstorage:\n",
                                                 f"\nstorage:\n  url: sqlite:///{db}\n"))
    _fill(f"sqlite:///{db}", tmp_path, RECORDS[:3])
    result = runner.invoke(app, ["tail", "--json", "--project", str(proj)])
    assert result.exit_code == 0, result.output
    assert [json.loads(x)["id"] for x in result.stdout.splitlines()] == [
        r.id for r in RECORDS[:3]]


def test_missing_store_and_bad_times_are_clear_errors(tmp_path: Path, project: Path) -> None:
    result = runner.invoke(app, ["tail", "--project", str(tmp_path)])
    assert result.exit_code == 2
    assert "No prediction log at" in result.stderr and "does not exist" in result.stderr
    assert not (tmp_path / ".keel" / "keel.db").exists()  # reading created nothing

    bare = tmp_path / "bare"
    make_engine(f"sqlite:///{bare / '.keel' / 'keel.db'}").dispose()
    (bare / ".keel" / "keel.db").touch()
    result = runner.invoke(app, ["tail", "--project", str(bare)])
    assert result.exit_code == 2 and "holds no prediction log" in result.stderr

    result = runner.invoke(app, ["export", "--since", "last tuesday", "--out",
                                 str(tmp_path / "x.csv"), "--project", str(project)])
    assert result.exit_code == 2
    message = re.sub(r"[\s│╭╮╰╯─]+", " ", result.stderr)  # unwrap Rich's error box
    assert "'--since'" in message and "got 'last tuesday'" in message
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize(("text", "expected"), [
    ("90s", NOW - 90), ("30m", NOW - 1800), ("1.5h", NOW - 5400), ("2d", NOW - 172800),
    ("1w", NOW - 604800), ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC).timestamp()),
    ("2024-05-01T12:30:00+02:00", datetime(2024, 5, 1, 10, 30, tzinfo=UTC).timestamp()),
    ("2024-05-01T12:30:00Z", datetime(2024, 5, 1, 12, 30, tzinfo=UTC).timestamp()),
])
def test_parse_when(text: str, expected: float) -> None:
    assert parse_when(text, NOW) == pytest.approx(expected)


@pytest.mark.parametrize("bad", ["", "1y", "yesterday", "-1h", "2024-13-01"])
def test_parse_when_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="ISO date or time"):
        parse_when(bad, NOW)


def test_tail_follow_prints_new_predictions(project: Path, tmp_path: Path) -> None:
    code = "from keelwork.interfaces.cli.log_cmd import app; app(prog_name='keel log')"
    cmd = [sys.executable, "-c", code, "tail", "-n", "2", "--follow", "--json",
           "--interval", "0.05", "--project", str(project)]
    env = {k: v for k, v in os.environ.items() if k != "KEELWORK_STORAGE_URL"}
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as proc:
        assert proc.stdout is not None
        try:
            first = [json.loads(proc.stdout.readline())["id"] for _ in range(2)]
            new = [_rec(100 + i, time.time()) for i in range(3)]
            _fill(f"sqlite:///{project / '.keel' / 'keel.db'}", tmp_path, new)
            later = [json.loads(proc.stdout.readline())["id"] for _ in range(3)]
        finally:
            proc.kill()
    assert first == [r.id for r in RECORDS[-2:]]
    assert later == [r.id for r in new]


# --------------------------------------------------------------------------- --with-labels
def _label(url: str, labels: dict[str, object], source: str = "api") -> None:
    from keelwork.adapters.stores.label_store import LabelStore

    engine = make_engine(url)
    try:
        store = LabelStore(engine)
        store.ensure_schema()
        result = store.submit([{"prediction_id": k, "label": v, "ts": NOW - 60}
                               for k, v in labels.items()], source=source)
        assert result.counts.ingested == len(labels)
    finally:
        engine.dispose()


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_with_labels_joins_each_prediction_to_its_label(
        store_url: str, tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(store_url, tmp_path, RECORDS[:9])
    truth: dict[str, object] = {r.id: ("yes" if i % 2 else 7) for i, r in enumerate(RECORDS[:9])
                                if i % 3}  # six of nine labelled, strings and numbers
    _label(store_url, truth)
    monkeypatch.setenv("KEELWORK_STORAGE_URL", store_url)
    out = tmp_path / f"labelled.{fmt}"
    result = runner.invoke(app, ["export", "-o", str(out), "-f", fmt, "--with-labels",
                                 "--project", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "exported 9 prediction(s), 6 with a label" in result.stdout
    if fmt == "parquet":
        table = pq.read_table(out)
        rows = table.to_pylist()
        assert table.schema.field("label_ts").type == pa.timestamp("us", tz="UTC")
        assert b"label" in table.schema.metadata[b"keelwork.json_columns"].split(b",")
        stamps = [r["label_ts"].timestamp() if r["label_ts"] else None for r in rows]
    else:
        with out.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        assert list(rows[0])[-3:] == ["label", "label_ts", "label_source"]
        stamps = [datetime.fromisoformat(r["label_ts"].replace("Z", "+00:00")).timestamp()
                  if r["label_ts"] else None for r in rows]
    assert [r["id"] for r in rows] == [r.id for r in RECORDS[:9]]
    for row, stamp in zip(rows, stamps, strict=True):
        if row["id"] in truth:
            assert json.loads(row["label"]) == truth[row["id"]]
            assert row["label_source"] == "api" and stamp == pytest.approx(NOW - 60, abs=1e-3)
        else:
            assert row["label"] in (None, "") and stamp is None
            assert row["label_source"] in (None, "")


def test_export_with_labels_before_any_label_was_sent(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "none.parquet"
    result = runner.invoke(app, ["export", "-o", str(out), "--with-labels",
                                 "--project", str(project)])
    assert result.exit_code == 0, result.output
    assert "24 prediction(s), 0 with a label" in result.stdout
    assert pq.read_table(out).column("label").null_count == 24


def test_export_without_the_flag_has_no_label_columns(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "plain.parquet"
    assert runner.invoke(app, ["export", "-o", str(out), "--project", str(project)]
                         ).exit_code == 0
    assert "label" not in pq.read_table(out).column_names


def test_the_progress_bar_ends_before_the_final_line(project: Path, tmp_path: Path) -> None:
    """In a terminal (a pty), the finished bar comes first, then 'exported ...'."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execv(sys.executable, [sys.executable, "-m", "keelwork.interfaces.cli.main", "log",
                                  "export", "-o", str(tmp_path / "tty.parquet"),
                                  "--with-labels", "--project", str(project)])
    seen = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.waitpid(pid, 0)
    os.close(fd)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen.decode(errors="replace"))
    final = text.index("exported 24 prediction(s)")
    assert "24/24" in text[:final] and "24/24" not in text[final:], text

"""Ingestion on real stores (SQLite and a real PostgreSQL): labels, scoring, imports, the CLI.

Exactly-once is tested the hard way: a subprocess ingesting 200,000 labels is killed with
SIGKILL in the middle and the same ingestion is run again. Transient store errors are injected
at the cursor (an OperationalError raised before an INSERT) and must be retried with the
seeded backoff schedule; permanent ones must fail at once without writing the chunk.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import Engine, event, func, inspect, select
from sqlalchemy.exc import OperationalError, ProgrammingError
from typer.testing import CliRunner

from fixtures.models import FIXTURES_DIR, IRIS_FEATURES, iris_data, sklearn_iris
from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.ingest_tables import (
    dead_letters,
    ingest_files,
    labels,
    unknown_labels,
)
from keelwork.adapters.stores.prediction_store import (
    PredictionReader,
    ensure_schema,
    insert_statements,
    record_to_row,
)
from keelwork.adapters.stores.registry_store import open_registry
from keelwork.core.contracts import compile_contract
from keelwork.core.label_rows import LabelColumns
from keelwork.core.predictions import PredictionRecord, new_prediction_id
from keelwork.errors import ContractViolation, DataFileError, StoreError
from keelwork.interfaces.cli import ingest_cmd, log_cmd
from keelwork.service.ingest import (
    LabelStore,
    Ledger,
    RetryPolicy,
    ScoreHandler,
    ingest_labels,
    load_scoring_model,
    score_files,
    watch,
)
from keelwork.service.registration import register_model
from keelwork.spec import load_spec

pytestmark = pytest.mark.timeout(180)
runner = CliRunner()


# --------------------------------------------------------------------------- helpers
@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    eng = make_engine(store_url)
    yield eng
    eng.dispose()


def _cli() -> typer.Typer:
    app = typer.Typer()
    ingest_cmd.register(app)
    app.add_typer(log_cmd.app, name="log")
    return app


def _store_predictions(eng: Engine, ids: list[str], model: str = "churn") -> None:
    ensure_schema(eng)
    ins_meta, ins_payload = insert_statements(eng)
    rows = [record_to_row(PredictionRecord(
        id=pid, ts=time.time(), model=model, version=1, inputs={"i": i}, outputs=i % 2,
        latency_ms=1.0)) for i, pid in enumerate(ids)]
    with eng.begin() as conn:
        for start in range(0, len(rows), 5000):
            part = rows[start:start + 5000]
            conn.execute(ins_meta, [{k: r[k] for k in r if k not in (
                "v", "inputs", "outputs", "request_meta")} for r in part])
            conn.execute(ins_payload, [{"id": r["id"], "inputs": r["inputs"],
                                        "outputs": r["outputs"],
                                        "request_meta": r["request_meta"]} for r in part])


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _count(eng: Engine, table: Any) -> int:
    if not inspect(eng).has_table(table.name):
        return 0
    with eng.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _job(eng: Engine) -> dict[str, Any]:
    with eng.connect() as conn:
        return dict(conn.execute(select(ingest_files)).mappings().one())


class Faults:
    """Raise an error before matching INSERTs: ``times`` times, from the ``after``-th match."""

    def __init__(self, eng: Engine, table: str, error: type[Exception], message: str,
                 times: int, after: int = 0) -> None:
        self.table, self.error, self.message = table, error, message
        self.left, self.after, self.seen = times, after, 0
        event.listen(eng, "before_cursor_execute", self)
        self.engine = eng

    def __call__(self, _conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if not statement.lstrip().upper().startswith(f"INSERT INTO {self.table.upper()} "):
            return
        self.seen += 1
        if self.seen > self.after and self.left > 0:
            self.left -= 1
            raise self.error(statement, params, Exception(self.message))

    def remove(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self)


# --------------------------------------------------------------------------- labels
def test_labels_are_attached_with_duplicates_relabels_unknown_ids_and_dead_letters(
        engine: Engine, tmp_path: Path) -> None:
    ids = [new_prediction_id() for _ in range(4)]
    _store_predictions(engine, ids)
    path = _write_csv(tmp_path / "labels.csv", ["prediction_id", "label"], [
        [ids[0], 1], [ids[1], 0], ["ghost-1", 1], ["", 1], [ids[2], None], [ids[0], 1],
        [ids[1], 1], [ids[3], 0], ["ghost-1", 0]])
    [result] = ingest_labels(engine, [path])
    c = result.counts
    assert (result.status, result.rows) == ("ingested", 9)
    assert (c.read, c.ingested, c.duplicates, c.dead_lettered, c.unknown, c.relabelled) == (
        9, 4, 1, 2, 2, 1)
    assert result.unknown_ids == ["ghost-1"]
    store = LabelStore(engine)
    assert [store.get(i).label if store.get(i) else None for i in ids] == [1, 1, None, 0]
    history = store.history(ids[1])
    assert [(h.label, h.source_row) for h in history] == [(0, 1)]
    [ghost] = store.unknown()
    assert (ghost.prediction_id, ghost.label, ghost.source_row) == ("ghost-1", 0, 8)
    letters = Ledger(engine).dead_letters()
    assert [(d.row, d.line, [r["rule"] for r in d.reasons]) for d in letters] == [
        (3, 5, ["required"]), (4, 6, ["required"])]
    assert letters[0].raw == {"prediction_id": None, "label": 1}
    assert letters[1].reasons[0]["path"] == "label" and letters[1].reasons[0]["line"] == 6


def test_the_same_content_again_ingests_nothing_new(engine: Engine, tmp_path: Path) -> None:
    ids = [new_prediction_id() for _ in range(3)]
    _store_predictions(engine, ids)
    path = _write_csv(tmp_path / "a.csv", ["prediction_id", "label"],
                      [[i, "spam"] for i in ids] + [["ghost", "ham"]])
    ingest_labels(engine, [path])
    before = {t.name: _count(engine, t) for t in (labels, unknown_labels, dead_letters)}
    copy = tmp_path / "renamed.csv"
    shutil.copy(path, copy)
    for again in ([path], [copy]):
        [result] = ingest_labels(engine, again)
        assert result.status == "already_ingested"
        assert result.counts.ingested == 0 and result.counts.duplicates == 4
    assert {t.name: _count(engine, t) for t in (labels, unknown_labels, dead_letters)} == before
    with engine.connect() as conn:
        assert conn.execute(select(unknown_labels.c.times_seen)).scalar_one() == 1
    # New content with the same labels: every known label is a duplicate, one is new.
    extra = new_prediction_id()
    _store_predictions(engine, [extra])
    grown = _write_csv(tmp_path / "b.csv", ["prediction_id", "label"],
                       [[i, "spam"] for i in ids] + [[extra, "ham"]])
    [result] = ingest_labels(engine, [grown])
    assert (result.counts.ingested, result.counts.duplicates) == (1, 3)


def test_unknown_labels_are_attached_once_their_prediction_arrives(engine: Engine,
                                                                   tmp_path: Path) -> None:
    late, relabelled = new_prediction_id(), new_prediction_id()
    first = _write_csv(tmp_path / "early.csv", ["prediction_id", "label", "ts"],
                       [[late, "yes", "2024-05-01T00:00:00Z"], [relabelled, "old", 1.5]])
    [result] = ingest_labels(engine, [first], columns=LabelColumns(ts="ts"))
    assert result.counts.unknown == 2 and sorted(result.unknown_ids) == sorted([late,
                                                                                relabelled])
    store = LabelStore(engine)
    assert store.reconcile() == 0
    _store_predictions(engine, [late, relabelled])
    # A label for a prediction that had an unknown one: the unknown one is attached first.
    sent = store.submit([{"prediction_id": relabelled, "label": "new"}])
    assert (sent.counts.ingested, sent.counts.relabelled) == (1, 1)
    assert store.reconcile() == 1
    assert store.unknown() == []
    got = store.get(late)
    assert got is not None and (got.label, got.ts, got.source_row) == ("yes", 1714521600.0, 0)
    current = store.get(relabelled)
    assert current is not None and current.label == "new"
    assert [h.label for h in store.history(relabelled)] == ["old"]


def test_submit_is_all_or_nothing_and_idempotent(engine: Engine) -> None:
    ids = [new_prediction_id() for _ in range(2)]
    _store_predictions(engine, ids)
    store = LabelStore(engine)
    store.ensure_schema()
    with pytest.raises(ContractViolation) as info:
        store.submit([{"prediction_id": ids[0], "label": 1}, {"prediction_id": ids[1]}, "x"])
    assert [(d.path, d.rule) for d in info.value.details] == [
        ("labels[1].label", "required"), ("labels[2]", "record_type")]
    assert store.count()["labels"] == 0
    records = [{"prediction_id": ids[0], "label": 1}, {"prediction_id": ids[1], "label": 0},
               {"prediction_id": "nope", "label": 0}]
    first = store.submit(records, source="api")
    again = store.submit(records, source="api")
    assert (first.counts.ingested, first.counts.unknown) == (2, 1)
    assert (again.counts.ingested, again.counts.duplicates, again.counts.unknown) == (0, 2, 1)
    assert store.count() == {"labels": 2, "label_history": 0, "unknown_labels": 1}


# --------------------------------------------------------------------------- store errors
def test_transient_errors_are_retried_with_the_seeded_backoff(engine: Engine,
                                                              tmp_path: Path) -> None:
    ids = [new_prediction_id() for _ in range(30)]
    _store_predictions(engine, ids)
    path = _write_csv(tmp_path / "l.csv", ["prediction_id", "label"], [[i, 1] for i in ids])
    policy = RetryPolicy(attempts=5, base=0.2, cap=1.0)
    slept: list[float] = []
    ledger = Ledger(engine, retry=policy, rng=random.Random(11), sleep=slept.append)
    ledger.ensure_schema()
    message = ("database is locked" if engine.dialect.name == "sqlite"
               else "server closed the connection unexpectedly")
    faults = Faults(engine, "labels", OperationalError, message, times=2, after=1)
    try:
        [result] = ingest_labels(engine, [path], commit_every=10, ledger=ledger)
    finally:
        faults.remove()
    assert faults.left == 0 and ledger.retries == 2
    assert slept == list(policy.delays(random.Random(11)))[:2]
    assert result.counts.ingested == 30 and _count(engine, labels) == 30
    assert _job(engine)["committed_rows"] == 30


def test_permanent_errors_fail_fast_and_write_nothing_of_the_chunk(engine: Engine,
                                                                   tmp_path: Path) -> None:
    ids = [new_prediction_id() for _ in range(30)]
    _store_predictions(engine, ids)
    path = _write_csv(tmp_path / "l.csv", ["prediction_id", "label"], [[i, 1] for i in ids])
    slept: list[float] = []
    ledger = Ledger(engine, sleep=slept.append)
    ledger.ensure_schema()
    faults = Faults(engine, "labels", ProgrammingError, "permission denied for table labels",
                    times=1, after=1)
    with pytest.raises(StoreError, match="permission denied") as info:
        ingest_labels(engine, [path], commit_every=10, ledger=ledger)
    faults.remove()
    assert "still failing" not in info.value.message and slept == []
    assert _count(engine, labels) == 10 and _job(engine)["committed_rows"] == 10
    [result] = ingest_labels(engine, [path], commit_every=10, ledger=ledger)
    assert (result.status, result.resumed_from, result.counts.ingested) == ("resumed", 10, 20)
    assert _count(engine, labels) == 30 and _job(engine)["ingested"] == 30


def test_exhausted_retries_keep_committed_chunks_and_a_rerun_resumes(engine: Engine,
                                                                     tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "l.csv", ["prediction_id", "label"],
                      [[f"u{i}", i] for i in range(25)])
    slept: list[float] = []
    ledger = Ledger(engine, retry=RetryPolicy(attempts=3, base=0.01), sleep=slept.append)
    ledger.ensure_schema()
    faults = Faults(engine, "unknown_labels", OperationalError, "database is locked",
                    times=100, after=1)
    with pytest.raises(StoreError, match="still failing after 3 attempts"):
        ingest_labels(engine, [path], commit_every=10, ledger=ledger)
    faults.remove()
    assert len(slept) == 2
    assert _count(engine, unknown_labels) == 10 and _job(engine)["committed_rows"] == 10
    [result] = ingest_labels(engine, [path], commit_every=10, ledger=ledger)
    assert result.status == "resumed" and result.counts.unknown == 15
    assert _count(engine, unknown_labels) == 25 and _job(engine)["unknown"] == 25


def test_two_processes_cannot_both_apply_a_chunk(engine: Engine) -> None:
    from keelwork.core.ingest import IngestCounts
    from keelwork.service.ingest import JobConflict

    ledger = Ledger(engine)
    ledger.ensure_schema()
    mine = ledger.start_job("ab" * 32, "labels", "", "a.csv", 20)
    theirs = Ledger(engine).start_job("ab" * 32, "labels", "", "a.csv", 20)
    assert mine == theirs

    def write(_conn: Any) -> tuple[IngestCounts, list[Any]]:
        return IngestCounts(read=10, ingested=10), []

    mine, _ = ledger.commit(mine, 10, "commit rows 0-9", write)
    with pytest.raises(JobConflict, match="Another process is ingesting"):
        ledger.commit(theirs, 10, "commit rows 0-9", write)
    job = _job(engine)
    assert (job["committed_rows"], job["ingested"]) == (10, 10)


# --------------------------------------------------------------------------- kill -9
_CHILD = """
import sys, time
from pathlib import Path
from keelwork.adapters.stores.engine import make_engine
from keelwork.service.ingest import ingest_labels

ingest_labels(make_engine(sys.argv[1]), [Path(sys.argv[2])], commit_every=500,
              progress=lambda event: time.sleep(0.004))
"""


@pytest.mark.slow
def test_kill_9_in_the_middle_then_rerun_ingests_every_record_exactly_once(
        store_url: str, engine: Engine, tmp_path: Path) -> None:
    n = 200_000
    ids = [f"pred-{i:06d}" for i in range(n)]
    known = ids[::10]
    _store_predictions(engine, known)
    rows = [[pid, "" if i % 1000 == 999 else i % 3] for i, pid in enumerate(ids)]
    path = _write_csv(tmp_path / "big.csv", ["prediction_id", "label"], rows)
    bad = {i for i in range(n) if i % 1000 == 999}
    known_set = set(known)
    want_known = sum(1 for i, pid in enumerate(ids) if pid in known_set and i not in bad)
    want_unknown = n - len(bad) - want_known

    output = tmp_path / "child.log"
    with output.open("wb") as sink:
        child = subprocess.Popen([sys.executable, "-c", _CHILD, store_url, str(path)],
                                 stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    committed = 0
    try:
        while committed < 40_000:
            assert child.poll() is None, output.read_text(errors="replace")
            assert time.monotonic() < deadline, "the child never reached row 40,000"
            try:
                with engine.connect() as conn:
                    committed = conn.execute(select(ingest_files.c.committed_rows)).scalar() or 0
            except Exception:  # the tables may not exist yet
                committed = 0
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    job = _job(engine)
    assert job["status"] == "running" and 40_000 <= job["committed_rows"] < n

    [result] = ingest_labels(engine, [path], commit_every=5000)
    assert result.status == "resumed" and result.resumed_from == job["committed_rows"]
    assert result.counts.read == n - job["committed_rows"]
    job = _job(engine)
    assert job["status"] == "done" and job["committed_rows"] == n
    assert (job["ingested"], job["unknown"], job["dead_lettered"], job["duplicates"],
            job["relabelled"]) == (want_known, want_unknown, len(bad), 0, 0)
    assert _count(engine, labels) == want_known
    assert _count(engine, unknown_labels) == want_unknown
    with engine.connect() as conn:
        assert conn.execute(select(func.max(unknown_labels.c.times_seen))).scalar() == 1
        rows_dead = list(conn.execute(select(dead_letters.c.row_index)
                                      .order_by(dead_letters.c.row_index)).scalars())
    assert rows_dead == sorted(bad)


# --------------------------------------------------------------------------- scoring
KEEL_YAML = """\
kind: keel.yaml
version: 1
service: {{name: iris, owners: [ml@example.com]}}
models:
  - name: iris
    runtime: sklearn
    options: {{feature_names: [sepal_length, sepal_width, petal_length, petal_width]}}
contract:
  inputs:
{inputs}
storage:
  url: {url}
"""


@pytest.fixture
def iris_project(store_url: str, tmp_path: Path) -> Path:
    project = tmp_path / "proj"
    project.mkdir()
    inputs = "\n".join(f"    - {{name: {n}, type: float, min: 0}}" for n in IRIS_FEATURES)
    (project / "keel.yaml").write_text(KEEL_YAML.format(inputs=inputs, url=store_url))
    model = sklearn_iris(project)
    with open_registry(project, store_url) as registry:
        register_model(registry, "iris", model.artifact, "sklearn", options=model.options,
                       aliases=["champion"], source_dir=project)
    return project


def _iris_csv(path: Path, bad_rows: dict[int, list[Any]] | None = None) -> list[list[float]]:
    x, _ = iris_data()
    rows: list[list[Any]] = [[float(v) for v in row] for row in x]
    for i, row in (bad_rows or {}).items():
        rows[i] = row
    _write_csv(path, list(IRIS_FEATURES), rows)
    return rows


def test_keel_score_writes_predictions_dead_letters_and_an_output_file(
        iris_project: Path, store_url: str, tmp_path: Path) -> None:
    data = tmp_path / "iris.csv"
    rows = _iris_csv(data, {3: [-1.0, 3.0, 1.0, 0.2], 7: [5.0, -2.0, 1.0, -0.5]})
    out = tmp_path / "scores.csv"
    res = runner.invoke(_cli(), ["score", str(data), "--model", "iris@champion", "--project",
                                 str(iris_project), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "dead letter" in res.output and f"{data}:5" in res.output
    engine = make_engine(store_url)
    try:
        records = list(PredictionReader(engine).iter_records(model="iris"))
        assert len(records) == 148
        model = sklearn_iris(tmp_path)
        from keelwork.adapters.runtimes import load_runtime

        runtime = load_runtime(model.kind, model.artifact, model.options)
        by_row = {r.request_meta["row"]: r for r in records}
        good = [i for i in range(150) if i not in (3, 7)]
        expected = runtime.predict([dict(zip(IRIS_FEATURES, rows[i], strict=True))
                                    for i in good])
        assert [by_row[i].outputs for i in good] == expected
        r0 = by_row[0]
        assert (r0.status, r0.version, r0.request_meta["source"], r0.request_meta["file"],
                r0.request_meta["line"]) == ("ok", 1, "batch", str(data), 2)
        letters = Ledger(engine).dead_letters(kind="score")
        assert [(d.row, d.line, [r["path"] for r in d.reasons]) for d in letters] == [
            (3, 5, ["sepal_length"]), (7, 9, ["sepal_width", "petal_width"])]
        with out.open(newline="") as fh:
            lines = list(csv.DictReader(fh))
        assert len(lines) == 150
        assert lines[0]["prediction_id"] == r0.id and lines[0]["prediction"] == str(r0.outputs)
        assert lines[3]["prediction_id"] == "" and "sepal_length" in lines[3]["error"]
        # The same file and model version again: nothing new, same output file.
        first_out = out.read_text()
        again = runner.invoke(_cli(), ["score", str(data), "--model", "iris:1", "--project",
                                       str(iris_project), "--out", str(out), "--json"])
        assert again.exit_code == 0, again.output
        summary = json.loads(again.output.strip().splitlines()[-1])
        assert (summary["status"], summary["ingested"], summary["duplicates"]) == (
            "already_ingested", 0, 150)
        assert PredictionReader(engine).count(model="iris") == 148
        assert out.read_text() == first_out
    finally:
        engine.dispose()


def test_an_interrupted_scoring_job_resumes_with_the_same_ids(iris_project: Path,
                                                              store_url: str,
                                                              tmp_path: Path) -> None:
    data = tmp_path / "iris.csv"
    _iris_csv(data)
    engine = make_engine(store_url)
    resolved = load_spec(iris_project / "keel.yaml")
    try:
        with open_registry(iris_project, store_url) as registry:
            model = load_scoring_model(registry, "iris", resolved)
        handler = ScoreHandler(model, compile_contract(resolved.spec.contract))

        class Crash(Exception):
            pass

        def crash_after_two_chunks(event: Any) -> None:
            if event.rows_done >= 80:
                raise Crash

        with pytest.raises(Crash):
            score_files(engine, [data], handler, commit_every=40, progress=crash_after_two_chunks)
        reader = PredictionReader(engine)
        early = {r.request_meta["row"]: r.id for r in reader.iter_records()}
        assert len(early) == 80
        [result] = score_files(engine, [data], handler, commit_every=40)
        assert (result.status, result.resumed_from, result.counts.ingested) == ("resumed", 80,
                                                                                 70)
        final = {r.request_meta["row"]: r.id for r in reader.iter_records()}
        assert len(final) == 150 and reader.count() == 150
        assert all(final[row] == pid for row, pid in early.items())
    finally:
        engine.dispose()


def test_an_id_column_scores_each_record_once_across_files(iris_project: Path, store_url: str,
                                                           tmp_path: Path) -> None:
    x, _ = iris_data()
    header = ["customer", *IRIS_FEATURES]
    first = _write_csv(tmp_path / "monday.csv", header,
                       [[f"c{i}", *map(float, x[i])] for i in range(0, 20)])
    second = _write_csv(tmp_path / "tuesday.csv", header,
                        [[f"c{i}", *map(float, x[i])] for i in range(10, 30)] +
                        [["c29", *map(float, x[29])]])
    out = tmp_path / "tuesday.jsonl"
    app = _cli()
    common = ["--model", "iris", "--project", str(iris_project), "--id-column", "customer"]
    assert runner.invoke(app, ["score", str(first), *common]).exit_code == 0
    res = runner.invoke(app, ["score", str(second), *common, "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output.strip().splitlines()[-1])
    assert (summary["ingested"], summary["duplicates"]) == (10, 11)
    engine = make_engine(store_url)
    try:
        records = list(PredictionReader(engine).iter_records())
    finally:
        engine.dispose()
    assert len(records) == 30
    by_customer = {r.request_meta["id"]: r for r in records}
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["customer"] for line in lines] == [f"c{i}" for i in range(10, 30)] + ["c29"]
    assert all(line["prediction_id"] == by_customer[line["customer"]].id for line in lines)
    assert by_customer["c10"].request_meta["file"] == str(first)


@pytest.mark.parametrize(("content", "extra", "needle"), [
    (b"sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n4.9,3.0,1.4\n", [],
     "line 3: a row must have 4 fields"),
    (b"sepal_length,sepal_width,petal_length,petal_width,colour\n5.1,3.5,1.4,0.2,red\n", [],
     "column 'colour' is not in the contract"),
    (b"sepal_length,sepal_width,petal_length\n5.1,3.5,1.4\n", [],
     "no column 'petal_width', which the contract requires"),
    (b"sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n",
     ["--out", "scores.txt"], "must end in .csv, .jsonl, .parquet"),
], ids=["ragged", "extra-column", "missing-column", "out-format"])
def test_keel_score_refuses_bad_input_with_exit_2_and_writes_nothing(
        iris_project: Path, store_url: str, tmp_path: Path, content: bytes, extra: list[str],
        needle: str) -> None:
    data = tmp_path / "data.csv"
    data.write_bytes(content)
    res = runner.invoke(_cli(), ["score", str(data), "--model", "iris", "--project",
                                 str(iris_project), *extra])
    assert res.exit_code == 2, res.output
    assert needle in " ".join(res.output.split())
    engine = make_engine(store_url)
    try:
        assert not inspect(engine).has_table("predictions")
        assert not inspect(engine).has_table("ingest_files")
    finally:
        engine.dispose()


def test_a_stray_word_in_a_numeric_column_is_one_dead_letter(iris_project: Path,
                                                             store_url: str,
                                                             tmp_path: Path) -> None:
    data = tmp_path / "iris.csv"
    _iris_csv(data, {42: ["abc", 3.0, 1.0, 0.2]})
    res = runner.invoke(_cli(), ["score", str(data), "--model", "iris", "--project",
                                 str(iris_project), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output.strip().splitlines()[-1])
    assert (summary["ingested"], summary["dead_lettered"]) == (149, 1)
    [letter] = summary["dead_letters"]
    assert (letter["row"], letter["line"]) == (42, 44)
    assert [(r["path"], r["rule"], r["got"]) for r in letter["reasons"]] == [
        ("sepal_length", "type", "abc")]


def test_json_lines_with_mixed_types_keep_each_value(engine: Engine, tmp_path: Path) -> None:
    ids = [new_prediction_id() for _ in range(3)]
    _store_predictions(engine, [*ids, "17"])
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"prediction_id": ids[0], "label": 1}, {"prediction_id": ids[1], "label": [1, "a"]},
        {"prediction_id": 17, "label": {"k": True}}, {"prediction_id": ids[2], "label": "x"},
        {"prediction_id": ids[2], "label": 2.5}]) + "\n")
    [result] = ingest_labels(engine, [path])
    assert (result.counts.ingested, result.counts.relabelled) == (5, 1)
    store = LabelStore(engine)
    got = [store.get(i) for i in [*ids, "17"]]
    assert [g.label if g else None for g in got] == [1, [1, "a"], 2.5, {"k": True}]
    assert [h.label for h in store.history(ids[2])] == ["x"]


def test_records_the_model_refuses_are_dead_lettered_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'keel.db'}"
    with open_registry(tmp_path, url) as registry:
        register_model(registry, "lin", "callables:linear_score", "python",
                          options={"path": str(FIXTURES_DIR)}, source_dir=tmp_path)
        model = load_scoring_model(registry, "lin")
    data = _write_csv(tmp_path / "d.csv", ["a", "b", "c"],
                      [[1, 2, 3], [1, None, 3], [2, 2, 2], [0, 0, None]])
    engine = make_engine(url)
    try:
        [result] = score_files(engine, [data], ScoreHandler(model, predict_batch_size=4))
        assert (result.counts.ingested, result.counts.dead_lettered) == (2, 2)
        letters = Ledger(engine).dead_letters()
        assert [(d.row, d.line, d.reasons[0]["rule"]) for d in letters] == [
            (1, 3, "invalid_input"), (3, 5, "invalid_input")]
        assert "must be a number" in letters[0].reasons[0]["message"]
        outputs = sorted(r.outputs for r in PredictionReader(engine).iter_records())
        assert outputs == sorted([0.5 * 1 - 2 + 6, 1 - 2 + 4])
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- the CLI
def test_keel_ingest_labels_prints_a_summary_and_writes_dead_letters(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    engine = make_engine(f"sqlite:///{project / '.keel' / 'keel.db'}")
    ids = [new_prediction_id() for _ in range(3)]
    _store_predictions(engine, ids)
    engine.dispose()
    data = _write_csv(tmp_path / "truth.csv", ["pid", "truth"],
                      [[ids[0], "a"], [ids[1], "b"], ["who", "c"], [ids[2], None]])
    letters = tmp_path / "dead.jsonl"
    res = runner.invoke(_cli(), ["ingest", str(data), "--labels", "--id-column", "pid",
                                 "--label-column", "truth", "--project", str(project),
                                 "--dead-letters", str(letters)])
    assert res.exit_code == 0, res.output
    assert "unknown prediction ids" in res.output and "who" in res.output
    assert f"{data}:5" in res.output
    [letter] = [json.loads(line) for line in letters.read_text().splitlines()]
    assert (letter["row"], letter["line"], letter["reasons"][0]["rule"]) == (3, 5, "required")
    res = runner.invoke(_cli(), ["ingest", str(data), "--id-column", "pid", "--label-column",
                                 "truth", "--project", str(project), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output.strip().splitlines()[-1])
    assert (summary["status"], summary["ingested"], summary["duplicates"]) == (
        "already_ingested", 0, 4)


def test_keel_ingest_labels_checks_them_against_the_output_contract(tmp_path: Path) -> None:
    """A label file is held to keel.yaml's contract.outputs as POST /v1/feedback is: a label
    that is not one of the categories is dead-lettered naming them, the rest are stored."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / "keel.yaml").write_text(
        "service: {name: s, owners: [a@b.c]}\n"
        "models: [{name: m, runtime: python, artifact: 'x:y'}]\n"
        "contract:\n  inputs: [{name: a, type: float}]\n"
        "  outputs: [{name: label, type: category, categories: [bad, good]}]\n")
    engine = make_engine(f"sqlite:///{project / '.keel' / 'keel.db'}")
    ids = [new_prediction_id() for _ in range(3)]
    _store_predictions(engine, ids)
    data = _write_csv(tmp_path / "truth.csv", ["prediction_id", "label"],
                      [[ids[0], "good"], [ids[1], "purple"], [ids[2], "bad"]])
    letters = tmp_path / "dead.jsonl"
    res = runner.invoke(_cli(), ["ingest", str(data), "--project", str(project),
                                 "--dead-letters", str(letters)])
    assert res.exit_code == 0, res.output
    [letter] = [json.loads(line) for line in letters.read_text().splitlines()]
    assert (letter["row"], letter["line"]) == (1, 3)
    reason = letter["reasons"][0]
    assert reason["rule"] == "category" and "good" in reason["message"], reason
    stored = LabelStore(engine).current(ids)
    engine.dispose()
    assert {pid: s.label for pid, s in stored.items()} == {ids[0]: "good", ids[2]: "bad"}


BAD_FILES: list[tuple[str, bytes, str]] = [
    ("ragged.csv", b"prediction_id,label\np1,1\np2,1,extra\np3,0\n", "line 3"),
    ("latin1.csv", b"prediction_id,label\np1,1\np2,caf\xe9\n", "line 3, column 'label'"),
    ("empty.csv", b"", "empty"),
    ("header_only.csv", b"prediction_id,label\n", "no rows"),
    ("no_label.csv", b"prediction_id,truth\np1,1\n", "'label' column"),
    ("not_json.jsonl", b'{"prediction_id": "p1", "label": 1}\n{"prediction_id": \n', "line 2"),
    ("labels.xlsx", b"PK\x03\x04", "format"),
]


@pytest.mark.parametrize(("name", "content", "needle"), BAD_FILES,
                         ids=[b[0] for b in BAD_FILES])
def test_bad_files_exit_2_naming_the_file_and_write_nothing(tmp_path: Path, name: str,
                                                            content: bytes,
                                                            needle: str) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    good = _write_csv(tmp_path / "good.csv", ["prediction_id", "label"], [["p0", 1]])
    bad = tmp_path / name
    bad.write_bytes(content)
    res = runner.invoke(_cli(), ["ingest", str(good), str(bad), "--project", str(project)])
    assert res.exit_code == 2, res.output
    assert name in res.output and needle in res.output
    db = project / ".keel" / "keel.db"
    if db.exists():
        engine = make_engine(f"sqlite:///{db}")
        try:
            assert _count(engine, unknown_labels) == 0 and _count(engine, ingest_files) == 0
        finally:
            engine.dispose()


@pytest.mark.parametrize("target", ["missing.csv", "."])
def test_missing_files_and_directories_exit_2(tmp_path: Path, target: str) -> None:
    res = runner.invoke(_cli(), ["ingest", str(tmp_path / target), "--project", str(tmp_path)])
    assert res.exit_code == 2 and str(tmp_path / target).rstrip("/.") in res.output


def test_prediction_records_round_trip_through_an_export(store_url: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "source"
    source.mkdir()
    src_engine = make_engine(f"sqlite:///{source / '.keel' / 'keel.db'}")
    ids = [new_prediction_id() for _ in range(12)]
    _store_predictions(src_engine, ids)
    src_engine.dispose()
    app = _cli()
    export = tmp_path / "export.csv"
    res = runner.invoke(app, ["log", "export", "--out", str(export), "--format", "csv",
                              "--since", "1d", "--project", str(source)])
    assert res.exit_code == 0, res.output
    monkeypatch.setenv("KEELWORK_STORAGE_URL", store_url)
    res = runner.invoke(app, ["ingest", str(export), "--kind", "predictions", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output.strip().splitlines()[-1])["ingested"] == 12
    engine = make_engine(store_url)
    try:
        got = {r.id: r for r in PredictionReader(engine).iter_records()}
    finally:
        engine.dispose()
    assert sorted(got) == sorted(ids)
    assert got[ids[3]].inputs == {"i": 3} and got[ids[3]].outputs == 1
    assert got[ids[3]].tenant is None


# --------------------------------------------------------------------------- watching
def test_watch_ingests_each_new_file_once_and_records_bad_ones(engine: Engine,
                                                               tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    ids = [new_prediction_id() for _ in range(4)]
    _store_predictions(engine, ids)
    ledger = Ledger(engine)
    stop = threading.Event()
    seen: list[Any] = []
    errors: list[str] = []
    thread = threading.Thread(target=watch, args=(inbox, _labels_handler(), ledger), kwargs={
        "interval": 0.05, "settle": 0.0, "stop": stop, "on_result": seen.append,
        "on_error": lambda path, exc: errors.append(str(path))}, daemon=True)
    thread.start()

    def drop(name: str, text: str) -> None:
        staging = inbox / f"{name}.tmp"  # ignored by the watcher until renamed
        staging.write_text(text)
        staging.rename(inbox / name)

    def wait_for(what: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 30
        while not what():
            assert time.monotonic() < deadline and thread.is_alive()
            time.sleep(0.02)

    drop("a.csv", "prediction_id,label\n" + "".join(f"{i},1\n" for i in ids[:2]))
    wait_for(lambda: len(seen) == 1)
    drop("b.csv", "prediction_id,label\n" + "".join(f"{i},1\n" for i in ids[:2]))  # same bytes
    drop("c.jsonl", "".join(json.dumps({"prediction_id": i, "label": 0}) + "\n"
                            for i in ids[2:]))
    drop("bad.csv", "prediction_id,label\nx,1,2\n")
    wait_for(lambda: len(seen) == 3 and len(errors) == 1)
    time.sleep(0.3)  # several more polls: nothing is ingested twice
    stop.set()
    thread.join(10)
    assert [(r.path.name, r.status, r.counts.ingested) for r in seen] == [
        ("a.csv", "ingested", 2), ("b.csv", "already_ingested", 0), ("c.jsonl", "ingested", 2)]
    assert errors == [str(inbox / "bad.csv")]
    assert _count(engine, labels) == 4
    failed = [j for j in ledger.jobs() if j.checkpoint.status == "failed"]
    assert [j.path for j in failed] == [str(inbox / "bad.csv")] and failed[0].error


def test_watch_refuses_a_missing_directory(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="not a directory"):
        watch(tmp_path / "nope", _labels_handler(), Ledger(engine), max_polls=1)


def _labels_handler() -> Any:
    from keelwork.service.ingest import LabelsHandler

    return LabelsHandler()


def test_feedback_with_a_nul_in_the_id_is_refused_on_every_backend(store_url: str) -> None:
    from keelwork.adapters.stores.engine import make_engine
    from keelwork.adapters.stores.label_store import LabelStore
    from keelwork.errors import ContractViolation

    engine = make_engine(store_url)
    store = LabelStore(engine)
    store.ensure_schema()
    with pytest.raises(ContractViolation) as info:
        store.submit([{"prediction_id": "a\x00b", "label": 1}])
    assert info.value.details[0].path == "labels[0].prediction_id"
    assert store.count()["unknown_labels"] == 0
    engine.dispose()


def test_keel_score_parquet_keeps_the_models_and_the_inputs_types(
        iris_project: Path, store_url: str, tmp_path: Path) -> None:
    """Predictions were written as JSON text ('"virginica"', quotes included) and an integer
    id column as strings; both keep their types now (issue 11 item 13)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    x, y = iris_data()
    names = ["setosa", "versicolor", "virginica"]
    named = LogisticRegression(max_iter=1000).fit(x, [names[int(v)] for v in y])
    sio.dump(named, tmp_path / "named.skops")
    with open_registry(iris_project, store_url) as registry:
        register_model(registry, "iris", tmp_path / "named.skops", "sklearn",
                          options={"feature_names": list(IRIS_FEATURES)}, source_dir=tmp_path)
    data = _write_csv(tmp_path / "customers.csv", ["customer", *IRIS_FEATURES],
                      [[1000 + i, *map(float, x[i])] for i in range(0, 150, 10)])
    app = _cli()
    for ref, want in (("iris:1", pa.int64()), ("iris:2", pa.string())):
        out = tmp_path / f"{ref.replace(':', '_')}.parquet"
        res = runner.invoke(app, ["score", str(data), "--model", ref, "--project",
                                  str(iris_project), "--id-column", "customer", "--out",
                                  str(out)])
        assert res.exit_code == 0, res.output
        table = pq.read_table(out)
        assert table.schema.field("customer").type == pa.int64()
        assert table.schema.field("prediction").type == want
        assert table.column("customer").to_pylist() == [1000 + i for i in range(0, 150, 10)]
        got = table.column("prediction").to_pylist()
        model = named if ref == "iris:2" else None
        if model is not None:
            assert got == list(model.predict(x[::10]))
            assert not any(v.startswith('"') for v in got)
        else:
            assert set(got) <= {0, 1, 2} and len(set(got)) == 3
        assert b"keelwork.json_columns" not in (table.schema.metadata or {})
    lines_out = tmp_path / "named.jsonl"
    res = runner.invoke(app, ["score", str(data), "--model", "iris:2", "--project",
                              str(iris_project), "--id-column", "customer", "--out",
                              str(lines_out)])
    assert res.exit_code == 0, res.output
    first = json.loads(lines_out.read_text().splitlines()[0])
    assert first["customer"] == 1000 and first["prediction"] in names

"""Per-field accuracy from the log and the labels (``keel monitor fields``): answered records
with object labels are scored field by field; other versions, unlabelled, failed and plain
answers are kept apart; the CLI prints the same figures."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.label_store import LabelStore
from keelwork.adapters.stores.prediction_store import ensure_schema, insert_records
from keelwork.core.predictions import PredictionRecord, new_prediction_id
from keelwork.interfaces.cli import monitor_cmd
from keelwork.service.monitoring.field_accuracy import field_accuracy
from keelwork.spec import load_spec

SPEC = """\
service: {name: docs, owners: [t@example.com]}
models:
  - {name: reader, runtime: python, artifact: "a:b"}
"""


def _project(tmp_path: Path, rows: list[tuple[int, str, Any, Any]]) -> None:
    """``rows``: (version, status, outputs, label or None), logged a minute ago."""
    (tmp_path / "keel.yaml").write_text(SPEC)
    (tmp_path / ".keel").mkdir()
    engine = make_engine(load_spec(tmp_path / "keel.yaml").storage_url)
    ensure_schema(engine)
    now = time.time()
    records = [PredictionRecord(id=new_prediction_id(), ts=now - 60 + i, model="reader",
                                version=v, inputs={"text": "t"}, outputs=out,
                                latency_ms=1.0, status=status)
               for i, (v, status, out, _) in enumerate(rows)]
    with engine.begin() as conn:
        insert_records(conn, records)
    labels = LabelStore(engine)
    labels.ensure_schema()
    labels.submit([{"prediction_id": r.id, "label": row[3]}
                   for r, row in zip(records, rows, strict=True) if row[3] is not None])
    engine.dispose()


ROWS: list[tuple[int, str, Any, Any]] = [
    (1, "ok", {"amount": 10.0, "currency": "EUR", "amount_confidence": 0.9},
     {"amount": 10.0, "currency": "USD"}),
    (1, "ok", {"amount": 5.0, "currency": "eur"}, {"currency": "EUR"}),
    (1, "ok", {"amount": 7.0, "currency": "EUR"}, None),          # not labelled yet
    (1, "ok", 3.0, 3.0),                                          # a plain answer
    (2, "ok", {"amount": 1.0, "currency": "EUR"}, {"amount": 2.0}),
]


def test_fields_scored_from_labels(tmp_path: Path) -> None:
    _project(tmp_path, ROWS)
    resolved = load_spec(tmp_path / "keel.yaml")
    got = field_accuracy(resolved, "reader", version=1)
    assert (got["predictions"], got["labelled"], got["not_records"]) == (4, 3, 1)
    assert got["fields"] == {"amount": {"labelled": 1, "right": 1, "accuracy": 1.0},
                             "currency": {"labelled": 2, "right": 1, "accuracy": 0.5}}
    every = field_accuracy(resolved, "reader")
    assert every["fields"]["amount"] == {"labelled": 2, "right": 1, "accuracy": 0.5}
    assert field_accuracy(resolved, "reader", until=time.time() - 3600)["predictions"] == 0


def test_an_empty_store_scores_nothing(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text(SPEC)
    got = field_accuracy(load_spec(tmp_path / "keel.yaml"), "reader")
    assert got["predictions"] == 0 and got["overall"]["accuracy"] is None


def test_keel_monitor_fields_prints_the_table_and_json(tmp_path: Path) -> None:
    _project(tmp_path, ROWS)
    app = typer.Typer()
    app.add_typer(monitor_cmd.app, name="monitor")
    runner = CliRunner()
    out = runner.invoke(app, ["monitor", "fields", "-p", str(tmp_path), "--version", "1",
                              "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["overall"] == {"labelled": 3, "right": 2,
                                                 "accuracy": 2 / 3}
    table = runner.invoke(app, ["monitor", "fields", "-p", str(tmp_path)])
    assert table.exit_code == 0, table.output
    assert "currency" in table.output and "all fields" in table.output
    assert "reader: 5 answers, 4 labelled" in table.output


MULTI_SPEC = SPEC + """\
contract:
  inputs: [{name: text, type: text}]
  outputs: [{name: progression, type: float}, {name: bmi2, type: float}]
"""


def test_a_list_answer_of_a_multi_output_model_is_its_record(tmp_path: Path) -> None:
    """Two contract outputs: ``[a, b]`` is ``{progression: a, bmi2: b}``, and so is a label."""
    _project(tmp_path, [(1, "ok", [100.0, 7.0], {"progression": 100.0, "bmi2": 8.0}),
                        (1, "ok", [50.0, 3.0], [50.0, 3.0]),
                        (1, "ok", [60.0, 3.0], 61.0)])      # scalar label: the first output
    (tmp_path / "keel.yaml").write_text(MULTI_SPEC)
    got = field_accuracy(load_spec(tmp_path / "keel.yaml"), "reader")
    assert (got["labelled"], got["not_records"]) == (3, 0)
    assert got["fields"] == {"progression": {"labelled": 3, "right": 2, "accuracy": 2 / 3},
                             "bmi2": {"labelled": 2, "right": 1, "accuracy": 0.5}}

"""``keel monitor`` for a 10-class model (scikit-learn's bundled digits) and a regressor.

Multi-class: the reference gets a one-vs-rest CBPE reference; a window of logged predictions
(the log holds class labels only, so the model scores them again) gets CBPE's estimate, and
its labelled part the realised accuracy, confusion matrix and macro/micro ROC AUC. Before,
``performance estimation (CBPE): no`` and ``estimated: null`` with no reason. Regression: no
estimate, and every window says why.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.label_store import LabelStore
from keelwork.adapters.stores.prediction_store import (
    ensure_schema,
    insert_statements,
    record_to_row,
)
from keelwork.adapters.stores.registry_store import open_registry
from keelwork.core.predictions import PredictionRecord, new_prediction_id
from keelwork.interfaces.cli.main import app
from keelwork.service.registration import register_model

pytest.importorskip("skops")

T0 = datetime(2024, 3, 1, tzinfo=UTC).timestamp()
RANGE = ["--since", "2024-03-01T00:00:00", "--until", "2024-03-01T01:00:00"]
SPEC = """\
service: {{name: {name}, owners: [t@example.com]}}
models:
  - name: {name}
    runtime: sklearn
monitoring:
  reference: reference.csv
  windows: [1h]
  labels: {{column: target}}
"""
runner = CliRunner()


def _project(tmp_path: Path, name: str, model: Any, frame: Any, features: list[str],
             labelled: int) -> Path:
    import skops.io as sio

    train, ref, log = frame.iloc[:600], frame.iloc[600:1200], frame.iloc[1200:]
    model.fit(train[features], train["target"])
    sio.dump(model, tmp_path / "model.skops")
    ref[[*features, "target"]].to_csv(tmp_path / "reference.csv", index=False)
    (tmp_path / "keel.yaml").write_text(SPEC.format(name=name))
    with open_registry(tmp_path, audit=False) as registry:
        register_model(registry, name, tmp_path / "model.skops", "sklearn", source_dir=tmp_path)
    preds = model.predict(log[features]).tolist()
    records = [PredictionRecord(id=new_prediction_id(), ts=T0 + i, model=name, version=1,
                                inputs=row, outputs=p, latency_ms=1.0)
               for i, (row, p) in enumerate(zip(log[features].to_dict("records"), preds,
                                                strict=True))]
    engine = make_engine(f"sqlite:///{tmp_path / '.keel' / 'keel.db'}")
    try:
        ensure_schema(engine)
        meta, payload = insert_statements(engine)
        rows = [record_to_row(r) for r in records]
        with engine.begin() as conn:
            conn.execute(meta, [{k: v for k, v in r.items()
                                 if k not in ("v", "inputs", "outputs", "request_meta")}
                                for r in rows])
            conn.execute(payload, [{k: r[k] for k in ("id", "inputs", "outputs",
                                                      "request_meta")} for r in rows])
        labels = LabelStore(engine)
        labels.ensure_schema()
        labels.submit([{"prediction_id": r.id, "label": y, "ts": T0 + 1800}
                       for r, y in zip(records[:labelled], log["target"].tolist(),
                                       strict=False)])
    finally:
        engine.dispose()
    return tmp_path


def _run(project: Path, *args: str) -> Any:
    return runner.invoke(app, ["monitor", *args, "--project", str(project)])


def test_a_ten_class_model_gets_an_estimate_and_multiclass_quality(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    monkeypatch.delenv("KEELWORK_STORAGE_URL", raising=False)
    frame = load_digits(as_frame=True).frame.sample(frac=1.0, random_state=3)
    features = [c for c in frame.columns if c != "target"]
    project = _project(tmp_path, "digits", LogisticRegression(max_iter=2000), frame, features,
                       labelled=400)
    summary = json.loads(_run(project, "reference", "--json").output)
    assert summary["cbpe"] is True and summary["cbpe_task"] == "multiclass"
    assert summary["cbpe_reason"] is None
    shown = _run(project, "reference")
    assert "performance estimation (CBPE): yes (multiclass)" in shown.output

    result = _run(project, "run", *RANGE, "--json")
    assert result.exit_code == 0, result.output
    (window,) = json.loads(result.output)["windows"]
    est, real = window["quality"]["estimated"], window["quality"]["realised"]
    assert est is not None, window["quality"]
    assert est["method"] == "cbpe" and est["task"] == "multiclass"
    assert est["predictions"] == window["predictions"] == 597
    assert len(est["classes"]) == 10
    assert real["task"] == "multiclass" and real["labelled"] == 400
    assert sum(sum(r.values()) for r in real["confusion"].values()) == 400
    assert real["roc_auc"] is not None and real["roc_auc_micro"] is not None
    # The same model on the same population: the estimate is near what the labels say.
    assert abs(est["accuracy"] - real["accuracy"]) < 0.05, (est["accuracy"],
                                                           real["accuracy"])
    assert est["alerted"] == []


def test_a_regressor_says_why_there_is_no_estimate(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    monkeypatch.delenv("KEELWORK_STORAGE_URL", raising=False)
    base = load_diabetes(as_frame=True).frame
    frame = pd.concat([base] * 4, ignore_index=True).sample(frac=1.0, random_state=1)
    features = [c for c in frame.columns if c != "target"]
    project = _project(tmp_path, "diab", Ridge(), frame, features, labelled=100)
    summary = json.loads(_run(project, "reference", "--json").output)
    assert summary["cbpe"] is False and "regressor" in summary["cbpe_reason"]
    assert "(CBPE): no: CBPE estimates classifiers" in _run(project, "reference").output
    (window,) = json.loads(_run(project, "run", *RANGE, "--json").output)["windows"]
    assert window["quality"]["estimated"] is None
    assert "regressor" in window["quality"]["estimated_reason"]
    assert window["quality"]["realised"]["mae"] is not None


def test_the_html_report_names_the_reason(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from keelwork.core.reports import render_monitor_html

    report = {"kind": "keelwork.monitor-report", "model": "diab", "window": "1h", "windows": [
        {"start": "2024-03-01T00:00:00+00:00", "end": "2024-03-01T01:00:00+00:00",
         "predictions": 5, "status": "ok", "notes": [], "drift": None, "segments": [],
         "quality": {"realised": {"mae": 40.0, "labelled": 5}, "estimated": None,
                     "estimated_reason": "no performance estimate: CBPE estimates "
                                         "classifiers"}}]}
    assert "CBPE estimates classifiers" in render_monitor_html(report)

"""``keel monitor reference|run|show`` through a Typer app holding the sub-app.

The model is a logistic regression on scikit-learn's bundled breast-cancer data; the log holds
two hours of its predictions, the second with ``mean radius`` shifted by two reference
standard deviations.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.prediction_store import (
    ensure_schema,
    insert_statements,
    record_to_row,
)
from keelwork.adapters.stores.registry_store import open_registry
from keelwork.core.predictions import PredictionRecord, new_prediction_id
from keelwork.interfaces.cli import monitor_cmd
from keelwork.service.registration import register_model

sklearn = pytest.importorskip("sklearn")
pytest.importorskip("skops")

runner = CliRunner()
app = typer.Typer()
app.add_typer(monitor_cmd.app, name="monitor")
T0 = datetime(2024, 3, 1, tzinfo=UTC).timestamp()
FEATURES = ["mean radius", "mean texture", "mean smoothness", "worst area"]

KEEL_YAML = """\
kind: keel.yaml
version: 1
service: {name: cancer, owners: [ml@example.com]}
models:
  - name: cancer
    runtime: sklearn
monitoring:
  reference: reference.csv
  windows: [1h]
  labels: {column: target, expected_delay: 1d}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import skops.io as sio
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("KEELWORK_STORAGE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    data = load_breast_cancer(as_frame=True).frame.sample(frac=1.0, random_state=1)
    train, ref, log = data.iloc[:250], data.iloc[250:450], data.iloc[450:]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(train[FEATURES], train["target"])
    sio.dump(model, tmp_path / "model.skops")
    ref[[*FEATURES, "target"]].to_csv(tmp_path / "reference.csv", index=False)
    (tmp_path / "keel.yaml").write_text(KEEL_YAML)
    with open_registry(tmp_path, audit=False) as registry:
        register_model(registry, "cancer", tmp_path / "model.skops", "sklearn", source_dir=tmp_path)
    shifted = log.copy()
    shifted["mean radius"] = shifted["mean radius"] + 2 * ref["mean radius"].std()
    records = []
    for hour, frame in ((0, log), (1, shifted)):
        preds = model.predict(frame[FEATURES])
        for i, (row, p) in enumerate(zip(frame[FEATURES].to_dict("records"), preds,
                                         strict=True)):
            records.append(PredictionRecord(
                id=new_prediction_id(), ts=T0 + hour * 3600 + i, model="cancer", version=1,
                inputs=row, outputs=int(p), latency_ms=1.0))
    engine = make_engine(f"sqlite:///{tmp_path / '.keel' / 'keel.db'}")
    ensure_schema(engine)
    meta, payload = insert_statements(engine)
    rows = [record_to_row(r) for r in records]
    with engine.begin() as conn:
        conn.execute(meta, [{k: v for k, v in r.items()
                             if k not in ("v", "inputs", "outputs", "request_meta")}
                            for r in rows])
        conn.execute(payload, [{k: r[k] for k in ("id", "inputs", "outputs", "request_meta")}
                               for r in rows])
    engine.dispose()
    return tmp_path


def _invoke(*args: str) -> Any:
    return runner.invoke(app, ["monitor", *args])


RANGE = ["--since", "2024-03-01T00:00:00", "--until", "2024-03-01T02:00:00"]


def test_reference_then_run_then_show(project: Path) -> None:
    result = _invoke("reference", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["rows"] == 200 and summary["label_column"] == "target"
    assert {"mean radius", "prediction:label", "prediction:score", "label:label"} <= set(
        summary["columns"])
    assert summary["cbpe"] is True

    result = _invoke("run", *RANGE, "--json", "--out", "report.json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert json.loads((project / "report.json").read_text()) == report
    first, second = report["windows"]
    assert first["predictions"] == second["predictions"] == 119
    assert "mean radius" not in first["drift"]["summary"]["drifted"]
    assert "mean radius" in second["drift"]["summary"]["drifted"]
    assert first["quality"]["estimated"]["method"] == "cbpe"
    assert first["quality"]["realised"]["labelled"] == 0
    # 2024's windows are long past their expected label delay: complete, with no labels
    assert first["quality"]["realised"]["complete"] is True
    assert first["quality"]["realised"]["coverage"] == 0.0

    table = _invoke("run", *RANGE)
    assert table.exit_code == 0, table.output
    assert "1 of 2 window(s) drifted" in table.output
    assert "mean radius" in table.output

    assert _invoke("run", *RANGE, "--fail-on-drift").exit_code == 1
    early = ["--since", "2024-03-01T00:00:00", "--until", "2024-03-01T01:00:00"]
    assert _invoke("run", *early, "--fail-on-drift").exit_code == 0

    shown = _invoke("show", "--json")
    assert shown.exit_code == 0, shown.output
    stored = json.loads(shown.output)
    assert [w["start"] for w in stored] == [second["start"], first["start"]]
    assert "mean radius" in _invoke("show").output


def test_count_windows_and_relative_since(project: Path) -> None:
    assert _invoke("reference").exit_code == 0
    result = _invoke("run", "--window", "100p", "--since", "2024-03-01", "--until",
                     "2024-03-02", "--json")
    assert result.exit_code == 0, result.output
    assert [w["predictions"] for w in json.loads(result.output)["windows"]] == [100, 100, 38]
    # the log is in 2024: the last day holds nothing, and says so without failing
    recent = _invoke("run", "--since", "-2h", "--json")
    assert recent.exit_code == 0, recent.output
    assert all(w["status"] == "empty" for w in json.loads(recent.output)["windows"])


def test_clear_errors(project: Path) -> None:
    no_ref = _invoke("run", *RANGE)
    assert no_ref.exit_code == 2 and "keel monitor reference" in no_ref.output
    assert _invoke("reference").exit_code == 0
    bad = _invoke("run", "--window", "1w", *RANGE)
    assert bad.exit_code == 2 and "'1w'" in bad.output
    when = _invoke("run", "--since", "yesterday")
    assert when.exit_code == 2 and "--since" in when.output
    missing = _invoke("reference", "--data", "nope.csv")
    assert missing.exit_code == 2 and "nope.csv" in missing.output
    other = _invoke("show", "--model", "other")
    assert other.exit_code == 0 and "no stored monitoring results" in other.output


def test_html_report_or_a_clear_error(project: Path) -> None:
    import importlib.util

    assert _invoke("reference").exit_code == 0
    result = _invoke("run", *RANGE, "--html", "report.html")
    if importlib.util.find_spec("keelwork.core.reports") is None:
        assert result.exit_code == 2 and "--out FILE" in result.output
        assert not (project / "report.html").exists()
    else:
        assert result.exit_code == 0, result.output
        assert "cancer" in (project / "report.html").read_text()


def _add_constant_candidate(project: Path) -> None:
    """Register version 2, a constant classifier, as ``keel models register`` does: with its
    own monitoring reference; and log an hour of its (constant) canary answers."""
    import pandas as pd
    import skops.io as sio
    from sklearn.dummy import DummyClassifier

    from keelwork.service.monitoring.reference import reference_on_register
    from keelwork.service.projects import project_spec
    from keelwork.spec.settings import load_settings

    frame = pd.read_csv(project / "reference.csv")
    bad = DummyClassifier(strategy="constant", constant=1).fit(frame[FEATURES], frame["target"])
    sio.dump(bad, project / "bad.skops")
    with open_registry(project, audit=False) as registry:
        register_model(registry, "cancer", project / "bad.skops", "sklearn", source_dir=project)
        registry.set_alias("cancer", 1, "champion")
    assert reference_on_register(project_spec(project, load_settings()), "cancer", 2) is None
    records = [PredictionRecord(id=new_prediction_id(), ts=T0 + 1800 + i, model="cancer",
                                version=2, inputs=row, outputs=1, latency_ms=1.0)
               for i, row in enumerate(frame[FEATURES].head(60).to_dict("records"))]
    engine = make_engine(f"sqlite:///{project / '.keel' / 'keel.db'}")
    meta, payload = insert_statements(engine)
    rows = [record_to_row(r) for r in records]
    with engine.begin() as conn:
        conn.execute(meta, [{k: v for k, v in r.items()
                             if k not in ("v", "inputs", "outputs", "request_meta")}
                            for r in rows])
        conn.execute(payload, [{k: r[k] for k in ("id", "inputs", "outputs", "request_meta")}
                               for r in rows])
    engine.dispose()


def _prediction_drift(window: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in window["drift"]["columns"] if c["column"] == "prediction:label")


def test_a_candidates_reference_leaves_the_champions_alone(project: Path) -> None:
    assert _invoke("reference").exit_code == 0  # the champion's (version 1)
    _add_constant_candidate(project)

    champion = json.loads(_invoke("run", *RANGE, "--json").output)
    assert champion["model_version"] == 1
    assert champion["reference"]["model_version"] == 1 and champion["reference"]["id"] == 1
    first = champion["windows"][0]
    assert first["predictions"] == 119  # the canary's 60 answers are not the champion's
    assert not _prediction_drift(first)["drift"], _prediction_drift(first)

    canary = _invoke("run", *RANGE, "--version", "2", "--json")
    assert canary.exit_code == 0, canary.output
    report = json.loads(canary.output)
    assert report["model_version"] == 2 and report["reference"]["model_version"] == 2
    assert report["windows"][0]["predictions"] == 60
    assert report["reference"]["note"] is None
    table = _invoke("run", *RANGE)
    assert "cancer:1" in table.output and "(version 1)" in table.output


def test_a_version_without_its_own_reference_shares_the_inputs_only(project: Path) -> None:
    assert _invoke("reference").exit_code == 0
    _add_constant_candidate(project)
    import sqlalchemy as sa

    engine = make_engine(f"sqlite:///{project / '.keel' / 'keel.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM monitor_references WHERE version = 2"))
    engine.dispose()
    result = _invoke("run", *RANGE, "--version", "2", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["reference"]["model_version"] == 1
    assert "version 2 has no reference of its own" in report["reference"]["note"]
    columns = {c["column"] for c in report["windows"][0]["drift"]["columns"]}
    assert "mean radius" in columns and "prediction:label" not in columns


def test_reference_for_a_given_version(project: Path) -> None:
    _add_constant_candidate(project)
    result = _invoke("reference", "--version", "2", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["model_version"] == 2
    champion = _invoke("reference", "--json")
    assert json.loads(champion.output)["model_version"] == 1


def test_reference_warns_when_labels_and_classes_share_no_vocabulary(project: Path) -> None:
    """The model answers 0/1; a label column of 'benign'/'malignant' cannot be compared with
    that (label drift fired at JS 1.0 on it): building the reference says so."""
    import pandas as pd

    frame = pd.read_csv(project / "reference.csv")
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    frame.to_csv(project / "reference.csv", index=False)
    result = _invoke("reference", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    (warning,) = summary["warnings"]
    assert "'target'" in warning and "benign" in warning and "share no value" in warning
    # Labels that are the model's classes: no warning.
    frame["target"] = frame["target"].map({"malignant": 0, "benign": 1})
    frame.to_csv(project / "reference.csv", index=False)
    assert json.loads(_invoke("reference", "--json").output)["warnings"] == []


def test_a_dropped_input_counts_as_drift_and_an_added_one_is_reported(project: Path) -> None:
    import pandas as pd

    assert _invoke("reference").exit_code == 0
    frame = pd.read_csv(project / "reference.csv").head(100)
    rows = frame[FEATURES].drop(columns=["worst area"]).assign(clinic="north")
    records = [PredictionRecord(id=new_prediction_id(), ts=T0 + 2 * 3600 + i, model="cancer",
                                version=1, inputs=row, outputs=1, latency_ms=1.0)
               for i, row in enumerate(rows.to_dict("records"))]
    engine = make_engine(f"sqlite:///{project / '.keel' / 'keel.db'}")
    meta, payload = insert_statements(engine)
    with engine.begin() as conn:
        stored = [record_to_row(r) for r in records]
        conn.execute(meta, [{k: v for k, v in r.items()
                             if k not in ("v", "inputs", "outputs", "request_meta")}
                            for r in stored])
        conn.execute(payload, [{k: r[k] for k in ("id", "inputs", "outputs", "request_meta")}
                               for r in stored])
    engine.dispose()
    hour = ["--since", "2024-03-01T02:00:00", "--until", "2024-03-01T03:00:00"]
    result = _invoke("run", *hour, "--json")
    assert result.exit_code == 0, result.output
    (window,) = json.loads(result.output)["windows"]
    summary = window["drift"]["summary"]
    assert "worst area" in summary["drifted"]
    assert summary["schema"] == {"missing": ["worst area"], "added": ["clinic"]}
    assert "label:label" not in summary["drifted"]  # no labels yet: expected, not a change
    assert any("clinic" in n for n in window["notes"])
    assert _invoke("run", *hour, "--fail-on-drift").exit_code == 1

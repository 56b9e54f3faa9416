"""``monitoring.drift.features``: `keel monitor run` compares only the inputs it names.

A fresh project (a scikit-learn classifier served from keel.yaml's artifact, its reference
built at serve) takes traffic in process; the same log is then monitored with and without the
field, and the report's drift columns follow keel.yaml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from keelwork.interfaces.cli.main import app
from keelwork.interfaces.http.server import build_server_app
from keelwork.spec import load_spec

pytest.importorskip("skops")

FEATURES = ["mean radius", "mean texture", "mean smoothness", "worst area"]
SPEC = """\
service: {name: cancer, owners: [t@example.com]}
models:
  - name: cancer
    runtime: sklearn
    artifact: model.skops
monitoring:
  reference: reference.csv
  windows: [1h]
  labels: {column: target}
"""


def _drift_columns(project: Path) -> set[str]:
    result = CliRunner().invoke(app, ["monitor", "run", "--since", "2h", "--json",
                                      "--no-rescore", "--no-rollups", "--project", str(project)])
    assert result.exit_code == 0, result.output
    windows = [w for w in json.loads(result.output)["windows"] if w["predictions"]]
    assert windows
    return {c["column"] for w in windows for c in w["drift"]["columns"]}


def test_drift_features_restricts_the_compared_inputs(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import skops.io as sio
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    monkeypatch.delenv("KEELWORK_STORAGE_URL", raising=False)
    data: Any = load_breast_cancer(as_frame=True).frame.sample(frac=1.0, random_state=4)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(data.iloc[:300][FEATURES], data.iloc[:300]["target"])
    sio.dump(model, tmp_path / "model.skops")
    data.iloc[300:500][[*FEATURES, "target"]].to_csv(tmp_path / "reference.csv", index=False)
    (tmp_path / "keel.yaml").write_text(SPEC)
    resolved = load_spec(tmp_path / "keel.yaml")
    with TestClient(build_server_app(resolved, freeze_gc=False, monitor_interval_s=0)) as c:
        rows = data.iloc[500:560][FEATURES].to_dict("records")
        assert c.post("/v1/models/cancer:predict", json={"instances": rows}).status_code == 200
    every = _drift_columns(tmp_path)
    assert set(FEATURES) <= every
    (tmp_path / "keel.yaml").write_text(SPEC.replace(
        "  windows: [1h]\n", "  windows: [1h]\n  drift: {features: [mean radius, worst area]}\n"))
    chosen = _drift_columns(tmp_path)
    assert chosen & set(FEATURES) == {"mean radius", "worst area"}
    assert chosen - set(FEATURES) == every - set(FEATURES)  # predictions still compared

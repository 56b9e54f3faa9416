"""`keel serve` registering a model from keel.yaml's `artifact:` also builds its monitoring
reference, as `keel models register` does: `keel monitor run` works in a fresh project."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from keelwork.interfaces.cli.main import app
from live_server import running_server

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


def test_serve_from_artifact_builds_the_reference_then_monitor_run_works(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import skops.io as sio
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    monkeypatch.delenv("KEELWORK_STORAGE_URL", raising=False)
    data = load_breast_cancer(as_frame=True).frame.sample(frac=1.0, random_state=2)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(data.iloc[:300][FEATURES], data.iloc[:300]["target"])
    sio.dump(model, tmp_path / "model.skops")
    data.iloc[300:500][[*FEATURES, "target"]].to_csv(tmp_path / "reference.csv", index=False)
    (tmp_path / "keel.yaml").write_text(SPEC)
    with running_server(tmp_path) as base:
        rows = data.iloc[500:520][FEATURES].to_dict("records")
        r = httpx.post(f"{base}/v1/models/cancer:predict", json={"instances": rows}, timeout=30)
        assert r.status_code == 200, r.text
    runner = CliRunner()
    result = runner.invoke(app, ["monitor", "run", "--since", "2h", "--json", "--project",
                                 str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["model_version"] == 1 and report["reference"]["model_version"] == 1
    assert report["reference"]["rows"] == 200
    assert sum(w["predictions"] for w in report["windows"]) == 20

"""``monitoring.windows``, ``drift.features``, ``segments`` and ``min_segment_rows``: `keel
monitor run` follows keel.yaml.

A fresh project (a scikit-learn classifier served from keel.yaml's artifact, its reference
built at serve) takes traffic in process from two tenants, 30 and 10 predictions; the same log
is then monitored under different keel.yaml settings (they are read at monitor time)."""

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


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import skops.io as sio
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    project = tmp_path_factory.mktemp("monitored")
    data: Any = load_breast_cancer(as_frame=True).frame.sample(frac=1.0, random_state=4)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(data.iloc[:300][FEATURES], data.iloc[:300]["target"])
    sio.dump(model, project / "model.skops")
    data.iloc[300:500][[*FEATURES, "target"]].to_csv(project / "reference.csv", index=False)
    (project / "keel.yaml").write_text(SPEC)
    resolved = load_spec(project / "keel.yaml")
    with TestClient(build_server_app(resolved, freeze_gc=False, monitor_interval_s=0)) as c:
        for lo, tenant in ((500, "big"), (510, "big"), (520, "big"), (530, "small")):
            rows = data.iloc[lo:lo + 10][FEATURES].to_dict("records")
            r = c.post("/v1/models/cancer:predict", json={"instances": rows},
                       headers={"x-tenant-id": tenant})
            assert r.status_code == 200, r.text
    return project


def _windows(project: Path, monitoring: str,
             monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    monkeypatch.delenv("KEELWORK_STORAGE_URL", raising=False)
    (project / "keel.yaml").write_text(SPEC.replace("  windows: [1h]\n", monitoring)
                                       if monitoring.startswith("  windows:") else
                                       SPEC.replace("  windows: [1h]\n",
                                                    "  windows: [1h]\n" + monitoring))
    result = CliRunner().invoke(app, ["monitor", "run", "--since", "2h", "--json",
                                      "--no-rescore", "--no-rollups", "--project", str(project)])
    assert result.exit_code == 0, result.output
    return [w for w in json.loads(result.output)["windows"] if w["predictions"]]


def _window(project: Path, monitoring: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    (window,) = _windows(project, monitoring, monkeypatch)
    assert window["predictions"] == 40
    return window


def test_drift_features_restricts_the_compared_inputs(
        served: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    every = {c["column"] for c in _window(served, "", monkeypatch)["drift"]["columns"]}
    assert set(FEATURES) <= every
    chosen = {c["column"] for c in _window(
        served, "  drift: {features: [mean radius, worst area]}\n", monkeypatch)[
        "drift"]["columns"]}
    assert chosen & set(FEATURES) == {"mean radius", "worst area"}
    assert chosen - set(FEATURES) == every - set(FEATURES)  # predictions still compared


def test_segments_and_min_segment_rows_choose_the_compared_slices(
        served: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def compared(monitoring: str) -> dict[str, int]:
        window = _window(served, monitoring, monkeypatch)
        return {s["value"]: s["predictions"] for s in window["segments"]
                if s["field"] == "tenant"}

    assert compared("") == {}  # no segments named: none compared
    assert compared("  segments: [tenant]\n  min_segment_rows: 20\n") == {"big": 30}
    assert compared("  segments: [tenant]\n  min_segment_rows: 5\n") == {"big": 30, "small": 10}


def test_windows_of_keel_yaml_cut_the_log(served: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    by_count = _windows(served, "  windows: [15p, 1h]\n", monkeypatch)
    assert [w["predictions"] for w in by_count] == [15, 15, 10]  # the first window spec
    assert [w["predictions"] for w in _windows(served, "  windows: [1d]\n", monkeypatch)] == [40]

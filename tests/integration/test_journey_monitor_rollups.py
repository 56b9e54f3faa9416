"""Journey: `keel monitor run` folds the log into rollups once, then reads them.

A fresh project (a scikit-learn classifier, a reference file, keel.yaml) is served, takes
traffic over HTTP and stops. The first `keel monitor run` reads the log and stores its
rollups; the second computes the window from them alone -- with `--no-rescore`, since this
model's logged outputs hold labels but no probabilities and scoring them again needs every
logged input -- and both give the same report as `keel monitor run --no-rollups`. Without
`--no-rescore` the window is read from the log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def _monitor(project: Path, *flags: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(app, ["monitor", "run", "--since", "2h", "--json", *flags,
                                      "--project", str(project)])
    assert result.exit_code == 0, result.output
    return [w for w in json.loads(result.output)["windows"] if w["predictions"]]


def test_served_predictions_are_monitored_from_rollups(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import skops.io as sio
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    monkeypatch.delenv("KEELWORK_STORAGE_URL", raising=False)
    data = load_breast_cancer(as_frame=True).frame.sample(frac=1.0, random_state=4)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(data.iloc[:300][FEATURES], data.iloc[:300]["target"])
    sio.dump(model, tmp_path / "model.skops")
    data.iloc[300:500][[*FEATURES, "target"]].to_csv(tmp_path / "reference.csv", index=False)
    (tmp_path / "keel.yaml").write_text(SPEC)
    with running_server(tmp_path) as base:
        for lo in range(500, 560, 10):
            rows = data.iloc[lo:lo + 10][FEATURES].to_dict("records")
            r = httpx.post(f"{base}/v1/models/cancer:predict", json={"instances": rows},
                           timeout=30)
            assert r.status_code == 200, r.text
    first = _monitor(tmp_path, "--no-rescore")
    fast = _monitor(tmp_path, "--no-rescore")
    full = _monitor(tmp_path, "--no-rescore", "--no-rollups")
    assert sum(w["predictions"] for w in fast) == 60
    assert {w.pop("computed_from") for w in first} == {"rollups+log"}
    assert {w.pop("computed_from") for w in fast} == {"rollups"}
    assert {w.pop("computed_from") for w in full} == {"log"}
    assert first == fast == full
    # scores wanted but not logged: only the log has the inputs to score again
    assert {w["computed_from"] for w in _monitor(tmp_path)} == {"log"}

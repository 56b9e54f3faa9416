"""Journey: `keel monitor run` folds the log into rollups once, then reads them.

A fresh project (a scikit-learn classifier, a reference file, keel.yaml) is served, takes
traffic over HTTP and stops. The first `keel monitor run` reads the log and stores its
rollups; the second computes the window from them alone, and both give the same report as
`keel monitor run --no-rollups`: first with `--no-rescore`, then as a user types it -- this
model logs labels but no probabilities, so the run scores the logged inputs again, once, and
its rollups keep those scores for the next run (which loads no model).
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
    # scores wanted but not logged: the first run scores the inputs again and keeps them
    scored = _monitor(tmp_path)
    again = _monitor(tmp_path)
    read = _monitor(tmp_path, "--no-rollups")
    assert {w.pop("computed_from") for w in scored} == {"rollups+log"}
    assert {w.pop("computed_from") for w in again} == {"rollups"}
    assert {w.pop("computed_from") for w in read} == {"log"}
    assert again[0]["quality"]["estimated"]["method"] == "cbpe"  # the scores are there
    assert json.dumps(again, sort_keys=True) == json.dumps(read, sort_keys=True) or all(
        _close(a, b) for a, b in zip(again, read, strict=True))


def _close(a: Any, b: Any) -> bool:
    """Equal, floats within 1e-9 (scores computed in batches of other sizes)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
    return bool(a == b)

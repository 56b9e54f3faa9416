"""A multi-output regressor's realised quality, as a user gets it (SQLite and PostgreSQL).

scikit-learn's Linnerud data (three exercise counts -> weight, waist and pulse of 20 men) and a
ridge regression of all three outputs, saved with skops. Through the CLI and HTTP a user would
type: ``keel serve`` (registers it, builds the monitoring reference), every row predicted over
HTTP, its measured outputs sent back as labels through ``POST /v1/feedback`` (a few labels
name only some of the fields, as a lab that measures pulse later would send them), then
``keel monitor run --json``: each output field's MAE, RMSE and bias equal scikit-learn's on the
rows labelled for that field, and the window's ``mae``/``rmse`` are their mean (scikit-learn's
``multioutput="uniform_average"``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("skops")

from journey import Traffic, keel, use_store
from live_server import running_server

pytestmark = pytest.mark.slow

OUTPUTS = ("Weight", "Waist", "Pulse")
#: Rows (of 20) whose label names only weight and waist: pulse is not measured for them.
PARTIAL = range(14, 20)

KEEL_YAML = """\
kind: keel.yaml
version: 1
service: {name: linnerud, owners: [ml-team@example.com]}
models:
  - name: body
    runtime: sklearn
    artifact: ridge.skops
    timeout_ms: 5000
contract:
  inputs:
    - {name: Chins, type: float}
    - {name: Situps, type: float}
    - {name: Jumps, type: float}
  outputs:
    - {name: Weight, type: float}
    - {name: Waist, type: float}
    - {name: Pulse, type: float}
monitoring:
  reference: reference.jsonl
  windows: [1h]
  labels: {column: Weight}
storage:
  durability: sync
"""


def test_each_output_field_is_scored_and_the_mean_is_sklearns(tmp_path: Path,
                                                               store_url: str) -> None:
    import numpy as np
    import skops.io as sio
    from sklearn.datasets import load_linnerud
    from sklearn.linear_model import Ridge
    from sklearn.metrics import mean_absolute_error, root_mean_squared_error

    data = load_linnerud(as_frame=True)
    x, y = data.data, data.target
    model = Ridge(alpha=1.0).fit(x, y)
    project = tmp_path / "linnerud"
    project.mkdir()
    sio.dump(model, project / "ridge.skops")
    (project / "keel.yaml").write_text(KEEL_YAML)
    x.join(y).to_json(project / "reference.jsonl", orient="records", lines=True)
    use_store(project, store_url)

    instances = [{k: float(v) for k, v in r.items()} for r in x.to_dict("records")]
    truth: list[dict[str, Any]] = []
    for i, r in enumerate(y.to_dict("records")):
        label = {k: float(v) for k, v in r.items()}
        if i in PARTIAL:
            label.pop("Pulse")
        truth.append(label)
    with running_server(project) as base, httpx.Client(base_url=base, timeout=30) as client:
        traffic = Traffic(client, "body", list(zip(instances, truth, strict=True)), batch=4)
        answers = traffic.send(len(instances) // 4)
    served = np.array([row for a in answers for row in a["predictions"]], dtype=float)
    assert served.shape == (20, 3)
    np.testing.assert_allclose(served, model.predict(x), rtol=1e-9)

    report = json.loads(keel(project, "monitor", "run", "--since", "2h", "--json").stdout)
    windows = [w for w in report["windows"] if w["quality"]["realised"]
               and w["quality"]["realised"]["labelled"]]
    assert len(windows) == 1, report["windows"]
    got = windows[0]["quality"]["realised"]
    assert got["labelled"] == 20
    full = [i for i in range(20) if i not in PARTIAL]
    per_field = {}
    for j, name in enumerate(OUTPUTS):
        rows = full if name == "Pulse" else list(range(20))
        want = {"mae": mean_absolute_error(y.iloc[rows, j], served[rows, j]),
                "rmse": root_mean_squared_error(y.iloc[rows, j], served[rows, j]),
                "bias": float(np.mean(served[rows, j] - y.iloc[rows, j]))}
        field = got["outputs"][name]
        assert field["n"] == len(rows), field
        for metric, value in want.items():
            assert field[metric] == pytest.approx(value, rel=1e-9), (name, metric, field)
        per_field[name] = want
    # The window's figures: the mean of the fields' (uniform_average), not the first field's.
    assert got["mae"] == pytest.approx(np.mean([m["mae"] for m in per_field.values()]),
                                       rel=1e-9)
    assert got["rmse"] == pytest.approx(np.mean([m["rmse"] for m in per_field.values()]),
                                        rel=1e-9)

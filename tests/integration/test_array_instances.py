"""An instance sent as an array holds its values in the contract's order (the order the contract
checks them in), whatever order the model was fitted in: a scikit-learn model fitted on iris's
columns in their usual order, served under a contract that lists them the other way round,
answers an array instance as it answers the same flower sent as a record, on V1 and V2.
(It used to read the array in its own order: a setosa sent as an array was a virginica.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from keelwork.interfaces.http.server import build_server_app
from keelwork.spec import load_spec

pytest.importorskip("skops")

FITTED = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CONTRACT = list(reversed(FITTED))

SPEC = """\
service: {{name: flowers, owners: [ml@example.com]}}
models:
  - name: iris
    runtime: sklearn
    artifact: model.skops
    options: {{trusted: {trusted}}}
contract:
  inputs:
{inputs}
"""


@pytest.fixture
def served(tmp_path: Path) -> tuple[Path, Any, Any]:
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris(as_frame=True)
    frame = iris.frame.rename(columns=dict(zip(iris.feature_names, FITTED, strict=True)))
    names = iris.target_names
    model = LogisticRegression(max_iter=500).fit(frame[FITTED], names[iris.target])
    sio.dump(model, tmp_path / "model.skops")
    trusted = sio.get_untrusted_types(file=tmp_path / "model.skops")
    inputs = "\n".join(f"    - {{name: {n}, type: float}}" for n in CONTRACT)
    (tmp_path / "keel.yaml").write_text(SPEC.format(trusted=json.dumps(trusted),
                                                    inputs=inputs))
    return tmp_path, model, frame


def test_an_array_instance_is_read_in_contract_order(served: tuple[Path, Any, Any]) -> None:
    folder, model, frame = served
    rows = frame.iloc[[0, 60, 120]]  # one of each species
    expected = list(model.predict(rows[FITTED]))
    assert expected == ["setosa", "versicolor", "virginica"]
    records = [{n: float(r[n]) for n in CONTRACT} for _, r in rows.iterrows()]
    arrays = [[rec[n] for n in CONTRACT] for rec in records]
    with TestClient(build_server_app(load_spec(folder / "keel.yaml"), freeze_gc=False)) as c:
        as_records = c.post("/v1/models/iris:predict", json={"instances": records})
        as_arrays = c.post("/v1/models/iris:predict", json={"instances": arrays})
        tensor = c.post("/v2/models/iris/infer", json={"inputs": [{
            "name": "rows", "datatype": "FP64", "shape": [3, 4],
            "data": [v for a in arrays for v in a]}]})
    assert as_records.status_code == as_arrays.status_code == tensor.status_code == 200
    assert as_records.json()["predictions"] == expected
    assert as_arrays.json()["predictions"] == expected, as_arrays.text
    assert tensor.json()["outputs"][0]["data"] == expected, tensor.text

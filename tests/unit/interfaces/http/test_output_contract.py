"""Answers are checked against ``contract.outputs``: a scikit-learn classifier trained on
iris's integer targets answers ``1``/``2`` where the contract declares ``class_0..class_2``.

``output_policy: warn`` (the default) answers 200, says so in ``warnings`` (V1) /
``parameters.warnings`` (V2), logs the records with guard ``output_contract`` and counts the
violation in ``/metrics``; ``strict`` answers 500 naming the contract.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from keelwork.interfaces.http.app import create_app
from keelwork.service.assembly import open_service
from keelwork.spec import load_spec

pytest.importorskip("skops")

FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
SPEC = """\
service: {{name: iris, owners: [t@example.com]}}
models:
  - name: iris
    runtime: sklearn
    artifact: model.skops
contract:
  inputs:
{inputs}
  outputs:
    - {{name: species, type: category, categories: [{categories}]}}
  output_policy: {policy}
"""


def _client(tmp_path: Path, policy: str, categories: str) -> Iterator[TestClient]:
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris(as_frame=True)
    model = LogisticRegression(max_iter=1000).fit(data.data[FEATURES], data.target)
    sio.dump(model, tmp_path / "model.skops")
    inputs = "\n".join(f"    - {{name: '{f}', type: float}}" for f in FEATURES)
    (tmp_path / "keel.yaml").write_text(SPEC.format(inputs=inputs, policy=policy,
                                                    categories=categories))
    service = open_service(load_spec(tmp_path / "keel.yaml"))
    app = create_app(service.gateway, on_startup=service.start, on_shutdown=service.close)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def rows() -> list[dict[str, float]]:
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).data
    return [frame.iloc[i][FEATURES].to_dict() for i in (60, 120)]  # a versicolor, a virginica


def test_warn_answers_but_says_logs_and_counts(tmp_path: Path,
                                               rows: list[dict[str, float]]) -> None:
    for client in _client(tmp_path, "warn", "class_0, class_1, class_2"):
        r = client.post("/v1/models/iris:predict", json={"instances": rows})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["predictions"] == [1, 2]
        assert [(w["path"], w["rule"], w["got"]) for w in body["warnings"]] == [
            ("predictions[0].species", "type", 1), ("predictions[1].species", "type", 2)]
        assert "output contract" in body["warnings"][0]["message"]
        v2 = client.post("/v2/models/iris/infer", json={"inputs": [
            {"name": f, "datatype": "FP64", "shape": [1], "data": [rows[0][f]]}
            for f in FEATURES]})
        assert v2.status_code == 200, v2.text
        assert v2.json()["parameters"]["warnings"][0]["rule"] == "type"
        metrics = client.get("/metrics").text
        assert ('keelwork_output_contract_violations_total{field="species",model="iris",'
                'rule="type",version="1"} 3.0') in metrics
    con = sqlite3.connect(tmp_path / ".keel" / "keel.db")
    try:
        got = con.execute("select status, guard from predictions").fetchall()
    finally:
        con.close()
    assert got == [("ok", "output_contract")] * 3


def test_strict_refuses_with_a_500_naming_the_contract(tmp_path: Path,
                                                       rows: list[dict[str, float]]) -> None:
    for client in _client(tmp_path, "strict", "class_0, class_1, class_2"):
        r = client.post("/v1/models/iris:predict", json={"instances": rows})
        assert r.status_code == 500, r.text
        body = r.json()
        assert "output contract" in body["error"] and "iris:1" in body["error"]
        assert [d["path"] for d in body["details"]] == ["predictions[0].species",
                                                        "predictions[1].species"]


def test_answers_that_keep_the_contract_carry_no_warning(tmp_path: Path,
                                                         rows: list[dict[str, float]]) -> None:
    for client in _client(tmp_path, "strict", "0, 1, 2"):
        r = client.post("/v1/models/iris:predict", json={"instances": rows})
        assert r.status_code == 200, r.text
        assert "warnings" not in r.json()


def test_only_the_answers_that_break_the_contract_are_flagged(
        tmp_path: Path, rows: list[dict[str, float]]) -> None:
    """A batch of two where only the virginica (2) is outside the categories: the log flags
    that answer alone, so the review queue (``review.guards: [output_contract]``) gets it and
    not its batch-mate."""
    for client in _client(tmp_path, "warn", "0, 1"):
        r = client.post("/v1/models/iris:predict", json={"instances": rows})
        assert r.status_code == 200, r.text
        assert [w["path"] for w in r.json()["warnings"]] == ["predictions[1].species"]
    con = sqlite3.connect(tmp_path / ".keel" / "keel.db")
    try:
        got = con.execute("select status, guard from predictions order by ts, rowid").fetchall()
    finally:
        con.close()
    assert got == [("ok", None), ("ok", "output_contract")]

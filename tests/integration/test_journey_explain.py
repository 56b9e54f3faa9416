"""A user's journey with explanations: a scikit-learn Pipeline (a ColumnTransformer before a
logistic regression) served from keel.yaml with reference data; ``POST :explain`` on new
instances (predicted and logged) and on a logged prediction id; attributions per original
feature that add up to the answer's log-odds minus the expected value; the budget's 429; and
``keel log show ID`` printing the stored explanation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("skops")

from journey import keel

SPEC = """\
kind: keel.yaml
version: 1
service: {{name: credit, owners: [ml@example.com]}}
models:
  - name: credit
    runtime: sklearn
    artifact: model.skops
    options: {{input: mixed, trusted: {trusted}}}
    timeout_ms: 10000
contract:
  inputs:
    - {{name: income, type: float}}
    - {{name: debt, type: float}}
    - {{name: job, type: category, categories: [clerk, nurse, welder]}}
monitoring:
  reference: reference.jsonl
explain:
  budget_per_minute: 5
  background_rows: 50
"""


def _rows(n: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    jobs = ["clerk", "nurse", "welder"]
    return [{"income": round(float(rng.normal(50, 15)), 2),
             "debt": round(float(rng.normal(10, 4)), 2), "job": jobs[int(rng.integers(3))]}
            for _ in range(n)]


@pytest.fixture()
def project(tmp_path: Path) -> tuple[Path, Any]:
    import pandas as pd
    import skops.io as sio
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    train = pd.DataFrame(_rows(600, 1))
    y = ((train.income - 2 * train.debt + (train.job == "nurse") * 10) > 30).astype(int)
    model = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), ["income", "debt"]),
                           ("cat", OneHotEncoder(sparse_output=False), ["job"])]),
        LogisticRegression()).fit(train, y)
    folder = tmp_path / "credit"
    folder.mkdir()
    sio.dump(model, folder / "model.skops")
    (folder / "reference.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in _rows(400, 2)))
    trusted = sio.get_untrusted_types(file=folder / "model.skops")
    (folder / "keel.yaml").write_text(SPEC.format(trusted=json.dumps(trusted)))
    keel(folder, "spec", "validate")
    return folder, model


def test_explain_predict_log_show_and_budget(project: tuple[Path, Any]) -> None:
    import pandas as pd
    from starlette.testclient import TestClient

    from keelwork.interfaces.http.server import build_server_app
    from keelwork.spec import load_spec

    folder, model = project
    asked = _rows(2, 9)
    with TestClient(build_server_app(load_spec(folder / "keel.yaml"),
                                     freeze_gc=False)) as client:
        got = client.post("/v1/models/credit:explain", json={"instances": asked})
        assert got.status_code == 200, got.text
        body = got.json()
        margins = model.decision_function(pd.DataFrame(asked))
        assert body["model_version"] == 1 and len(body["prediction_ids"]) == 2
        for e, margin in zip(body["explanations"], margins, strict=True):
            assert e["method"] == "linear" and e["output"] == "decision_function"
            assert set(e["attributions"]) == {"income", "debt", "job"}
            assert sum(e["attributions"].values()) == pytest.approx(
                margin - e["expected_value"], abs=1e-6)
        # a logged prediction, explained afterwards by its id
        pid, plain = client.post("/v1/models/credit:predict",
                                 json={"instances": [asked[0], asked[1]]}
                                 ).json()["prediction_ids"]
        again = client.post("/v1/models/credit:explain", json={"prediction_ids": [pid]})
        assert again.status_code == 200, again.text
        assert again.json()["explanations"][0]["attributions"] == pytest.approx(
            body["explanations"][0]["attributions"], abs=1e-9)
        # a tenant's logged prediction is not another tenant's to explain
        theirs = client.post("/v1/models/credit:predict", json={"instances": [asked[1]]},
                             headers={"x-tenant-id": "acme"}).json()["prediction_ids"][0]
        other = client.post("/v1/models/credit:explain", json={"prediction_ids": [theirs]},
                            headers={"x-tenant-id": "globex"})
        assert other.status_code == 404, other.text
        # the contract applies as for :predict
        bad = client.post("/v1/models/credit:explain",
                          json={"instances": [{"income": "lots", "debt": 1, "job": "nurse"}]})
        assert bad.status_code == 422
        assert bad.json()["details"][0]["path"].startswith("instances[0]")
        # 3 of 5 instances spent: 3 more do not fit the minute
        spent = client.post("/v1/models/credit:explain", json={"instances": _rows(3, 4)})
        assert spent.status_code == 429, spent.text
        assert int(spent.headers["retry-after"]) >= 1
    shown = keel(folder, "log", "show", pid).stdout
    assert "explanation: linear, output decision_function" in shown
    assert all(f in shown for f in ("income", "debt", "job"))
    as_json = json.loads(keel(folder, "log", "show", pid, "--json").stdout)
    assert as_json["explanation"]["attributions"] == pytest.approx(
        again.json()["explanations"][0]["attributions"])
    first = keel(folder, "log", "show", body["prediction_ids"][0]).stdout
    assert "explanation: linear" in first
    assert "no explanation stored" in keel(folder, "log", "show", plain).stdout
    missing = keel(folder, "log", "show", "no-such-id", check=False)
    assert missing.returncode != 0 and "no-such-id" in missing.stdout + missing.stderr
    # the global view: mean |attribution| per feature over the window's 3 explained answers
    run = json.loads(keel(folder, "monitor", "run", "--window", "1d", "--since", "2d",
                          "--json").stdout)
    views = [w["attributions"] for w in run["windows"] if "attributions" in w]
    assert [v["explained"] for v in views] == [3]
    stored = [e["attributions"] for e in body["explanations"]] + [
        again.json()["explanations"][0]["attributions"]]
    by_id = {body["prediction_ids"][0]: stored[0], body["prediction_ids"][1]: stored[1],
             pid: stored[2]}
    for feature in ("income", "debt", "job"):
        assert views[0]["mean_abs"][feature] == pytest.approx(
            np.mean([abs(a[feature]) for a in by_id.values()]))
    # ... beside the reference's own (its rows explained when the reference was built)
    baseline = views[0]["reference"]
    assert baseline is not None and baseline["explained"] == 200
    assert set(baseline["mean_abs"]) == {"income", "debt", "job"}
    assert 0.0 <= baseline["distance"] <= 1.0
    printed = keel(folder, "monitor", "run", "--window", "1d", "--since", "2d").stdout
    assert "mean |attribution| of 3 explained" in printed and "vs reference" in printed
    # ... and on the dashboard, from the stored window
    with TestClient(build_server_app(load_spec(folder / "keel.yaml"), freeze_gc=False,
                                     monitor_interval_s=0)) as client:
        page = client.get("/dashboard")
    assert page.status_code == 200, page.text
    assert "What the model relied on" in page.text and "over 3 explained predictions" in page.text


def test_a_shift_in_what_the_model_relies_on_is_flagged(project: tuple[Path, Any]) -> None:
    """Answers explained for ordinary applicants rely on the features as the reference rows
    do; applicants who differ from the reference only in their debt make the model lean on
    debt alone: the window's reliance is flagged as shifted."""
    from starlette.testclient import TestClient

    from keelwork.interfaces.http.server import build_server_app
    from keelwork.spec import load_spec

    folder, _model = project
    path = folder / "keel.yaml"
    path.write_text(path.read_text().replace("budget_per_minute: 5", "budget_per_minute: 1000"))

    def moved(instances: list[dict[str, Any]]) -> dict[str, Any]:
        with TestClient(build_server_app(load_spec(path), freeze_gc=False,
                                         monitor_interval_s=0)) as client:
            for at in range(0, len(instances), 100):  # 100 a request at most
                got = client.post("/v1/models/credit:explain",
                                  json={"instances": instances[at:at + 100]})
                assert got.status_code == 200, got.text
        run = json.loads(keel(folder, "monitor", "run", "--window", "1d", "--since", "2d",
                              "--json").stdout)
        return next(w["attributions"] for w in run["windows"] if "attributions" in w)

    ordinary = moved(_rows(60, 11))["reference"]
    assert ordinary["shifted"] is False, ordinary
    shifted = [{"income": 50.0, "debt": 35.0, "job": "clerk"} for _ in range(300)]
    after = moved(shifted)["reference"]  # 300 of the window's 360 explained answers
    assert after["shifted"] is True and after["window_top"] == "debt", after
    assert after["distance"] > ordinary["distance"] + 0.2


TREE_SPEC = """\
service: {{name: trees, owners: [ml@example.com]}}
models:
  - name: trees
    runtime: sklearn
    artifact: model.skops
    options: {{trusted: {trusted}}}
    timeout_ms: 10000
contract:
  inputs: [{{name: income, type: float}}, {{name: debt, type: float}}]
{reference}explain: {{background_rows: 100, enabled: {enabled}}}
"""


def _tree_project(root: Path, *, reference: bool = True, enabled: bool = True) -> Any:
    import pandas as pd
    import skops.io as sio
    from sklearn.ensemble import GradientBoostingClassifier

    train = pd.DataFrame(_rows(400, 1))[["income", "debt"]]
    model = GradientBoostingClassifier(n_estimators=30, random_state=0).fit(
        train, (train.income - 2 * train.debt > 30).astype(int))
    root.mkdir()
    sio.dump(model, root / "model.skops")
    (root / "reference.jsonl").write_text("".join(
        json.dumps({k: r[k] for k in ("income", "debt")}) + "\n" for r in _rows(80, 2)))
    trusted = sio.get_untrusted_types(file=root / "model.skops")
    (root / "keel.yaml").write_text(TREE_SPEC.format(
        trusted=json.dumps(trusted), enabled=str(enabled).lower(),
        reference="monitoring: {reference: reference.jsonl}\n" if reference else ""))
    keel(root, "spec", "validate")
    return model


def test_the_served_tree_explanation_equals_shaps(tmp_path: Path) -> None:
    shap = pytest.importorskip("shap", reason="shap is the explain extra")
    import pandas as pd
    from starlette.testclient import TestClient

    from keelwork.interfaces.http.server import build_server_app
    from keelwork.spec import load_spec

    model = _tree_project(tmp_path / "trees")
    asked = [{k: r[k] for k in ("income", "debt")} for r in _rows(3, 7)]
    with TestClient(build_server_app(load_spec(tmp_path / "trees" / "keel.yaml"),
                                     freeze_gc=False)) as client:
        got = client.post("/v1/models/trees:explain", json={"instances": asked})
    assert got.status_code == 200, got.text
    # background_rows (100) >= the reference's 80 rows: the whole reference is the background
    # as the model sees them: scikit-learn's trees take float32
    background = pd.DataFrame(_rows(80, 2))[["income", "debt"]].to_numpy(np.float32)
    explainer = shap.TreeExplainer(model, data=background, model_output="raw",
                                   feature_perturbation="interventional")
    theirs = explainer.shap_values(pd.DataFrame(asked).to_numpy(np.float32))
    margins = model.decision_function(pd.DataFrame(asked))
    for e, row, margin in zip(got.json()["explanations"], theirs, margins, strict=True):
        assert e["method"] == "tree" and e["output"] == "raw" and e["output_class"] == 1
        assert [e["attributions"]["income"], e["attributions"]["debt"]] == pytest.approx(
            list(row), abs=1e-12)
        assert e["expected_value"] == pytest.approx(float(explainer.expected_value), abs=1e-12)
        assert sum(e["attributions"].values()) == pytest.approx(
            margin - e["expected_value"], abs=1e-6)


def test_no_reference_is_a_422_and_disabled_is_a_404(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from keelwork.interfaces.http.server import build_server_app
    from keelwork.spec import load_spec

    _tree_project(tmp_path / "bare", reference=False)
    _tree_project(tmp_path / "off", enabled=False)
    row = {"instances": [{"income": 50.0, "debt": 3.0}]}
    with TestClient(build_server_app(load_spec(tmp_path / "bare" / "keel.yaml"),
                                     freeze_gc=False)) as client:
        bare = client.post("/v1/models/trees:explain", json=row)
    assert bare.status_code == 422
    assert "monitoring.reference" in bare.json()["error"]
    with TestClient(build_server_app(load_spec(tmp_path / "off" / "keel.yaml"),
                                     freeze_gc=False)) as client:
        off = client.post("/v1/models/trees:explain", json=row)
        assert client.post("/v1/models/trees:predict", json=row).status_code == 200
    assert off.status_code == 404 and "explain.enabled" in off.json()["error"]


FAKES = Path(__file__).resolve().parents[1] / "fixtures"
ADDER_SPEC = """\
service: {{name: adder, owners: [ml@example.com]}}
models:
  - name: adder
    runtime: python
    artifact: "fakes:total"
    options: {{path: "{fx}"}}
contract:
  inputs: [{{name: a, type: float}}, {{name: b, type: integer}}]
monitoring: {{reference: reference.csv}}
explain: {{max_evaluations: 200, timeout_ms: {timeout}}}
"""


def _adder(root: Path, timeout: float) -> Path:
    root.mkdir()
    rng = np.random.default_rng(4)
    (root / "reference.csv").write_text("a,b\n" + "".join(
        f"{rng.normal(10, 2):.3f},{int(rng.integers(0, 20))}\n" for _ in range(300)))
    (root / "keel.yaml").write_text(ADDER_SPEC.format(fx=FAKES, timeout=timeout))
    keel(root, "spec", "validate")
    return root


def test_a_model_without_an_exact_method_gets_the_bounded_permutation(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from keelwork.interfaces.http.server import build_server_app
    from keelwork.spec import load_spec

    project = _adder(tmp_path / "adder", 60_000)
    with TestClient(build_server_app(load_spec(project / "keel.yaml"),
                                     freeze_gc=False)) as client:
        got = client.post("/v1/models/adder:explain",
                          json={"instances": [{"a": 14.0, "b": 3}]})
    assert got.status_code == 200, got.text
    e = got.json()["explanations"][0]
    assert e["method"] == "permutation" and e["output"] == "prediction"
    assert 0 < e["evaluations"] <= 200
    assert e["output_value"] == pytest.approx(17.0)
    assert sum(e["attributions"].values()) == pytest.approx(
        e["output_value"] - e["expected_value"], abs=1e-9)
    # the model adds its inputs: each attribution is the input minus the background's mean,
    # which the expected value (the background's mean sum) bounds
    assert e["attributions"]["a"] + e["attributions"]["b"] == pytest.approx(
        17.0 - e["expected_value"], abs=1e-9)
    assert e["attributions"]["a"] > 0 > e["attributions"]["b"]


def test_a_model_without_an_exact_method_gets_a_permutation_reliance_baseline(
        tmp_path: Path) -> None:
    """The adder (a Python function: no exact explainer) gets its reference's reliance
    baseline from the permutation explainer; answers explained like the reference rows stay
    near it, answers whose ``b`` is far from the reference's lean on ``b``: shifted."""
    from starlette.testclient import TestClient

    from keelwork.interfaces.http.server import build_server_app
    from keelwork.spec import load_spec

    project = _adder(tmp_path / "adder", 60_000)
    path = project / "keel.yaml"
    rng = np.random.default_rng(9)

    def view(instances: list[dict[str, Any]]) -> dict[str, Any]:
        with TestClient(build_server_app(load_spec(path), freeze_gc=False,
                                         monitor_interval_s=0)) as client:
            got = client.post("/v1/models/adder:explain", json={"instances": instances})
            assert got.status_code == 200, got.text
        run = json.loads(keel(project, "monitor", "run", "--window", "1d", "--since", "2d",
                              "--json").stdout)
        return next(w["attributions"] for w in run["windows"] if "attributions" in w)

    ordinary = view([{"a": round(float(rng.normal(10, 2)), 3), "b": int(rng.integers(0, 20))}
                     for _ in range(40)])["reference"]
    assert ordinary["explained"] == 40  # the baseline's rows (PERMUTATION_ROWS)
    assert ordinary["shifted"] is False, ordinary
    far = view([{"a": 10.0, "b": 400} for _ in range(100)])["reference"]
    assert far["shifted"] is True and far["window_top"] == "b", far


def test_past_its_timeout_an_explanation_is_a_504(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from keelwork.interfaces.http.server import build_server_app
    from keelwork.spec import load_spec

    project = _adder(tmp_path / "slow", 0.001)  # the prediction alone takes longer
    with TestClient(build_server_app(load_spec(project / "keel.yaml"),
                                     freeze_gc=False)) as client:
        got = client.post("/v1/models/adder:explain",
                          json={"instances": [{"a": 14.0, "b": 3}]})
    assert got.status_code == 504, got.text
    assert "explain.timeout_ms" in got.json()["error"]


def test_keys_with_the_predict_scope_may_explain(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from keelwork.interfaces.http.server import build_server_app
    from keelwork.spec import load_spec

    project = tmp_path / "keyed"
    _tree_project(project)
    spec = project / "keel.yaml"
    spec.write_text(spec.read_text() + "guards: {require_api_key: true}\n")
    predict = keel(project, "keys", "create", "--scope", "predict", "--name", "app").stdout
    feedback = keel(project, "keys", "create", "--scope", "feedback", "--name", "lab").stdout
    row = {"instances": [{"income": 50.0, "debt": 3.0}]}
    with TestClient(build_server_app(load_spec(spec), freeze_gc=False)) as client:
        anonymous = client.post("/v1/models/trees:explain", json=row)
        wrong = client.post("/v1/models/trees:explain", json=row,
                            headers={"authorization": f"Bearer {feedback.strip()}"})
        allowed = client.post("/v1/models/trees:explain", json=row,
                              headers={"authorization": f"Bearer {predict.strip()}"})
    assert anonymous.status_code == 401
    assert wrong.status_code == 403
    assert allowed.status_code == 200, allowed.text

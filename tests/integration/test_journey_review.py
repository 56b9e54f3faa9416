"""A user's journey with the human review queue: an iris classifier served with a ``review``
section; ``keel review fill`` queues the most uncertain answers; two reviewers judge (one item
twice, so their agreement is measured); a verdict becomes the prediction's label at once and
is audited; unknown ids are refused; the queue exports as Label Studio tasks and Argilla
records."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from starlette.testclient import TestClient

from fixtures.models import iris_data, sklearn_iris
from journey import keel
from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.label_store import LabelStore
from keelwork.interfaces.http.server import build_server_app
from keelwork.spec import load_spec

SPEC = """\
service: {{name: flowers, owners: [t@example.com]}}
models:
  - name: iris
    runtime: sklearn
    artifact: {artifact}
    options: {{feature_names: [sepal_length, sepal_width, petal_length, petal_width]}}
contract:
  inputs:
    - {{name: sepal_length, type: float}}
    - {{name: sepal_width, type: float}}
    - {{name: petal_length, type: float}}
    - {{name: petal_width, type: float}}
review:
  budget_per_day: 6
  random_share: 0.0
  double_label_share: 1.0
"""
NAMES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


def test_review_queue_from_fill_to_labels(tmp_path: Path) -> None:
    model = sklearn_iris(tmp_path)
    (tmp_path / "keel.yaml").write_text(SPEC.format(artifact=model.artifact))
    keel(tmp_path, "spec", "validate")
    x, _ = iris_data()
    with TestClient(build_server_app(load_spec(tmp_path / "keel.yaml"),
                                     freeze_gc=False)) as client:
        rows = [dict(zip(NAMES, map(float, r), strict=True)) for r in x[::3]]
        assert client.post("/v1/models/iris:predict",
                           json={"instances": rows}).status_code == 200
    filled = json.loads(keel(tmp_path, "review", "fill", "--json").stdout)
    assert filled["queued"] == {"uncertain": 6} and filled["budget_left"] == 0
    # The budget is per day: a second fill queues nothing.
    again = json.loads(keel(tmp_path, "review", "fill", "--json").stdout)
    assert again["queued"] == {}

    first = json.loads(keel(tmp_path, "review", "next", "--reviewer", "ana", "--json").stdout)
    assert first["reason"] == "uncertain" and set(first["inputs"]) == set(NAMES)
    pid = first["prediction_id"]
    keel(tmp_path, "review", "label", pid, "1", "--reviewer", "ana")
    twice = keel(tmp_path, "review", "label", pid, "2", "--reviewer", "ana", check=False)
    assert twice.returncode != 0 and "judged" in twice.stdout + twice.stderr
    # Ana is not given it twice; Bo is (every item is double-labelled here).
    assert json.loads(keel(tmp_path, "review", "next", "--reviewer", "ana", "--json")
                      .stdout)["prediction_id"] != pid
    assert json.loads(keel(tmp_path, "review", "next", "--reviewer", "bo", "--json")
                      .stdout)["prediction_id"] == pid
    keel(tmp_path, "review", "label", pid, "2", "--reviewer", "bo")
    stats = json.loads(keel(tmp_path, "review", "stats", "--json").stdout)
    assert stats["items"] == {"done": 1, "open": 5}
    assert stats["agreement"] == [{"reviewers": ["ana", "bo"], "items": 1, "agreement": 0.0,
                                   "kappa": 0.0}]
    # The verdict is the prediction's label now, and both verdicts are audited.
    audited = json.loads(keel(tmp_path, "audit", "show", "--action", "review.label",
                              "--json").stdout)
    assert [(e["actor"], e["target"]) for e in audited] == [("ana", pid), ("bo", pid)]
    engine = make_engine(load_spec(tmp_path / "keel.yaml").storage_url)
    stored = LabelStore(engine).get(pid)
    engine.dispose()
    assert stored is not None and (stored.label, stored.source) == (2, "review:bo")
    refused = keel(tmp_path, "review", "label", "no-such-id", "1", "--reviewer", "ana",
                   check=False)
    assert refused.returncode != 0 and "not in the review queue" in refused.stdout + \
        refused.stderr
    tasks = json.loads(keel(tmp_path, "review", "export", "--format", "label-studio").stdout)
    assert len(tasks) == 6 and tasks[0]["data"]["keelwork"]["model"] == "iris"
    records = json.loads(keel(tmp_path, "review", "export", "--format", "argilla").stdout)
    assert set(records[0]) == {"fields", "metadata", "suggestions"}


def test_verdicts_completed_in_label_studio_come_back_as_labels(tmp_path: Path) -> None:
    """fill -> export -> a person labels in Label Studio (the file edited as its JSON export
    is) -> import: the verdicts are labels (``keel log export --with-labels`` shows them), a
    task for an unknown prediction is refused naming its record, the others are kept."""
    model = sklearn_iris(tmp_path)
    (tmp_path / "keel.yaml").write_text(SPEC.format(artifact=model.artifact).replace(
        "double_label_share: 1.0", "double_label_share: 0.0"))
    x, _ = iris_data()
    with TestClient(build_server_app(load_spec(tmp_path / "keel.yaml"),
                                     freeze_gc=False)) as client:
        rows = [dict(zip(NAMES, map(float, r), strict=True)) for r in x[::5]]
        assert client.post("/v1/models/iris:predict",
                           json={"instances": rows}).status_code == 200
    keel(tmp_path, "review", "fill")
    keel(tmp_path, "review", "export", "--format", "label-studio", "--out", "tasks.json")
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    assert len(tasks) == 6
    for i, task in enumerate(tasks[:3]):  # three labelled in Label Studio, by user 7
        task["annotations"] = [{"id": i, "completed_by": {"id": 7, "email": "cy@example.com"},
                                "was_cancelled": False, "result": [
                                    {"from_name": "label", "to_name": "input",
                                     "type": "choices", "value": {"choices": ["2"]}}]}]
    tasks[4]["data"]["keelwork"]["prediction_id"] = "0" * 26  # not a queued prediction
    tasks[4]["annotations"] = tasks[0]["annotations"]
    (tmp_path / "done.json").write_text(json.dumps(tasks))
    out = keel(tmp_path, "review", "import", "done.json", "--format", "label-studio",
               check=False)
    assert out.returncode == 1
    assert f"record 5 annotation 1 ({'0' * 26} by label-studio:cy@example.com): refused" \
        in out.stdout and "not in the review queue" in out.stdout
    assert "3 labelled, 1 refused, 2 skipped" in out.stdout
    keel(tmp_path, "log", "export", "--with-labels", "--format", "csv", "--out", "log.csv")
    with (tmp_path / "log.csv").open() as f:
        labelled = {r["id"]: r for r in csv.DictReader(f) if r["label"]}
    wanted = {t["data"]["keelwork"]["prediction_id"] for t in tasks[:3]}
    assert set(labelled) == wanted
    assert {(r["label"], r["label_source"]) for r in labelled.values()} == {
        ("2", "review:label-studio:cy@example.com")}
    # Again: nothing changes, nothing is refused twice over what was recorded.
    again = json.loads(keel(tmp_path, "review", "import", "done.json", "--format",
                            "label-studio", "--json", check=False).stdout)
    assert sorted(r["outcome"] for r in again) == ["already"] * 3 + ["refused"] + \
        ["skipped"] * 2


PII_SPEC = """\
service: {{name: private, owners: [t@example.com]}}
models:
  - name: moody
    runtime: python
    artifact: "pii_models:moody"
    options: {{path: "{fixtures}"}}
contract:
  inputs:
    - {{name: email, type: string, pii: pseudonymise}}
    - {{name: phone, type: string, required: false, pii: drop}}
    - {{name: note, type: text, max_length: 200}}
    - {{name: x, type: float, min: 0, max: 10}}
guards:
  pii_redaction: true
review: {{budget_per_day: 3}}
"""


def test_the_review_page_shows_only_what_the_redacted_log_holds(tmp_path: Path) -> None:
    email, phone = "zzcanary.person@example.org", "+44 20 7946 0958"
    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    (tmp_path / "keel.yaml").write_text(PII_SPEC.format(fixtures=fixtures))
    resolved = load_spec(tmp_path / "keel.yaml")
    with TestClient(build_server_app(resolved, freeze_gc=False)) as client:
        body = {"instances": [{"email": email, "phone": phone, "x": 1,
                               "note": f"call me on {phone} or write to {email}"}]}
        assert client.post("/v1/models/moody:predict", json=body).status_code == 200
    assert json.loads(keel(tmp_path, "review", "fill", "--json").stdout)["queued"] == {
        "random": 1}
    with TestClient(build_server_app(resolved, freeze_gc=False)) as client:
        page = client.get("/review")
        api = client.get("/v1/review/next").json()
    assert page.status_code == 200 and "call me on" in page.text
    for canary in ("zzcanary", "7946"):
        assert canary not in page.text and canary not in json.dumps(api)
    assert "phone" not in api["item"]["inputs"]  # dropped: not stored, not shown

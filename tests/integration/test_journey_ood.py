"""A user's journey with the out-of-distribution guard: keel.yaml names reference data and
turns the guard on; ``keel serve`` fits the detector at start; an ordinary request is
answered, one unlike anything in the reference is refused (reject) or answered and marked in
the log (flag), and counted on /metrics."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

from starlette.testclient import TestClient

from journey import keel
from keelwork.interfaces.http.server import build_server_app
from keelwork.spec import load_spec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SPEC = """\
service: {{name: odd, owners: [t@example.com]}}
models:
  - name: adder
    runtime: python
    artifact: "fakes:total"
    options: {{path: "{fx}"}}
contract:
  inputs: [{{name: a, type: float}}, {{name: b, type: integer}}]
monitoring:
  reference: reference.csv
guards:
  out_of_distribution: {guard}
"""


def _project(root: Path, guard: str) -> Path:
    root.mkdir(parents=True)
    rng = random.Random(5)
    with (root / "reference.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b"])
        for _ in range(3000):
            w.writerow([round(rng.gauss(10, 2), 3), rng.randint(0, 20)])
    (root / "keel.yaml").write_text(SPEC.format(fx=FIXTURES, guard=guard))
    keel(root, "spec", "validate")
    return root


def test_reject_refuses_an_instance_unlike_the_reference(tmp_path: Path) -> None:
    project = _project(tmp_path / "reject", "{action: reject, target_fpr: 0.01}")
    with TestClient(build_server_app(load_spec(project / "keel.yaml"),
                                     freeze_gc=False)) as client:
        ok = client.post("/v1/models/adder:predict", json={"instances": [{"a": 10.5, "b": 7}]})
        assert ok.status_code == 200, ok.text
        odd = client.post("/v1/models/adder:predict",
                          json={"instances": [{"a": 10.5, "b": 7}, {"a": 9000.0, "b": 7}]})
        assert odd.status_code == 422
        assert [(d["path"], d["rule"]) for d in odd.json()["details"]] == [
            ("instances[1]", "out_of_distribution")]
        metrics = client.get("/metrics").text
    assert 'keelwork_guard_hits_total{action="reject",guard="out_of_distribution",' \
           'model="adder"} 1.0' in metrics
    refused = [json.loads(line) for line in keel(project, "log", "tail", "--json").stdout
               .splitlines() if line.strip()]
    assert {r["guard"] for r in refused if r["status"] == "rejected"} == {"out_of_distribution"}


def test_an_array_instance_is_judged_as_its_record(tmp_path: Path) -> None:
    """``[a, b]`` in the contract's order is the record ``{a, b}``: refused alike."""
    project = _project(tmp_path / "array", "{action: reject, target_fpr: 0.01}")
    with TestClient(build_server_app(load_spec(project / "keel.yaml"),
                                     freeze_gc=False)) as client:
        ok = client.post("/v1/models/adder:predict", json={"instances": [[10.5, 7]]})
        assert ok.status_code == 200, ok.text
        odd = client.post("/v1/models/adder:predict", json={"instances": [[10.5, 7], [9000.0, 7]]})
        assert odd.status_code == 422, odd.text
        assert [(d["path"], d["rule"]) for d in odd.json()["details"]] == [
            ("instances[1]", "out_of_distribution")]


def test_flag_answers_and_marks_the_prediction(tmp_path: Path) -> None:
    project = _project(tmp_path / "flag", "true")
    with TestClient(build_server_app(load_spec(project / "keel.yaml"),
                                     freeze_gc=False)) as client:
        got = client.post("/v1/models/adder:predict",
                          json={"instances": [{"a": 10.5, "b": 7}, {"a": -500.0, "b": 7}]})
        assert got.status_code == 200, got.text
    logged = [json.loads(line) for line in keel(project, "log", "tail", "--json").stdout
              .splitlines() if line.strip()]
    assert sorted(str(r["guard"]) for r in logged) == ["None", "out_of_distribution"]


def test_the_guard_without_reference_data_is_a_spec_error(tmp_path: Path) -> None:
    tmp_path.joinpath("keel.yaml").write_text(
        SPEC.format(fx=FIXTURES, guard="true").replace("monitoring:\n  reference: "
                                                       "reference.csv\n", ""))
    done = keel(tmp_path, "spec", "validate", check=False)
    assert done.returncode != 0
    assert "monitoring.reference" in done.stdout + done.stderr

"""``keel test`` refuses a fairness test that would measure nothing: with no positive class
known (a model that does not name its classes, or has more than two), every group's rates were
0.0 and the test passed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from journey import keel
from keelwork.adapters.stores.registry_store import open_registry
from keelwork.service.registration import register_model
from rollout_project import FIXTURES

pytestmark = pytest.mark.slow

SPEC = f"""\
service: {{name: loans, owners: [t@example.com]}}
models:
  - name: loans
    runtime: python
    artifact: "faulty_models:approves_men"
    options: {{path: "{FIXTURES}"}}
    tests: t.yaml
contract:
  inputs:
    - {{name: score, type: float}}
    - {{name: sex, type: string}}
"""

TESTS = """\
kind: keel-tests
version: 1
{positive}
tests:
  - {{name: parity, kind: fairness, data: rows.jsonl, label: approved, protected: sex,
     metric: demographic_parity, max_difference: 0.1}}
"""


def test_a_fairness_test_without_a_positive_class_is_refused(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text(SPEC)
    (tmp_path / "rows.jsonl").write_text("".join(
        json.dumps({"score": 0.9, "sex": "MF"[i % 2], "approved": "yes"}) + "\n"
        for i in range(40)))
    registry = open_registry(tmp_path)
    try:
        register_model(registry, "loans", "faulty_models:approves_men", "python",
                       options={"path": str(FIXTURES)})
    finally:
        registry.close()
    (tmp_path / "t.yaml").write_text(TESTS.format(positive=""))
    done = keel(tmp_path, "test", "loans@1", check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    why = " ".join(done.stderr.split())
    assert "test 'parity': a fairness test compares the rates of the positive class" in why
    assert "set 'positive' in the tests file" in why and "Traceback" not in why

    (tmp_path / "t.yaml").write_text(TESTS.format(positive="positive: 'yes'"))
    done = keel(tmp_path, "test", "loans@1", "--json", check=False)
    assert done.returncode == 1, done.stdout + done.stderr  # measured: men only are approved
    result = json.loads(done.stdout)["results"][0]
    assert result["details"]["demographic_parity_difference"] == pytest.approx(1.0)

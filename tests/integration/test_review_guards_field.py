"""``review.guards``: predictions a named guard flagged always enter the review queue (reason
``guard``); without the guard named, the same log queues none of them for that reason."""

from __future__ import annotations

import json
from pathlib import Path

from starlette.testclient import TestClient

from journey import keel
from keelwork.interfaces.http.server import build_server_app
from keelwork.spec import load_spec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SPEC = """\
service: {{name: sums, owners: [t@example.com]}}
models:
  - name: adder
    runtime: python
    artifact: "fakes:total"
    options: {{path: "{fx}"}}
contract:
  inputs:
    - {{name: a, type: float}}
    - {{name: b, type: integer}}
  outputs:
    - {{name: total, type: float, max: 10}}
  output_policy: warn
review: {{budget_per_day: 5, random_share: 0, guards: {guards}}}
"""


def _queued(project: Path, guards: str) -> dict[str, int]:
    project.mkdir()
    (project / "keel.yaml").write_text(SPEC.format(fx=FIXTURES, guards=guards))
    with TestClient(build_server_app(load_spec(project / "keel.yaml"), freeze_gc=False,
                                     monitor_interval_s=0)) as client:
        for a in (1.0, 2.0, 20.0, 30.0):  # the last two answer past the output contract's max
            r = client.post("/v1/models/adder:predict", json={"instances": [{"a": a, "b": 1}]})
            assert r.status_code == 200, r.text
    queued: dict[str, int] = json.loads(keel(project, "review", "fill", "--json").stdout)[
        "queued"]
    return queued


def test_review_guards_queue_what_the_named_guard_flagged(tmp_path: Path) -> None:
    named = _queued(tmp_path / "named", "[output_contract]")
    assert named["guard"] == 2  # the two answers past the contract
    unnamed = _queued(tmp_path / "unnamed", "[]")
    assert "guard" not in unnamed and sum(unnamed.values()) == sum(named.values())

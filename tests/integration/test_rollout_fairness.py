"""The fairness gate end to end in one process: a gateway, the store, the controller.

A canary of a challenger that never approves women (``faulty_models:approves_men``) against a
champion that approves on the score alone: labels arrive for every answer, the controller's
analysis reads each arm's labelled answers with their protected field and aborts the rollout
on ``max_fairness_difference``; traffic returns to the champion. A challenger as fair as the
champion (``approves``) is promoted through the same gate.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

from keelwork.adapters.stores.label_store import LabelStore
from keelwork.service.assembly import Service, open_service
from keelwork.service.gateway.context import RequestContext
from keelwork.service.registration import register_model
from keelwork.spec.loader import load_spec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
INTERVAL = 1.0

SPEC = """\
service: {{name: loans, owners: [t@example.com]}}
models:
  - name: loans
    runtime: python
    artifact: "faulty_models:approves"
    options: {{path: "{fx}"}}
    batching: {{max_batch_size: 32, max_wait_ms: 1}}
    timeout_ms: 10000
contract:
  inputs:
    - {{name: score, type: float}}
    - {{name: sex, type: category, categories: [F, M]}}
  outputs:
    - {{name: label, type: category, categories: ["no", "yes"]}}
storage: {{url: "sqlite:///{db}"}}
fairness:
  protected: [sex]
  positive_label: "yes"
  min_group_size: 20
rollout:
  strategy: canary
  steps: [50, 100]
  interval: "{interval}s"
  min_requests: 40
  max_failures: 1
  gates:
    max_error_rate: 0.5
    max_contract_violation_rate: 0.5
    max_fairness_difference: 0.2
"""


def _service(tmp: Path) -> Service:
    path = tmp / "keel.yaml"
    path.write_text(SPEC.format(fx=FIXTURES, db=tmp / "keel.db", interval=INTERVAL))
    return open_service(load_spec(path), rollout_poll_s=0.05)


async def _traffic(service: Service, labels: LabelStore, seconds: float,
                   rng: random.Random) -> set[int]:
    """Requests for ``seconds``, each answer's truth sent back at once; the versions seen."""
    seen: set[int] = set()
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        batch = [{"score": rng.random(), "sex": rng.choice("FM")} for _ in range(8)]
        answers = []
        for inst in batch:  # one request each: the canary splits requests
            r = await service.gateway.predict("loans", None, [inst], RequestContext())
            seen.add(r.version)
            answers.append((r.prediction_ids[0], "yes" if inst["score"] > 0.5 else "no"))
        await asyncio.to_thread(labels.submit, [{"prediction_id": pid, "label": truth}
                                                for pid, truth in answers])
        await asyncio.sleep(0.01)
    return seen


def _run(tmp: Path, challenger_fn: str) -> tuple[str, list[dict], set[int], int]:
    service = _service(tmp)
    challenger = register_model(service.registry, "loans", f"faulty_models:{challenger_fn}",
                                "python", options={"path": str(FIXTURES)}).version
    labels = LabelStore(service.prediction_log.engine)
    labels.ensure_schema()
    rng = random.Random(7)

    async def scenario() -> tuple[str, list[dict], set[int]]:
        await service.start()
        await service.gateway.start()
        try:
            service.rollouts.start("loans", challenger, service.resolved.spec.rollout,
                                   interval=f"{INTERVAL}s", actor="tester")
            for _ in range(30):
                await _traffic(service, labels, INTERVAL / 2, rng)
                if service.rollouts.status("loans")[0].phase != "progressing":
                    break
            rollout, events = service.rollouts.status("loans")
            after = await _traffic(service, labels, 0.3, rng)
            return rollout.phase, [{"action": e.action, "reason": e.reason,
                                    "decision": e.decision} for e in events], after
        finally:
            await service.gateway.close()
            await service.close()

    phase, events, after = asyncio.run(scenario())
    return phase, events, after, challenger


def test_an_unfair_canary_is_rolled_back_by_the_fairness_gate(tmp_path: Path) -> None:
    phase, events, after, _ = _run(tmp_path, "approves_men")
    assert phase == "aborted", [(e["action"], e["reason"]) for e in events]
    abort = events[-1]
    [gate] = [g for g in abort["decision"]["gates"] if g["gate"] == "fairness_difference"]
    assert gate["status"] == "fail", gate
    assert gate["challenger"] > 0.2 and gate["champion"] < 0.2, gate
    assert gate["why"].startswith("sex "), gate
    assert "fairness_difference" in abort["reason"]
    assert after == {1}  # traffic is back on the champion


def test_a_fair_canary_passes_the_fairness_gate(tmp_path: Path) -> None:
    phase, events, after, challenger = _run(tmp_path, "approves")
    assert phase == "promoted", [(e["action"], e["reason"]) for e in events]
    judged = [e for e in events if e["decision"] and e["decision"].get("gates")]
    assert judged, events
    for e in judged:
        [gate] = [g for g in e["decision"]["gates"] if g["gate"] == "fairness_difference"]
        assert gate["status"] == "pass", gate
    assert after == {challenger}

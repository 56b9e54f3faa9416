"""A canary of a regressor judged on labels: the quality gates regression needs.

Real data: scikit-learn's bundled diabetes set (442 patients, disease progression a year
later). The champion is a ridge regression (MAE ~45 on held-out rows); the challenger answers
a constant (the training mean, MAE ~65 here; ~120 in the issue's report). Labels arrive
through the label store while the canary runs, as ``POST /v1/feedback`` stores them; the
running rollout controller must roll the constant back on ``max_mae`` and
``max_relative_mae_increase`` with the measured values, where ``min_accuracy`` (exact match of
real numbers) used to pass it at 0.0 vs 0.0.

Labels are submitted right after each answer, so an interval's labelled count trails its
request count by the answers in flight; the interval (1 s) is long enough that the first one
holds far more than ``min_requests`` of both, rather than pausing as inconclusive.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from keelwork.service.assembly import open_service
from keelwork.service.gateway.context import RequestContext
from keelwork.service.registration import register_model
from keelwork.spec.loader import load_spec

pytest.importorskip("sklearn")
pytest.importorskip("skops")

FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
SPEC = """\
service: {{name: diab, owners: [t@example.com]}}
models:
  - name: diab
    runtime: sklearn
    artifact: ridge.skops
    batching: {{max_batch_size: 32, max_wait_ms: 1}}
contract:
  inputs:
{inputs}
  outputs:
    - {{name: progression, type: float}}
storage: {{url: "{url}"}}
rollout:
  strategy: canary
  steps: [50, 100]
  interval: "1s"
  min_requests: 20
  max_failures: 1
  gates:
    max_error_rate: 0.05
    max_contract_violation_rate: 0.05
    {gates}
"""


def _project(tmp_path: Path, store_url: str, gates: str) -> tuple[Path, Any]:
    import skops.io as sio
    from sklearn.datasets import load_diabetes
    from sklearn.dummy import DummyRegressor
    from sklearn.linear_model import Ridge

    frame = load_diabetes(as_frame=True, scaled=False).frame.sample(frac=1.0, random_state=0)
    train, live = frame.iloc[:300], frame.iloc[300:]
    sio.dump(Ridge(alpha=0.1).fit(train[FEATURES], train["target"]), tmp_path / "ridge.skops")
    sio.dump(DummyRegressor().fit(train[FEATURES], train["target"]),
             tmp_path / "constant.skops")
    inputs = "\n".join(f"    - {{name: {f}, type: float}}" for f in FEATURES)
    (tmp_path / "keel.yaml").write_text(SPEC.format(inputs=inputs, url=store_url,
                                                    gates=gates))
    return tmp_path / "keel.yaml", live


def _canary(tmp_path: Path, store_url: str, gates: str,
            challenger: str = "constant.skops") -> list[Any]:
    from keelwork.adapters.stores.label_store import LabelStore
    from keelwork.errors import KeelworkError

    path, live = _project(tmp_path, store_url, gates)
    service = open_service(load_spec(path), rollout_poll_s=0.05)
    v2 = register_model(service.registry, "diab", tmp_path / challenger, "sklearn",
                        source_dir=tmp_path).version
    labels = LabelStore(service.registry.engine)
    labels.ensure_schema()
    rows = live[FEATURES].to_dict("records")
    truth = live["target"].tolist()

    async def scenario() -> list[Any]:
        await service.start()
        await service.gateway.start()
        try:
            service.rollouts.start("diab", v2, service.resolved.spec.rollout, actor="tester")
            # Until the controller acts (or 30 s: a loaded machine serves slowly).
            stop = asyncio.get_running_loop().time() + 30.0

            async def worker(w: int) -> None:
                i = w
                while asyncio.get_running_loop().time() < stop:
                    i = (i + 7) % len(rows)
                    try:
                        r = await service.gateway.predict("diab", None, [rows[i]],
                                                          RequestContext())
                    except KeelworkError:
                        continue
                    await asyncio.to_thread(labels.submit, [
                        {"prediction_id": r.prediction_ids[0], "label": truth[i]}])
                    if service.rollouts.status("diab")[0].phase != "progressing":
                        return

            await asyncio.gather(*(worker(w) for w in range(6)))
            return list(service.rollouts.status("diab")[1])
        finally:
            await service.gateway.close()
            await service.close()

    return asyncio.run(scenario())


@pytest.mark.parametrize("gates,gate", [
    ("max_mae: 55", "mae"),
    ("max_relative_mae_increase: 0.2", "relative_mae_increase"),
])
def test_a_constant_regressor_is_rolled_back_on_its_error(
        tmp_path: Path, store_url: str, gates: str, gate: str) -> None:
    events = _canary(tmp_path, store_url, gates)
    last = events[-1]
    assert last.action == "abort", [(e.action, e.reason) for e in events]
    assert last.actor == "keel-rollout-controller"
    failed = {g["gate"]: g for g in last.decision["gates"] if g["status"] == "fail"}
    assert gate in failed, last.decision
    champion, challenger = last.decision["champion"], last.decision["challenger"]
    # The measured errors: the ridge's ~45, the constant's well above it.
    assert champion["mae"] < 55 < challenger["mae"], (champion, challenger)
    if gate == "mae":
        assert failed["mae"]["challenger"] == challenger["mae"]
    else:
        increase = challenger["mae"] / champion["mae"] - 1
        assert failed[gate]["challenger"] == pytest.approx(increase)


def test_a_healthy_regressor_is_promoted_through_the_last_step(tmp_path: Path,
                                                               store_url: str) -> None:
    """At the 100 % step the champion answers nothing, so nothing of it is labelled in that
    step: the relative-error gate compares with its labelled answers since the rollout began
    (it used to pause, inconclusive, with all traffic on the challenger)."""
    events = _canary(tmp_path, store_url, "max_relative_mae_increase: 0.5", "ridge.skops")
    assert [e.action for e in events][-1] == "promote", [(e.action, e.reason) for e in events]
    last = events[-1].decision
    assert last["champion_baseline"] == "prediction log (latest answers)", last
    gate = next(g for g in last["gates"] if g["gate"] == "relative_mae_increase")
    assert gate["status"] == "pass" and abs(gate["challenger"]) < 0.5, gate


def test_min_accuracy_on_a_regressor_is_refused_before_it_can_pass(tmp_path: Path,
                                                                   store_url: str) -> None:
    from keelwork.errors import SpecError

    path, _ = _project(tmp_path, store_url, "min_accuracy: 0.0")
    with pytest.raises(SpecError, match="min_accuracy does not fit a regression model"):
        load_spec(path)

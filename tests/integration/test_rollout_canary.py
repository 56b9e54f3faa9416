"""Canary rollouts end to end in one process: a gateway, the store, the controller.

Fault-injecting challengers (tests/fixtures/faulty_models.py) must be rolled back within two
analysis intervals; a healthy one must be promoted; state survives a restart.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from keelwork.service.assembly import Service
from keelwork.service.registration import register_model
from rollout_project import load, make_project, open_project, register

INTERVAL = 0.2
POLL = 0.05


async def _serve(service: Service) -> None:
    await service.start()
    await service.gateway.start()


async def _stop(service: Service) -> None:
    await service.gateway.close()
    await service.close()


@pytest.mark.parametrize("fault,gate", [("errors", "error_rate"),
                                        ("slow", "p99_latency_ms"),
                                        ("drifts", "prediction_drift")])
def test_faulty_canary_is_rolled_back_within_two_intervals(
        tmp_path: Path, fault: str, gate: str) -> None:
    service = open_project(make_project(tmp_path), poll_s=POLL)
    challenger = register(service, fault)
    writes = _time_decision_writes(service)

    async def scenario() -> None:
        await _serve(service)
        stalls = _Stalls()
        probing = asyncio.create_task(stalls.run())
        try:
            r = service.rollouts.start("scorer", challenger, service.resolved.spec.rollout,
                                       interval=f"{INTERVAL}s", actor="tester")
            # Load until the controller decides (or 15 s): the time it takes is asserted below,
            # on the controller's decisions, with the timeline in the message.
            await load(service.gateway, 15.0, until=lambda: service.rollouts.status(
                "scorer")[0].phase != "progressing")
            rollout, events = service.rollouts.status("scorer")
            assert rollout.id == r.id and rollout.phase == "aborted", _timeline(events, writes)
            abort = events[-1]
            assert abort.action == "abort" and abort.actor == "keel-rollout-controller"
            assert abort.decision["challenger"]["requests"] >= 5  # judged on traffic
            # Within two analysis intervals of the fault (it is there from the canary's first
            # request): the second analysis aborts, one interval after the first (slack: the
            # store writes). The whole run gets a wider bound: the controller's pick-up and the
            # challenger's load take longer on a machine under CPU load.
            # (An interval in which the challenger got too few requests, on a machine under
            # load, holds without counting: it is no analysis of the fault.)
            # Times are the controller's decisions (the abort's is when traffic went back to the
            # champion), not the store's records. The controller analyses one decision at a time:
            # the next analysis runs one interval after the hold, or as soon as the hold is
            # stored (its transaction, audit entry and anchor file), whichever is later. On a
            # busy machine that write can wait for the prediction log writer's lock and the
            # disk (1.05 s and 1.24 s in CI), which is no analysis delay: it is timed here and
            # the bound adds it.
            judged = [e for e in events if (e.decision or {}).get("outcome") != "no_data"]
            assert [e.action for e in judged] == ["begin", "hold", "abort"], \
                _timeline(events, writes)
            hold_at = judged[1].decision["decided_at"]
            stored = next((end for start, end in writes if start >= hold_at), hold_at)
            # Likewise a stall of the machine itself: the probe's steps, a sleep on the loop
            # and a no-op in the thread pool where the controller reads the store, ran this
            # late (CI once: an analysis 1.29 s late, its store writes 14 ms). A controller slow
            # for its own reasons leaves the probe on time and still fails.
            decided = abort.decision["decided_at"] - max(hold_at + INTERVAL, stored)
            stall = stalls.during(hold_at, abort.decision["decided_at"])
            assert decided <= 0.5 + stall, _timeline(events, writes, decided, stall)
            # The whole run, begin to abort, less the time the controller's earlier decisions
            # (the hold; on a loaded machine, holds without data too) spent being stored.
            storing = sum(end - start for start, end in writes
                          if end <= abort.decision["decided_at"])
            assert abort.decision["decided_at"] - events[0].at - storing <= 2 * INTERVAL + 2.0, \
                _timeline(events, writes)
            # The failing value is recorded with the decision (Flagger #1810).
            # (On a busy machine a second gate, e.g. p99 latency, may fail alongside.)
            failed = {g["gate"]: g for g in abort.decision["gates"] if g["status"] == "fail"}
            assert gate in failed, abort.decision
            assert failed[gate]["challenger"] > failed[gate]["threshold"]
            # All traffic is back on the champion.
            after = await load(service.gateway, 0.2)
            assert set(after["by_version"]) == {r.champion}
            assert service.registry.resolve("scorer").version == r.champion
        finally:
            probing.cancel()
            await _stop(service)

    asyncio.run(scenario())


class _Stalls:
    """How late a trivial step ran, every 20 ms: a sleep on the event loop, then a no-op in
    the default thread pool (where the controller's store reads run): (wall start, seconds
    late) of each."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, float]] = []

    async def run(self) -> None:
        while True:
            start = time.time()
            await asyncio.sleep(0.02)
            await asyncio.to_thread(int)
            self.seen.append((start, time.time() - start - 0.02))

    def during(self, begin: float, end: float) -> float:
        """The latest a step that started between ``begin`` and ``end`` ran."""
        return max((late for start, late in self.seen if begin <= start <= end), default=0.0)


def _time_decision_writes(service: Service) -> list[tuple[float, float]]:
    """Wrap the controller's store writes: (start, end) wall times of each."""
    writes: list[tuple[float, float]] = []
    ops = service.rollout_controller.ops
    act = ops.act

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.time()
        try:
            return act(*args, **kwargs)
        finally:
            writes.append((start, time.time()))

    ops.act = timed  # type: ignore[method-assign]
    return writes


def _timeline(events: list[Any], writes: list[tuple[float, float]],
              late: float | None = None, stall: float = 0.0) -> str:
    """Where the time went, relative to the rollout's start (the assertion's message)."""
    t0 = events[0].at
    lines = [] if late is None else [
        f"abort analysed {late:.3f} s after its interval and the hold's write ended "
        f"(the machine's longest stall meanwhile: {stall:.3f} s)"]
    for e in events:
        decided = (e.decision or {}).get("decided_at")
        lines.append(f"  {e.action:<6} decided {'-' if decided is None else f'{decided - t0:.3f}'}"
                     f" stored {e.at - t0:.3f} outcome {(e.decision or {}).get('outcome')}")
    lines += [f"  write {s - t0:.3f} .. {e - t0:.3f}" for s, e in writes]
    return "\n".join(lines)


def test_healthy_canary_is_promoted_and_rollback_returns(tmp_path: Path) -> None:
    path = make_project(tmp_path)
    # The twin is as fast as the champion; on a machine under CPU load both arms' p99 passes
    # 50 ms and the twin is "worse" by noise (69.97 vs 69.85 ms), a hold that is not the
    # subject here (the slow challenger's test keeps the tight latency gate).
    path.write_text(path.read_text().replace("max_p99_latency_ms: 50",
                                             "max_p99_latency_ms: 2000"))
    service = open_project(path, poll_s=POLL)
    challenger = register(service, "good_twin")

    async def scenario() -> None:
        await _serve(service)
        try:
            r = service.rollouts.start("scorer", challenger, service.resolved.spec.rollout,
                                       interval=f"{INTERVAL}s", actor="tester")
            # Traffic until the rollout ends (two passing intervals), with a generous deadline:
            # on a busy machine an interval's analysis can land after a fixed load window.
            for _ in range(40):
                await load(service.gateway, INTERVAL)
                if service.rollouts.status("scorer")[0].phase != "progressing":
                    break
            rollout, events = service.rollouts.status("scorer")
            assert rollout.phase == "promoted", [(e.action, e.reason) for e in events]
            assert [e.action for e in events] == ["begin", "advance", "promote"], [
                (e.action, e.reason) for e in events]
            assert service.registry.resolve("scorer").version == challenger
            after = await load(service.gateway, 0.2)
            assert set(after["by_version"]) == {challenger}
            back = service.rollouts.rollback("scorer", actor="tester")
            assert back == r.champion
            await asyncio.sleep(3 * POLL)
            after = await load(service.gateway, 0.2)
            assert set(after["by_version"]) == {r.champion}
            assert service.rollouts.status("scorer")[0].phase == "rolled_back"
        finally:
            await _stop(service)

    asyncio.run(scenario())


def test_no_data_is_not_a_pass(tmp_path: Path) -> None:
    """Without traffic the canary holds at its first step; nothing is promoted."""
    service = open_project(make_project(tmp_path, min_requests=50), poll_s=POLL)
    challenger = register(service, "good_twin")

    async def scenario() -> None:
        await _serve(service)
        try:
            service.rollouts.start("scorer", challenger, service.resolved.spec.rollout,
                                   interval=f"{INTERVAL}s", actor="tester")
            await asyncio.sleep(4 * INTERVAL)
            rollout, events = service.rollouts.status("scorer")
            assert rollout.phase == "progressing" and rollout.step == 0
            holds = [e for e in events if e.action == "hold"]
            assert len(holds) >= 2
            assert all(e.decision["outcome"] == "no_data" for e in holds)
            assert rollout.failures == 0
        finally:
            await _stop(service)

    asyncio.run(scenario())


def test_live_accuracy_from_labels_rolls_a_wrong_canary_back(tmp_path: Path,
                                                             store_url: str) -> None:
    """Labels arrive through the label store while the canary runs; the challenger's answers
    (shifted) are wrong, so the accuracy gate fails with the measured values."""
    from keelwork.adapters.stores.label_store import LabelStore
    from keelwork.errors import KeelworkError
    from keelwork.service.gateway.context import RequestContext

    path = make_project(tmp_path, store_url)
    text = path.read_text().replace("max_prediction_drift: 0.5", "min_accuracy: 0.9")
    path.write_text(text)
    service = open_project(path, poll_s=POLL)
    challenger = register(service, "drifts")
    label_store = LabelStore(service.registry.engine)
    label_store.ensure_schema()

    async def scenario() -> None:
        await _serve(service)
        try:
            # An interval long enough for the labels to follow their answers under CPU load.
            service.rollouts.start("scorer", challenger, service.resolved.spec.rollout,
                                   interval="1s", actor="tester")
            # Until the abort (the workers stop then); generous for a machine under load.
            stop = asyncio.get_running_loop().time() + 15.0

            async def worker(w: int) -> None:
                i = 0
                while asyncio.get_running_loop().time() < stop:
                    i += 1
                    inst = {"a": float(i % 9), "b": w}
                    try:
                        r = await service.gateway.predict("scorer", None, [inst],
                                                          RequestContext())
                    except KeelworkError:
                        continue
                    truth = float(i % 9) + w  # what the healthy model answers
                    await asyncio.to_thread(label_store.submit, [
                        {"prediction_id": r.prediction_ids[0], "label": truth}])
                    if service.rollouts.status("scorer")[0].phase == "aborted":
                        return

            await asyncio.gather(*(worker(w) for w in range(6)))
            rollout, events = service.rollouts.status("scorer")
            assert rollout.phase == "aborted", [(e.action, e.reason) for e in events]
            gates = {g["gate"]: g for g in events[-1].decision["gates"]}
            acc = gates["accuracy"]
            assert acc["status"] == "fail" and acc["challenger"] == 0.0
            assert acc["champion"] == 1.0 and acc["threshold"] == 0.9
        finally:
            await _stop(service)

    asyncio.run(scenario())


def test_last_step_at_100_percent_compares_with_the_champions_logged_answers(
        tmp_path: Path) -> None:
    """Issue 11.3: at 100 % the champion answers nothing, so the prediction-drift gate had no
    data and the rollout paused "inconclusive" instead of promoting. The champion's side is
    now its latest answers in the prediction log, from before the step."""
    service = open_project(make_project(tmp_path, min_requests=20), poll_s=POLL)
    challenger = register(service, "good_twin")

    async def scenario() -> None:
        await _serve(service)
        try:
            r = service.rollouts.start("scorer", challenger, service.resolved.spec.rollout,
                                       interval="1h", actor="tester")  # analysed by hand
            await asyncio.sleep(4 * POLL)
            logged = 0
            while logged < 40:  # 50/50: both arms answer and are logged
                logged += (await load(service.gateway, 0.2, workers=8))["by_version"].get(
                    r.champion, 0)
            service.rollouts.act("scorer", "advance", actor="tester")
            deadline = asyncio.get_running_loop().time() + 10
            while (route := service.gateway.rollout_route("scorer")) is None or \
                    route.weight != 100:  # the controller routes the last step
                assert asyncio.get_running_loop().time() < deadline, "never routed"
                await asyncio.sleep(0.02)
            service.gateway.take_window("scorer")  # only the 100 % step's traffic counts
            answered: dict[int, int] = {}
            while answered.get(challenger, 0) < 40:
                for v, n in (await load(service.gateway, 0.2, workers=8))["by_version"].items():
                    answered[v] = answered.get(v, 0) + n
            assert set(answered) == {challenger}  # the champion answered nothing
            await service.rollout_controller.analyse("scorer")
            rollout, events = service.rollouts.status("scorer")
            decision = events[-1].decision
            assert rollout.phase == "promoted", [(e.action, e.reason) for e in events]
            assert decision["champion_baseline"] == "prediction log (latest answers)"
            assert decision["champion"]["requests"] >= 20
            drift = {g["gate"]: g for g in decision["gates"]}["prediction_drift"]
            assert drift["status"] == "pass" and drift["challenger"] is not None
        finally:
            await _stop(service)

    asyncio.run(scenario())


def test_a_version_that_cannot_load_is_refused_before_the_rollout_starts(
        tmp_path: Path) -> None:
    """Issue 13.8: the rollout was stored "progressing 5 %" although it could never route."""
    from keelwork.errors import ModelLoadError
    from rollout_project import FIXTURES

    service = open_project(make_project(tmp_path), poll_s=POLL)
    try:
        broken = register_model(service.registry, "scorer", "faulty_models:no_such_function",
                                           "python", options={"path": str(FIXTURES)},
                                           verify=False).version
        with pytest.raises(ModelLoadError, match=f"Version {broken} of 'scorer' cannot be "
                                                 "rolled out: it does not load"):
            service.rollouts.start("scorer", broken, service.resolved.spec.rollout,
                                   actor="tester")
        assert service.rollouts.store.latest("scorer") is None  # nothing stored
    finally:
        asyncio.run(service.close())


def test_a_load_that_fails_during_a_rollout_backs_off_and_aborts(tmp_path: Path) -> None:
    """Issue 13.8: after a restart the controller retried the failing load every poll,
    forever. It must back off and abort after max_failures (2), audited; traffic stays on
    the champion meanwhile."""
    from rollout_project import FIXTURES

    service = open_project(make_project(tmp_path), poll_s=POLL)
    broken = register_model(service.registry, "scorer", "faulty_models:no_such_function", "python",
                                       options={"path": str(FIXTURES)}, verify=False).version
    # As stored before the version broke (or by an older keelwork): no load check.
    from keelwork.core.rollout.state import Rollout

    service.rollouts.store.create(Rollout("scorer", 1, broken, interval_s=3600.0,
                                          min_requests=5, max_failures=2), actor="tester")
    attempts: list[int] = []
    real_load = service.gateway._load

    def counting_load(target: object) -> object:
        attempts.append(getattr(target, "version", 0))
        return real_load(target)  # type: ignore[arg-type]

    service.gateway._load = counting_load

    async def scenario() -> None:
        await _serve(service)
        try:
            result = await load(service.gateway, 2.0, workers=4)
            assert result["failures"] == [] and set(result["by_version"]) == {1}
            rollout, events = service.rollouts.status("scorer")
            assert rollout.phase == "aborted", [(e.action, e.reason) for e in events]
            abort = events[-1]
            assert abort.actor == "keel-rollout-controller"
            assert "could not be loaded (failure 2/2)" in abort.reason
            assert "no_such_function" in abort.reason
            assert abort.decision["outcome"] == "load_failed"
            assert rollout.failures == 2  # status agrees with the event
            audit = service.registry.audit.query(target="scorer")  # type: ignore[union-attr]
            assert [e.action for e in audit][-1] == "rollout.abort"
        finally:
            await _stop(service)

    asyncio.run(scenario())
    # Two tries (backed off), not one per 50 ms poll for 2 s.
    assert attempts.count(broken) == 2, attempts


def test_hand_promote_of_a_version_whose_rollout_was_aborted_needs_force(
        tmp_path: Path) -> None:
    """Issue 12.9: no warning was given. Without force it is refused; with force the
    warning is recorded in the promote's event and its audit entry."""
    from keelwork.errors import TransitionError

    service = open_project(make_project(tmp_path), poll_s=POLL)
    try:
        v2 = register(service, "good_twin")
        ops, section = service.rollouts, service.resolved.spec.rollout
        first = ops.start("scorer", v2, section, actor="a")
        ops.act("scorer", "abort", actor="a", reason="p99 doubled")
        ops.start("scorer", v2, section, actor="a")
        with pytest.raises(TransitionError, match=rf"rollout {first.id} was aborted: "
                                                  r"p99 doubled.*--force"):
            ops.act("scorer", "promote", actor="a")
        assert service.registry.resolve("scorer").version == 1
        promoted = ops.act("scorer", "promote", actor="a", reason="hotfix", force=True)
        assert promoted.phase == "promoted"
        event = ops.status("scorer")[1][-1]
        assert event.reason.startswith("hotfix; forced: version 2")
        audit = service.registry.audit.query(target="scorer")  # type: ignore[union-attr]
        entry = [e for e in audit if e.action == "rollout.promote"][-1]
        assert "p99 doubled" in entry.details["reason"]
    finally:
        asyncio.run(service.close())

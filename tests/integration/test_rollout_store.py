"""The rollout store on SQLite and PostgreSQL: transitions with their decisions, optimistic
concurrency, audit entries, and a rollout that survives a server restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from keelwork.core.rollout.state import Rollout, TransitionError
from rollout_project import load, make_project, open_project, register


def test_transitions_are_stored_with_decisions_and_audited(tmp_path: Path,
                                                          store_url: str) -> None:
    service = open_project(make_project(tmp_path, store_url))
    try:
        v2 = register(service, "good_twin")
        ops = service.rollouts
        r = ops.start("scorer", v2, service.resolved.spec.rollout, actor="alice")
        assert (r.phase, r.champion, r.challenger, r.weight) == ("progressing", 1, v2, 50)
        with pytest.raises(TransitionError, match="already has an active rollout"):
            ops.start("scorer", v2, service.resolved.spec.rollout, actor="alice")
        decision = {"outcome": "fail", "gates": [{"gate": "error_rate", "challenger": 0.3,
                                                  "threshold": 0.05, "status": "fail"}]}
        held = ops.act("scorer", "hold", actor="ctl", reason="gates", decision=decision)
        assert held.failures == 1
        with pytest.raises(TransitionError, match="changed since it was read"):
            ops.act("scorer", "advance", actor="ctl", expect_revision=r.revision)
        paused = ops.act("scorer", "pause", actor="bob")
        assert paused.phase == "paused"
        with pytest.raises(TransitionError, match="is paused: it cannot advance"):
            ops.act("scorer", "advance", actor="ctl")
        ops.act("scorer", "abort", actor="bob", reason="enough")
        rollout, events = ops.status("scorer")
        assert rollout.phase == "aborted" and rollout.weight == 0
        assert [e.action for e in events] == ["begin", "hold", "pause", "abort"]
        assert events[1].decision == decision and events[1].actor == "ctl"
        # Every transition is in the audit log, with the event as details.
        audit = service.registry.audit
        entries = audit.query(target="scorer")  # type: ignore[union-attr]
        actions = [e.action for e in entries if e.action.startswith("rollout.")]
        assert actions == ["rollout.begin", "rollout.hold", "rollout.pause", "rollout.abort"]
        # An aborted rollout can be retried: a new rollout of the same target.
        again = ops.start("scorer", v2, service.resolved.spec.rollout, actor="alice")
        assert again.id != r.id and again.phase == "progressing"
        assert ops.store.events(again.id)[0].reason == f"retry of rollout {r.id}"
        assert ops.store.get(r.id).phase == "aborted"
        assert [x.id for x in ops.store.active()] == [again.id]
    finally:
        asyncio.run(service.close())


def test_rollout_state_survives_a_restart(tmp_path: Path, store_url: str) -> None:
    path = make_project(tmp_path, store_url)
    first = open_project(path)
    v2 = register(first, "good_twin")

    async def serve_once(advance: bool) -> dict[int, int]:
        service = open_project(path)
        await service.start()
        await service.gateway.start()
        try:
            if advance:
                r = service.rollouts.start("scorer", v2, service.resolved.spec.rollout,
                                           interval="1h", actor="t")
                service.rollouts.act("scorer", "advance", actor="t",
                                     expect_revision=r.revision)
            await asyncio.sleep(0.2)  # a few polls
            result = await load(service.gateway, 0.5)
            counts: dict[int, int] = result["by_version"]
            return counts
        finally:
            await service.gateway.close()
            await service.close()

    try:
        before = asyncio.run(serve_once(advance=True))
        after = asyncio.run(serve_once(advance=False))  # a new process: state from the store
    finally:
        asyncio.run(first.close())
    # Step 2 of [50, 100]: all traffic on the challenger, before and after the restart.
    assert set(before) == {v2} and set(after) == {v2}
    reopened = open_project(path)
    try:
        r = reopened.rollouts.status("scorer")[0]
        assert (r.phase, r.step, r.weight) == ("progressing", 1, 100)
        assert Rollout.from_dict(r.as_dict()) == r
    finally:
        asyncio.run(reopened.close())

"""A server that does not hold the lease keeps routing a rollout but never decides on it (its
window is dropped each interval); once it holds the lease, it decides."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rollout_project import load, make_project, open_project, register

INTERVAL = 0.2


def test_only_the_lease_holder_advances_a_rollout(tmp_path: Path) -> None:
    service = open_project(make_project(tmp_path), poll_s=0.05)
    challenger = register(service, "errors")
    holder = False
    service.rollout_controller.may_decide = lambda: holder

    async def scenario() -> None:
        nonlocal holder
        await service.start()
        await service.gateway.start()
        try:
            r = service.rollouts.start("scorer", challenger, service.resolved.spec.rollout,
                                       interval=f"{INTERVAL}s", actor="tester")
            served = await load(service.gateway, 5 * INTERVAL)
            # Routed: the failing challenger answered (or failed) its share ...
            assert served["failures"], served
            # ... but nothing was decided: the rollout is where its operator left it.
            rollout, events = service.rollouts.status("scorer")
            assert rollout.id == r.id and rollout.phase == "progressing", events
            assert [e.action for e in events] == ["begin"], events
            assert service.gateway.take_window("scorer") is not None  # still collecting
            holder = True
            await load(service.gateway, 4 * INTERVAL + 0.5)
            rollout, events = service.rollouts.status("scorer")
            assert rollout.phase == "aborted", events
            assert events[-1].actor == "keel-rollout-controller"
        finally:
            await service.gateway.close()
            await service.close()

    asyncio.run(scenario())

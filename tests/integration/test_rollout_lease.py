"""A server that does not hold the lease keeps routing a rollout but never decides on it (its
window is dropped each interval); once it holds the lease, it decides."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from rollout_project import load, make_project, open_project, register

INTERVAL = 0.2
#: How long the load may take to reach a state on a busy machine (CI saw 56 requests in a
#: second, none yet to the challenger: the gateway had not picked the rollout up).
PATIENCE_S = 15.0


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
            # Routed: the failing challenger answers (or fails) its share once the gateway has
            # picked the rollout up from the store ...
            served: dict[str, Any] = {"failures": []}
            deadline = time.monotonic() + PATIENCE_S
            while not served["failures"] and time.monotonic() < deadline:
                served = await load(service.gateway, INTERVAL)
            assert served["failures"], served
            # ... then five more intervals, each of which a lease holder would analyse ...
            await load(service.gateway, 5 * INTERVAL)
            # ... but nothing was decided: the rollout is where its operator left it.
            rollout, events = service.rollouts.status("scorer")
            assert rollout.id == r.id and rollout.phase == "progressing", events
            assert [e.action for e in events] == ["begin"], events
            assert service.gateway.take_window("scorer") is not None  # still collecting
            holder = True
            await load(service.gateway, PATIENCE_S, until=lambda: service.rollouts.status(
                "scorer")[0].phase != "progressing")
            rollout, events = service.rollouts.status("scorer")
            assert rollout.phase == "aborted", events
            assert events[-1].actor == "keel-rollout-controller"
        finally:
            await service.gateway.close()
            await service.close()

    asyncio.run(scenario())

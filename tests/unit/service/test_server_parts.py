"""The server's own loops in a process that serves beside keelwork's app (the worker of
``--engine granian`` or ``mosec``): it follows the store, as any process of a fleet does (a
model flag put by another process reaches its gateway within the poll), but it never takes the
fleet's lease nor decides a rollout, so the lease always goes to a process that runs every
loop (a worker opened without the monitoring loop holding it would leave it run nowhere)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from keelwork.service.flag_admin import put_flags
from keelwork.service.registration import register_model
from keelwork.service.server_parts import open_server
from keelwork.spec import load_spec
from keelwork.spec.settings import load_settings
from live_server import ADDER_SPEC, FIXTURES


def test_a_follower_follows_the_store_and_never_takes_the_lease(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text(ADDER_SPEC.format(fx=FIXTURES))
    resolved = load_spec(tmp_path / "keel.yaml")
    settings = load_settings().model_copy(update={"storage_url": None})

    async def scenario() -> None:
        follower = open_server(resolved, settings, monitor_interval_s=0, fleet=True)
        await follower.start(follower=True)
        try:
            register_model(follower.service.registry, "adder", "fakes:total", "python",
                           options={"path": str(FIXTURES)})
            assert follower.service.rollout_controller.may_decide() is False
            assert follower.lease is not None and not follower.lease.held
            flag = tmp_path / "all-v2.yaml"
            flag.write_text("name: all-v2\nmodel: adder\n"
                            "rules: [{percentage: 100, serve: \"2\"}]\n")
            await asyncio.to_thread(put_flags, tmp_path, flag, by="ops", settings=settings)
            deadline = time.monotonic() + 3
            while not [f.name for f in follower.flags.current.flags]:
                assert time.monotonic() < deadline, "the follower never saw the flag"
                await asyncio.sleep(0.05)
            assert [f.name for f in follower.flags.current.flags] == ["all-v2"]
            # The fleet's lease goes to a process that runs every loop: one started as usual.
            leader = open_server(resolved, settings, monitor_interval_s=0, fleet=True)
            await leader.start()
            try:
                assert leader.lease is not None and leader.lease.held
                assert leader.service.rollout_controller.may_decide() is True
                assert not follower.lease.held
            finally:
                await leader.close()
        finally:
            await follower.close()

    asyncio.run(scenario())

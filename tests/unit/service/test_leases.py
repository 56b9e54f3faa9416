"""The service lease: loops run in one process at a time, move when the holder stops renewing
(its store gone: it stops them itself) or stops cleanly, and a lone process takes it at once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.lease_store import LeaseStore
from keelwork.errors import StoreError
from keelwork.service.leases import Lease


class FlakyStore(LeaseStore):
    """A lease store this process can be cut off from."""

    down = False

    def acquire(self, name: str, holder: str, ttl_s: float) -> bool:
        if self.down:
            raise StoreError("The lease store failed while taking the lease: unreachable")
        return super().acquire(name, holder, ttl_s)


def test_renewal_must_leave_room_for_the_handover(tmp_path: Path) -> None:
    store = LeaseStore(make_engine(f"sqlite:///{tmp_path / 'k.db'}"))
    with pytest.raises(ValueError, match="at most a third of its time-to-live"):
        Lease(store, "bg", ttl_s=1.0, renew_s=0.5)
    store.engine.dispose()


def test_one_holder_at_a_time_and_the_lease_moves(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'k.db'}")
    store_a, store_b = FlakyStore(engine), FlakyStore(engine)
    store_a.ensure_schema()
    ttl, renew = 0.9, 0.1
    a = Lease(store_a, "bg", holder="a", ttl_s=ttl, renew_s=renew)
    b = Lease(store_b, "bg", holder="b", ttl_s=ttl, renew_s=renew)
    running: set[str] = set()
    overlap: list[set[str]] = []
    rounds: dict[str, int] = {"a": 0, "b": 0}

    def loop_of(who: str):  # type: ignore[no-untyped-def]
        async def loop(stop: asyncio.Event) -> None:
            running.add(who)
            try:
                while not stop.is_set():
                    if len(running) > 1:
                        overlap.append(set(running))
                    rounds[who] += 1
                    await asyncio.sleep(0.01)
            finally:
                running.discard(who)
        return loop

    a.guard("loop-a", loop_of("a"))
    b.guard("loop-b", loop_of("b"))

    async def scenario() -> None:
        assert a.try_take()  # a lone process takes it at once
        stop_a, stop_b = asyncio.Event(), asyncio.Event()
        task_a = asyncio.create_task(a.run(stop_a))
        task_b = asyncio.create_task(b.run(stop_b))
        await asyncio.sleep(0.5)
        assert running == {"a"} and a.held and not b.held
        # a is cut off from the store (as a dead holder stops renewing): its own view lapses,
        # its loop stops, and b takes over once the stored lease expires.
        store_a.down = True
        cut = time.monotonic()
        while running != {"b"}:
            assert time.monotonic() - cut < ttl + 3 * renew + 1.0, running
            await asyncio.sleep(0.01)
        moved_after = time.monotonic() - cut
        assert not a.held and b.held
        state = store_b.get("bg")
        assert state is not None and (state.holder, state.term) == ("b", 2)
        # b stops cleanly: it releases, and a (reconnected) takes over within a renewal.
        store_a.down = False
        stop_b.set()
        await task_b
        released = time.monotonic()
        while running != {"a"}:
            assert time.monotonic() - released < 3 * renew + 0.5, running
            await asyncio.sleep(0.01)
        stop_a.set()
        await task_a
        assert running == set()
        assert moved_after >= ttl - 2 * renew - 0.05  # never before a's view lapsed

    asyncio.run(scenario())
    assert overlap == []
    assert rounds["a"] > 0 and rounds["b"] > 0
    state = LeaseStore(engine).get("bg")
    assert state is not None and state.holder == "a" and state.expires_at <= time.time()
    engine.dispose()

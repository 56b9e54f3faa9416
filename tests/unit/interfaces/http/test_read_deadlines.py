"""ReadDeadlines: one sweep cuts the reads past their deadline, and only those."""

from __future__ import annotations

import asyncio
import time

import pytest

from keelwork.interfaces.http.read_deadlines import ReadDeadlines


async def _read(deadlines: ReadDeadlines, seconds: float) -> str:
    with deadlines.watch() as watch:
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            if watch.expired():
                return "timed out"
            raise
    return "read"


def test_a_slow_read_is_cut_between_the_timeout_and_one_sweep_later() -> None:
    async def main() -> None:
        deadlines = ReadDeadlines(timeout=0.3, resolution=0.05)
        started = time.monotonic()
        slow = asyncio.create_task(_read(deadlines, 10))
        fast = asyncio.create_task(_read(deadlines, 0.1))
        assert await fast == "read"
        assert await slow == "timed out"
        took = time.monotonic() - started
        assert 0.3 <= took < 0.3 + 0.05 + 0.2, took
        assert not slow.cancelling()  # the cut was withdrawn: the task goes on answering
        assert deadlines.in_flight == 0
        await asyncio.sleep(0.12)
        assert deadlines._sweep is None  # nothing in flight: no timer left running

    asyncio.run(main())


def test_a_cancellation_from_elsewhere_is_not_taken_for_a_timeout() -> None:
    async def main() -> None:
        deadlines = ReadDeadlines(timeout=5.0, resolution=0.05)
        task = asyncio.create_task(_read(deadlines, 10))
        await asyncio.sleep(0.05)
        task.cancel()  # e.g. the server shutting down
        with pytest.raises(asyncio.CancelledError):
            await task
        assert deadlines.in_flight == 0

    asyncio.run(main())


def test_many_reads_share_one_timer() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        deadlines = ReadDeadlines(timeout=5.0, resolution=0.05)
        arrived = asyncio.Event()

        async def read() -> str:
            with deadlines.watch():
                await arrived.wait()  # schedules no timer of its own
            return "read"

        before = len(loop._scheduled)  # type: ignore[attr-defined]
        tasks = [asyncio.create_task(read()) for _ in range(50)]
        await asyncio.sleep(0)
        assert deadlines.in_flight == 50
        assert len(loop._scheduled) - before == 1  # type: ignore[attr-defined]
        arrived.set()
        assert await asyncio.gather(*tasks) == ["read"] * 50

    asyncio.run(main())


def test_watch_needs_a_task() -> None:
    with pytest.raises(RuntimeError, match="running task"), ReadDeadlines(1.0).watch():
        pass


def test_deadlines_outlive_an_event_loop() -> None:
    """A loop closed with a sweep pending leaves no stale timer behind: reads on the next
    loop are cut all the same."""
    deadlines = ReadDeadlines(timeout=0.1)
    assert deadlines.resolution == pytest.approx(0.01)
    assert asyncio.run(_read(deadlines, 0.001)) == "read"  # its sweep never ran
    assert asyncio.run(_read(deadlines, 5)) == "timed out"

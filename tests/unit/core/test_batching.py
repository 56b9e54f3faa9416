"""The micro-batcher, including the failure modes other servers shipped with."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from keelwork.core.batching import MicroBatcher


class Recorder:
    """A fake model that records every batch it is called with."""

    def __init__(self, delay: float = 0.0, fail_on: Any = None) -> None:
        self.batches: list[list[Any]] = []
        self.delay = delay
        self.fail_on = fail_on

    async def __call__(self, batch: list[Any]) -> list[Any]:
        self.batches.append(list(batch))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_on is not None and self.fail_on in batch:
            raise ValueError(f"bad instance {self.fail_on}")
        return [x * 10 for x in batch]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_concurrent_requests_are_grouped_and_outputs_go_back_in_order() -> None:
    model = Recorder(delay=0.01)

    async def main() -> list[list[int]]:
        b = MicroBatcher(model, max_batch_size=64, max_wait_ms=5)
        out = await asyncio.gather(*(b.submit([i]) for i in range(40)))
        await b.close()
        return out

    out = run(main())
    assert out == [[i * 10] for i in range(40)]
    # 40 concurrent requests must not become 40 model calls
    assert len(model.batches) < 10, model.batches


def test_a_batch_never_exceeds_max_batch_size() -> None:
    """bentoml #3710: batches larger than the configured maximum."""
    model = Recorder(delay=0.002)

    async def main() -> list[list[int]]:
        b = MicroBatcher(model, max_batch_size=8, max_wait_ms=5)
        reqs = [b.submit(list(range(i, i + (i % 5) + 1))) for i in range(60)]
        reqs.append(b.submit(list(range(100, 137))))  # one request larger than a batch
        out = await asyncio.gather(*reqs)
        await b.close()
        return out

    out = run(main())
    assert all(len(batch) <= 8 for batch in model.batches), [len(x) for x in model.batches]
    assert out[-1] == [x * 10 for x in range(100, 137)]
    assert out[3] == [x * 10 for x in range(3, 3 + 4)]


def test_idle_server_does_not_wait_for_the_batching_window() -> None:
    """A lone request is dispatched at once, not after max_wait_ms."""
    model = Recorder()

    async def main() -> float:
        b = MicroBatcher(model, max_batch_size=64, max_wait_ms=500)
        await b.submit([1])
        await asyncio.sleep(0.6)  # the arrival-rate estimate now says: nobody else is coming
        t = time.perf_counter()
        await b.submit([2])
        elapsed = time.perf_counter() - t
        await b.close()
        return elapsed

    assert run(main()) < 0.25


def test_a_sequential_client_stops_paying_for_the_batching_window() -> None:
    """One closed-loop client arrives often enough to look like company, but none ever comes:
    after a few futile waits the batcher stops waiting (a probe at most every 16th batch)."""
    model = Recorder()

    async def main() -> tuple[float, float]:
        b = MicroBatcher(model, max_batch_size=64, max_wait_ms=40)
        t = time.perf_counter()
        for i in range(16):
            await b.submit([i])
        first = time.perf_counter() - t
        t = time.perf_counter()
        for i in range(14):
            await b.submit([i])
        last = time.perf_counter() - t
        await b.close()
        return first, last

    first, last = run(main())
    assert first > 0.2  # it did wait at first: the window works while it may pay
    assert last < 0.2, last  # 14 waits would take 0.56 s; at most one probe is allowed
    assert all(len(batch) == 1 for batch in model.batches)


def test_one_failing_request_fails_alone() -> None:
    """ray #42593: a failure in a batch must not hang or fail the other requests."""
    model = Recorder(delay=0.005, fail_on=13)

    async def main() -> list[Any]:
        b = MicroBatcher(model, max_batch_size=32, max_wait_ms=5)
        out = await asyncio.gather(*(b.submit([i]) for i in range(30)), return_exceptions=True)
        await b.close()
        return out

    out = run(main())
    assert isinstance(out[13], ValueError)
    assert [o for i, o in enumerate(out) if i != 13] == [[i * 10] for i in range(30) if i != 13]


def test_cancelled_request_does_not_hang_its_batch() -> None:
    model = Recorder(delay=0.02)

    async def main() -> tuple[list[Any], bool]:
        b = MicroBatcher(model, max_batch_size=16, max_wait_ms=2)
        first = asyncio.ensure_future(b.submit([0]))  # keeps the model busy
        await asyncio.sleep(0.001)
        victims = [asyncio.ensure_future(b.submit([i])) for i in range(1, 6)]
        others = [asyncio.ensure_future(b.submit([i])) for i in range(6, 12)]
        await asyncio.sleep(0)
        for v in victims:
            v.cancel()
        res = await asyncio.wait_for(asyncio.gather(first, *others), timeout=2)
        cancelled = all(v.cancelled() for v in victims)
        await b.close()
        return res, cancelled

    res, cancelled = run(main())
    assert cancelled
    assert res == [[0], *[[i * 10] for i in range(6, 12)]]
    # cancelled requests were dropped before the model saw them
    seen = {x for batch in model.batches for x in batch}
    assert not seen & set(range(1, 6))


def test_timeouts_are_the_callers_even_with_a_long_window() -> None:
    """bentoml #4265: batching settings must not change the request timeout."""
    model = Recorder(delay=0.3)

    async def main() -> float:
        b = MicroBatcher(model, max_batch_size=4, max_wait_ms=1000)
        t = time.perf_counter()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(b.submit([1]), timeout=0.05)
        elapsed = time.perf_counter() - t
        await b.close()
        return elapsed

    assert run(main()) < 0.2


def test_wrong_number_of_outputs_is_an_error_not_a_misalignment() -> None:
    async def short(batch: list[Any]) -> list[Any]:
        return batch[:-1]

    async def main() -> None:
        b = MicroBatcher(short, max_batch_size=4, max_wait_ms=0)
        with pytest.raises(ValueError, match="outputs for"):
            await b.submit([1, 2])
        await b.close()

    run(main())


def test_closed_batcher_refuses_and_fails_queued() -> None:
    async def main() -> None:
        b = MicroBatcher(Recorder(delay=0.05), max_batch_size=1, max_wait_ms=0)
        busy = asyncio.ensure_future(b.submit([1]))
        queued = asyncio.ensure_future(b.submit([2]))
        await asyncio.sleep(0.01)
        await b.close()
        with pytest.raises(RuntimeError):
            await queued
        with pytest.raises(RuntimeError):
            await b.submit([3])
        busy.cancel()

    run(main())


@pytest.mark.parametrize(("size", "wait"), [(0, 1.0), (4, -1.0)])
def test_bad_settings_are_refused(size: int, wait: float) -> None:
    async def noop(b: list[Any]) -> list[Any]:
        return b

    with pytest.raises(ValueError):
        MicroBatcher(noop, max_batch_size=size, max_wait_ms=wait)

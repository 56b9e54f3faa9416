"""Adaptive micro-batching: concurrent requests for one model become one model call.

The policy, and why:

* A worker takes everything already queued (up to ``max_batch_size`` instances) the moment the
  model is free. Under load, requests pile up while the model runs, so batches form by themselves
  and an idle server adds no waiting at all.
* It waits up to ``max_wait_ms`` for more only when the recent arrival rate says that another
  request is likely to arrive within that wait (an EWMA of inter-arrival gaps). A lone client is
  never delayed by the batching window.
* It also stops waiting when waiting has stopped paying: a client that sends its next request
  only once it has the answer to the last (one closed-loop client, a sequential script) arrives
  often enough to look like company, yet no one ever comes during the wait. An EWMA of "did the
  last waits bring anyone" below 0.2 turns waiting off; every 16th batch then probes again.
* A batch never holds more than ``max_batch_size`` instances (bentoml #3710): a request larger
  than that is split into chunks, and requests are never split across batches otherwise.
* When the batch call raises, every request of that batch is retried on its own, so one bad
  request fails alone and never takes its neighbours with it (ray #42593). A cancelled request
  is dropped from its batch before the call, or its result is discarded after it.
* Timeouts belong to the caller (``asyncio.wait_for`` around :meth:`MicroBatcher.submit`): the
  batching settings never change them (bentoml #4265).

Pure asyncio: the model call itself is delegated to ``run_batch``, which the caller typically
points at a thread pool so that the event loop never blocks on a model.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from keelwork.errors import BatchSizeError

#: Runs the model on a batch of instances and returns one output per instance.
BatchFn = Callable[[list[Any]], Awaitable[list[Any]]]
#: Called with (batch size in instances, number of requests, seconds the model call took).
BatchObserver = Callable[[int, int, float], None]


@dataclass(slots=True)
class _Pending:
    instances: list[Any]
    future: asyncio.Future[list[Any]]
    enqueued: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    """Groups concurrent ``submit`` calls for one model into batched model calls.

    Args:
        run_batch: Coroutine function running the model on a list of instances.
        max_batch_size: Upper bound on instances per model call (never exceeded).
        max_wait_ms: Longest time the first request of a batch may wait for company.
        observer: Optional callback for metrics (batch size, requests, seconds).
    """

    def __init__(self, run_batch: BatchFn, *, max_batch_size: int = 64,
                 max_wait_ms: float = 2.0, observer: BatchObserver | None = None) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1; got {max_batch_size}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0; got {max_wait_ms}")
        self._run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self._observer = observer
        self._queue: deque[_Pending] = deque()
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._last_arrival = 0.0
        self._gap_ewma = float("inf")
        self._wait_payoff = 1.0  # EWMA of "the last waits for company brought some"
        self._unprobed = 0  # batches sent without waiting since waiting stopped paying
        self._closed = False

    # ------------------------------------------------------------------ public API
    @property
    def queue_depth(self) -> int:
        """Instances waiting for a model call."""
        return sum(len(p.instances) for p in self._queue)

    async def submit(self, instances: Sequence[Any]) -> list[Any]:
        """Queue ``instances`` and wait for their outputs (one per instance, same order).

        Raises:
            RuntimeError: the batcher is closed.
            Exception: whatever the model raised for this request when run on its own.
        """
        if self._closed:
            raise RuntimeError("the batcher is closed")
        items = list(instances)
        if not items:
            return []
        self._ensure_worker()
        now = time.perf_counter()
        if self._last_arrival:
            gap = now - self._last_arrival
            self._gap_ewma = gap if self._gap_ewma == float("inf") else (
                0.8 * self._gap_ewma + 0.2 * gap)
        self._last_arrival = now
        loop = asyncio.get_running_loop()
        if len(items) <= self.max_batch_size:
            fut: asyncio.Future[list[Any]] = loop.create_future()
            self._queue.append(_Pending(items, fut))
            self._notify()
            return await fut
        # Larger than one batch: split, keep the order, fail as a whole.
        chunks = [items[i:i + self.max_batch_size]
                  for i in range(0, len(items), self.max_batch_size)]
        futs = [loop.create_future() for _ in chunks]
        for chunk, f in zip(chunks, futs, strict=True):
            self._queue.append(_Pending(chunk, f))
        self._notify()
        try:
            parts = await asyncio.gather(*futs)
        except BaseException:
            for f in futs:
                f.cancel()
            raise
        return [out for part in parts for out in part]

    async def close(self) -> None:
        """Stop the worker; requests still queued fail with RuntimeError."""
        self._closed = True
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        while self._queue:
            p = self._queue.popleft()
            if not p.future.done():
                p.future.set_exception(RuntimeError("the batcher was closed"))

    # ------------------------------------------------------------------ worker
    def _ensure_worker(self) -> None:
        if self._worker is None or self._worker.done():
            self._wakeup = asyncio.Event()
            self._worker = asyncio.get_running_loop().create_task(self._work())

    def _notify(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    def _take(self) -> list[_Pending]:
        """Pop requests in order while they fit in one batch (cancelled ones are dropped)."""
        batch: list[_Pending] = []
        size = 0
        while self._queue:
            head = self._queue[0]
            if head.future.done():  # cancelled or timed out while queued
                self._queue.popleft()
                continue
            if batch and size + len(head.instances) > self.max_batch_size:
                break
            batch.append(self._queue.popleft())
            size += len(head.instances)
        return batch

    def _queued_instances(self) -> int:
        return sum(len(p.instances) for p in self._queue if not p.future.done())

    async def _work(self) -> None:
        assert self._wakeup is not None
        wakeup = self._wakeup
        while True:
            if not self._queue:
                wakeup.clear()
                await wakeup.wait()
                continue
            queued = self._queued_instances()
            if (self.max_wait > 0 and queued < self.max_batch_size
                    and self._gap_ewma < self.max_wait and self._worth_waiting()):
                # Company is likely: wait for it, at most until the oldest request's deadline.
                deadline = self._queue[0].enqueued + self.max_wait
                while self._queued_instances() < self.max_batch_size:
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0:
                        break
                    wakeup.clear()
                    # asyncio.timeout, not wait_for: no task per wake-up
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(remaining):
                            await wakeup.wait()
                gained = self._queued_instances() > queued
                self._wait_payoff = 0.8 * self._wait_payoff + (0.2 if gained else 0.0)
            batch = self._take()
            if batch:
                await self._dispatch(batch)

    def _worth_waiting(self) -> bool:
        """Whether recent waits brought company; when not, probe on every 16th batch."""
        if self._wait_payoff >= 0.2:
            return True
        self._unprobed += 1
        if self._unprobed < 16:
            return False
        self._unprobed = 0
        return True

    async def _dispatch(self, batch: list[_Pending]) -> None:
        flat = [x for p in batch for x in p.instances]
        started = time.perf_counter()
        try:
            outputs = await self._run_batch(flat)
            if len(outputs) != len(flat):
                raise BatchSizeError(
                    f"the model returned {len(outputs)} outputs for {len(flat)} inputs")
        except asyncio.CancelledError:
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(RuntimeError("the batcher was closed"))
            raise
        except Exception as exc:
            if len(batch) == 1:
                self._observe(len(flat), 1, started)
                if not batch[0].future.done():
                    batch[0].future.set_exception(exc)
                return
            # Isolate the failure: each request on its own.
            for p in batch:
                if p.future.done():
                    continue
                await self._dispatch([p])
            return
        self._observe(len(flat), len(batch), started)
        offset = 0
        for p in batch:
            n = len(p.instances)
            if not p.future.done():
                p.future.set_result(outputs[offset:offset + n])
            offset += n

    def _observe(self, size: int, requests: int, started: float) -> None:
        if self._observer is not None:
            self._observer(size, requests, time.perf_counter() - started)

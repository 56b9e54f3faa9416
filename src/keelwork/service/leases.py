"""Work that runs once per fleet: loops run only while this process holds a lease in the store.

Every server process (``keel serve --workers N`` starts N; several servers may share one store)
runs the same background loops. Some must run in one process only: alerts would be sent N
times, retention applied N times, a rollout advanced on N partial views. :class:`Lease` holds
one named lease of :class:`~keelwork.adapters.stores.lease_store.LeaseStore` for its process:

- :meth:`Lease.run` tries to take the lease at once (a lone server takes it on its first try, so
  its loops start as they always did), then renews it every ``renew_s`` while it holds it, and
  otherwise tries again every ``renew_s`` so that it takes over within ``ttl_s + renew_s`` after
  its holder dies (a holder that stops cleanly releases it: the next one takes over within
  ``renew_s``);
- the loops given to :meth:`Lease.guard` run while it is held: started when it is taken, stopped
  (their stop event set, then cancelled) when it is lost or the server stops;
- :attr:`Lease.held` is what a loop that must keep running everywhere (the rollout controller
  routes traffic in every process) asks before the part only one may do (advancing a rollout).

A process that cannot reach the store counts itself holder only until ``ttl_s - 2 * renew_s``
after its last successful renewal began, on its own monotonic clock: its loops are stopped
before the store lets another process take the lease, even while the store is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from keelwork.adapters.stores.lease_store import LeaseStore
from keelwork.errors import KeelworkError

log = logging.getLogger("keelwork.lease")

#: Seconds a lease lasts without renewal (its holder's death is noticed within this).
DEFAULT_TTL_S = 10.0
#: Seconds between renewals (and between tries to take it, for a process that does not hold it).
DEFAULT_RENEW_S = 2.0

LoopFactory = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


def process_holder() -> str:
    """A name for this process, unique across a fleet: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """One named lease, held by this process while it can, and the loops that need it.

    Args:
        store: The lease store.
        name: The lease's name (one per piece of fleet-wide work).
        holder: This process's name (default: :func:`process_holder`).
        ttl_s: Seconds the lease lasts without renewal.
        renew_s: Seconds between renewals and between tries to take it; at most a third of
            ``ttl_s``.
        clock: A monotonic clock (seconds) for this process's own view of its holding.

    Raises:
        ValueError: ``renew_s`` is not above 0 and at most ``ttl_s / 3``.
    """

    def __init__(self, store: LeaseStore, name: str, *, holder: str | None = None,
                 ttl_s: float = DEFAULT_TTL_S, renew_s: float = DEFAULT_RENEW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 < renew_s * 3 <= ttl_s:
            raise ValueError(f"The lease renewal interval must be > 0 and at most a third of its "
                             f"time-to-live ({ttl_s} s); got {renew_s} s.")
        self.store = store
        self.name = name
        self.holder = holder or process_holder()
        self.ttl_s = ttl_s
        self.renew_s = renew_s
        self.clock = clock
        self._valid_until = float("-inf")
        #: Its own thread for the store round trips: the default executor is shared with the
        #: loops' work (monitoring windows, reference builds), which could hold every thread
        #: past the renewal and let the lease lapse while this process is healthy.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keel-lease")
        self._guarded: list[tuple[str, LoopFactory]] = []
        self._running: list[tuple[asyncio.Task[None], asyncio.Event]] = []

    @property
    def held(self) -> bool:
        """Whether this process holds the lease now (by its last successful take or renewal)."""
        return self.clock() < self._valid_until

    def guard(self, name: str, loop: LoopFactory) -> None:
        """Run ``loop(stop)`` as a task named ``name`` while the lease is held.

        ``loop`` gets an event set when the lease is lost or the server stops; it is cancelled
        if it has not returned by the next renewal.
        """
        self._guarded.append((name, loop))

    def try_take(self) -> bool:
        """Take or renew the lease once (blocking: one store round trip).

        Returns:
            Whether this process holds it now. A store failure counts as not taken (and the
            holding it had lapses on its own at its expiry).
        """
        started = self.clock()
        try:
            taken = self.store.acquire(self.name, self.holder, self.ttl_s)
        except KeelworkError as exc:
            log.warning("lease %s: cannot reach the store to take or renew it: %s",
                        self.name, exc)
            return self.held
        if taken:
            # Measured from before the round trip, less two renewals: the loops have noticed
            # the loss and stopped before the store lets another process take it.
            self._valid_until = started + self.ttl_s - 2 * self.renew_s
        else:
            self._valid_until = float("-inf")
        return taken

    async def run(self, stop: asyncio.Event) -> None:
        """Take and renew the lease, running the guarded loops while held, until ``stop`` is set;
        then stop them and release the lease."""
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                held = await loop.run_in_executor(self._thread, self.try_take)
                if held and not self._running:
                    log.info("lease %s taken by %s", self.name, self.holder)
                    self._start_loops()
                elif not held and self._running:
                    log.warning("lease %s lost by %s: its loops stop", self.name, self.holder)
                    await self._stop_loops()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.renew_s)
        finally:
            await self._stop_loops()
            if self.held:
                self._valid_until = float("-inf")
                with contextlib.suppress(KeelworkError):
                    await loop.run_in_executor(self._thread, self.store.release, self.name,
                                               self.holder)
            self._thread.shutdown(wait=False)

    def _start_loops(self) -> None:
        for name, loop in self._guarded:
            event = asyncio.Event()
            self._running.append((asyncio.create_task(loop(event), name=name), event))

    async def _stop_loops(self) -> None:
        running, self._running = self._running, []
        for _task, event in running:
            event.set()
        for task, _event in running:
            try:
                async with asyncio.timeout(self.renew_s):
                    await asyncio.shield(task)
            except TimeoutError:
                task.cancel()
            except asyncio.CancelledError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                raise
            except Exception:
                log.exception("lease %s: loop %s failed", self.name, task.get_name())
            if not task.done():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


__all__ = ["DEFAULT_RENEW_S", "DEFAULT_TTL_S", "Lease", "LoopFactory", "process_holder"]

"""The server's traffic rollup of its prediction log, kept current for the dashboard.

Reading a day of a million logged requests takes SQLite about 1.5 s (one grouped pass), far
too slow for a page view; :class:`TrafficCache` reads the log once, folds it into a
:class:`~keelwork.core.traffic.Rollup` (a few thousand numbers) and from then on reads only
what was logged since (an indexed range of ``ts``). So a page view costs the read of the last
seconds, however long the log is:

- ``warm()`` at the server's start (in a worker thread) reads the horizon: a day, or the SLO
  window when it is longer; a page view before it ends waits for it, so the page never shows
  a partial count;
- rows older than ``settle_s`` are folded in for good (the cursor moves past them); the last
  ``settle_s`` are read anew on every view and not kept, because a row is logged a little after
  its ``ts`` (group commit, an async queue) and one committed behind the cursor would be lost;
- a background loop (:meth:`run`) folds every ``interval_s``, so that a view after a quiet hour
  does not pay for the hour.

Known limit: rows replayed from the prediction log's spool after an outage, older than the
cursor, are not counted until the server restarts (the next warm-up reads them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine

from keelwork.adapters.stores.prediction_store import predictions
from keelwork.adapters.stores.traffic_store import has_tables, traffic_rows
from keelwork.core.traffic import MINUTE, Rollup

log = logging.getLogger("keelwork.dashboard")


@dataclass(frozen=True, slots=True)
class TrafficView:
    """The folded rollup and the unsettled tail, read together under the cache's lock."""

    main: Rollup
    tail: Rollup
    now: float


class TrafficCache:
    """A rollup of the prediction log, folded incrementally (see the module docstring).

    Args:
        engine: The store holding the prediction log.
        edges: The latency bins' upper bounds in ms
            (:func:`~keelwork.core.traffic.latency_edges`).
        horizon_s: How far back the rollup reaches (at least a day).
        settle_s: How long after its ``ts`` a row is taken as written for good.
        clock: Unix seconds.
    """

    def __init__(self, engine: Engine, edges: tuple[float, ...], *, horizon_s: int = 86_400,
                 settle_s: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.edges = edges
        self.horizon_s = max(horizon_s, 86_400)
        self.settle_s = settle_s
        self.clock = clock
        self.rollup = Rollup(edges, horizon_s=self.horizon_s)
        self.cursor: float | None = None
        self._lock = threading.Lock()
        #: Seconds the last warm-up took (None: not warmed yet).
        self.warm_s: float | None = None

    def _log_exists(self) -> bool:
        return has_tables(self.engine, [predictions.name])[predictions.name]

    def _fold(self, now: float) -> None:
        """Fold the settled rows since the cursor (caller holds the lock)."""
        if self.cursor is None:
            if not self._log_exists():
                return
            # Whole minutes, so that the first bucket is not cut in two.
            self.cursor = float(int(now - self.horizon_s) // MINUTE * MINUTE)
        upto = float(int(now - self.settle_s) // MINUTE * MINUTE)
        if upto > self.cursor:
            for model, version, minute, status, guard, b, n in traffic_rows(
                    self.engine, self.cursor, upto, self.edges):
                self.rollup.add(model, version, minute, status, guard, b, n, now=now)
            self.cursor = upto
            self.rollup.compact(now)

    def warm(self) -> None:
        """Read the horizon once (a no-op once done).

        Raises:
            StoreError: the store failed (the next view or loop round tries again).
        """
        with self._lock:
            if self.warm_s is not None:
                return
            start = time.perf_counter()
            self._fold(self.clock())
            if self.cursor is not None:
                self.warm_s = time.perf_counter() - start

    @contextmanager
    def view(self) -> Iterator[TrafficView | None]:
        """The rollup brought up to now, held still while the caller reads it; None when the
        store has no prediction log yet.

        Raises:
            StoreError: the store failed.
        """
        with self._lock:
            now = self.clock()
            if self.warm_s is None:
                start = time.perf_counter()
                self._fold(now)
                if self.cursor is not None:
                    self.warm_s = time.perf_counter() - start
            else:
                self._fold(now)
            if self.cursor is None:
                yield None
                return
            tail = Rollup(self.edges, horizon_s=self.horizon_s)
            for model, version, minute, status, guard, b, n in traffic_rows(
                    self.engine, self.cursor, now + 1.0, self.edges):
                tail.add(model, version, minute, status, guard, b, n, now=now)
            yield TrafficView(self.rollup, tail, now)

    async def run(self, stop: asyncio.Event, *, interval_s: float = 15.0) -> None:
        """Warm up, then fold every ``interval_s`` until ``stop`` is set; failures are logged
        (the dashboard must never take the server down) and retried next round."""
        while not stop.is_set():
            try:
                await asyncio.to_thread(self._round)
            except Exception:
                log.exception("dashboard: reading the prediction log failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)

    def _round(self) -> None:
        if self.warm_s is None:
            self.warm()
            if self.warm_s is not None:
                log.info("dashboard: read the prediction log's last %d h in %.2f s",
                         self.horizon_s // 3600, self.warm_s)
            return
        with self._lock:
            self._fold(self.clock())


__all__ = ["TrafficCache", "TrafficView"]

"""``/metrics`` summed over a fleet spread across machines (``keel serve --engine ray
--address``): the processes exchange their values through the store.

The processes of one machine share a folder (prometheus-client's multi-process mode); replicas
on other machines do not, and Serve's proxy sends each scrape to any replica, so a scrape would
answer one replica's counters, a different one each time. Here each serving process publishes
its own counters, gauges and histograms to the store every :data:`PUBLISH_S` seconds
(:class:`~keelwork.adapters.stores.fleet_metrics_store.FleetMetricsStore`), and a scrape of any
of them answers the sums (:func:`keelwork.core.fleet_metrics.fleet_view`): its own values as of
now, the others' as last published (at most about :data:`PUBLISH_S` seconds old).

- A process not seen for :data:`DEAD_AFTER_S` seconds (or one that stopped) is gone: its gauges
  leave the sums, its counts stay. The holder of the fleet's lease folds such rows into one
  retired sum, so the table keeps one row per live process plus one.
- A process taken for dead that comes back (a long pause) finds its row folded: it publishes
  again, as a new row, only what it counted since (its counts are never summed twice).
- With the store down, a scrape answers the other processes' values as last read, with this
  process's own up to date.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable

from keelwork.adapters.metrics import GatewayMetrics
from keelwork.adapters.stores.fleet_metrics_store import RETIRED, FleetMetricsStore, FleetRow
from keelwork.core.fleet_metrics import Snapshot, add, fleet_view, fold, subtract
from keelwork.errors import KeelworkError
from keelwork.service.leases import process_holder

log = logging.getLogger("keelwork.fleet_metrics")

#: Seconds between two publications of a process's values.
PUBLISH_S = 1.0
#: Seconds without a publication after which a process is taken for gone.
DEAD_AFTER_S = 10.0
#: Seconds between two folds of gone processes into the retired sum (by the lease holder).
FOLD_S = 5.0


def fold_payloads(retired: str | None, dead: list[str]) -> str:
    """The retired sum's payload with the ``dead`` processes' counts added."""
    return json.dumps(fold(None if retired is None else json.loads(retired),
                           [json.loads(p) for p in dead]))


class FleetMetrics:
    """This process's share of the fleet's ``/metrics``.

    Args:
        store: The fleet metrics store.
        metrics: This process's metrics.
        replica: This process's name in the store (default: host, pid and a random part).
        clock: Seconds since the epoch, the store's clock (default ``time.time``).
        dead_after_s: Seconds without a publication after which a process is gone.
    """

    def __init__(self, store: FleetMetricsStore, metrics: GatewayMetrics, *,
                 replica: str | None = None, clock: Callable[[], float] = time.time,
                 dead_after_s: float = DEAD_AFTER_S) -> None:
        self.store = store
        self.metrics = metrics
        self.replica = replica or process_holder()
        self.clock = clock
        self.dead_after_s = dead_after_s
        self._lock = threading.Lock()
        #: What of this process's counts is in the retired sum already (after a fold).
        self._base: Snapshot = {}
        #: The payload of its last publication (None: never published, or folded since).
        self._last: Snapshot | None = None
        self._rows: list[FleetRow] = []

    def attach(self) -> None:
        """Make this process's scrapes answer the fleet's sums."""
        self.metrics.fleet_view = self.view

    def publish(self) -> None:
        """Write this process's values to the store (the counts since its base).

        Raises:
            StoreError: the store failed.
        """
        with self._lock:
            mine = subtract(self.metrics.own_snapshot(), self._base)
            if self.store.publish(self.replica, json.dumps(mine), first=self._last is None):
                self._last = mine
                return
            # Taken for dead and folded: its last publication is in the retired sum.
            self._base = add([self._base, self._last or {}], gauges=False)
            mine = subtract(self.metrics.own_snapshot(), self._base)
            self.store.publish(self.replica, json.dumps(mine), first=True)
            self._last = mine

    def view(self, own: Snapshot) -> Snapshot:
        """The fleet's sums, with ``own`` (this process's values now) for this process."""
        try:
            self._rows = self.store.rows()
        except KeelworkError as exc:  # the others as last read
            log.warning("fleet metrics: the store could not be read (%s); the other "
                        "processes' values are the last ones read", exc)
        live_since = self.clock() - self.dead_after_s
        live: list[Snapshot] = []
        gone: list[Snapshot] = []
        listed = False
        for row in self._rows:
            if row.replica == self.replica:
                listed = True
                continue
            snap = json.loads(row.payload)
            (live if row.replica != RETIRED and row.seen_at >= live_since else gone).append(snap)
        with self._lock:
            base = self._base
            if not listed and self._last is not None:  # folded: its last counts are retired
                base = add([base, self._last], gauges=False)
            mine = subtract(own, base)
        return fleet_view(mine, live, gone)

    def fold_gone(self) -> int:
        """Fold the rows of gone processes into the retired sum; how many were folded."""
        return self.store.fold(self.clock() - self.dead_after_s, fold_payloads)

    async def run(self, stop: asyncio.Event) -> None:
        """Publish every :data:`PUBLISH_S` seconds until ``stop``; then publish once more and
        mark this process gone."""
        while not stop.is_set():
            await self._quietly(self.publish, "publishing this process's metrics")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PUBLISH_S)
        await self._quietly(self.publish, "publishing this process's metrics")
        await self._quietly(lambda: self.store.retire(self.replica), "retiring its metrics")

    async def fold_loop(self, stop: asyncio.Event) -> None:
        """Fold gone processes every :data:`FOLD_S` seconds until ``stop`` (the lease
        holder's loop)."""
        while not stop.is_set():
            await self._quietly(self.fold_gone, "folding the metrics of gone processes")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), FOLD_S)

    @staticmethod
    async def _quietly(work: Callable[[], object], what: str) -> None:
        try:
            await asyncio.to_thread(work)
        except KeelworkError as exc:  # the store is down: the next round tries again
            log.warning("fleet metrics: %s failed: %s", what, exc)


__all__ = ["DEAD_AFTER_S", "FOLD_S", "PUBLISH_S", "FleetMetrics", "fold_payloads"]

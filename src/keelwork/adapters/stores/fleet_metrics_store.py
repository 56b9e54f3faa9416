"""The serving processes' Prometheus values in the store, so that a scrape of any one of them
answers the whole fleet's sums, across machines.

Table::

    fleet_metrics   replica (PK), seen_at (seconds since the epoch), payload (JSON)

Each serving process keeps one row, its own values (:mod:`keelwork.core.fleet_metrics`), and
rewrites it every second or so. One more row, :data:`RETIRED`, holds what the processes that
died had counted: :meth:`FleetMetricsStore.fold` moves a row not rewritten for a while into it,
in one transaction, so that the table holds one row per live process plus one. The payloads are
the store's strings; the arithmetic is the caller's (``fold_with``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Column, Engine, Float, MetaData, String, Table, Text
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection

from keelwork.adapters.stores.schema import create_tables, stamp_schema
from keelwork.adapters.stores.transactions import connection, retrying_transaction

FLEET_METRICS_SCHEMA_KIND = "fleet_metrics"
FLEET_METRICS_SCHEMA_VERSION = 1
_STORE = "fleet metrics store"
#: The row that keeps the counts of processes that died.
RETIRED = "(retired)"

metadata = MetaData()
fleet_metrics = Table(
    "fleet_metrics", metadata,
    Column("replica", String(200), primary_key=True),
    Column("seen_at", Float(precision=53), nullable=False),
    Column("payload", Text, nullable=False),
)


@dataclass(frozen=True)
class FleetRow:
    """One process's published values (or the retired sum)."""

    replica: str
    seen_at: float
    payload: str


class FleetMetricsStore:
    """Publish, read and fold the serving processes' metric snapshots.

    Args:
        engine: The store.
        clock: Seconds since the epoch (default ``time.time``).
    """

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock

    def ensure_schema(self) -> None:
        """Create the table if missing (safe to repeat, and from several processes at once)."""
        create_tables(self.engine, metadata, "fleet metrics", tables=[fleet_metrics])
        stamp_schema(self.engine, FLEET_METRICS_SCHEMA_KIND, FLEET_METRICS_SCHEMA_VERSION)

    def publish(self, replica: str, payload: str, *, first: bool) -> bool:
        """Write ``replica``'s values, seen now.

        Args:
            replica: The process's name (never :data:`RETIRED`).
            payload: Its snapshot, as JSON.
            first: Its first publication: the row is created.

        Returns:
            False when the row of a process that published before is gone: it was taken for
            dead and folded into the retired sum (nothing is written; the caller publishes
            again, ``first``, what it counted since its last publication).

        Raises:
            ValueError: ``replica`` is the retired row's name.
            StoreError: the store failed.
        """
        if replica == RETIRED:
            raise ValueError(f"{RETIRED!r} names the retired sum, not a process.")

        def work(conn: Connection) -> bool:
            now = self.clock()
            c = fleet_metrics.c
            done = conn.execute(fleet_metrics.update().where(c.replica == replica)
                                .values(seen_at=now, payload=payload))
            if done.rowcount == 1:
                return True
            if not first:
                return False
            conn.execute(fleet_metrics.insert().values(replica=replica, seen_at=now,
                                                       payload=payload))
            return True

        return retrying_transaction(self.engine, work, store=_STORE,
                                    what=f"publishing the metrics of {replica!r}")

    def retire(self, replica: str) -> None:
        """Mark ``replica`` gone (a process that stops): its gauges leave the sums at once, its
        counts stay, and the next :meth:`fold` moves them into the retired sum."""
        def work(conn: Connection) -> None:
            conn.execute(fleet_metrics.update().where(fleet_metrics.c.replica == replica)
                         .values(seen_at=0.0))

        retrying_transaction(self.engine, work, store=_STORE,
                             what=f"retiring the metrics of {replica!r}")

    def rows(self) -> list[FleetRow]:
        """Every row, the retired sum's included."""
        with connection(self.engine, _STORE, "reading the fleet's metrics") as conn:
            found = conn.execute(sa_select(fleet_metrics)).all()
        return [FleetRow(r.replica, float(r.seen_at), r.payload) for r in found]

    def fold(self, dead_before: float,
             fold_with: Callable[[str | None, list[str]], str]) -> int:
        """Move the rows last seen before ``dead_before`` into the retired sum, in one
        transaction: ``fold_with(retired payload or None, their payloads)`` is the new retired
        payload.

        Returns:
            How many rows were folded.
        """
        def work(conn: Connection) -> int:
            c = fleet_metrics.c
            dead = conn.execute(sa_select(c.replica, c.seen_at, c.payload)
                                .where(c.seen_at < dead_before, c.replica != RETIRED)).all()
            # A row rewritten since it was read is alive after all: only the rows deleted as
            # they were read are folded.
            folded = [r.payload for r in dead if conn.execute(
                fleet_metrics.delete().where(c.replica == r.replica,
                                             c.seen_at == r.seen_at)).rowcount == 1]
            if not folded:
                return 0
            old = conn.execute(sa_select(c.payload).where(c.replica == RETIRED)).first()
            payload = fold_with(None if old is None else old.payload, folded)
            if old is None:
                conn.execute(fleet_metrics.insert().values(replica=RETIRED, seen_at=self.clock(),
                                                           payload=payload))
            else:
                conn.execute(fleet_metrics.update().where(c.replica == RETIRED)
                             .values(seen_at=self.clock(), payload=payload))
            return len(folded)

        return retrying_transaction(self.engine, work, store=_STORE,
                                    what="folding the metrics of stopped processes")


__all__ = ["RETIRED", "FleetMetricsStore", "FleetRow", "fleet_metrics"]

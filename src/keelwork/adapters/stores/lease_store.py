"""Named leases in the store: which process may run a piece of work meant to run once per fleet.

Table::

    leases   name (PK), holder, term, expires_at (seconds since the epoch), acquired_at

A lease is held by ``holder`` until ``expires_at``. Taking and renewing it is one conditional
``UPDATE`` (a compare-and-set on the row, the same statement on SQLite and PostgreSQL): it
succeeds when the caller holds the lease already or when the lease has expired, and matches no
row otherwise. The first take of a name inserts its row; two processes racing to insert it
collide on the primary key and the loser sees the winner's row on its retry. ``term`` grows by
one each time the lease changes hands, so a record can say under which holding it was written.

Time is the caller's clock (``time.time`` by default, a fake one in tests): the holders of one
store must have clocks within a fraction of the lease's time-to-live of each other (processes of
one machine share one clock; machines of a fleet run NTP).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, Engine, Float, MetaData, String, Table
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection

from keelwork.adapters.stores.schema import create_tables, stamp_schema
from keelwork.adapters.stores.transactions import connection, retrying_transaction

LEASES_SCHEMA_KIND = "leases"
LEASES_SCHEMA_VERSION = 1
_STORE = "lease store"

metadata = MetaData()
leases = Table(
    "leases", metadata,
    Column("name", String(200), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("term", BigInteger, nullable=False),
    Column("expires_at", Float(precision=53), nullable=False),
    Column("acquired_at", Float(precision=53), nullable=False),
)


@dataclass(frozen=True)
class LeaseState:
    """One lease as stored."""

    name: str
    holder: str
    #: How many times the lease has changed hands (1: its first holder).
    term: int
    expires_at: float
    #: When the current holder took it.
    acquired_at: float

    def held_at(self, now: float) -> bool:
        """Whether the lease is still held at ``now`` (by anyone)."""
        return now < self.expires_at


class LeaseStore:
    """Take, renew, release and read named leases.

    Args:
        engine: The store.
        clock: Seconds since the epoch (default ``time.time``).
    """

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock

    def ensure_schema(self) -> None:
        """Create the table if missing (safe to repeat, and from several processes at once)."""
        create_tables(self.engine, metadata, "lease", tables=[leases])
        stamp_schema(self.engine, LEASES_SCHEMA_KIND, LEASES_SCHEMA_VERSION)

    def acquire(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take or renew ``name`` for ``holder`` until ``ttl_s`` seconds from now.

        Returns:
            Whether ``holder`` holds the lease now: True when it held it already (renewed),
            when it was free or expired (taken), False while another holder's has not expired.

        Raises:
            ValueError: ``ttl_s`` is not positive.
            StoreError: the store failed.
        """
        if ttl_s <= 0:
            raise ValueError(f"The lease time-to-live must be > 0 seconds; got {ttl_s}.")

        def work(conn: Connection) -> bool:
            now = self.clock()
            expires = now + ttl_s
            c = leases.c
            renewed = conn.execute(
                leases.update()
                .where(c.name == name, c.holder == holder, c.expires_at > now)
                .values(expires_at=expires))
            if renewed.rowcount == 1:
                return True
            # Expired (anyone's, ours too: a holder that lapsed starts a new term).
            taken = conn.execute(
                leases.update()
                .where(c.name == name, c.expires_at <= now)
                .values(holder=holder, expires_at=expires, acquired_at=now, term=c.term + 1))
            if taken.rowcount == 1:
                return True
            exists = conn.execute(sa_select(c.name).where(c.name == name)).first()
            if exists is not None:
                return False
            # A fresh name: a racing insert makes this one fail, and the retry sees its row.
            conn.execute(leases.insert().values(name=name, holder=holder, term=1,
                                                expires_at=expires, acquired_at=now))
            return True

        return retrying_transaction(self.engine, work, store=_STORE,
                                    what=f"taking the lease {name!r}")

    def release(self, name: str, holder: str) -> bool:
        """Give ``name`` up at once, if ``holder`` holds it (so the next taker need not wait).

        Returns:
            Whether ``holder`` held it.
        """
        def work(conn: Connection) -> bool:
            now = self.clock()
            c = leases.c
            done = conn.execute(leases.update()
                                .where(c.name == name, c.holder == holder, c.expires_at > now)
                                .values(expires_at=now))
            return bool(done.rowcount == 1)

        return retrying_transaction(self.engine, work, store=_STORE,
                                    what=f"releasing the lease {name!r}")

    def get(self, name: str) -> LeaseState | None:
        """The stored state of ``name`` (None: never taken)."""
        with connection(self.engine, _STORE, f"reading the lease {name!r}") as conn:
            row = conn.execute(sa_select(leases).where(leases.c.name == name)).first()
        if row is None:
            return None
        return LeaseState(row.name, row.holder, int(row.term), float(row.expires_at),
                          float(row.acquired_at))


__all__ = ["LeaseState", "LeaseStore", "leases"]

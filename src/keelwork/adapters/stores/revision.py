"""A store's change counter: one row, bumped by every change, read by pollers.

Servers poll a small number rather than the data: one primary-key read tells whether anything
changed since they last loaded (flags, rollouts). Writers bump it with ``UPDATE ... SET revision =
revision + 1`` inside their own transaction; the UPDATE takes the row's write lock, so
concurrent changes are numbered one by one (a ``max(revision)`` read first could see a stale
snapshot and reuse a number another change just freed).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Engine, MetaData, Table, select
from sqlalchemy.engine import Connection

from keelwork.adapters.stores.transactions import connection, retrying_transaction


def revision_table(name: str, metadata: MetaData) -> Table:
    """The one-row counter table ``name`` (id, revision) in ``metadata``."""
    return Table(name, metadata,
                 Column("id", BigInteger, primary_key=True, autoincrement=False),
                 Column("revision", BigInteger, nullable=False))


def seed_revision(engine: Engine, table: Table, *, store: str) -> None:
    """Insert the counter's row at 0 when missing (safe to repeat, from several processes)."""

    def seed(conn: Connection) -> None:
        if conn.execute(select(table.c.id)).first() is None:
            conn.execute(table.insert().values(id=1, revision=0))

    retrying_transaction(engine, seed, store=store, what="creating the revision")


def read_revision(engine: Engine, table: Table, *, store: str) -> int:
    """The latest change's number (0: never changed)."""
    with connection(engine, store, "reading the revision") as conn:
        value = conn.execute(select(table.c.revision)).scalar()
    return int(value or 0)


def bump_revision(conn: Connection, table: Table) -> int:
    """Count one change inside the caller's transaction; returns its number."""
    conn.execute(table.update().values(revision=table.c.revision + 1))
    return int(conn.execute(select(table.c.revision)).scalar_one())

"""Which gateway replica uses which model version's Serve deployment
(``keel serve --engine ray --version-deployments``).

Table::

    version_uses   app, replica (PK together), target (JSON), seen_at (seconds since the epoch)

Each gateway replica writes a row for every version it holds a handle to when it takes the
handle, renews ``seen_at`` every few seconds while it keeps it, and deletes it when it lets the
handle go. The one process that declares Serve applications (``keel serve``'s, see
:mod:`keelwork.adapters.engines.ray_versions`) reads the rows: it creates an application for
every ``app`` that has one, and deletes an application once no row of it has been seen for a
while (:meth:`VersionUses.forget_unused` deletes those rows and names the apps left without any
row, in one transaction).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Column, Engine, Float, MetaData, String, Table, Text
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection

from keelwork.adapters.stores.schema import create_tables, stamp_schema
from keelwork.adapters.stores.transactions import connection, retrying_transaction

VERSION_USES_SCHEMA_KIND = "version_uses"
VERSION_USES_SCHEMA_VERSION = 1
_STORE = "version uses store"

metadata = MetaData()
version_uses = Table(
    "version_uses", metadata,
    Column("app", String(400), primary_key=True),
    Column("replica", String(200), primary_key=True),
    Column("target", Text, nullable=False),
    Column("seen_at", Float(precision=53), nullable=False),
)


class VersionUses:
    """Record and read which replica uses which version's application.

    Args:
        engine: The store (shared by every replica).
        clock: Seconds since the epoch (default ``time.time``).
    """

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock

    def ensure_schema(self) -> None:
        """Create the table if missing (safe to repeat, and from several processes at once)."""
        create_tables(self.engine, metadata, "version uses", tables=[version_uses])
        stamp_schema(self.engine, VERSION_USES_SCHEMA_KIND, VERSION_USES_SCHEMA_VERSION)

    def use(self, app: str, replica: str, target: dict[str, Any]) -> None:
        """``replica`` uses ``app`` (whose version ``target`` describes), as of now."""
        now = self.clock()
        text = json.dumps(target, sort_keys=True)

        def work(conn: Connection) -> None:
            c = version_uses.c
            done = conn.execute(version_uses.update()
                                .where(c.app == app, c.replica == replica)
                                .values(seen_at=now, target=text))
            if done.rowcount == 0:  # a racing insert of the same pair fails; the retry updates
                conn.execute(version_uses.insert().values(app=app, replica=replica,
                                                          target=text, seen_at=now))

        retrying_transaction(self.engine, work, store=_STORE, what=f"recording a use of {app}")

    def renew(self, apps: list[str], replica: str) -> None:
        """``replica`` still uses ``apps``, as of now."""
        if not apps:
            return
        now = self.clock()

        def work(conn: Connection) -> None:
            c = version_uses.c
            conn.execute(version_uses.update()
                         .where(c.replica == replica, c.app.in_(apps)).values(seen_at=now))

        retrying_transaction(self.engine, work, store=_STORE, what="renewing version uses")

    def drop(self, app: str, replica: str) -> None:
        """``replica`` no longer uses ``app``."""
        def work(conn: Connection) -> None:
            c = version_uses.c
            conn.execute(version_uses.delete().where(c.app == app, c.replica == replica))

        retrying_transaction(self.engine, work, store=_STORE, what=f"dropping a use of {app}")

    def needed(self, prefix: str) -> dict[str, dict[str, Any]]:
        """Every app named ``prefix...`` that some replica uses -> its target."""
        c = version_uses.c
        with connection(self.engine, _STORE, "reading version uses") as conn:
            rows = conn.execute(sa_select(c.app, c.target)
                                .where(c.app.startswith(prefix, autoescape=True))).all()
        return {str(row.app): json.loads(row.target) for row in rows}

    def forget_unused(self, prefix: str, idle_s: float) -> list[str]:
        """Delete the uses of apps named ``prefix...`` not seen for ``idle_s`` seconds.

        Returns:
            The apps that had a row and have none left (no replica uses them).
        """
        cutoff = self.clock() - idle_s

        def work(conn: Connection) -> list[str]:
            c = version_uses.c
            mine = c.app.startswith(prefix, autoescape=True)
            stale = {str(a) for a in conn.execute(
                sa_select(c.app).where(mine, c.seen_at < cutoff)).scalars()}
            if not stale:
                return []
            conn.execute(version_uses.delete().where(mine, c.seen_at < cutoff))
            left = {str(a) for a in conn.execute(
                sa_select(c.app).where(c.app.in_(stale))).scalars()}
            return sorted(stale - left)

        return retrying_transaction(self.engine, work, store=_STORE,
                                    what="forgetting unused versions")


__all__ = ["VersionUses", "version_uses"]

"""What each server of a store sees of each rate-limited identity: its demand rate.

Table::

    rate_limit_demand   identity (PK: a hash of the caller identity, never the key or IP
                        itself), server (PK), rate (requests per second seen), updated_at

Each server publishes its demand every sync interval (one upsert per identity it saw) and reads
the others' recent rows (:mod:`keelwork.core.ratelimit` turns them into its share). Rows older
than a few intervals are ignored and pruned.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Column, Double, Engine, Index, MetaData, String, Table, delete, func, select
from sqlalchemy.engine import Connection

from keelwork.adapters.stores.schema import create_tables
from keelwork.adapters.stores.sql import among
from keelwork.adapters.stores.transactions import connection, retrying_transaction

_STORE = "rate limit store"

metadata = MetaData()
rate_limit_demand = Table(
    "rate_limit_demand", metadata,
    Column("identity", String(64), primary_key=True),
    Column("server", String(64), primary_key=True),
    Column("rate", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Index("ix_rate_limit_demand_updated", "updated_at"),
)


class RateLimitStore:
    """Publishes and reads demand rates.

    Args:
        engine: The store shared by the servers.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def ensure_schema(self) -> None:
        create_tables(self.engine, metadata, "rate limit", tables=[rate_limit_demand])

    def exchange(self, server: str, rates: Mapping[str, float], now: float,
                 fresh_s: float) -> dict[str, float]:
        """Publish this server's ``rates`` and read the other servers' recent ones.

        Args:
            server: This server's id.
            rates: Identity hash -> requests per second this server saw.
            now: Unix seconds.
            fresh_s: Rows older than this are ignored (and deleted).

        Returns:
            Identity hash -> the sum of the other servers' rates, for the identities in
            ``rates``.
        """
        ids = sorted(rates)

        def work(conn: Connection) -> dict[str, float]:
            conn.execute(delete(rate_limit_demand).where(
                rate_limit_demand.c.updated_at < now - fresh_s))
            for cond in among(conn, rate_limit_demand.c.identity, ids):
                conn.execute(delete(rate_limit_demand).where(
                    cond, rate_limit_demand.c.server == server))
            if ids:
                conn.execute(rate_limit_demand.insert(), [
                    {"identity": i, "server": server, "rate": float(rates[i]),
                     "updated_at": now} for i in ids])
            out: dict[str, float] = {}
            c = rate_limit_demand.c
            for cond in among(conn, c.identity, ids):
                for identity, total in conn.execute(
                        select(c.identity, func.sum(c.rate)).where(cond, c.server != server)
                        .group_by(c.identity)):
                    out[identity] = float(total or 0.0)
            return out

        return retrying_transaction(self.engine, work, store=_STORE,
                                    what="exchanging rate-limit demand")

    def servers(self, now: float, fresh_s: float) -> int:
        """Servers that published within ``fresh_s`` (for /metrics and tests)."""
        with connection(self.engine, _STORE, "counting servers") as conn:
            return int(conn.execute(select(func.count(func.distinct(
                rate_limit_demand.c.server))).where(
                rate_limit_demand.c.updated_at >= now - fresh_s)).scalar_one())


__all__ = ["RateLimitStore", "rate_limit_demand"]

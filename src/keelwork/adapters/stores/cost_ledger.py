"""What each model version used, per time bucket: the durable record the monthly budget reads.

``/metrics`` counters start again at zero when a server restarts, so the month's spend cannot
be read from them. A server adds what its model calls used since its last write
(:class:`keelwork.service.cost_watch.UsageMeter`) to this table every
``cost.evaluation_interval``; several servers on one store add to the same rows.

Table (own ``MetaData``, schema kind ``cost``)::

    cost_usage  bucket (start, seconds since the epoch, a multiple of BUCKET_S), model,
                version (PK together), day (the bucket's UTC day, days since the epoch),
                cpu_seconds, gpu_seconds, predictions, input_tokens, output_tokens

Usage is kept, not money: the cost is computed at read time at keel.yaml's prices (token
prices by the bucket's day). One row per version per bucket: a month holds 4,464 rows per
version that served in every bucket of it; rows older than :data:`KEEP_S` are deleted
(:meth:`CostLedger.prune`, once a day by the server).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    func,
    select,
)
from sqlalchemy.engine import Connection

from keelwork.adapters.stores.schema import create_tables, stamp_schema
from keelwork.adapters.stores.transactions import connection, retrying_transaction

COST_SCHEMA_KIND = "cost"
COST_SCHEMA_VERSION = 1
_STORE = "cost ledger"
#: Seconds per bucket: the finest time the forecast window and the month's start are read at.
BUCKET_S = 600
#: How long usage is kept: 400 days, so a year ago's month can still be compared.
KEEP_S = 400 * 86_400
#: The usage quantities a row holds.
FIELDS = ("cpu_seconds", "gpu_seconds", "predictions", "input_tokens", "output_tokens")

metadata = MetaData()
cost_usage = Table(
    "cost_usage", metadata,
    Column("bucket", Double, primary_key=True),
    Column("model", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("day", Integer, nullable=False),
    Column("cpu_seconds", Double, nullable=False),
    Column("gpu_seconds", Double, nullable=False),
    Column("predictions", BigInteger, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
)


@dataclass(frozen=True, slots=True)
class UsageRow:
    """What one version used in one bucket."""

    bucket: float
    model: str
    version: int
    cpu_seconds: float = 0.0
    gpu_seconds: float = 0.0
    predictions: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


def bucket_of(at: float) -> float:
    """The start of the bucket holding ``at``."""
    return float(int(at // BUCKET_S) * BUCKET_S)


class CostLedger:
    """Add usage and read it back by time range.

    Args:
        engine: The store.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def ensure_schema(self) -> None:
        """Create the table if missing (safe to repeat)."""
        create_tables(self.engine, metadata, "cost", tables=[cost_usage])
        stamp_schema(self.engine, COST_SCHEMA_KIND, COST_SCHEMA_VERSION)

    def add(self, at: float, usage: Mapping[tuple[str, int], Mapping[str, float]]) -> int:
        """Add each version's ``usage`` (quantities by :data:`FIELDS` name) to the bucket
        holding ``at``, in one transaction.

        Returns:
            The rows written.

        Raises:
            StoreError: the store failed (nothing was added: the caller keeps the usage).
        """
        bucket = bucket_of(at)
        c = cost_usage.c

        def work(conn: Connection) -> int:
            for (model, version), amounts in usage.items():
                values = {k: float(amounts.get(k, 0.0)) if k.endswith("seconds")
                          else round(amounts.get(k, 0.0)) for k in FIELDS}
                key = and_(c.bucket == bucket, c.model == model, c.version == version)
                done = conn.execute(cost_usage.update().where(key).values(
                    **{k: getattr(c, k) + v for k, v in values.items()}))
                if not done.rowcount:  # a concurrent insert makes this one retry as an update
                    conn.execute(cost_usage.insert().values(
                        bucket=bucket, model=model, version=version,
                        day=int(bucket // 86_400), **values))
            return len(usage)

        if not usage:
            return 0
        return retrying_transaction(self.engine, work, store=_STORE,
                                    what="adding model usage")

    def usage(self, since: float, until: float) -> list[UsageRow]:
        """Every row whose bucket starts in ``[since, until)``, oldest first."""
        c = cost_usage.c
        query = (select(cost_usage).where(c.bucket >= since, c.bucket < until)
                 .order_by(c.bucket, c.model, c.version))
        with connection(self.engine, _STORE, "reading model usage") as conn:
            return [UsageRow(r.bucket, r.model, r.version, r.cpu_seconds, r.gpu_seconds,
                             r.predictions, r.input_tokens, r.output_tokens)
                    for r in conn.execute(query)]

    def usage_by_day(self, since: float, until: float) -> list[UsageRow]:
        """The rows of buckets starting in ``[since, until)``, summed per version and UTC day
        (``bucket`` is the day's start): a month is read as 31 rows per version at most."""
        c = cost_usage.c
        sums = [func.sum(getattr(c, k)).label(k) for k in FIELDS]
        query = (select(c.model, c.version, c.day, *sums)
                 .where(c.bucket >= since, c.bucket < until)
                 .group_by(c.model, c.version, c.day).order_by(c.day, c.model, c.version))
        with connection(self.engine, _STORE, "reading model usage") as conn:
            return [UsageRow(float(r.day * 86_400), r.model, r.version, float(r.cpu_seconds),
                             float(r.gpu_seconds), int(r.predictions), int(r.input_tokens),
                             int(r.output_tokens)) for r in conn.execute(query)]

    def prune(self, before: float) -> int:
        """Delete the rows of buckets that start before ``before``; returns how many."""
        def work(conn: Connection) -> int:
            return int(conn.execute(cost_usage.delete().where(
                cost_usage.c.bucket < before)).rowcount or 0)

        return retrying_transaction(self.engine, work, store=_STORE,
                                    what="deleting old model usage")

    def first_bucket(self) -> float | None:
        """The oldest bucket kept (None: empty)."""
        with connection(self.engine, _STORE, "reading model usage") as conn:
            value = conn.execute(select(func.min(cost_usage.c.bucket))).scalar()
        return None if value is None else float(value)


__all__ = ["BUCKET_S", "FIELDS", "KEEP_S", "CostLedger", "UsageRow", "bucket_of", "cost_usage"]

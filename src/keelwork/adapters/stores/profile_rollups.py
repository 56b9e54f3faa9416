"""Monitoring rollups: each model version's logged predictions, folded per time bucket.

Table (own ``MetaData``, schema kind ``monitor_rollups``)::

    monitor_rollups       model, version, bucket_start (PK together), seconds, layout,
                          seen, updated_at, body (a :meth:`Rollup.to_bytes
                          <keelwork.core.monitors.rollup.Rollup.to_bytes>`)
    monitor_rollup_spans  model, selection, span_start, span_end (PK together), layout,
                          counts, updated_at, body: a whole window's bucket rollups summed

A bucket is ``[bucket_start, bucket_start + seconds)`` of prediction time, ``bucket_start`` a
multiple of ``seconds``. :meth:`RollupStore.replace_bucket` makes a bucket's rollups (one per
version) the ones just folded, in one transaction. Nothing here decides whether a rollup can
be trusted: a reader compares ``seen`` with the log's own count of the bucket
(:meth:`RollupStore.log_counts`), so a rollup that no longer matches the log (rows logged or
deleted since, two runs folding the same bucket at once) is simply not used. A span is the
same kind of cache one level up -- a window's rollups already summed -- and is used only while
``counts`` (a digest of the log's count in each of its buckets) still matches; at most
:data:`MAX_SPANS` are kept per model (the least recently written go first).

Also here, since every SQL statement lives in ``adapters/stores``: the narrow read of a
window's *labelled* predictions (:meth:`RollupStore.labelled_rows`), which is what a run adds
to the rollups (ground truth arrives late, so it is never rolled up).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    bindparam,
    delete,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from keelwork.adapters.stores.ingest_tables import labels
from keelwork.adapters.stores.prediction_store import prediction_payloads, predictions
from keelwork.adapters.stores.schema import create_tables, stamp_schema
from keelwork.adapters.stores.subject_keys import open_payloads
from keelwork.adapters.stores.transactions import (
    connection,
    retrying_transaction,
    store_error,
)
from keelwork.core.monitors.rollup import Rollup

ROLLUP_SCHEMA_KIND = "monitor_rollups"
ROLLUP_SCHEMA_VERSION = 2  # 2: monitor_rollup_spans
_STORE = "monitor rollups"
#: Spans kept per model: a user can ask for any number of distinct windows.
MAX_SPANS = 64

metadata = MetaData()
monitor_rollups = Table(
    "monitor_rollups", metadata,
    Column("model", String(256), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("bucket_start", BigInteger, primary_key=True),
    Column("seconds", Integer, nullable=False),
    Column("layout", String(64), nullable=False),
    Column("seen", BigInteger, nullable=False),
    Column("updated_at", Double, nullable=False),
    Column("body", LargeBinary, nullable=False),
)

monitor_rollup_spans = Table(
    "monitor_rollup_spans", metadata,
    Column("model", String(256), primary_key=True),
    Column("selection", Integer, primary_key=True),  # the version a run read; -1: every one
    Column("span_start", BigInteger, primary_key=True),
    Column("span_end", BigInteger, primary_key=True),
    Column("layout", String(64), nullable=False),
    Column("counts", String(64), nullable=False),
    Column("updated_at", Double, nullable=False),
    Column("body", LargeBinary, nullable=False),
)

#: ``(model, version, bucket_start)``.
RollupKey = tuple[str, int, int]


_SQLITE_LABELLED = f"""
SELECT p.id, p.ts, p.version, p.status, p.tenant, q.inputs, q.outputs, l.label,
       l.ts AS label_ts
FROM {labels.name} AS l CROSS JOIN {predictions.name} AS p ON p.id = l.prediction_id
LEFT OUTER JOIN {prediction_payloads.name} AS q ON q.id = p.id
WHERE p.model = :model AND p.ts >= :since AND p.ts < :until
ORDER BY p.ts, p.id
"""


_BINARY_READ = (f"SELECT version, bucket_start, layout, seen, body FROM {monitor_rollups.name} "
                "WHERE model = %s AND seconds = %s AND bucket_start >= %s AND bucket_start < %s")
_BINARY_SPANS = (f"SELECT span_start, span_end, layout, counts, body FROM "
                 f"{monitor_rollup_spans.name} WHERE model = %s AND selection = %s "
                 "AND span_start >= %s AND span_end <= %s")


#: One count per bucket start, on the (model, ts) index, in a single PostgreSQL statement.
_PG_COUNTS = (f"SELECT b.s, (SELECT count(*) FROM {predictions.name} p WHERE p.model = :model "
              "AND p.ts >= b.s AND p.ts < b.s + :width) "
              "FROM unnest(CAST(:starts AS double precision[])) AS b(s)")


class RollupStore:
    """Read and write monitoring rollups, and the two log reads that go with them.

    Args:
        engine: The store (SQLite or PostgreSQL) that holds the prediction log.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def ensure_schema(self) -> None:
        """Create the table if missing (safe to repeat, from several processes).

        Raises:
            StoreError: the store failed, or holds a newer schema.
        """
        create_tables(self.engine, metadata, "monitor rollups")
        stamp_schema(self.engine, ROLLUP_SCHEMA_KIND, ROLLUP_SCHEMA_VERSION)

    def has_rollups(self) -> bool:
        """Whether the rollup table exists (a server maintained rollups here once).

        Raises:
            StoreError: the store could not be inspected.
        """
        try:
            return bool(inspect(self.engine).has_table(monitor_rollups.name))
        except SQLAlchemyError as exc:
            raise store_error(_STORE, "looking for the rollup table", self.engine,
                              exc) from None

    def replace_bucket(self, model: str, bucket: int, rollups: Mapping[int, Rollup],
                       seconds: int) -> None:
        """Make ``rollups`` (by version) the bucket's only ones, in one transaction.

        Raises:
            StoreError: the store failed (the bucket keeps what it had).
        """
        r = monitor_rollups.c

        def work(conn: Connection) -> None:
            now = time.time()
            conn.execute(delete(monitor_rollups).where(r.model == model,
                                                       r.bucket_start == bucket))
            for version, new in sorted(rollups.items()):
                conn.execute(monitor_rollups.insert().values(
                    model=model, version=version, bucket_start=bucket, seconds=seconds,
                    layout=new.layout, seen=new.seen, updated_at=now, body=new.to_bytes()))

        retrying_transaction(self.engine, work, store=_STORE, what="storing rollups")

    def read(self, model: str, since: float, until: float, seconds: int,
             ) -> dict[tuple[int, int], tuple[str, int, bytes]]:
        """Stored rollups of ``model`` whose bucket starts in ``[since, until)``.

        Returns:
            ``(version, bucket_start) -> (layout, seen, body)``; bodies are left unread.

        Raises:
            StoreError: the store failed.
        """
        r = monitor_rollups.c
        out: dict[tuple[int, int], tuple[str, int, bytes]] = {}
        with connection(self.engine, _STORE, "reading rollups") as conn:
            if conn.dialect.driver == "psycopg":
                # psycopg's binary protocol: the bodies (tens of MB for a day of kept scores)
                # come as bytes, not hex text decoded back (3x faster).
                raw = conn.connection.driver_connection
                with raw.cursor(binary=True) as cur:  # type: ignore[union-attr]
                    cur.execute(_BINARY_READ, (model, seconds, since, until))
                    rows: Any = cur.fetchall()
            else:
                rows = conn.execute(select(r.version, r.bucket_start, r.layout, r.seen, r.body)
                                    .where(r.model == model, r.seconds == seconds,
                                           r.bucket_start >= since, r.bucket_start < until))
            for version, bucket, layout, seen, body in rows:
                out[(int(version), int(bucket))] = (str(layout), int(seen), bytes(body))
        return out

    def read_spans(self, model: str, selection: int, since: float, until: float,
                   ) -> dict[tuple[int, int], tuple[str, str, bytes]]:
        """Stored spans of ``model`` and ``selection`` inside ``[since, until)``.

        Returns:
            ``(span_start, span_end) -> (layout, counts, body)``; bodies are left unread.

        Raises:
            StoreError: the store failed.
        """
        s = monitor_rollup_spans.c
        out: dict[tuple[int, int], tuple[str, str, bytes]] = {}
        with connection(self.engine, _STORE, "reading rollup spans") as conn:
            if conn.dialect.driver == "psycopg":  # bytes as bytes (see read)
                raw = conn.connection.driver_connection
                with raw.cursor(binary=True) as cur:  # type: ignore[union-attr]
                    cur.execute(_BINARY_SPANS, (model, selection, since, until))
                    rows: Any = cur.fetchall()
            else:
                rows = conn.execute(select(s.span_start, s.span_end, s.layout, s.counts, s.body)
                                    .where(s.model == model, s.selection == selection,
                                           s.span_start >= since, s.span_end <= until))
            for start, end, layout, counts, body in rows:
                out[(int(start), int(end))] = (str(layout), str(counts), bytes(body))
        return out

    def write_span(self, model: str, selection: int, start: int, end: int, counts: str,
                   rollup: Rollup) -> None:
        """Store ``rollup`` as the span ``[start, end)`` of ``model`` and ``selection``
        (replacing any), then drop the model's spans beyond the :data:`MAX_SPANS` newest.

        Raises:
            StoreError: the store failed (nothing changed).
        """
        s = monitor_rollup_spans.c
        body = rollup.to_bytes()

        def work(conn: Connection) -> None:
            now = time.time()
            conn.execute(delete(monitor_rollup_spans).where(
                s.model == model, s.selection == selection, s.span_start == start,
                s.span_end == end))
            conn.execute(monitor_rollup_spans.insert().values(
                model=model, selection=selection, span_start=start, span_end=end,
                layout=rollup.layout, counts=counts, updated_at=now, body=body))
            newest = (select(s.updated_at).where(s.model == model)
                      .order_by(s.updated_at.desc()).limit(1).offset(MAX_SPANS - 1)
                      .scalar_subquery())
            conn.execute(delete(monitor_rollup_spans).where(s.model == model,
                                                            s.updated_at < newest))

        retrying_transaction(self.engine, work, store=_STORE, what="storing a rollup span")

    def log_counts(self, model: str, buckets: Sequence[int], seconds: int) -> dict[int, int]:
        """The prediction log's rows of ``model`` in each bucket ``[b, b + seconds)``.

        One range count per bucket on the ``(model, ts)`` index: the same comparisons a run
        reads windows with, so a row on a bucket edge is counted where the run puts it.

        Raises:
            StoreError: the store failed.
        """
        p = predictions.c
        lo: Any = bindparam("lo")
        hi: Any = bindparam("hi")
        stmt = select(func.count()).where(p.model == model, p.ts >= lo, p.ts < hi)
        out: dict[int, int] = {}
        with connection(self.engine, _STORE, "counting the log per bucket") as conn:
            if conn.dialect.name == "postgresql" and buckets:
                # The same range counts in one statement: one round trip, not one a bucket
                # (288 for a day: 0.4 s of round trips against 0.1 s).
                for b, n in conn.execute(text(_PG_COUNTS), {
                        "model": model, "width": float(seconds),
                        "starts": [float(b) for b in buckets]}):
                    out[int(b)] = int(n)
                return out
            for b in buckets:
                out[b] = int(conn.execute(stmt, {"lo": float(b), "hi": float(b + seconds)})
                             .scalar_one())
        return out

    def labelled_rows(self, model: str, since: float, until: float,
                      predictions_hint: int | Literal["count"] | None = None
                      ) -> list[dict[str, Any]]:
        """The logged predictions of ``model`` in ``[since, until)`` that have a current
        label, in ``(ts, id)`` order: ``id``, ``ts``, ``version``, ``status``, ``tenant``,
        ``inputs``, ``outputs`` (JSON text), ``label`` (decoded) and ``label_ts``.
        ``predictions_hint``: how many predictions the range holds (picks the plan;
        ``"count"``: counted here, on SQLite only, where the plan depends on it).

        Raises:
            StoreError: the store failed.
        """
        try:
            if not inspect(self.engine).has_table(labels.name):
                return []
        except SQLAlchemyError as exc:
            raise store_error(_STORE, "looking for the labels table", self.engine,
                              exc) from None
        p, q, lab = predictions, prediction_payloads, labels
        stmt: Any = (select(p.c.id, p.c.ts, p.c.version, p.c.status, p.c.tenant, q.c.inputs,
                            q.c.outputs, lab.c.label, lab.c.ts.label("label_ts"))
                     .select_from(lab.join(p, p.c.id == lab.c.prediction_id)
                                  .outerjoin(q, q.c.id == p.c.id))
                     .where(p.c.model == model, p.c.ts >= since, p.c.ts < until)
                     .order_by(p.c.ts, p.c.id))
        params = {"model": model, "since": since, "until": until}
        with connection(self.engine, _STORE, "reading labelled predictions") as conn:
            if conn.dialect.name == "sqlite" and predictions_hint == "count":
                predictions_hint = int(conn.execute(
                    select(func.count()).select_from(p).where(
                        p.c.model == model, p.c.ts >= since, p.c.ts < until)).scalar_one())
            if conn.dialect.name == "sqlite" and isinstance(predictions_hint, int) and int(
                    conn.execute(select(func.count()).select_from(lab)).scalar_one()
            ) < predictions_hint:
                # SQLite (no statistics) walks the window's predictions and probes the
                # labels for each; with fewer labels than that, CROSS JOIN makes it walk
                # the labels instead (SQLite's documented way to fix the join order).
                stmt = text(_SQLITE_LABELLED)
            out = []
            for row in conn.execute(stmt, params):
                d = dict(row._mapping)
                d["label"] = orjson.loads(d["label"])
                d["label_ts"] = float(d["label_ts"])
                out.append(d)
        return open_payloads(self.engine, out)


__all__ = ["MAX_SPANS", "ROLLUP_SCHEMA_KIND", "ROLLUP_SCHEMA_VERSION", "RollupKey",
           "RollupStore", "monitor_rollup_spans", "monitor_rollups"]

"""Tables, row format and read queries of the prediction log (SQLAlchemy Core).

Tables (own ``MetaData``, schema kind ``predictions``)::

    predictions          id (PK), ts, model, version, tenant, subject_id, status, guard,
                         answered_by, latency_ms, model_latency_ms
                         indexes: ts, (model, ts), subject_id, tenant (the last two partial
                         on SQLite: only rows naming one, a fifth off each insert; issue 19)
    prediction_payloads  id (PK, FK -> predictions.id, on delete cascade), inputs, outputs,
                         request_meta -- JSON text; sealed per data subject when the row
                         names one (:mod:`keelwork.adapters.stores.subject_keys`)

A *row* is one dict with every column of both tables (payloads as JSON text): what the writer
inserts, what the spool stores one per line and what :meth:`PredictionReader.iter_row_batches`
yields. The writer itself is :class:`keelwork.adapters.stores.prediction_log.PredictionLog`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
from sqlalchemy import (
    Column,
    Double,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    case,
    func,
    inspect,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.expression import ColumnElement

from keelwork.adapters.stores.schema import stamp_schema
from keelwork.adapters.stores.sql import among
from keelwork.adapters.stores.subject_keys import open_payloads, seal_for
from keelwork.core.predictions import PredictionRecord
from keelwork.core.slo.evaluate import SloCounts
from keelwork.errors import StoreError

PREDICTIONS_SCHEMA_KIND = "predictions"
PREDICTIONS_SCHEMA_VERSION = 1

metadata = MetaData()

predictions = Table(
    "predictions", metadata,
    Column("id", String, primary_key=True),
    Column("ts", Double, nullable=False),
    Column("model", String, nullable=False),
    Column("version", Integer, nullable=False),
    Column("tenant", String),
    Column("subject_id", String),
    Column("status", String, nullable=False),
    Column("guard", String),
    Column("answered_by", String),
    Column("latency_ms", Double, nullable=False),
    Column("model_latency_ms", Double),
    Index("ix_predictions_ts", "ts"),
    Index("ix_predictions_model_ts", "model", "ts"),
    Index("ix_predictions_subject_id", "subject_id", sqlite_where=text("subject_id IS NOT NULL")),
    Index("ix_predictions_tenant", "tenant", sqlite_where=text("tenant IS NOT NULL")),
)

prediction_payloads = Table(
    "prediction_payloads", metadata,
    Column("id", String, ForeignKey("predictions.id", ondelete="CASCADE"), primary_key=True),
    Column("inputs", Text, nullable=False),
    Column("outputs", Text, nullable=False),
    Column("request_meta", Text, nullable=False),
)

META_COLUMNS = tuple(c.name for c in predictions.columns)
_TEXT_COLS = ("id", "model", "tenant", "subject_id", "status", "guard", "answered_by")
_ORJSON_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def ensure_schema(engine: Engine) -> None:
    """Create the prediction-log tables (of ``engine``) if missing; stamp their version.

    Raises:
        StoreError: the store failed, or holds a newer schema version than this keelwork knows.
    """
    try:
        metadata.create_all(engine, checkfirst=True)
    except SQLAlchemyError as exc:
        raise store_error("create the prediction log tables", exc) from None
    stamp_schema(engine, PREDICTIONS_SCHEMA_KIND, PREDICTIONS_SCHEMA_VERSION)


def record_to_row(record: PredictionRecord) -> dict[str, Any]:
    """One record as a row (:func:`records_to_rows`)."""
    return records_to_rows([record])[0]


def records_to_rows(records: Sequence[PredictionRecord]) -> list[dict[str, Any]]:
    """Flatten records into rows: payloads as JSON text, NULs stripped from text columns. A
    ``request_meta`` that consecutive records share (the same object: the records of one
    gateway call) is encoded once.

    Returns:
        One dict per record with every column of both tables (the spool's line format, plus
        ``v``).
    """
    rows: list[dict[str, Any]] = []
    shared: object = rows  # no record's request_meta
    meta = ""
    for r in records:
        if r.request_meta is not shared:
            shared, meta = r.request_meta, _encode(r.request_meta)
        row: dict[str, Any] = {
            "v": 1, "id": r.id, "ts": r.ts, "model": r.model, "version": r.version,
            "tenant": r.tenant, "subject_id": r.subject_id, "status": r.status,
            "guard": r.guard, "answered_by": r.answered_by, "latency_ms": r.latency_ms,
            "model_latency_ms": r.model_latency_ms, "inputs": _encode(r.inputs),
            "outputs": _encode(r.outputs), "request_meta": meta}
        for key in _TEXT_COLS:  # PostgreSQL text cannot hold NUL: it would poison the batch
            value = row[key]
            if isinstance(value, str) and "\x00" in value:
                row[key] = value.replace("\x00", "")
        rows.append(row)
    return rows


def row_to_record(row: Any) -> PredictionRecord:
    """Rebuild a record from a stored row (payload JSON text decoded).

    Args:
        row: A mapping with every column of both tables.

    Returns:
        The record.
    """
    def load(text: str | None) -> Any:
        return None if text is None else orjson.loads(text)

    return PredictionRecord(
        id=row["id"], ts=row["ts"], model=row["model"], version=row["version"],
        tenant=row["tenant"], subject_id=row["subject_id"], inputs=load(row["inputs"]),
        outputs=load(row["outputs"]), latency_ms=row["latency_ms"],
        model_latency_ms=row["model_latency_ms"], status=row["status"], guard=row["guard"],
        answered_by=row["answered_by"], request_meta=load(row["request_meta"]) or {},
    )


def _encode(value: Any) -> str:
    try:
        return orjson.dumps(value, default=_fallback, option=_ORJSON_OPTS).decode()
    except orjson.JSONEncodeError:  # nested deeper than orjson goes: keep its text, not nothing
        return orjson.dumps(repr(value)[:100_000]).decode()


def _fallback(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy scalars of exotic dtypes, torch tensors
        return obj.tolist()
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=repr)
    if isinstance(obj, bytes | bytearray):
        return bytes(obj).decode("utf-8", "replace")
    return repr(obj)


def store_error(action: str, exc: BaseException) -> StoreError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StoreError(f"Could not {action}: {text}")


class PredictionReader:
    """Read queries over the prediction log; needs no writer, spool or schema changes.

    Args:
        engine: The store.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def has_log(self) -> bool:
        """Return True when the store holds the prediction-log tables.

        Raises:
            StoreError: the store failed.
        """
        try:
            return bool(inspect(self.engine).has_table(predictions.name))
        except SQLAlchemyError as exc:
            raise store_error("open the prediction log", exc) from None

    def iter_row_batches(self, since: float | None = None, until: float | None = None, *,
                         model: str | None = None, tenant: str | None = None,
                         subject_id: str | None = None, after: tuple[float, str] | None = None,
                         limit: int | None = None, batch_size: int = 1000,
                         status: str | None = None) -> Iterator[list[dict[str, Any]]]:
        """Stream stored rows in (ts, id) order, one short query per batch (constant memory).

        Args:
            since: Earliest ``ts`` (unix seconds, inclusive).
            until: Latest ``ts`` (exclusive).
            model: Only this model.
            tenant: Only this tenant.
            subject_id: Only this data subject.
            after: Only rows after this ``(ts, id)`` (for following the log).
            limit: Most rows in all.
            batch_size: Rows per query.
            status: Only rows of this status (``ok``, ``error``, ``rejected``...).

        Yields:
            Lists of dicts with every column of both tables; payloads stay JSON text.

        Raises:
            StoreError: the store failed.
        """
        p = predictions
        where = _filters(since, until, model, tenant, subject_id, status)
        left = limit
        while left is None or left > 0:
            stmt = _with_payloads().where(*where)
            if after is not None:
                stmt = stmt.where(or_(p.c.ts > after[0], and_(p.c.ts == after[0],
                                                              p.c.id > after[1])))
            n = batch_size if left is None else min(batch_size, left)
            stmt = stmt.order_by(p.c.ts, p.c.id).limit(n)
            rows = self._read(stmt)
            if not rows:
                return
            yield rows
            if left is not None:
                left -= len(rows)
            if len(rows) < n:
                return
            after = (rows[-1]["ts"], rows[-1]["id"])

    def iter_records(self, since: float | None = None, until: float | None = None, *,
                     model: str | None = None, tenant: str | None = None,
                     subject_id: str | None = None, limit: int | None = None,
                     batch_size: int = 1000) -> Iterator[PredictionRecord]:
        """Stream stored records in (ts, id) order, decoded; constant memory.

        Args:
            since, until, model, tenant, subject_id: Which records, as in
                :meth:`iter_row_batches`.
            limit: Most records in all.
            batch_size: Rows per query.

        Yields:
            Records.

        Raises:
            StoreError: the store failed.
        """
        for rows in self.iter_row_batches(since, until, model=model, tenant=tenant,
                                          subject_id=subject_id, limit=limit,
                                          batch_size=batch_size):
            yield from (row_to_record(r) for r in rows)

    def tail(self, n: int = 20, *, model: str | None = None,
             status: str | None = None) -> list[PredictionRecord]:
        """Return the latest ``n`` records, oldest first.

        Args:
            n: How many.
            model: Only this model.
            status: Only records of this status (``error``: requests that got no answer).

        Returns:
            Records in time order.

        Raises:
            StoreError: the store failed.
        """
        p = predictions
        stmt = (_with_payloads().where(*_filters(None, None, model, None, None, status))
                .order_by(p.c.ts.desc(), p.c.id.desc()).limit(n))
        return [row_to_record(r) for r in reversed(self._read(stmt))]

    def _read(self, stmt: Any) -> list[dict[str, Any]]:
        """The rows of a query of the log (as dicts), sealed payloads opened."""
        try:
            with self.engine.connect() as conn:
                rows = [dict(r) for r in conn.execute(stmt).mappings()]
            return open_payloads(self.engine, rows)
        except SQLAlchemyError as exc:
            raise store_error("read the prediction log", exc) from None

    def count(self, since: float | None = None, until: float | None = None, *,
              model: str | None = None, tenant: str | None = None,
              subject_id: str | None = None) -> int:
        """Count stored records.

        Args:
            since, until, model, tenant, subject_id: Which records, as in
                :meth:`iter_row_batches`.

        Returns:
            How many match.

        Raises:
            StoreError: the store failed.
        """
        stmt = select(func.count()).select_from(predictions).where(
            *_filters(since, until, model, tenant, subject_id))
        try:
            with self.engine.connect() as conn:
                return int(conn.execute(stmt).scalar_one())
        except SQLAlchemyError as exc:
            raise store_error("count the prediction log", exc) from None

    def slo_counts(self, since: float, until: float, *,
                   latency_ms: float | None = None) -> dict[str, SloCounts]:
        """Per model, its requests in ``[since, until)`` by what they count for in the SLOs
        (:class:`~keelwork.core.slo.evaluate.SloCounts`), in one grouped query.

        As ``keelwork_requests_total`` counts them: refusals by the contract and shadow calls
        are no event; bad input the model refused is an error; ``fast``: answered within
        ``latency_ms`` (none counted when None).

        Raises:
            StoreError: the store failed.
        """
        p = predictions

        def n(cond: ColumnElement[bool]) -> Any:
            return func.sum(case((cond, 1), else_=0))

        rejected = p.c.status == "rejected"
        answered = p.c.status.in_(("ok", "fallback"))
        fast = (n(and_(answered, p.c.latency_ms <= latency_ms)) if latency_ms is not None
                else literal(0))
        stmt = (select(p.c.model, n(answered).label("answered"), n(or_(
            p.c.status == "error", and_(rejected, p.c.guard == "input"))).label("errors"),
            n(and_(rejected, p.c.guard == "concurrency")).label("overloaded"),
            fast.label("fast"))
            .where(p.c.ts >= since, p.c.ts < until,
                   or_(p.c.guard.is_(None), p.c.guard != "shadow"))
            .group_by(p.c.model))
        # Read by name: the rows come back as dicts (unnamed columns would share a key).
        return {r["model"]: SloCounts(int(r["answered"] or 0), int(r["errors"] or 0),
                                      int(r["overloaded"] or 0), int(r["fast"] or 0))
                for r in self._read(stmt)}

    def by_subject(self, subject_id: str, *, tenant: str | None = None,
                   ) -> Iterator[PredictionRecord]:
        """Stream every record of one data subject (indexed; no full scan), oldest first.

        Args:
            subject_id: The data subject.
            tenant: Only within this tenant.

        Returns:
            An iterator of records (GDPR export; erasure comes with a later capability).

        Raises:
            StoreError: the store failed.
        """
        return self.iter_records(subject_id=subject_id, tenant=tenant)


def _with_payloads() -> Any:
    """A select of every column of a prediction and of its payloads (outer join: a record may
    have none)."""
    p, q = predictions, prediction_payloads
    return (select(*p.columns, q.c.inputs, q.c.outputs, q.c.request_meta)
            .select_from(p.outerjoin(q, p.c.id == q.c.id)))


def _filters(since: float | None, until: float | None, model: str | None, tenant: str | None,
             subject_id: str | None, status: str | None = None) -> list[ColumnElement[bool]]:
    p = predictions
    where: list[ColumnElement[bool]] = []
    if since is not None:
        where.append(p.c.ts >= since)
    if until is not None:
        where.append(p.c.ts < until)
    if model is not None:
        where.append(p.c.model == model)
    if tenant is not None:
        where.append(p.c.tenant == tenant)
    if subject_id is not None:
        where.append(p.c.subject_id == subject_id)
    if status is not None:
        where.append(p.c.status == status)
    return where


def insert_statements(engine: Engine) -> tuple[Any, Any]:
    """Insert-or-ignore by id: replaying a spool twice must not duplicate or fail."""
    name = engine.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return (sqlite_insert(predictions).on_conflict_do_nothing(index_elements=["id"]),
                sqlite_insert(prediction_payloads).on_conflict_do_nothing(index_elements=["id"]))
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return (pg_insert(predictions).on_conflict_do_nothing(index_elements=["id"]),
                pg_insert(prediction_payloads).on_conflict_do_nothing(index_elements=["id"]))
    raise StoreError(f"The prediction log supports SQLite and PostgreSQL stores; got "
                     f"{name!r}.")


def existing_ids(conn: Connection, ids: list[str]) -> set[str]:
    """The ones of ``ids`` the prediction log holds (inside the caller's transaction)."""
    out: set[str] = set()
    for clause in among(conn, predictions.c.id, ids):
        out.update(conn.execute(select(predictions.c.id).where(clause)).scalars())
    return out


def insert_records(conn: Connection, records: list[PredictionRecord]) -> None:
    """Insert records into the prediction log, ignoring ids it holds (caller's transaction);
    payloads of records with a subject are sealed when a sealing key store is attached."""
    if not records:
        return
    ins_meta, ins_payload = insert_statements(conn.engine)
    rows = records_to_rows(records)
    if (sealer := seal_for(conn.engine)) is not None:
        sealer.seal_rows(rows)
    conn.execute(ins_meta, [{k: r[k] for k in META_COLUMNS} for r in rows])
    conn.execute(ins_payload, [{"id": r["id"], "inputs": r["inputs"], "outputs": r["outputs"],
                                "request_meta": r["request_meta"]} for r in rows])


def prediction_outputs(conn: Connection, ids: Sequence[str]) -> dict[str, Any]:
    """The stored outputs of the ones of ``ids`` the prediction log holds, by prediction id.

    Reads inside the caller's transaction (a scoring job's output file reads them in the
    ledger's). Outputs are decoded with :mod:`json`, which takes integers of any size.
    """
    q = prediction_payloads.c
    out: dict[str, Any] = {}
    for clause in among(conn, q.id, list(ids)):
        found = [{"id": pid, "outputs": text}
                 for pid, text in conn.execute(select(q.id, q.outputs).where(clause))]
        for r in open_payloads(conn.engine, found):
            out[r["id"]] = json.loads(r["outputs"])
    return out


__all__ = [
    "META_COLUMNS",
    "PREDICTIONS_SCHEMA_KIND",
    "PREDICTIONS_SCHEMA_VERSION",
    "PredictionReader",
    "ensure_schema",
    "existing_ids",
    "insert_records",
    "insert_statements",
    "metadata",
    "prediction_outputs",
    "prediction_payloads",
    "predictions",
    "record_to_row",
    "records_to_rows",
    "row_to_record",
    "store_error",
]

"""Explanations of logged predictions (``POST /v1/models/{name}:explain``), by prediction id.

Table::

    explanations   prediction_id (PK), model, version, created_at, body (the explanation as
                   JSON: :meth:`keelwork.core.explain.attribution.Explanation.to_dict`)

Bounded: past ``max_rows`` the oldest rows are deleted (checked every :data:`PRUNE_EVERY`
writes, so the table holds at most ``max_rows + PRUNE_EVERY`` rows). Also reads one logged
prediction by id (:func:`read_prediction`), the input an explanation of a past id needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    select,
)

from keelwork.adapters.stores.prediction_store import (
    prediction_payloads,
    predictions,
    row_to_record,
)
from keelwork.adapters.stores.schema import create_tables
from keelwork.adapters.stores.transactions import connection, retrying_transaction
from keelwork.core.predictions import PredictionRecord

_STORE = "explanation store"
#: Writes between two checks of the bound.
PRUNE_EVERY = 100

metadata = MetaData()
explanations = Table(
    "explanations", metadata,
    Column("prediction_id", String(64), primary_key=True),
    Column("model", String(256), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("body", Text, nullable=False),
)


class ExplanationStore:
    """Stores and reads explanations.

    Args:
        engine: The project's store.
        max_rows: Explanations kept at most (``explain.max_stored``).
    """

    def __init__(self, engine: Engine, max_rows: int = 100_000) -> None:
        self.engine = engine
        self.max_rows = max_rows
        self._writes = 0

    def ensure_schema(self) -> None:
        create_tables(self.engine, metadata, "explanation", tables=[explanations])

    def put(self, rows: list[tuple[str, str, int, Mapping[str, Any]]]) -> None:
        """Store (or replace) explanations: ``(prediction id, model, version, body)`` each."""
        if not rows:
            return
        now = datetime.now(UTC)

        def work(conn: Any) -> None:
            conn.execute(delete(explanations).where(
                explanations.c.prediction_id.in_([r[0] for r in rows])))
            conn.execute(explanations.insert(), [
                {"prediction_id": pid, "model": model, "version": version, "created_at": now,
                 "body": orjson.dumps(dict(body)).decode()}
                for pid, model, version, body in rows])

        retrying_transaction(self.engine, work, store=_STORE, what="storing explanations")
        self._writes += len(rows)
        if self._writes >= PRUNE_EVERY:
            self._writes = 0
            self.prune()

    def prune(self) -> int:
        """Delete the oldest rows beyond ``max_rows``; returns how many went."""
        def work(conn: Any) -> int:
            n = int(conn.execute(select(func.count()).select_from(explanations)).scalar_one())
            if n <= self.max_rows:
                return 0
            cutoff = conn.execute(
                select(explanations.c.created_at).order_by(explanations.c.created_at.desc())
                .offset(self.max_rows).limit(1)).scalar_one()
            result = conn.execute(delete(explanations).where(
                explanations.c.created_at <= cutoff))
            return int(result.rowcount or 0)

        return int(retrying_transaction(self.engine, work, store=_STORE,
                                        what="pruning explanations"))

    def get(self, prediction_id: str) -> dict[str, Any] | None:
        """The stored explanation of ``prediction_id`` (with model and version), or None."""
        with connection(self.engine, _STORE, "reading an explanation") as conn:
            if not conn.dialect.has_table(conn, explanations.name):
                return None
            row = conn.execute(select(explanations).where(
                explanations.c.prediction_id == prediction_id)).mappings().first()
        if row is None:
            return None
        return {"prediction_id": row["prediction_id"], "model": row["model"],
                "version": row["version"], "created_at": row["created_at"].isoformat()
                if row["created_at"] is not None else None, **orjson.loads(row["body"])}

    def count(self) -> int:
        with connection(self.engine, _STORE, "counting explanations") as conn:
            if not conn.dialect.has_table(conn, explanations.name):
                return 0
            return int(conn.execute(select(func.count()).select_from(explanations))
                       .scalar_one())


def window_explanations(engine: Engine, model: str, start: float, end: float, *,
                        limit: int = 10_000) -> list[dict[str, Any]]:
    """The explanations of ``model``'s predictions logged in ``[start, end)`` (the latest
    ``limit`` of them), for the global view of ``keel monitor run``."""
    p, e = predictions, explanations
    stmt = (select(e.c.body).select_from(e.join(p, p.c.id == e.c.prediction_id))
            .where(p.c.model == model, p.c.ts >= start, p.c.ts < end)
            .order_by(p.c.ts.desc()).limit(limit))
    with connection(engine, _STORE, "reading explanations") as conn:
        if not conn.dialect.has_table(conn, e.name):
            return []
        return [dict(orjson.loads(row[0])) for row in conn.execute(stmt)]


def read_prediction(engine: Engine, prediction_id: str) -> PredictionRecord | None:
    """The logged prediction ``prediction_id`` (inputs included), or None."""
    p, q = predictions, prediction_payloads
    stmt = (select(*p.columns, q.c.inputs, q.c.outputs, q.c.request_meta)
            .select_from(p.outerjoin(q, p.c.id == q.c.id)).where(p.c.id == prediction_id))
    with connection(engine, _STORE, "reading a prediction") as conn:
        if not conn.dialect.has_table(conn, predictions.name):
            return None
        row = conn.execute(stmt).mappings().first()
    return None if row is None else row_to_record(row)


__all__ = ["PRUNE_EVERY", "ExplanationStore", "explanations", "read_prediction",
           "window_explanations"]

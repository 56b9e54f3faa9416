"""The human review queue in the store.

Tables::

    review_items     prediction_id (PK), model, reason (guard:NAME, uncertain, random),
                     priority, enqueued_at, state (open, done, skipped), wanted (verdicts wanted:
                     1, or 2 for items double-labelled to measure agreement)
    review_verdicts  id (PK), prediction_id, reviewer, label (JSON), at; unique
                     (prediction_id, reviewer)

An item is open until it has ``wanted`` verdicts; a reviewer is never given an item twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Double,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    select,
    update,
)
from sqlalchemy.engine import Connection

from keelwork.adapters.stores.prediction_store import (
    prediction_payloads,
    predictions,
    row_to_record,
)
from keelwork.adapters.stores.schema import create_tables
from keelwork.adapters.stores.sql import among, insert_ignore
from keelwork.adapters.stores.subject_keys import open_payloads
from keelwork.adapters.stores.transactions import connection, retrying_transaction
from keelwork.core.predictions import PredictionRecord

_STORE = "review queue"

metadata = MetaData()
review_items = Table(
    "review_items", metadata,
    Column("prediction_id", String(64), primary_key=True),
    Column("model", String(256), nullable=False),
    Column("reason", String(128), nullable=False),
    Column("priority", Double, nullable=False),
    Column("enqueued_at", DateTime(timezone=True), nullable=False),
    Column("state", String(16), nullable=False),
    Column("wanted", Integer, nullable=False),
    Index("ix_review_items_open", "state", "priority"),
)
review_verdicts = Table(
    "review_verdicts", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("prediction_id", String(64), nullable=False),
    Column("reviewer", String(256), nullable=False),
    Column("label", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("prediction_id", "reviewer", name="uq_review_verdicts_reviewer"),
)


class ReviewStore:
    """Queue, verdicts and counts.

    Args:
        engine: The project's store.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def ensure_schema(self) -> None:
        create_tables(self.engine, metadata, "review", tables=[review_items, review_verdicts])

    def enqueue(self, items: Sequence[dict[str, Any]]) -> int:
        """Add items (``prediction_id``, ``model``, ``reason``, ``priority``, ``wanted``);
        ones already queued are left as they are. Returns how many were new."""
        if not items:
            return 0
        now = datetime.now(UTC)

        def work(conn: Connection) -> int:
            before = int(conn.execute(select(func.count()).select_from(review_items))
                         .scalar_one())
            stmt = insert_ignore(conn.dialect.name, review_items, ["prediction_id"])
            conn.execute(stmt, [{**i, "enqueued_at": now, "state": "open"} for i in items])
            after = int(conn.execute(select(func.count()).select_from(review_items))
                        .scalar_one())
            return after - before

        return retrying_transaction(self.engine, work, store=_STORE, what="queueing reviews")

    def queued(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` were ever queued."""
        out: set[str] = set()
        with connection(self.engine, _STORE, "reading the queue") as conn:
            for cond in among(conn, review_items.c.prediction_id, list(ids)):
                out.update(r[0] for r in conn.execute(select(review_items.c.prediction_id)
                                                      .where(cond)))
        return out

    def enqueued_since(self, since: datetime) -> int:
        """Items queued since ``since`` (the daily budget)."""
        with connection(self.engine, _STORE, "counting the queue") as conn:
            return int(conn.execute(select(func.count()).select_from(review_items).where(
                review_items.c.enqueued_at >= since)).scalar_one())

    def next_for(self, reviewer: str) -> dict[str, Any] | None:
        """The highest-priority open item this reviewer has not judged (None: none left)."""
        mine = select(review_verdicts.c.prediction_id).where(
            review_verdicts.c.reviewer == reviewer)
        with connection(self.engine, _STORE, "reading the queue") as conn:
            row = conn.execute(select(review_items).where(
                review_items.c.state == "open", review_items.c.prediction_id.not_in(mine))
                .order_by(review_items.c.priority.desc(), review_items.c.enqueued_at)
                .limit(1)).mappings().first()
        return None if row is None else dict(row)

    def item(self, prediction_id: str) -> dict[str, Any] | None:
        with connection(self.engine, _STORE, "reading the queue") as conn:
            row = conn.execute(select(review_items).where(
                review_items.c.prediction_id == prediction_id)).mappings().first()
        return None if row is None else dict(row)

    def judged(self, prediction_id: str, reviewer: str) -> bool:
        """Whether ``reviewer`` gave (or skipped) ``prediction_id`` already."""
        with connection(self.engine, _STORE, "reading verdicts") as conn:
            return conn.execute(select(review_verdicts.c.id).where(
                review_verdicts.c.prediction_id == prediction_id,
                review_verdicts.c.reviewer == reviewer).limit(1)).first() is not None

    def verdicts(self, prediction_id: str) -> int:
        """The verdicts (not skips) ``prediction_id`` has."""
        with connection(self.engine, _STORE, "reading verdicts") as conn:
            return int(conn.execute(select(func.count()).select_from(review_verdicts).where(
                review_verdicts.c.prediction_id == prediction_id,
                review_verdicts.c.label != "null")).scalar_one())

    def record(self, prediction_id: str, reviewer: str, label: Any | None) -> int:
        """Record a verdict (``label``) or a skip (``None``); returns the item's verdicts.

        A skip closes the item for this reviewer only (a sentinel verdict row is not kept);
        the item goes to ``done`` once it has the verdicts it wants.
        """
        def work(conn: Connection) -> int:
            conn.execute(review_verdicts.insert().values(
                prediction_id=prediction_id, reviewer=reviewer,
                label=orjson.dumps(label).decode() if label is not None else "null",
                at=datetime.now(UTC)))
            n = int(conn.execute(select(func.count()).select_from(review_verdicts).where(
                review_verdicts.c.prediction_id == prediction_id,
                review_verdicts.c.label != "null")).scalar_one())
            wanted = conn.execute(select(review_items.c.wanted).where(
                review_items.c.prediction_id == prediction_id)).scalar()
            if wanted is not None and n >= int(wanted):
                conn.execute(update(review_items).where(
                    review_items.c.prediction_id == prediction_id).values(state="done"))
            return n

        return retrying_transaction(self.engine, work, store=_STORE, what="recording a verdict")

    def counts(self) -> dict[str, int]:
        with connection(self.engine, _STORE, "counting the queue") as conn:
            rows = conn.execute(select(review_items.c.state, func.count())
                                .group_by(review_items.c.state)).all()
        return {str(s): int(n) for s, n in rows}

    def double_labelled(self) -> list[tuple[str, str, str, str]]:
        """``(reviewer a, label a, reviewer b, label b)`` of the items meant to be
        double-labelled (``wanted`` 2) that two reviewers labelled: the first two verdicts of
        each. An item that wants one verdict is never paired, whatever it holds."""
        v = review_verdicts.c
        meant = select(review_items.c.prediction_id).where(review_items.c.wanted >= 2)
        with connection(self.engine, _STORE, "reading verdicts") as conn:
            rows = conn.execute(select(v.prediction_id, v.reviewer, v.label)
                                .where(v.label != "null", v.prediction_id.in_(meant))
                                .order_by(v.prediction_id, v.id)).all()
        by: dict[str, list[tuple[str, str]]] = {}
        for pid, who, label in rows:
            by.setdefault(str(pid), []).append((str(who), str(label)))
        return [(a[0], a[1], b[0], b[1]) for got in by.values() if len(got) >= 2
                for a, b in [got[:2]]]

    def records(self, ids: Sequence[str]) -> dict[str, PredictionRecord]:
        """The logged predictions of ``ids`` that are still in the log, by id."""
        out: dict[str, PredictionRecord] = {}
        with connection(self.engine, _STORE, "reading logged predictions") as conn:
            if not conn.dialect.has_table(conn, predictions.name):
                return out
            for cond in among(conn, predictions.c.id, list(ids)):
                stmt = select(predictions, prediction_payloads.c.inputs,
                              prediction_payloads.c.outputs,
                              prediction_payloads.c.request_meta).select_from(
                    predictions.outerjoin(prediction_payloads,
                                          prediction_payloads.c.id == predictions.c.id)
                ).where(cond)
                found = [{str(k): v for k, v in row.items()}
                         for row in conn.execute(stmt).mappings()]
                for row in open_payloads(self.engine, found):
                    rec = row_to_record(row)
                    out[rec.id] = rec
        return out

    def items(self, state: str | None = None, limit: int = 10_000) -> list[dict[str, Any]]:
        stmt = select(review_items).order_by(review_items.c.priority.desc()).limit(limit)
        if state is not None:
            stmt = stmt.where(review_items.c.state == state)
        with connection(self.engine, _STORE, "reading the queue") as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]


__all__ = ["ReviewStore", "review_items", "review_verdicts"]

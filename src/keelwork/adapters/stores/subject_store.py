"""Everything the store holds about one data subject: read it (access request) or erase it.

A prediction names its data subject in ``predictions.subject_id`` (the ``X-Subject-Id`` header
or ``contract.subject_field``; indexed). What belongs to the subject:

- its predictions, with their payloads (inputs, outputs, request metadata);
- the labels of those predictions: current ones, replaced ones (``label_history``) and those
  that arrived before their prediction was logged (``unknown_labels``);
- what was derived from those predictions: their stored explanations, their review-queue items
  and the reviewers' verdicts on them.

:meth:`SubjectStore.erase` deletes all of it in one transaction and records a tombstone in
``subject_erasures``: when, by whom, what was removed (counts), and a keyed digest of the
subject (:func:`keelwork.core.subjects.subject_digest`), never the subject itself. The digest
lets a later request for the same subject be matched to the erasure without keeping who it was.

On SQLite the delete runs with ``PRAGMA secure_delete`` and the write-ahead log is checkpointed
afterwards, so the erased values leave the database file at once. PostgreSQL keeps dead tuples
in its files until they are rewritten; :meth:`SubjectStore.erase` with ``rewrite=True`` runs
``VACUUM FULL`` on the tables erased from (a lock while it runs).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
    text,
)
from sqlalchemy.engine import Connection

from keelwork.adapters.stores.engine import is_sqlite
from keelwork.adapters.stores.explanation_store import explanations
from keelwork.adapters.stores.ingest_tables import label_history, labels, unknown_labels
from keelwork.adapters.stores.prediction_store import prediction_payloads, predictions
from keelwork.adapters.stores.review_store import review_items, review_verdicts
from keelwork.adapters.stores.schema import create_tables
from keelwork.adapters.stores.sql import among, delete_among
from keelwork.adapters.stores.subject_keys import open_payloads
from keelwork.adapters.stores.transactions import connection, retrying_transaction

_STORE = "subject store"
#: Predictions read per query when exporting.
_PAGE = 2_000

metadata = MetaData()
subject_erasures = Table(
    "subject_erasures", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("digest", String(64), nullable=False, index=True),
    Column("erased_at", DateTime(timezone=True), nullable=False),
    Column("actor", String(256), nullable=False),
    Column("reason", Text, nullable=False),
    Column("counts", Text, nullable=False),
)


class SubjectStore:
    """Reads and erases one data subject's rows.

    Args:
        engine: The store.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def ensure_schema(self) -> None:
        """Create the tombstone table when missing."""
        create_tables(self.engine, metadata, "subject erasure", tables=[subject_erasures])

    def _has(self, conn: Connection, name: str) -> bool:
        return bool(conn.dialect.has_table(conn, name))

    # ------------------------------------------------------------------ reading
    def predictions_of(self, subject: str) -> Iterator[dict[str, Any]]:
        """The subject's predictions with their payloads and labels, oldest first, as JSON
        objects (paged reads: memory stays flat on a long history)."""
        after: tuple[float, str] = (float("-inf"), "")
        while True:
            with connection(self.engine, _STORE, "reading a subject's predictions") as conn:
                if not self._has(conn, predictions.name):
                    return
                payloads = self._has(conn, prediction_payloads.name)
                cols = [predictions] + ([prediction_payloads.c.inputs,
                                         prediction_payloads.c.outputs,
                                         prediction_payloads.c.request_meta] if payloads else [])
                stmt = select(*cols).where(predictions.c.subject_id == subject)
                if payloads:
                    stmt = stmt.select_from(predictions.outerjoin(
                        prediction_payloads, prediction_payloads.c.id == predictions.c.id))
                stmt = stmt.where((predictions.c.ts > after[0]) | (
                    (predictions.c.ts == after[0]) & (predictions.c.id > after[1])))
                rows = open_payloads(self.engine, [{str(k): v for k, v in r.items()} for r in
                                                   conn.execute(stmt.order_by(
                                                       predictions.c.ts, predictions.c.id)
                                                       .limit(_PAGE)).mappings()])
                found = self._labels(conn, [r["id"] for r in rows])
            for r in rows:
                for key in ("inputs", "outputs", "request_meta"):
                    if isinstance(r.get(key), str):
                        r[key] = orjson.loads(r[key])
                r["labels"] = found.get(r["id"], [])
                yield r
            if len(rows) < _PAGE:
                return
            after = (float(rows[-1]["ts"]), str(rows[-1]["id"]))

    def _labels(self, conn: Connection, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for table, kind in ((labels, "current"), (label_history, "replaced"),
                            (unknown_labels, "unmatched")):
            if not ids or not self._has(conn, table.name):
                continue
            for cond in among(conn, table.c.prediction_id, ids):
                for r in conn.execute(select(table.c.prediction_id, table.c.label,
                                             table.c.ts, table.c.source).where(cond)):
                    out.setdefault(r[0], []).append(
                        {"kind": kind, "label": r[1], "ts": r[2], "source": r[3]})
        return out

    def erasures(self, digest: str) -> list[dict[str, Any]]:
        """The tombstones recorded for a subject's digest, oldest first."""
        with connection(self.engine, _STORE, "reading erasures") as conn:
            if not self._has(conn, subject_erasures.name):
                return []
            rows = conn.execute(select(subject_erasures).where(
                subject_erasures.c.digest == digest).order_by(subject_erasures.c.id)).mappings()
            return [{"erased_at": r["erased_at"].isoformat(), "actor": r["actor"],
                     "reason": r["reason"], "counts": orjson.loads(r["counts"])} for r in rows]

    # ------------------------------------------------------------------ erasing
    def erase(self, subject: str, *, digest: str, actor: str, reason: str,
              rewrite: bool = False) -> dict[str, int]:
        """Delete every row of ``subject`` and record its tombstone, in one transaction.

        Args:
            subject: The subject identifier as logged.
            digest: Its keyed digest (the tombstone's only trace of who it was).
            actor: Who erases.
            reason: Why (e.g. the request's ticket); must not contain the subject.
            rewrite: PostgreSQL: rewrite the tables afterwards (``VACUUM FULL``) so the erased
                tuples leave the files (SQLite always does: secure delete and a checkpoint).

        Returns:
            Rows removed per table.

        Raises:
            StoreError: the store failed (nothing was removed).
        """
        self.ensure_schema()
        sqlite = is_sqlite(self.engine)

        def work(conn: Connection) -> dict[str, int]:
            if sqlite:
                conn.exec_driver_sql("PRAGMA secure_delete = ON")
            counts = {"predictions": 0, "labels": 0}
            if self._has(conn, predictions.name):
                ids = [r[0] for r in conn.execute(select(predictions.c.id).where(
                    predictions.c.subject_id == subject))]
                for table in (labels, label_history, unknown_labels):
                    if self._has(conn, table.name):
                        counts["labels"] += delete_among(conn, table, table.c.prediction_id, ids)
                for table in (explanations, review_items, review_verdicts):  # derived from them
                    if self._has(conn, table.name):
                        delete_among(conn, table, table.c.prediction_id, ids)
                if self._has(conn, prediction_payloads.name):
                    delete_among(conn, prediction_payloads, prediction_payloads.c.id, ids)
                counts["predictions"] = delete_among(conn, predictions, predictions.c.id, ids)
            conn.execute(subject_erasures.insert().values(
                digest=digest, erased_at=datetime.now(UTC), actor=actor, reason=reason,
                counts=orjson.dumps(counts).decode()))
            return counts

        counts = retrying_transaction(self.engine, work, store=_STORE, what="erasing a subject")
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if sqlite:
                conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            elif rewrite:
                for name in ("prediction_payloads", "predictions", "labels", "label_history",
                             "unknown_labels", "explanations", "review_items", "review_verdicts",
                             "dataset_versions"):
                    if self._has(conn, name):
                        conn.execute(text(f'VACUUM FULL "{name}"'))
        return counts


__all__ = ["SubjectStore", "subject_erasures"]

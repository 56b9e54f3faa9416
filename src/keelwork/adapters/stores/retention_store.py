"""Deleting what keel.yaml's ``retention`` says is kept no longer, in bounded batches.

Each kind of row goes by its own clock: a prediction by ``predictions.ts`` (its payload with
it), a label by ``labels.ts`` (its history and unmatched labels alike), a dead letter by
``created_at``, an audit entry by ``ts``. Deletes run in batches of at most ``batch`` rows,
each its own short transaction with a pause between them, so a large expiry never holds the
database's write lock for long and serving goes on.

On SQLite every delete runs with ``PRAGMA secure_delete`` on: the freed pages are overwritten
with zeros, so deleted values leave the database file once the write-ahead log is checkpointed
(:meth:`RetentionStore.vacuum` does that, and ``VACUUM`` to give the space back). PostgreSQL
keeps deleted tuples in its files until they are rewritten: :meth:`RetentionStore.vacuum`
runs ``VACUUM FULL`` on the tables it deleted from, then ``CHECKPOINT``.

Audit entries are expired through a checkpoint of the chain
(:mod:`keelwork.adapters.stores.audit_checkpoints`), so the chain still verifies.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import Connection

from keelwork.adapters.stores.audit_checkpoints import (
    EXPIRE_ACTION,
    ensure_checkpoints,
    latest_checkpoint,
    record_checkpoint,
)
from keelwork.adapters.stores.audit_store import AuditLog, audit_log
from keelwork.adapters.stores.engine import is_sqlite
from keelwork.adapters.stores.ingest_tables import (
    dead_letters,
    label_history,
    labels,
    unknown_labels,
)
from keelwork.adapters.stores.prediction_store import prediction_payloads, predictions
from keelwork.adapters.stores.sql import among, delete_among
from keelwork.adapters.stores.transactions import connection, retrying_transaction
from keelwork.core.audit.chain import ChainHead, format_ts

_STORE = "retention"
#: Rows per delete transaction.
BATCH = 5_000
#: The tables retention deletes from.
RETAINED = ("predictions", "prediction_payloads", "labels", "label_history", "unknown_labels",
            "dead_letters", "audit_log")
#: Called after each batch with the table and the rows deleted so far (progress bars).
Progress = Callable[[str, int], None]
#: Called after each committed batch of expired predictions with the data subjects they named
#: (their keys may be destroyed once no prediction of theirs is left).
ExpiredSubjects = Callable[[set[str]], None]


class RetentionStore:
    """Counts and deletes expired rows of one store.

    Args:
        engine: The store.
        batch: Rows per delete transaction.
        pause_s: Seconds to sleep between two batches (other writers get the lock).
    """

    def __init__(self, engine: Engine, *, batch: int = BATCH, pause_s: float = 0.0) -> None:
        self.engine = engine
        self.batch = batch
        self.pause_s = pause_s

    def _has(self, name: str) -> bool:
        with connection(self.engine, _STORE, "inspecting tables") as conn:
            return bool(conn.dialect.has_table(conn, name))

    # ------------------------------------------------------------------ counting
    def count_predictions(self, before: float) -> int:
        """Predictions logged before ``before`` (unix seconds)."""
        return self._count(predictions, predictions.c.ts < before)

    def count_labels(self, before: float) -> int:
        """Labels (current ones) with a time before ``before``."""
        return self._count(labels, labels.c.ts < before)

    def count_dead_letters(self, before: datetime) -> int:
        """Dead letters created before ``before``."""
        return self._count(dead_letters, dead_letters.c.created_at < before)

    def count_audit(self, before: datetime) -> int:
        """Audit entries older than ``before`` still stored."""
        return self._count(audit_log, audit_log.c.ts < format_ts(before))

    def _count(self, table: Any, cond: Any) -> int:
        if not self._has(table.name):
            return 0
        with connection(self.engine, _STORE, f"counting expired {table.name}") as conn:
            return int(conn.execute(select(func.count()).select_from(table).where(cond))
                       .scalar_one())

    # ------------------------------------------------------------------ deleting
    def expire_predictions(self, before: float, progress: Progress | None = None,
                           on_subjects: ExpiredSubjects | None = None) -> int:
        """Delete predictions (and their payloads) logged before ``before``; after each
        committed batch, ``on_subjects`` gets the data subjects its rows named."""
        if not self._has(predictions.name):
            return 0
        has_payloads = self._has(prediction_payloads.name)
        named: set[str] = set()

        def step(conn: Connection) -> int:
            named.clear()  # a retried transaction starts over
            rows = conn.execute(select(predictions.c.id, predictions.c.subject_id)
                                .where(predictions.c.ts < before).limit(self.batch)).all()
            ids = [r[0] for r in rows]
            named.update(r[1] for r in rows if r[1])
            if has_payloads:
                delete_among(conn, prediction_payloads, prediction_payloads.c.id, ids)
            delete_among(conn, predictions, predictions.c.id, ids)
            return len(ids)

        def after() -> None:
            if on_subjects is not None and named:
                on_subjects(set(named))

        return self._batches("predictions", step, progress, after)

    def subjects_logged(self, subjects: list[str]) -> set[str]:
        """The ones of ``subjects`` that still have a prediction in the log (indexed)."""
        found: set[str] = set()
        if not subjects or not self._has(predictions.name):
            return found
        with connection(self.engine, _STORE, "finding subjects' predictions") as conn:
            for clause in among(conn, predictions.c.subject_id, subjects):
                found.update(conn.execute(select(predictions.c.subject_id).where(clause)
                                          .distinct()).scalars())
        return found

    def expire_labels(self, before: float, progress: Progress | None = None) -> int:
        """Delete labels, replaced labels and unmatched labels with a time before ``before``."""
        total = 0
        for table in (labels, label_history, unknown_labels):
            if not self._has(table.name):
                continue
            key = table.c.prediction_id if table is not label_history else table.c.id
            total += self._by_key(table, key, table.c.ts < before, progress)
        return total

    def expire_dead_letters(self, before: datetime, progress: Progress | None = None) -> int:
        """Delete dead letters created before ``before``."""
        if not self._has(dead_letters.name):
            return 0
        return self._by_key(dead_letters, dead_letters.c.id,
                            dead_letters.c.created_at < before, progress)

    def _by_key(self, table: Any, key: Any, cond: Any, progress: Progress | None) -> int:
        def step(conn: Connection) -> int:
            keys = [r[0] for r in conn.execute(select(key).where(cond).limit(self.batch))]
            delete_among(conn, table, key, keys)
            return len(keys)

        return self._batches(table.name, step, progress)

    def expire_audit(self, audit: AuditLog, before: datetime, *, actor: str,
                     progress: Progress | None = None) -> int:
        """Expire audit entries older than ``before`` behind a checkpoint of the chain.

        One transaction appends an ``audit.expire`` entry naming the last expired entry
        (``through_seq``, ``through_hash``) and records the checkpoint; then the entries up to
        it are deleted in batches (a run interrupted there is finished by the next one).

        Returns:
            Entries deleted.
        """
        if not self._has(audit_log.name):
            return 0
        ensure_checkpoints(self.engine)
        cutoff = format_ts(before)

        def mark(conn: Connection) -> None:
            cp = latest_checkpoint(conn)
            floor = cp[0].seq if cp is not None else 0
            first_kept = conn.execute(select(func.min(audit_log.c.seq))
                                      .where(audit_log.c.ts >= cutoff)).scalar()
            last = conn.execute(select(func.max(audit_log.c.seq))).scalar() or 0
            through = int(first_kept) - 1 if first_kept is not None else int(last)
            if through <= floor:
                return
            digest = conn.execute(select(audit_log.c.hash)
                                  .where(audit_log.c.seq == through)).scalar_one()
            n = int(conn.execute(select(func.count()).select_from(audit_log).where(
                audit_log.c.seq > floor, audit_log.c.seq <= through)).scalar_one())
            entry = audit.append_in(conn, actor=actor, action=EXPIRE_ACTION, target="audit_log",
                                    details={"through_seq": through, "through_hash": digest,
                                             "entries": n, "before": cutoff})
            record_checkpoint(conn, ChainHead(through, str(digest), 0), expired=n,
                              recorded_in=entry.seq)

        retrying_transaction(self.engine, mark, store=_STORE, what="checkpointing the audit log")
        audit.anchor()
        with connection(self.engine, _STORE, "reading the audit checkpoint") as conn:
            cp = latest_checkpoint(conn)
        if cp is None:
            return 0
        through = cp[0].seq
        return self._by_key(audit_log, audit_log.c.seq, audit_log.c.seq <= through, progress)

    def _batches(self, name: str, step: Callable[[Connection], int],
                 progress: Progress | None, after: Callable[[], None] | None = None) -> int:
        total = 0
        sqlite = is_sqlite(self.engine)

        def work(conn: Connection) -> int:
            if sqlite:
                conn.exec_driver_sql("PRAGMA secure_delete = ON")
            return step(conn)

        while True:
            n = retrying_transaction(self.engine, work, store=_STORE,
                                     what=f"deleting expired {name}")
            total += n
            if n and after is not None:
                after()
            if n and progress is not None:
                progress(name, total)
            if n < self.batch:
                return total
            if self.pause_s:
                time.sleep(self.pause_s)

    # ------------------------------------------------------------------ reclaiming
    def vacuum(self) -> list[str]:
        """Make deleted rows leave the database files; returns the statements run.

        SQLite: ``VACUUM`` (rewrites the file) and a truncating WAL checkpoint. PostgreSQL:
        ``VACUUM FULL`` of every table retention deletes from (:data:`RETAINED`; rows deleted
        by earlier runs, the server's included, go too; an exclusive lock while it runs: do it
        in a quiet hour), then ``CHECKPOINT`` so the rewritten files are on disk.
        """
        done: list[str] = []
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if is_sqlite(self.engine):
                statements = ["VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"]
            else:
                quote = self.engine.dialect.identifier_preparer.quote
                statements = [f"VACUUM FULL {quote(t)}" for t in RETAINED if self._has(t)]
                statements.append("CHECKPOINT")
            for stmt in statements:
                conn.execute(text(stmt))
                done.append(stmt)
        return done


__all__ = ["BATCH", "RETAINED", "ExpiredSubjects", "Progress", "RetentionStore"]

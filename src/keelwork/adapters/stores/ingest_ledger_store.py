"""The ingestion ledger: which files were ingested how far, dead letters, retried transactions.

Its tables (``ingest_files``, ``dead_letters``, ``ingest_keys``) and the label tables share one
``MetaData``: :mod:`keelwork.adapters.stores.ingest_tables`.

Exactly-once: every chunk of a file is written in ONE transaction together with the advance of
its checkpoint (``committed_rows``) and its counters; that update only succeeds if the
checkpoint is still where this process read it (optimistic concurrency), so two processes on
the same file cannot both apply a chunk. A kill -9 at any point loses at most an uncommitted
chunk, which the rerun then applies.

Retries: a transaction that fails with a transient error (a lost connection, SQLite's
"database is locked", PostgreSQL's serialization failures and deadlocks, connection refused
while a server restarts) is run again after a full-jitter backoff
(:class:`keelwork.core.ingest.RetryPolicy`); anything else (a missing table, a constraint, bad
SQL, authentication) fails at once with a :class:`~keelwork.errors.StoreError`. The work passed
in must therefore only read and write through the connection it is given.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Engine, and_, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from keelwork.adapters.stores.ingest_tables import (
    INGEST_SCHEMA_KIND,
    INGEST_SCHEMA_VERSION,
    dead_letters,
    ingest_files,
    ingest_keys,
    metadata,
)
from keelwork.adapters.stores.prediction_store import ensure_schema as prediction_log_schema
from keelwork.adapters.stores.schema import create_tables, stamp_schema
from keelwork.adapters.stores.sql import among, insert_ignore
from keelwork.adapters.stores.transactions import is_transient
from keelwork.core.ingest import Checkpoint, DeadLetter, IngestCounts, JobStatus, RetryPolicy
from keelwork.errors import JobConflict, StoreError

log = logging.getLogger("keelwork.ingest")

T = TypeVar("T")

_COUNTERS = ("ingested", "duplicates", "dead_lettered", "unknown", "relabelled")


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A row of ``ingest_files``."""

    checkpoint: Checkpoint
    path: str
    counts: IngestCounts
    started_at: datetime
    finished_at: datetime | None
    error: str | None


class Ledger:
    """Jobs, checkpoints and dead letters in a SQL store, with retried transactions.

    Args:
        engine: The store (see :func:`keelwork.adapters.stores.engine.make_engine`).
        retry: How often and how long to retry transient errors.
        rng: Random source of the backoff jitter (seed it in tests).
        sleep: How to wait between attempts (replace it in tests).
    """

    def __init__(self, engine: Engine, *, retry: RetryPolicy | None = None,
                 rng: random.Random | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.engine = engine
        self.retry = retry or RetryPolicy()
        self._rng = rng or random.Random()
        self._sleep = sleep
        self.retries = 0

    # ------------------------------------------------------------------ plumbing
    def ensure_schema(self) -> None:
        """Create the ingestion tables (and the prediction log's, which every kind reads or
        writes) if missing and stamp their versions (safe to repeat).

        Raises:
            StoreError: the store is unreachable or holds a newer schema.
        """
        self.transaction("reach the store", lambda conn: None)
        create_tables(self.engine, metadata, "ingestion ledger")
        stamp_schema(self.engine, INGEST_SCHEMA_KIND, INGEST_SCHEMA_VERSION)
        prediction_log_schema(self.engine)

    def transaction(self, what: str, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one transaction, retrying it on transient errors.

        Args:
            what: What the work does, for messages ("commit rows 0-999 of labels.csv").
            work: Reads and writes only through the connection; may run several times.

        Returns:
            What ``work`` returned on the attempt that committed.

        Raises:
            StoreError: a permanent error, or transient errors on every attempt.
        """
        delays = self.retry.delays(self._rng)
        attempt = 0
        while True:
            attempt += 1
            try:
                with self.engine.begin() as conn:
                    if conn.dialect.name == "postgresql":
                        # psycopg prepares repeated statements; a generic plan made while the
                        # label tables were small keeps scanning them whole as they grow.
                        conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
                    return work(conn)
            except StoreError:
                raise
            except SQLAlchemyError as exc:
                reason = _short(exc)
                if not is_transient(exc):
                    raise StoreError(f"Could not {what} in {_safe_url(self.engine)}: {reason}"
                                     ) from None
                delay = next(delays, None)
                if delay is None:
                    raise StoreError(
                        f"Could not {what} in {_safe_url(self.engine)}: still failing after "
                        f"{attempt} attempts ({reason}). Nothing of the failed chunk was "
                        "written; run the same command again to resume.") from None
                self.retries += 1
                log.warning("transient store error while trying to %s (attempt %d of %d, "
                            "retrying in %.2fs): %s", what, attempt, self.retry.attempts,
                            delay, reason)
                self._sleep(delay)

    # ------------------------------------------------------------------ jobs
    def start_job(self, file_sha: str, kind: str, target: str, path: str,
                  total_rows: int | None) -> Checkpoint:
        """Open the job of a file (creating it, or resuming an unfinished one).

        Args:
            file_sha: sha256 of the file's bytes.
            kind: What it is ingested as.
            target: What it is ingested into (``""`` when there is only one place).
            path: Where the file is now (recorded; not part of the identity).
            total_rows: Rows in the file, when known.

        Returns:
            Its checkpoint; ``checkpoint.done`` when a run already finished it.

        Raises:
            StoreError: the store failed.
        """
        now = datetime.now(UTC)
        key = _job_key(file_sha, kind, target)

        def work(conn: Connection) -> Checkpoint:
            _insert_job(conn, file_sha, kind, target, path, now, status="running",
                        total_rows=total_rows, error=None)
            row = conn.execute(select(ingest_files).where(key)).mappings().one()
            if row["status"] != "done":
                conn.execute(ingest_files.update().where(key).values(
                    status="running", path=path, error=None, updated_at=now,
                    total_rows=total_rows if total_rows is not None else row["total_rows"]))
            return _checkpoint(row)

        return self.transaction(f"open the ingestion job of {path}", work)

    def commit(self, checkpoint: Checkpoint, rows: int, what: str,
               write: Callable[[Connection], tuple[IngestCounts, Sequence[DeadLetter]]],
               ) -> tuple[Checkpoint, IngestCounts]:
        """Apply one chunk and advance the checkpoint past it, in one transaction.

        Args:
            checkpoint: Where the job is now.
            rows: Rows the chunk covers (every row: ingested, duplicate or dead letter).
            what: The chunk, for messages.
            write: Writes the chunk through the connection; returns its counts and dead letters.

        Returns:
            The new checkpoint and the chunk's counts.

        Raises:
            JobConflict: another process moved the checkpoint meanwhile.
            StoreError: the store failed (nothing of the chunk is written).
        """
        cp = checkpoint
        key = _job_key(cp.file_sha, cp.kind, cp.target)

        def work(conn: Connection) -> IngestCounts:
            counts, letters = write(conn)
            now = datetime.now(UTC)
            if letters:
                conn.execute(dead_letters.insert(), [
                    {"file_sha": cp.file_sha, "kind": cp.kind, "target": cp.target,
                     "path": d.source, "row_index": d.row, "line_no": d.line,
                     "reasons": d.reasons, "raw": d.raw, "created_at": now} for d in letters])
            c = ingest_files.c
            done = conn.execute(ingest_files.update().where(
                key, c.committed_rows == cp.committed_rows).values(
                committed_rows=c.committed_rows + rows, updated_at=now,
                ingested=c.ingested + counts.ingested,
                duplicates=c.duplicates + counts.duplicates,
                dead_lettered=c.dead_lettered + counts.dead_lettered,
                unknown=c.unknown + counts.unknown,
                relabelled=c.relabelled + counts.relabelled))
            if done.rowcount != 1:
                raise JobConflict(
                    f"Another process is ingesting the same content as {cp.kind} (file sha256 "
                    f"{cp.file_sha[:12]}...): its checkpoint moved past row "
                    f"{cp.committed_rows}. Let that process finish, then run this again.")
            return counts

        counts = self.transaction(what, work)
        return cp.advanced(rows), counts

    def finish(self, checkpoint: Checkpoint) -> Checkpoint:
        """Mark a job done (every row committed).

        Args:
            checkpoint: The job's last checkpoint.

        Returns:
            The checkpoint with status ``done``.

        Raises:
            StoreError: the store failed.
        """
        now = datetime.now(UTC)
        cp = checkpoint
        self.transaction("finish an ingestion job", lambda conn: conn.execute(
            ingest_files.update().where(_job_key(cp.file_sha, cp.kind, cp.target)).values(
                status="done", finished_at=now, updated_at=now, total_rows=cp.committed_rows)))
        return Checkpoint(cp.file_sha, cp.kind, cp.target, cp.committed_rows, cp.committed_rows,
                          "done", cp.epoch_ms)

    def fail(self, file_sha: str, kind: str, target: str, path: str, error: str) -> None:
        """Record that a job failed (kept for resuming; the watcher skips it until it changes).

        Creates the job when the file failed before it was opened (unreadable, malformed).

        Args:
            file_sha: sha256 of the file's bytes (``""`` when it could not even be read).
            kind: What it was ingested as.
            target: What it was ingested into.
            path: The file.
            error: What went wrong.

        Raises:
            StoreError: the store failed.
        """
        now = datetime.now(UTC)
        key = _job_key(file_sha, kind, target)

        def work(conn: Connection) -> None:
            _insert_job(conn, file_sha, kind, target, path, now, status="failed",
                        total_rows=None, error=error)
            conn.execute(ingest_files.update().where(key, ingest_files.c.status != "done")
                         .values(status="failed", error=error[:4000], updated_at=now))

        self.transaction("record a failed ingestion job", work)

    # ------------------------------------------------------------------ reading
    def job(self, file_sha: str, kind: str, target: str = "") -> JobRecord | None:
        """One job, or None when that content was never ingested as ``kind`` into ``target``.

        Raises:
            StoreError: the store failed.
        """
        stmt = select(ingest_files).where(_job_key(file_sha, kind, target))
        row = self.transaction("read the ingestion ledger",
                               lambda conn: conn.execute(stmt).mappings().one_or_none())
        return None if row is None else _job(row)

    def jobs(self, kind: str | None = None) -> list[JobRecord]:
        """Every job (of ``kind``), oldest first.

        Raises:
            StoreError: the store failed.
        """
        stmt = select(ingest_files).order_by(ingest_files.c.started_at)
        if kind is not None:
            stmt = stmt.where(ingest_files.c.kind == kind)
        rows = self.transaction("read the ingestion ledger",
                                lambda conn: conn.execute(stmt).mappings().all())
        return [_job(r) for r in rows]

    def dead_letters(self, file_sha: str | None = None, kind: str | None = None,
                     target: str | None = None) -> list[DeadLetter]:
        """Dead letters, by file then row.

        Args:
            file_sha: Only of this content.
            kind: Only of this kind.
            target: Only of this target.

        Returns:
            The dead letters.

        Raises:
            StoreError: the store failed.
        """
        d = dead_letters.c
        stmt = select(dead_letters).order_by(d.file_sha, d.row_index)
        for column, value in ((d.file_sha, file_sha), (d.kind, kind), (d.target, target)):
            if value is not None:
                stmt = stmt.where(column == value)
        rows = self.transaction("read the dead letters",
                                lambda conn: conn.execute(stmt).mappings().all())
        return [DeadLetter(source=r["path"], row=int(r["row_index"]),
                           line=None if r["line_no"] is None else int(r["line_no"]),
                           reasons=list(r["reasons"]), raw=r["raw"]) for r in rows]


def _checkpoint(row: Any) -> Checkpoint:
    status: JobStatus = ("done" if row["status"] == "done" else
                         "failed" if row["status"] == "failed" else "running")
    return Checkpoint(file_sha=row["file_sha"], kind=row["kind"], target=row["target"],
                      committed_rows=int(row["committed_rows"]),
                      total_rows=None if row["total_rows"] is None else int(row["total_rows"]),
                      status=status, epoch_ms=int(row["epoch_ms"]))


def _job(row: Any) -> JobRecord:
    counts = IngestCounts(read=int(row["committed_rows"]),
                          **{name: int(row[name]) for name in _COUNTERS})
    return JobRecord(checkpoint=_checkpoint(row), path=row["path"], counts=counts,
                     started_at=_aware(row["started_at"]),
                     finished_at=None if row["finished_at"] is None else
                     _aware(row["finished_at"]), error=row["error"])


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _job_key(file_sha: str, kind: str, target: str) -> ColumnElement[bool]:
    """The ledger row of one job: a file's content ingested as a kind into a target."""
    return and_(ingest_files.c.file_sha == file_sha, ingest_files.c.kind == kind,
                ingest_files.c.target == target)


def _insert_job(conn: Connection, file_sha: str, kind: str, target: str, path: str,
                now: datetime, *, status: str, total_rows: int | None,
                error: str | None) -> None:
    """Create the job row of a file if it has none yet (a fresh job: no rows, no counts)."""
    conn.execute(insert_ignore(conn.dialect.name, ingest_files, ["file_sha", "kind", "target"]), {
        "file_sha": file_sha, "kind": kind, "target": target, "path": path,
        "status": status, "total_rows": total_rows, "committed_rows": 0,
        **dict.fromkeys(_COUNTERS, 0), "epoch_ms": int(time.time() * 1000),
        "started_at": now, "updated_at": now, "finished_at": None, "error": error})




# --------------------------------------------------------------------------- scored keys
def scored_keys(conn: Connection, scope: str, keys: Sequence[str]) -> dict[str, str]:
    """``key -> prediction id`` of the ones of ``keys`` already scored in ``scope``.

    ``ingest_keys`` remembers the explicit ids (``keel score --id-column``) a model version
    has scored, across files. Reads inside the caller's transaction.
    """
    k = ingest_keys.c
    out: dict[str, str] = {}
    for clause in among(conn, k.key, keys):
        out.update({key: pid for key, pid in conn.execute(
            select(k.key, k.prediction_id).where(k.scope == scope, clause))})
    return out


def remember_keys(conn: Connection, scope: str, file_sha: str,
                  scored: Sequence[tuple[str, str, int]], now: datetime) -> None:
    """Record keys as scored in ``scope``, inside the caller's transaction.

    Args:
        conn: The transaction (the chunk's, so keys and predictions commit together).
        scope: The idempotency scope (the scoring model version).
        file_sha: sha256 of the file the keys were read from.
        scored: ``(key, prediction id, row index)`` of each newly scored record; none of the
            keys may be in ``scope`` yet (:func:`scored_keys` filters them).
        now: Their ``created_at``.
    """
    if scored:
        conn.execute(ingest_keys.insert(), [
            {"scope": scope, "key": key, "prediction_id": pid, "file_sha": file_sha,
             "row_index": row, "created_at": now} for key, pid, row in scored])


def _safe_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _short(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__




__all__ = ["JobRecord", "Ledger", "remember_keys", "scored_keys"]

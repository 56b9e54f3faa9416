"""The durable prediction log: group commit in a writer thread, a spool while the store is down.

Tables, row format and read queries live in :mod:`keelwork.adapters.stores.prediction_store`.

Write path: :meth:`PredictionLog.write` turns records into rows on the caller's side (a snapshot;
payloads encoded with orjson, which never fails: odd values become their ``repr``) and queues
them. One writer thread drains up to ``max_batch`` rows, waiting at most ``max_delay_ms`` after the
oldest one arrived, and commits them in one transaction (group commit). With ``durability:
sync`` the caller resumes only once its rows are committed *or* fsynced into the spool; with
``async`` it resumes at once (unless ``max_queue`` rows are already waiting: back-pressure).

When the store fails, the batch is appended to the spool -- JSON lines in segment files
``spool-<seq>.jsonl``, fsynced per batch -- and acknowledged; later batches follow it there, so
that the spool stays the one ordered path until it is drained. The writer retries with
exponential backoff and replays segments in order with insert-or-ignore by id, deleting a
segment only after all of it is committed: a crash during replay repeats part of a segment,
which the store then ignores. Rows the store refuses as data (not as an outage) are moved to
``rejected.jsonl`` so that one bad record cannot hold the spool back forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from keelwork.adapters.stores.prediction_inserts import driver_inserts
from keelwork.adapters.stores.prediction_spool import Spool
from keelwork.adapters.stores.prediction_store import (
    PredictionReader,
    ensure_schema,
    records_to_rows,
)
from keelwork.core.predictions import PredictionRecord
from keelwork.errors import StoreError

log = logging.getLogger(__name__)

Durability = Literal["sync", "async"]
#: ``on_batch(destination, rows, seconds)``: destination is ``store`` (committed), ``replay``
#: (committed from the spool), ``spool`` (spooled) or ``rejected``.
BatchHook = Callable[[str, int, float], None]


@dataclass(slots=True)
class _Pending:
    """One ``write`` call (or a flush barrier) waiting in the queue."""

    rows: list[dict[str, Any]]
    enqueued: float
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future[None] | None = None
    done: threading.Event | None = None
    barrier: bool = False
    error: BaseException | None = field(default=None)


def _settle(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    """Runs on the waiters' loop; a cancelled waiter is simply skipped."""
    for fut in futures:
        if not fut.done():
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(StoreError(str(error)))


class PredictionLog(PredictionReader):
    """Durable, group-committed prediction log over SQLite or PostgreSQL, with a local spool.

    Args:
        engine: The store (see :func:`keelwork.adapters.stores.engine.make_engine`).
        spool_dir: Directory of the local spool (created when needed).
        durability: ``sync``: :meth:`write` returns once committed or spooled; ``async``: once
            queued.
        max_batch: Most rows per transaction.
        max_delay_ms: How long the writer waits for more rows after the oldest queued one
            arrived, to commit them together.
        max_queue: Rows queued past which an ``async`` write waits like a ``sync`` one.
        retry_backoff: First and largest delay, in seconds, between attempts on a failed store.
        on_batch: Called from the writer thread after each batch (see :data:`BatchHook`).
        seal: Called from the writer thread on each batch's rows before they are stored:
            seals the payloads of rows with a subject in place (``SubjectKeys.seal_rows``).
    """

    def __init__(self, engine: Engine, spool_dir: Path, *, durability: Durability = "sync",
                 max_batch: int = 512, max_delay_ms: float = 2.0, max_queue: int = 100_000,
                 retry_backoff: tuple[float, float] = (0.1, 5.0),
                 on_batch: BatchHook | None = None,
                 seal: Callable[[list[dict[str, Any]]], object] | None = None) -> None:
        if durability not in ("sync", "async"):
            raise StoreError(f"The prediction log durability must be 'sync' or 'async'; got "
                             f"{durability!r}.")
        if max_batch < 1 or max_delay_ms < 0:
            raise StoreError(f"The prediction log needs max_batch >= 1 and max_delay_ms >= 0; "
                             f"got {max_batch} and {max_delay_ms}.")
        super().__init__(engine)
        self.durability: Durability = durability
        self._spool = Spool(Path(spool_dir))
        self._max_batch = max_batch
        # Rows worth committing without waiting out max_delay: the size of the last group.
        # Closed-loop writers come back at about that number, so waiting longer only adds
        # latency (PostgreSQL's commit_siblings idea, learned from the load itself).
        self._target = max_batch
        self._max_delay = max_delay_ms / 1000.0
        self._max_queue = max_queue
        self._backoff_first, self._backoff_max = retry_backoff
        self._on_batch, self._seal = on_batch, seal
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[_Pending] = deque()
        self._queued_rows = 0
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._closed = False
        self._crashed: BaseException | None = None
        self._schema_ready = False
        self._backoff = 0.0
        self._retry_due = 0.0
        self._ins_meta, self._ins_payload = driver_inserts(engine)
        self._counts = {"committed_total": 0, "spooled_total": 0, "replayed_total": 0,
                        "rejected_total": 0, "transactions_total": 0, "store_errors_total": 0}
        self._last_commit_seconds = 0.0
        self._last_error: str | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Create the tables when the store is reachable and start the writer thread.

        A store that is down does not stop the start: records go to the spool until it is
        back. A spool left over by an earlier process is replayed first.

        Raises:
            StoreError: the store is reachable but its schema is newer than this keelwork, or
                the log was closed.
        """
        if self._closed:
            raise StoreError("The prediction log is closed; it cannot be started again.")
        if self._thread is not None:
            return
        try:
            self._spool.open()
        except OSError as exc:
            raise StoreError(f"Could not open the prediction spool in {self._spool.directory}: "
                             f"{exc.strerror or exc}.") from None
        try:
            with self.engine.connect():
                pass
        except SQLAlchemyError as exc:
            log.warning("prediction store unreachable at start; spooling: %s", exc)
        else:
            ensure_schema(self.engine)
            self._schema_ready = True
        self._thread = threading.Thread(target=self._run, name="keelwork-prediction-log",
                                        daemon=True)
        self._thread.start()

    def close(self, timeout: float | None = None) -> None:
        """Write everything queued, try a last replay of the spool and stop the writer.

        Idempotent. Records still queued when ``timeout`` expires stay in memory and are lost
        with the process; the spool keeps everything acknowledged.

        Args:
            timeout: Seconds to wait for the writer; None waits as long as it takes.
        """
        if self._closed:
            return
        self._closed = True
        thread = self._thread
        if thread is None:
            return
        with self._cond:
            self._stopping = True
            self._queue.append(_Pending([], time.monotonic(), barrier=True))
            self._cond.notify()
        thread.join(timeout)
        if not thread.is_alive():
            self._spool.close()

    async def aclose(self, timeout: float | None = None) -> None:
        """:meth:`close` from async code, in a worker thread (the event loop keeps running).

        Args:
            timeout: Seconds to wait for the writer; None waits as long as it takes.
        """
        await asyncio.to_thread(self.close, timeout)

    # ------------------------------------------------------------------ writing
    async def write(self, records: Sequence[PredictionRecord]) -> None:
        """Record predictions without blocking the event loop.

        With ``sync`` durability this returns once the records are committed or fsynced to the
        spool; cancelling the caller does not cancel the write.

        Args:
            records: The records.

        Raises:
            StoreError: the log is not running, or neither the store nor the spool could take
                the records.
        """
        pending = self._unless_queued(records)
        if pending is None:
            return
        loop = asyncio.get_running_loop()
        pending.loop = loop
        pending.future = loop.create_future()
        self._enqueue(pending)
        await pending.future

    def write_blocking(self, records: Sequence[PredictionRecord]) -> None:
        """Like :meth:`write`, for callers outside an event loop (never call it inside one).

        Args:
            records: The records.

        Raises:
            StoreError: as :meth:`write`, or called from a running event loop with ``sync``
                durability.
        """
        pending = self._unless_queued(records)
        if pending is None:
            return
        if _in_event_loop():
            raise StoreError("PredictionLog.write_blocking() would block the running event "
                             "loop; use 'await log.write(records)' there.")
        pending.done = threading.Event()
        self._enqueue(pending)
        pending.done.wait()
        if pending.error is not None:
            raise StoreError(str(pending.error))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is committed or spooled, then try to replay.

        Blocking: from async code use :meth:`aflush`.

        Args:
            timeout: Seconds to wait; None waits as long as it takes.

        Returns:
            True when everything is in the store (the spool is empty).
        """
        if self._thread is None or self._crashed is not None or self._stopping:
            return not self._spool.pending
        barrier = _Pending([], time.monotonic(), done=threading.Event(), barrier=True)
        self._enqueue(barrier)
        return barrier.done is not None and barrier.done.wait(timeout) and \
            not self._spool.pending

    async def aflush(self, timeout: float | None = None) -> bool:
        """:meth:`flush` from async code, in a worker thread.

        Args:
            timeout: Seconds to wait; None waits as long as it takes.

        Returns:
            True when everything is in the store.
        """
        return await asyncio.to_thread(self.flush, timeout)

    def stats(self) -> dict[str, Any]:
        """Counters and gauges for the metrics layer.

        Returns:
            ``queue_depth``, ``last_commit_seconds``, ``spool_records``, ``spool_bytes``,
            ``committed_total``, ``spooled_total``, ``replayed_total``, ``rejected_total``,
            ``transactions_total``, ``store_errors_total``, ``store_available`` and
            ``last_error``.
        """
        return {
            "queue_depth": self._queued_rows,
            "last_commit_seconds": self._last_commit_seconds,
            "spool_records": self._spool.records,
            "spool_bytes": self._spool.size,
            **self._counts,
            "store_available": not self._spool.pending,
            "last_error": self._last_error,
        }

    def _unless_queued(self, records: Sequence[PredictionRecord]) -> _Pending | None:
        """Queue ``records`` when the caller does not wait for them (``async`` durability and
        room in the queue) and return None, as for no records; else return them prepared, for
        the caller to queue once it has set up how it waits."""
        if not records:
            return None
        pending = self._prepare(records)
        if self.durability == "async" and self._queued_rows < self._max_queue:
            self._enqueue(pending)
            return None
        return pending

    def _prepare(self, records: Sequence[PredictionRecord]) -> _Pending:
        if self._crashed is not None:
            raise StoreError(f"The prediction log writer stopped: {self._crashed}")
        if self._thread is None or self._stopping:
            raise StoreError(f"The prediction log is {'closed' if self._closed else 'not started'}"
                             f"; got a write of {len(records)} record(s).")
        return _Pending(records_to_rows(records), time.monotonic())

    def _enqueue(self, pending: _Pending) -> None:
        with self._cond:
            # Checked under the lock the writer exits under: nothing is queued after it left.
            if self._crashed is not None or (self._stopping and not pending.barrier):
                raise StoreError(f"The prediction log is closed; got a write of "
                                 f"{len(pending.rows)} record(s).")
            was_empty = not self._queue
            self._queue.append(pending)
            self._queued_rows += len(pending.rows)
            # The writer sleeps through max_delay on its own; wake it only when it must act.
            if was_empty or pending.barrier or self._queued_rows >= self._target:
                self._cond.notify()

    # ------------------------------------------------------------------ writer thread
    def _run(self) -> None:
        try:
            while True:
                batch = self._take()
                if batch is None:
                    break
                rows = [row for p in batch for row in p.rows]
                error = self._persist(rows) if rows else None
                self._resolve([p for p in batch if not p.barrier], error)
                barriers = [p for p in batch if p.barrier]
                if self._spool.pending and (barriers or time.monotonic() >= self._retry_due):
                    self._replay(budget=None if barriers else 0.5)
                self._resolve(barriers, None)
        except BaseException as exc:  # a bug: fail every waiter rather than hang it
            log.exception("prediction log writer crashed")
            self._crashed = exc
            with self._cond:
                left, self._queue = list(self._queue), deque()
                self._queued_rows = 0
            self._resolve(left, exc)

    def _take(self) -> list[_Pending] | None:
        with self._cond:
            while not self._queue:
                if self._stopping:
                    return None
                wait = self._retry_due - time.monotonic() if self._spool.pending else None
                if wait is not None and wait <= 0:
                    return []
                self._cond.wait(wait)
            deadline = self._queue[0].enqueued + self._max_delay
            while (self._queued_rows < self._target and not self._stopping
                   and not self._queue[-1].barrier):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch: list[_Pending] = []
            n = 0
            while self._queue and (not batch or n + len(self._queue[0].rows) <= self._max_batch):
                p = self._queue.popleft()
                batch.append(p)
                n += len(p.rows)
            self._queued_rows -= n
            self._target = max(1, min(n, self._max_batch)) if n else self._max_batch
            return batch

    def _persist(self, rows: list[dict[str, Any]]) -> BaseException | None:
        """Commit ``rows``, or spool them; return the error when neither worked."""
        if not self._spool.pending:
            try:
                self._commit(rows, "store")
                return None
            except Exception as exc:
                self._store_failed(exc)
        started = time.perf_counter()
        try:
            self._spool.append(rows)
        except OSError as exc:
            log.error("prediction spool append failed; %d record(s) not recorded: %s",
                      len(rows), exc)
            return StoreError(f"Could not record {len(rows)} prediction(s): the store failed "
                              f"({self._last_error}) and so did the spool in "
                              f"{self._spool.directory} ({exc}).")
        self._counts["spooled_total"] += len(rows)
        self._hook("spool", len(rows), time.perf_counter() - started)
        return None

    def _commit(self, rows: list[dict[str, Any]], destination: str) -> None:
        started = time.perf_counter()
        if self._seal is not None:  # off the request path; a failure spools (sealed on replay)
            self._seal(rows)
        if not self._schema_ready:
            ensure_schema(self.engine)
            self._schema_ready = True
        with self.engine.begin() as conn:
            self._ins_meta.run(conn, rows)
            self._ins_payload.run(conn, rows)
        seconds = time.perf_counter() - started
        self._last_commit_seconds = seconds
        self._counts["transactions_total"] += 1
        self._counts["committed_total" if destination == "store" else "replayed_total"] += \
            len(rows)
        self._hook(destination, len(rows), seconds)

    def _store_failed(self, exc: BaseException) -> None:
        self._counts["store_errors_total"] += 1
        self._last_error = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        if self._backoff == 0.0:
            log.warning("prediction store failed; spooling to %s: %s", self._spool.directory,
                        self._last_error)
        self._backoff = min(max(self._backoff * 2, self._backoff_first), self._backoff_max)
        self._retry_due = time.monotonic() + self._backoff

    def _replay(self, budget: float | None) -> None:
        """Replay spool segments in order until empty, the store fails or ``budget`` is spent."""
        started = time.monotonic()
        self._spool.rotate()
        try:
            for segment in self._spool.segments():
                for chunk in self._spool.read(segment, self._max_batch * 4):
                    self._replay_chunk(chunk)
                self._spool.remove(segment)
                if budget is not None and time.monotonic() - started > budget:
                    break
        except Exception as exc:
            self._store_failed(exc)
            return
        self._store_back()

    def _store_back(self) -> None:
        """End a replay that met no failure: the store works, so whatever outage was is over.

        Every replay that ends without a failure comes here, also one that ran out of budget
        with segments left: a retry state kept from this outage would make the next one go
        unreported and wait out this one's grown backoff.
        """
        if self._backoff or self._last_error is not None:
            log.warning("prediction store is back; %s (%d record(s) replayed so far)",
                        "replaying the spool" if self._spool.pending else "spool replayed",
                        self._counts["replayed_total"])
        self._backoff = 0.0
        self._last_error = None
        # Segments left over by the budget replay on the writer's next turn, not after a delay.
        self._retry_due = time.monotonic()

    def _replay_chunk(self, chunk: list[dict[str, Any]]) -> None:
        try:
            self._commit(chunk, "replay")
            return
        except (DataError, IntegrityError):
            pass
        for row in chunk:  # isolate the rows the store refuses as data
            try:
                self._commit([row], "replay")
            except (DataError, IntegrityError) as exc:
                self._spool.reject(row, str(exc).strip().splitlines()[0])
                self._counts["rejected_total"] += 1
                self._hook("rejected", 1, 0.0)

    def _resolve(self, batch: list[_Pending], error: BaseException | None) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for p in batch:
            if p.future is not None and p.loop is not None:
                by_loop.setdefault(p.loop, []).append(p.future)
            elif p.done is not None:
                p.error = error
                p.done.set()
        for loop, futures in by_loop.items():
            # One wake-up per loop, not per waiter; a closed loop has nobody waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, futures, error)

    def _hook(self, destination: str, rows: int, seconds: float) -> None:
        if self._on_batch is not None:
            try:
                self._on_batch(destination, rows, seconds)
            except Exception:
                log.exception("prediction log on_batch hook failed")

def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


__all__ = ["BatchHook", "Durability", "PredictionLog"]

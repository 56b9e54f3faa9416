"""Rollups maintained as the server logs predictions, off the request path.

The prediction log's writer thread hands every batch it committed to :meth:`RollupWriter.offer`
(a list append under a lock: nothing else happens on that thread). A thread of its own takes
what was offered at most every ``fold_s`` seconds, folds it per ``(model, version, bucket)``
against the model's monitoring reference (:func:`~keelwork.service.monitoring.rollups.fold`,
the same code a full run uses), and every ``flush_s`` seconds folds what it gathered into the
stored rollups (:meth:`~keelwork.adapters.stores.profile_rollups.RollupStore.add`, one
transaction).

Nothing here can break or slow the log: rows offered past ``max_rows`` waiting are dropped,
a fold or store failure is logged and its rows forgotten, a model without a reference is not
rolled up. Each of these leaves some bucket's rollup short of the log's count of rows, and a
run reads such a bucket from the log instead (:class:`~.rollups.RollupPlan`): a rollup is
trusted only when it saw exactly the rows the log holds. References are looked up again every
``reference_ttl_s`` seconds, so a new one is picked up (older rollups then no longer match its
layout and are not used).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy import Engine

from keelwork.core.monitors.rollup import Rollup
from keelwork.core.monitors.windows import parse_window
from keelwork.service.monitoring.rollups import BUCKET_SECONDS, bucket_of, fold, layout_of
from keelwork.service.monitoring.window import MonitorSettings, WindowContext

log = logging.getLogger("keelwork.monitor.rollups")


class RollupWriter:
    """Folds committed log rows into the store's rollups (see the module docstring).

    Args:
        engine: The store that holds the log (and gets the rollups).
        segments: ``monitoring.segments`` of keel.yaml (a run uses the same).
        fold_s: Longest wait between folds of what was offered.
        flush_s: Longest wait before folded rollups are stored.
        max_rows: Rows waiting to be folded past which more are dropped.
        reference_ttl_s: How long a model's reference (or its absence) is remembered.
    """

    def __init__(self, engine: Engine, segments: tuple[str, ...] = (), *, fold_s: float = 1.0,
                 flush_s: float = 5.0, max_rows: int = 200_000,
                 reference_ttl_s: float = 60.0) -> None:
        self.engine = engine
        self.segments = tuple(segments)
        self.fold_s = fold_s
        self.flush_s = flush_s
        self.max_rows = max_rows
        self.reference_ttl_s = reference_ttl_s
        self._cond = threading.Condition(threading.Lock())
        self._rows: list[dict[str, Any]] = []
        self._pending: dict[tuple[str, int, int], Rollup] = {}
        self._contexts: dict[tuple[str, int], tuple[float, WindowContext | None, str]] = {}
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._flushing = False
        self._last_flush = time.monotonic()
        self._schema_ready = False
        self.counts = {"folded_rows": 0, "dropped_rows": 0, "unreferenced_rows": 0,
                       "failed_rows": 0, "flushes": 0, "failed_flushes": 0}

    # ------------------------------------------------------------------ log side
    def offer(self, rows: list[dict[str, Any]]) -> None:
        """Take committed rows (called by the log's writer thread; never raises)."""
        with self._cond:
            if self._stopping:
                return
            if len(self._rows) + len(rows) > self.max_rows:
                self.counts["dropped_rows"] += len(rows)
                return
            self._rows.extend(rows)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="keelwork-monitor-rollups")
                self._thread.start()

    def flush(self, timeout: float = 30.0) -> None:
        """Fold and store everything offered so far (tests, benchmarks, shutdown)."""
        with self._cond:
            self._flushing = True
            self._cond.notify()
            deadline = time.monotonic() + timeout
            while (self._rows or self._pending or self._flushing) and self._thread is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            self._flushing = False

    def close(self, timeout: float = 30.0) -> None:
        """Store what is gathered and stop the thread (idempotent)."""
        self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    # ------------------------------------------------------------------ fold thread
    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._stopping and not self._flushing:
                    self._cond.wait(self.fold_s)
                rows, self._rows = self._rows, []
                stopping, flushing = self._stopping, self._flushing
            if rows:
                self._fold(rows)
            if self._pending and (flushing or stopping or
                                  time.monotonic() - self._last_flush >= self.flush_s):
                self._store()
            with self._cond:
                if flushing and not self._rows:
                    self._flushing = False
                self._cond.notify_all()
                if self._stopping and not self._rows:
                    return

    def _fold(self, rows: list[dict[str, Any]]) -> None:
        groups: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
        for r in rows:
            key = (str(r["model"]), int(r["version"]), bucket_of(float(r["ts"])))
            groups.setdefault(key, []).append(r)
        for (model, version, bucket), part in groups.items():
            try:
                ctx, layout = self._context(model, version)
                if ctx is None:
                    self.counts["unreferenced_rows"] += len(part)
                    continue
                new = fold(ctx, part, layout)
            except Exception:  # never the log's problem: the bucket is read from the log
                log.exception("folding %d prediction(s) of %s v%s into rollups failed",
                              len(part), model, version)
                self.counts["failed_rows"] += len(part)
                continue
            key = (model, version, bucket)
            old = self._pending.get(key)
            self._pending[key] = new if old is None or old.layout != new.layout \
                else old.merge(new)
            self.counts["folded_rows"] += len(part)

    def _context(self, model: str, version: int) -> tuple[WindowContext | None, str]:
        now = time.monotonic()
        got = self._contexts.get((model, version))
        if got is not None and now - got[0] < self.reference_ttl_s:
            return got[1], got[2]
        from keelwork.errors import MonitorError
        from keelwork.service.monitoring.reference import load_reference

        ctx: WindowContext | None = None
        layout = ""
        try:
            reference, _row = load_reference(self.engine, model, version)
        except MonitorError:
            reference = None
        if reference is not None:
            ctx = WindowContext(reference, MonitorSettings(segments=self.segments),
                                parse_window(f"{BUCKET_SECONDS}s"), None, 0.0)
            if ctx.text_refs:  # free text is never served from rollups
                ctx = None
            else:
                layout = layout_of(ctx)
        self._contexts[(model, version)] = (now, ctx, layout)
        return ctx, layout

    def _store(self) -> None:
        from keelwork.adapters.stores.profile_rollups import RollupStore

        pending, self._pending = self._pending, {}
        self._last_flush = time.monotonic()
        store = RollupStore(self.engine)
        try:
            if not self._schema_ready:
                store.ensure_schema()
                self._schema_ready = True
            store.add(pending, BUCKET_SECONDS)
            self.counts["flushes"] += 1
        except Exception as exc:
            log.warning("storing %d monitoring rollup(s) failed; those buckets are read from "
                        "the log: %s", len(pending), exc)
            self.counts["failed_flushes"] += 1


__all__ = ["RollupWriter"]

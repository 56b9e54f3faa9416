"""Monitoring results on ``/metrics``, and a loop that keeps the latest window computed.

:class:`MonitorCollector` is a prometheus-client custom collector: at scrape time it reads, per
model, the stored window with the latest end (``monitor_results``; windows that hold no
prediction yet are passed over) and exports it as gauges. Reads are cached for ``ttl``
seconds so that frequent scrapes do not query the store each time; a failed read is counted
in ``keelwork_monitor_read_errors_total`` and the last good values are served -- a broken store
never breaks ``/metrics``.

Series (``keelwork_`` prefix like every keelwork metric; label ``model`` on all):

- ``keelwork_drift_score{column}``: the column's drift score (its method's, see
  :mod:`keelwork.core.monitors.drift`); compared columns only.
- ``keelwork_drift_detected{column}``: 1 when the column drifts, else 0.
- ``keelwork_drift_share``: share of compared columns that drift.
- ``keelwork_segment_drift_detected{field, value}``: 1 when a column drifts in that segment.
- ``keelwork_quality{metric, source}``: ``accuracy``, ``precision``, ``recall``, ``f1``,
  ``roc_auc``, ``mae``, ``rmse``; ``source`` ``realised`` (labels) or ``estimated`` (CBPE).
- ``keelwork_label_coverage``: labelled share of the window's predictions.
- ``keelwork_fairness_*``: the disparities between protected groups, their intervals, alerts
  and the largest groups' rates (:mod:`keelwork.service.monitoring.fairness`).
- ``keelwork_monitor_window_predictions`` and ``keelwork_monitor_window_end_timestamp_seconds``:
  how much and how recent the exported window is (alert on staleness with the latter).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from keelwork.adapters.stores.monitor_store import MonitorStore, StoredWindow
from keelwork.service.monitoring.fairness import fairness_families
from keelwork.spec.model import ResolvedSpec

log = logging.getLogger("keelwork.monitor")

QUALITY_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "mae", "rmse")


class MonitorCollector(Collector):
    """Exports the latest stored monitoring window of each model (see the module docstring).

    Args:
        engine: The store holding ``monitor_results``.
        ttl: Seconds a read is reused.
        clock: Monotonic seconds (injectable for tests).
    """

    def __init__(self, engine: Engine, *, ttl: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._store = MonitorStore(engine)
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._windows: list[StoredWindow] = []
        self.errors = 0

    def _latest(self) -> list[StoredWindow]:
        with self._lock:
            now = self._clock()
            if self._read_at is not None and now - self._read_at < self._ttl:
                return self._windows
            try:
                self._windows = self._store.latest_windows()
            except Exception as exc:  # /metrics must answer whatever the store does
                self.errors += 1
                log.warning("monitoring metrics: reading the latest windows failed: %s", exc)
            self._read_at = now
            return self._windows

    def collect(self) -> Iterator[Any]:
        """The families of the module docstring, from the cached latest windows."""
        windows = self._latest()
        score = GaugeMetricFamily("keelwork_drift_score", "Drift score of a column in the "
                                  "latest monitoring window.", labels=["model", "column"])
        detected = GaugeMetricFamily("keelwork_drift_detected", "1 when the column drifts in "
                                     "the latest monitoring window.", labels=["model", "column"])
        share = GaugeMetricFamily("keelwork_drift_share", "Share of compared columns that "
                                  "drift in the latest monitoring window.", labels=["model"])
        segment = GaugeMetricFamily("keelwork_segment_drift_detected", "1 when some column "
                                    "drifts in the segment in the latest window.",
                                    labels=["model", "field", "value"])
        quality = GaugeMetricFamily("keelwork_quality", "Model quality in the latest window: "
                                    "realised from labels or estimated (CBPE).",
                                    labels=["model", "metric", "source"])
        coverage = GaugeMetricFamily("keelwork_label_coverage", "Labelled share of the latest "
                                     "window's predictions.", labels=["model"])
        rows = GaugeMetricFamily("keelwork_monitor_window_predictions", "Predictions in the "
                                 "latest monitoring window.", labels=["model"])
        end = GaugeMetricFamily("keelwork_monitor_window_end_timestamp_seconds", "End of the "
                                "latest monitoring window (unix seconds).", labels=["model"])
        for w in windows:
            _window_series(w, score, detected, share, segment, quality, coverage)
            rows.add_metric([w.model], float(w.predictions))
            end.add_metric([w.model], w.end)
        errors = CounterMetricFamily("keelwork_monitor_read_errors", "Failed reads of the "
                                     "stored monitoring results.")
        errors.add_metric([], float(self.errors))
        yield from (score, detected, share, segment, quality, coverage, rows, end, errors)
        yield from fairness_families(windows)

    def describe(self) -> list[Any]:
        """Nothing up front: the series depend on what is stored."""
        return []


def _window_series(w: StoredWindow, score: GaugeMetricFamily, detected: GaugeMetricFamily,
                   share: GaugeMetricFamily, segment: GaugeMetricFamily,
                   quality: GaugeMetricFamily, coverage: GaugeMetricFamily) -> None:
    body = w.body
    drift = body.get("drift") or {}
    for c in drift.get("columns") or []:
        if c.get("drift") is None:
            continue
        if _finite(c.get("score")):
            score.add_metric([w.model, str(c["column"])], float(c["score"]))
        detected.add_metric([w.model, str(c["column"])], 1.0 if c["drift"] else 0.0)
    s = drift.get("summary") or {}
    if _finite(s.get("share_drifted")):
        share.add_metric([w.model], float(s["share_drifted"]))
    for seg in body.get("segments") or []:
        flagged = bool((seg.get("summary") or {}).get("drifted"))
        segment.add_metric([w.model, str(seg["field"]), str(seg["value"])],
                           1.0 if flagged else 0.0)
    q = body.get("quality") or {}
    for source in ("realised", "estimated"):
        values = q.get(source) or {}
        for metric in QUALITY_METRICS:
            if _finite(values.get(metric)):
                quality.add_metric([w.model, metric, source], float(values[metric]))
    realised = q.get("realised") or {}
    if _finite(realised.get("coverage")):
        coverage.add_metric([w.model], float(realised["coverage"]))


def _finite(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(float(value)))


# --------------------------------------------------------------------------- background loop
async def monitor_loop(resolved: ResolvedSpec, *, interval_s: float = 300.0,
                       window: str | None = None, models: Sequence[str] | None = None,
                       stop: asyncio.Event | None = None,
                       clock: Callable[[], float] = time.time,
                       engine: Engine | None = None) -> None:
    """Keep the current and the previous window of every monitored model computed.

    Every ``interval_s`` seconds, for each model with a stored reference, runs the monitor
    over the previous and the current time window (``window``, default the first time window
    of ``monitoring.windows``) in a worker thread and stores them, so ``/metrics`` exports fresh
    values and the previous window gets its final counts. Failures are logged, never raised:
    monitoring must not take the server down. Returns when ``stop`` is set (or on cancel).

    Args:
        resolved: The served keel.yaml.
        interval_s: Seconds between runs.
        window: A time window spec; N-prediction windows are not run here.
        models: The models to monitor (default: every model of keel.yaml).
        stop: Set it to end the loop.
        clock: Unix seconds (injectable for tests).
        engine: The store's engine to use (the server's); default: one of its own, disposed
            when the loop ends.
    """
    from keelwork.adapters.stores.engine import make_engine
    from keelwork.adapters.stores.monitor_store import MonitorStore
    from keelwork.core.monitors.windows import parse_window

    mon = resolved.spec.monitoring
    text = window or next((w for w in mon.windows if parse_window(w).is_time), "1h")
    spec = parse_window(text)
    if not spec.is_time:
        log.warning("monitoring loop: %r counts predictions; the loop runs time windows only",
                    text)
        return
    names = list(models) if models is not None else [m.name for m in resolved.spec.models]
    own = engine is None
    db = make_engine(resolved.storage_url) if engine is None else engine
    MonitorStore(db).ensure_schema()
    rescorers: dict[str, tuple[Any, Callable[[], None]] | None] = {}
    stop = stop or asyncio.Event()
    try:
        while not stop.is_set():
            for name in names:
                try:
                    await _finished(asyncio.to_thread(_run_once, resolved, db, name,
                                                      spec.text, clock(), rescorers))
                except Exception as exc:  # logged; the next round tries again
                    log.warning("monitoring loop: %s failed: %s: %s", name,
                                type(exc).__name__, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
    finally:
        for entry in rescorers.values():
            if entry is not None:
                entry[1]()
        if own:
            db.dispose()


async def _finished(work: Awaitable[None]) -> None:
    """Await ``work`` (a worker thread's run); cancelled meanwhile, still wait for the thread
    to end before the cancel goes on: the server disposes of the store's engine once the loop
    has stopped, and a run left going would reopen it (and write) after the server closed."""
    running = asyncio.ensure_future(work)
    try:
        await asyncio.shield(running)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await running
        raise


def _run_once(resolved: ResolvedSpec, engine: Engine, name: str, window: str, now: float,
              rescorers: dict[str, tuple[Any, Callable[[], None]] | None]) -> None:
    from keelwork.adapters.stores.monitor_store import MonitorStore
    from keelwork.core.monitors.windows import parse_window
    from keelwork.service.monitoring.fairness import fairness_settings
    from keelwork.service.monitoring.reference import (
        champion_version,
        load_reference,
        open_rescorer,
    )
    from keelwork.service.monitoring.runner import MonitorSettings, run_monitor

    if MonitorStore(engine).latest_reference(name) is None:
        return
    # The champion's predictions against the champion's own reference (a candidate's
    # reference, stored when it was registered, describes another model).
    version = champion_version(resolved, name)
    reference, row = load_reference(engine, name, version)
    key = f"{name}:{version}"  # a promotion brings another model to score with
    if key not in rescorers:
        try:
            rescorers[key] = (open_rescorer(resolved, name, version)
                              if "prediction:score" in reference.profile.columns
                              or reference.cbpe is not None else None)
        except Exception as exc:  # no scores: drift and realised quality still run
            log.warning("monitoring loop: %s cannot be loaded to score logged inputs: %s",
                        name, exc)
            rescorers[key] = None
    entry = rescorers[key]
    spec = parse_window(window)
    start = spec.start_of(now)
    assert spec.seconds is not None
    run_monitor(engine, reference, window, since=start - spec.seconds, until=now,
                settings=replace(MonitorSettings.from_spec(resolved.spec.monitoring,
                                                           version=version),
                                 fairness=fairness_settings(resolved.spec)),
                reference_row=row, rescore=entry[0] if entry else None, now=now)

__all__ = ["QUALITY_METRICS", "MonitorCollector", "monitor_loop"]

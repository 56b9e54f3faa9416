"""The SLOs evaluated by the server itself: no Prometheus needed.

A server whose keel.yaml has ``slos`` and contacts to alert (``service.owners``,
``service.on_call``) runs :func:`slo_loop` beside its gateway. Every
``slos.evaluation_interval`` (30 s by default) :meth:`SloWatch.evaluate`:

1. counts each model's requests in every window the rules read, one grouped query per window
   over the prediction log (:meth:`~keelwork.types.PredictionReaderStore.slo_counts`);
2. evaluates the rules :mod:`keelwork.core.slo.evaluate` (the conditions, labels and words of
   ``keel slo rules``, the same inhibition of slower tiers);
3. turns what started firing and what stopped into alert state changes for
   :class:`~keelwork.service.alerting.AlertDelivery`, which keeps them in the alert store and
   delivers them (webhook, Slack JSON, e-mail) with retries and de-duplication.

Quality SLOs (``slos.quality``) are evaluated here always, whoever evaluates the request SLOs:
their events join the prediction log with the labels, which Prometheus cannot see. Each is
counted by :class:`~keelwork.adapters.stores.quality_counts.QualityCountReader` over its own
windows, which end ``monitoring.labels.expected_delay`` before the evaluation for the metrics
judged against labels.

What was told stays in the alert store: a new watch (a restarted server) starts from the
firing alerts kept there, so it neither pages again for an alert already told nor forgets to
resolve one that stopped while it was down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from keelwork.adapters.stores.prediction_store import PredictionReader
from keelwork.adapters.stores.quality_counts import QualityCountReader
from keelwork.core.alerting.notification import AlertChange, fingerprint
from keelwork.core.alerting.routing import LABEL_SERVICE, routing
from keelwork.core.slo.evaluate import (
    Evaluator,
    QualityWindowCounts,
    SloCounts,
    quality_windows,
    windows_needed,
)
from keelwork.core.slo.objectives import SloSet, format_duration, slo_set
from keelwork.service.alerting import AlertDelivery, DeliveryReport, open_delivery
from keelwork.spec.model import KeelSpec
from keelwork.spec.slos import duration_seconds
from keelwork.types import PredictionReaderStore

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from sqlalchemy import Engine

log = logging.getLogger("keelwork.slo")


@dataclass(frozen=True, slots=True)
class WatchReport:
    """One evaluation: the state changes it made and the delivery round after them."""

    fired: tuple[str, ...]
    resolved: tuple[str, ...]
    delivery: DeliveryReport


class SloWatch:
    """Evaluates the SLOs over the prediction log and hands the changes to the delivery.

    Args:
        slos: The service's SLOs.
        reader: The prediction log.
        delivery: Where alert state changes go (it owns the alert store).
        clock: Seconds since the epoch (tests pass their own).
        runbook_base: Folder path or URL of the runbooks (as ``keel slo rules``).
        quality: Where the quality SLOs' events are counted (needed when ``slos`` has any).
    """

    def __init__(self, slos: SloSet, reader: PredictionReaderStore, delivery: AlertDelivery, *,
                 clock: Callable[[], float] = time.time,
                 runbook_base: str = "runbooks",
                 quality: QualityCountReader | None = None) -> None:
        if slos.quality and quality is None:
            raise ValueError("quality SLOs need a QualityCountReader")
        self.slos = slos
        self.reader = reader
        self.quality = quality
        self.delivery = delivery
        self.clock = clock
        self.evaluator = Evaluator(slos, runbook_base)
        self._latency_ms = next((o.threshold_s * 1000.0 for o in slos.objectives
                                 if o.threshold_s is not None), None)
        names = {a.name for a in slos.alerts()}
        #: Alerts told firing (fingerprint -> labels, annotations), from the store first.
        self.told: dict[str, tuple[Mapping[str, str], Mapping[str, str]]] = {
            row.fingerprint: (row.labels, row.annotations)
            for row in delivery.store.alerts(state="firing")
            if row.labels.get(LABEL_SERVICE) == slos.service
            and row.labels.get("alertname") in names}

    def counts(self, now: float) -> dict[int, dict[str, SloCounts]]:
        """Per window the rules read, per model, its counts up to ``now``."""
        if not self.slos.objectives or not self.reader.has_log():
            return {}
        return {w: self.reader.slo_counts(now - w, now, latency_ms=self._latency_ms)
                for w in windows_needed(self.slos)}

    def quality_counts(self, now: float) -> QualityWindowCounts:
        """Per quality SLO, per window it reads (ending ``now`` less its lag), per model,
        its counts."""
        if self.quality is None:
            return {}
        return {o.key: self.quality.counts(o.indicator, self.slos.models_of(o),
                                           now - o.indicator.lag_s,
                                           quality_windows(self.slos, o))
                for o in self.slos.quality if o.indicator is not None}

    def evaluate(self, now: float | None = None) -> WatchReport:
        """Evaluate once at ``now`` (default: the clock), record the changes, deliver.

        Raises:
            StoreError: the store failed (the next evaluation tries again).
        """
        at = self.clock() if now is None else now
        result = self.evaluator.step(self.counts(at), at, quality=self.quality_counts(at))
        changes: list[AlertChange] = []
        for f in result.firing:
            fp = fingerprint(f.labels)
            if fp not in self.told:
                changes.append(AlertChange(f.labels, "firing", at, f.annotations))
                self.told[fp] = (f.labels, f.annotations)
        # An inhibited alert already told keeps firing; one not told yet waits its turn.
        holding = {fingerprint(f.labels) for f in (*result.firing, *result.inhibited)}
        for fp in [fp for fp in self.told if fp not in holding]:
            labels, notes = self.told.pop(fp)
            changes.append(AlertChange(labels, "resolved", at, notes))
        self.delivery.observe(changes)
        report = self.delivery.deliver(at)
        for sink, error in report.errors:
            log.warning("SLO alert not delivered to %s (kept, retried): %s", sink, error)
        return WatchReport(tuple(c.labels["alertname"] for c in changes if c.state == "firing"),
                           tuple(c.labels["alertname"] for c in changes
                                 if c.state == "resolved"), report)


def evaluated_here(spec: KeelSpec) -> SloSet:
    """The SLOs a server of ``spec`` evaluates itself: every one with ``slos.evaluated_by:
    server``; with ``prometheus``, the quality SLOs only (Prometheus sees no label)."""
    slos = slo_set(spec)
    if spec.slos.evaluated_by == "server":
        return slos
    return replace(slos, objectives=())


def evaluates_slos(spec: KeelSpec) -> bool:
    """Whether a server of ``spec`` evaluates SLOs: it has some to evaluate
    (:func:`evaluated_here`) and someone to tell."""
    here = evaluated_here(spec)
    return (bool(here.objectives or here.quality)
            and any(r.targets for r in routing(spec).receivers))


def interval_s(spec: KeelSpec) -> float:
    """Seconds between evaluations (``slos.evaluation_interval``)."""
    return float(duration_seconds(spec.slos.evaluation_interval))


def open_watch(spec: KeelSpec, engine: Engine, *, registry: CollectorRegistry | None = None,
               clock: Callable[[], float] = time.time, **options: Any) -> SloWatch | None:
    """The watch of ``spec`` over the store at ``engine``, or None when it evaluates nothing.

    Args:
        spec: The keel.yaml.
        engine: The store holding the prediction log and the alert states.
        registry: Where notifications are counted (the server's, for /metrics).
        clock: Seconds since the epoch, for the evaluation and the delivery.
        **options: ``backoff`` and ``timeout_s`` of the delivery.

    Raises:
        SpecError: a contact reaches nobody.
    """
    if not evaluates_slos(spec):
        return None
    delivery = open_delivery(spec, engine, registry=registry, clock=clock, **options)
    return SloWatch(evaluated_here(spec), PredictionReader(engine), delivery, clock=clock,
                    quality=QualityCountReader(engine))


async def slo_loop(watch: SloWatch, *, interval: float, stop: asyncio.Event) -> None:
    """Evaluate every ``interval`` seconds until ``stop`` is set (or on cancel).

    Each evaluation runs in a worker thread (queries, sends); a failure is logged, never
    raised: alerting must not take the server down, and the next round tries again.
    """
    while not stop.is_set():
        try:
            await asyncio.to_thread(watch.evaluate)
        except Exception:
            log.exception("SLO evaluation failed; retrying in %s",
                          format_duration(max(1, round(interval))))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


__all__ = ["SloWatch", "WatchReport", "evaluated_here", "evaluates_slos", "interval_s",
           "open_watch", "slo_loop"]

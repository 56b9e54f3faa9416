"""Prometheus metrics of the serving gateway (prometheus-client, one registry per gateway).

Names follow Prometheus conventions: ``keelwork_`` prefix, base units (seconds, bytes), ``_total``
for counters. Child series are cached per label set: ``.labels()`` is not free on the hot path.

The workers of ``keel serve --workers N`` run prometheus-client in its multi-process mode: each
keeps its counters, histograms and gauges in files of one folder (``fleet_dir``), and whichever
worker answers a scrape sums every worker's (a dead worker's counts stay in the sums, its live
gauges leave them). A fleet spread over machines (``keel serve --engine ray --address``) sums
the snapshots its processes publish to the store instead (``fleet_view``, see
:mod:`keelwork.service.fleet_metrics`). What collectors compute at scrape time (the prediction
log's queue, PII counts, cost, readings of the store) is the answering worker's own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from keelwork.adapters.metric_snapshots import SnapshotView, snapshot_of
from keelwork.adapters.processes import process_alive
from keelwork.core.cost import idle_cost, version_cost
from keelwork.core.fleet_metrics import Snapshot
from keelwork.spec.cost import CostSection
from keelwork.spec.metric_names import LATENCY_BUCKETS as _LATENCY_BUCKETS

_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class _StatsCollector(Collector):
    """Exports gauges read at scrape time from a callback (queue depth, spool size, ...)."""

    def __init__(self, read: Callable[[], dict[str, float]]) -> None:
        self._read = read

    def collect(self) -> Any:
        stats = self._read()
        for key, help_text in (
            ("queue_depth", "Prediction records waiting for the log writer."),
            ("spool_records", "Prediction records in the local spool awaiting replay."),
            ("spool_bytes", "Size of the local prediction spool in bytes."),
        ):
            g = GaugeMetricFamily(f"keelwork_prediction_log_{key}", help_text)
            g.add_metric([], float(stats.get(key, 0.0)))
            yield g

    def describe(self) -> Any:
        return []


class _HealthCollector(Collector):
    """``keelwork_degraded{component}``: 1 while a component runs degraded (store down)."""

    def __init__(self, read: Callable[[], dict[str, dict[str, Any]]]) -> None:
        self._read = read

    def collect(self) -> Any:
        g = GaugeMetricFamily("keelwork_degraded", "1 while a component runs degraded: its "
                              "store fails (the prediction log spools, polls keep what they "
                              "have); details in /v2/health/ready.", labels=["component"])
        for name, state in sorted(self._read().items()):
            g.add_metric([name], 1.0 if state.get("degraded") else 0.0)
        yield g

    def describe(self) -> Any:
        return []


class _PiiCollector(Collector):
    """The PII redactor's counts, read at scrape time: texts scanned, entities found by entity,
    fields stored whole because their scan failed (fail closed) by reason. Labels are entity
    names and failure reasons, a set fixed by keel.yaml; never a piece of text."""

    def __init__(self, read: Callable[[], dict[str, Any]]) -> None:
        self._read = read

    def collect(self) -> Any:
        stats = self._read()
        scanned = CounterMetricFamily("keelwork_pii_scanned_texts",
                                      "Text values scanned for PII before being stored.")
        scanned.add_metric([], float(stats.get("scanned", 0)))
        yield scanned
        found = CounterMetricFamily("keelwork_pii_detections", "PII entities found and "
                                    "replaced before storage, by entity (UNSCANNED: a whole "
                                    "text whose scan failed).", labels=["entity"])
        for entity, n in sorted(stats.get("found", {}).items()):
            found.add_metric([entity], float(n))
        yield found
        failed = CounterMetricFamily("keelwork_pii_fail_closed", "Text fields stored whole-"
                                     "redacted because their scan failed, by reason.",
                                     labels=["reason"])
        for reason, n in sorted(stats.get("failed", {}).items()):
            failed.add_metric([reason], float(n))
        yield failed

    def describe(self) -> Any:
        return []


class GatewayMetrics:
    """Every metric the gateway exports, with cached children for the hot path."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("keelwork_requests", "Prediction requests by outcome.",
                                ["model", "version", "status"], registry=r)
        self.predictions = Counter("keelwork_predictions", "Predictions returned (instances).",
                                   ["model", "version"], registry=r)
        self.latency = Histogram("keelwork_request_duration_seconds",
                                 "End-to-end request latency, parsing to response.",
                                 ["model"], buckets=_LATENCY_BUCKETS, registry=r)
        self.model_latency = Histogram("keelwork_model_duration_seconds",
                                       "Time inside the model call (one batch).",
                                       ["model", "version"], buckets=_LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("keelwork_batch_size", "Instances per model call.",
                                    ["model", "version"], buckets=_BATCH_BUCKETS, registry=r)
        self.validation_failures = Counter(
            "keelwork_contract_violations", "Contract violations by field and rule.",
            ["model", "field", "rule"], registry=r)
        self.output_violations = Counter(
            "keelwork_output_contract_violations", "Answers that broke the output contract, "
            "by field and rule.", ["model", "version", "field", "rule"], registry=r)
        self.queue_depth = Gauge("keelwork_batch_queue_depth",
                                 "Instances waiting for a model call.", ["model", "version"],
                                 registry=r, multiprocess_mode="livesum")
        self.in_flight = Gauge("keelwork_requests_in_flight", "Requests being served.",
                               registry=r, multiprocess_mode="livesum")
        #: Where the workers of a fleet keep their values (None: this process alone).
        self.fleet_dir: Path | None = None
        self.rejected = Counter("keelwork_rejected_requests",
                                "Requests refused before the model (limit, size, ...).",
                                ["reason"], registry=r)
        self.fallbacks = Counter("keelwork_fallback_uses", "Requests answered by a fallback.",
                                 ["model", "fallback"], registry=r)
        self.guard_hits = Counter("keelwork_guard_hits", "Instances a guard flagged or "
                                  "rejected (out_of_distribution, ...).",
                                  ["guard", "model", "action"], registry=r)
        self.guard_errors = Counter("keelwork_guard_errors", "Requests on which a guard "
                                    "raised or timed out, by what they got (failed_open: "
                                    "answered unchecked; failed_closed: refused).",
                                    ["guard", "model", "outcome"], registry=r)
        self.log_commit = Histogram("keelwork_prediction_log_commit_seconds",
                                    "Time to commit one group of prediction records.",
                                    buckets=_LATENCY_BUCKETS, registry=r)
        self.log_records = Counter("keelwork_prediction_log_records",
                                   "Prediction records by where they went.", ["destination"],
                                   registry=r)
        self.model_cpu = Counter("keelwork_model_cpu_seconds",
                                 "CPU seconds of model calls, measured in the threads that ran "
                                 "them.", ["model", "version"], registry=r)
        self.model_gpu = Counter("keelwork_model_gpu_seconds",
                                 "GPU seconds of model calls, as runtimes on a GPU measure "
                                 "them.", ["model", "version"], registry=r)
        self.tokens = Counter("keelwork_tokens", "Tokens model answers reported using, by "
                              "kind (input, output).", ["model", "version", "kind"],
                              registry=r)
        self.token_price_missing = Counter(
            "keelwork_token_price_missing", "Answers whose reported tokens have no price in "
            "effect (or an unreadable usage): not charged, an error to fix in keel.yaml's "
            "cost.token_prices.", ["model", "version"], registry=r)
        #: What reported tokens cost, priced at each call's day (part of keelwork_cost_total).
        self.token_cost = Counter("keelwork_token_cost", "Token cost per version.",
                                  ["model", "version"], registry=None)
        self._children: dict[tuple[str, ...], Any] = {}
        #: The metrics this process counts itself (what it publishes to a fleet).
        self._own = tuple(m for m in vars(self).values()
                          if isinstance(m, MetricWrapperBase) and m is not self.token_cost)
        #: With a fleet spread over machines: the fleet's sums, given this process's values
        #: (None: this process alone, or ``fleet_dir``).
        self.fleet_view: Callable[[Snapshot], Snapshot] | None = None

    def own_snapshot(self) -> Snapshot:
        """This process's own counters, gauges and histograms, as a plain snapshot."""
        return snapshot_of(self._own)

    def watch_cost(self, prices: CostSection,
                   process_cpu: Callable[[], float] = time.process_time) -> None:
        """Export ``keelwork_cost_total{model,version,currency}`` (model CPU seconds and
        answers at keel.yaml's prices) and, with a ``cpu_hour`` price,
        ``keelwork_cost_idle_total{currency}`` (the process's other CPU time), computed at
        scrape time from the counters.

        Args:
            prices: keel.yaml's cost section (at least one price set).
            process_cpu: The serving process's CPU seconds (every thread).
        """
        self.registry.register(_CostCollector(self, prices, process_cpu))

    def watch_month(self, currency: str,
                    read: Callable[[], dict[tuple[str, str], float]]) -> None:
        """Export ``keelwork_cost_month_to_date{model,version,currency}``: the spend of the
        calendar month (UTC) so far, read at scrape time from the durable usage ledger (it
        survives restarts, unlike the counters)."""
        self.registry.register(_MonthCollector(currency, read))

    def watch_log(self, read_stats: Callable[[], dict[str, float]]) -> None:
        """Export the prediction log's gauges, read at scrape time."""
        self.registry.register(_StatsCollector(read_stats))

    def watch_health(self, read: Callable[[], dict[str, dict[str, Any]]]) -> None:
        """Export ``keelwork_degraded`` per component, read at scrape time."""
        self.registry.register(_HealthCollector(read))

    def watch_pii(self, read: Callable[[], dict[str, Any]]) -> None:
        """Export ``keelwork_pii_scanned_texts_total``, ``keelwork_pii_detections_total{entity}``
        and ``keelwork_pii_fail_closed_total{reason}``, read at scrape time from ``read()``:
        ``{"scanned": n, "found": {entity: n}, "failed": {reason: n}}``."""
        self.registry.register(_PiiCollector(read))

    def child(self, metric: Any, *labels: str) -> Any:
        key = (metric._name, *labels)
        c = self._children.get(key)
        if c is None:
            c = metric.labels(*labels)
            self._children[key] = c
        return c

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        if self.fleet_view is not None:
            summed = self.fleet_view(self.own_snapshot())
            return generate_latest(SnapshotView(self.registry, summed)), CONTENT_TYPE_LATEST
        if self.fleet_dir is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        return generate_latest(_FleetView(self.registry, self.fleet_dir)), CONTENT_TYPE_LATEST


class _FleetView:
    """What a fleet's scrape exports: every worker's values summed, from their files, then
    the families only this process computes (its collectors')."""

    def __init__(self, registry: CollectorRegistry, folder: Path) -> None:
        self._registry = registry
        self._folder = folder

    def collect(self) -> Iterator[Any]:
        from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

        for file in self._folder.glob("gauge_live*_*.db"):  # a dead worker's live gauges
            pid = file.stem.rsplit("_", 1)[-1]
            if pid.isdigit() and not process_alive(int(pid)):
                mark_process_dead(int(pid), str(self._folder))  # type: ignore[no-untyped-call]
        collector = MultiProcessCollector(None, path=str(self._folder))  # type: ignore[no-untyped-call]
        summed = list(collector.collect())  # type: ignore[no-untyped-call]
        names = {family.name for family in summed}
        yield from summed
        for family in self._registry.collect():
            if family.name not in names:
                yield family


def _totals(metric: Any) -> dict[tuple[str, str], float]:
    """A ``[model, version]`` counter's values by label pair (its ``_total`` samples)."""
    out: dict[tuple[str, str], float] = {}
    for family in metric.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                out[(sample.labels["model"], sample.labels["version"])] = sample.value
    return out


class _CostCollector(Collector):
    """The cost counters, derived at scrape time from CPU seconds and answers per version."""

    def __init__(self, metrics: GatewayMetrics, prices: CostSection,
                 process_cpu: Callable[[], float]) -> None:
        self._metrics = metrics
        self._prices = prices
        self._process_cpu = process_cpu
        self._idle = 0.0

    def collect(self) -> Iterable[CounterMetricFamily]:
        prices = self._prices
        m = self._metrics
        cpu = _totals(m.model_cpu)
        process = self._process_cpu()  # after the model CPU, so that it holds all of it
        answers, gpu, tokens = _totals(m.predictions), _totals(m.model_gpu), _totals(m.token_cost)
        cost = CounterMetricFamily("keelwork_cost", "Cost of model calls per version: CPU "
                                   "seconds at cost.cpu_hour, GPU seconds at cost.gpu_hour, "
                                   "answers at cost.per_1k_predictions and reported tokens "
                                   "at cost.token_prices.",
                                   labels=["model", "version", "currency"])
        for key in sorted(cpu.keys() | answers.keys() | gpu.keys() | tokens.keys()):
            cost.add_metric([*key, prices.currency], version_cost(
                prices, cpu.get(key, 0.0), answers.get(key, 0.0), gpu.get(key, 0.0),
                tokens.get(key, 0.0)))
        yield cost
        idle = idle_cost(prices, process, sum(cpu.values()))
        if idle is not None:
            # A call in flight is idle until it ends and is counted as the model's: the
            # counter holds its highest value rather than step back (a reset to Prometheus).
            idle = self._idle = max(self._idle, idle)
            g = CounterMetricFamily("keelwork_cost_idle", "CPU time of the process outside "
                                    "model calls (parsing, logging, the event loop, runtimes' "
                                    "helper threads) at cost.cpu_hour.", labels=["currency"])
            g.add_metric([prices.currency], idle)
            yield g

    def describe(self) -> Iterable[CounterMetricFamily]:
        return []


class _MonthCollector(Collector):
    def __init__(self, currency: str,
                 read: Callable[[], dict[tuple[str, str], float]]) -> None:
        self._currency = currency
        self._read = read

    def collect(self) -> Iterable[GaugeMetricFamily]:
        g = GaugeMetricFamily("keelwork_cost_month_to_date", "Spend of the calendar month "
                              "(UTC) so far per version, from the durable usage ledger (every "
                              "server on the store together).",
                              labels=["model", "version", "currency"])
        for (model, version), value in sorted(self._read().items()):
            g.add_metric([model, version, self._currency], value)
        yield g

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []


class NotificationMetrics:
    """Alert notifications by receiver: ``keelwork_notifications_sent_total`` and
    ``keelwork_notifications_failed_total`` (each failed try; the notification stays due and is
    retried), plus ``keelwork_notifications_pending`` (undelivered state changes, read at
    scrape time when :meth:`watch_pending` is given a reader).

    Args:
        registry: The registry to export on (a server's gateway registry, so /metrics shows
            them); a new one when None.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.sent = Counter("keelwork_notifications_sent", "Alert notifications delivered, "
                            "by receiver.", ["receiver"], registry=self.registry)
        self.failed = Counter("keelwork_notifications_failed", "Failed tries to deliver an "
                              "alert notification, by receiver (each is kept and retried).",
                              ["receiver"], registry=self.registry)

    def watch_pending(self, read: Callable[[], dict[str, int]]) -> None:
        """Export ``keelwork_notifications_pending{receiver}``, read at scrape time."""
        self.registry.register(_PendingCollector(read))


class _PendingCollector(Collector):
    def __init__(self, read: Callable[[], dict[str, int]]) -> None:
        self._read = read

    def collect(self) -> Any:
        g = GaugeMetricFamily("keelwork_notifications_pending", "Alert state changes not yet "
                              "delivered to their receiver.", labels=["receiver"])
        for receiver, count in sorted(self._read().items()):
            g.add_metric([receiver], float(count))
        yield g

    def describe(self) -> Any:
        return []

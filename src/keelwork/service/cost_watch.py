"""The monthly budget watched by the server itself, and the cost report of a project.

A server whose keel.yaml prices its models (``cost``) runs :func:`cost_loop` beside its
gateway. Every ``cost.evaluation_interval`` (1 min by default) :meth:`CostWatch.evaluate`:

1. adds what each version used since the last round (CPU and GPU seconds, answers, tokens:
   the growth of the gateway's counters, :class:`UsageMeter`) to the durable usage ledger
   (:class:`~keelwork.adapters.stores.cost_ledger.CostLedger`): the counters start again at
   zero on a restart, the ledger does not, and several servers on one store add to it;
2. reads the calendar month (UTC) so far back from the ledger, priced at keel.yaml's prices
   (:func:`cost_report`), and keeps it for ``keelwork_cost_month_to_date`` on ``/metrics``;
3. with ``cost.monthly_budget``, contacts and ``cost.evaluated_by: server``, evaluates the
   budget alerts (:mod:`keelwork.core.budget`) and hands what started firing and what stopped
   to the same :class:`~keelwork.service.alerting.AlertDelivery` as the SLO alerts (the same
   routing, retries and de-duplication). What was told stays in the alert store, so a
   restarted server does not page again.

A failed store write keeps the usage for the next round: nothing is lost but the last round
before a crash. Usage lands in the ledger bucket of the round that writes it, so a call
counts up to one interval late (at a month's turn, into the next month).

:func:`cost_report` is what a dashboard calls for the cost per model and version and the
budget's status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keelwork.adapters.metrics import GatewayMetrics
from keelwork.adapters.stores.cost_ledger import FIELDS, KEEP_S, CostLedger, UsageRow
from keelwork.core.alerting.notification import AlertChange, fingerprint
from keelwork.core.alerting.routing import LABEL_SERVICE, routing
from keelwork.core.budget import (
    BudgetStatus,
    budget_alerts,
    budget_status,
    conditions,
    month_bounds,
)
from keelwork.core.cost import TokenUsage, charge_tokens, version_cost
from keelwork.service.alerting import AlertDelivery, open_delivery
from keelwork.spec.model import KeelSpec

if TYPE_CHECKING:
    from sqlalchemy import Engine

log = logging.getLogger("keelwork.cost")

Key = tuple[str, int]


class UsageMeter:
    """The growth of a gateway's usage counters since the last :meth:`commit`."""

    def __init__(self, metrics: GatewayMetrics) -> None:
        self.metrics = metrics
        self._seen: dict[tuple[Key, str], float] = {}

    def _read(self) -> dict[tuple[Key, str], float]:
        m = self.metrics
        out: dict[tuple[Key, str], float] = {}
        for name, metric in (("cpu_seconds", m.model_cpu), ("gpu_seconds", m.model_gpu),
                             ("predictions", m.predictions)):
            for family in metric.collect():
                for s in family.samples:
                    if s.name.endswith("_total"):
                        key = (s.labels["model"], int(s.labels["version"]))
                        out[(key, name)] = s.value
        for family in m.tokens.collect():
            for s in family.samples:
                if s.name.endswith("_total"):
                    key = (s.labels["model"], int(s.labels["version"]))
                    out[(key, f"{s.labels['kind']}_tokens")] = s.value
        return out

    def pending(self) -> tuple[dict[Key, dict[str, float]], dict[tuple[Key, str], float]]:
        """Per version, what grew since the last commit, and the readings to commit."""
        now = self._read()
        grown: dict[Key, dict[str, float]] = {}
        for (key, name), value in now.items():
            delta = value - self._seen.get((key, name), 0.0)
            if delta > 0:
                grown.setdefault(key, {})[name] = delta
        return grown, now

    def commit(self, readings: Mapping[tuple[Key, str], float]) -> None:
        """The usage up to ``readings`` is stored."""
        self._seen.update(readings)


@dataclass(frozen=True, slots=True)
class VersionCost:
    """What one model version cost in the month so far."""

    model: str
    version: int
    cost: float
    cpu_seconds: float
    gpu_seconds: float
    predictions: int
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class CostReport:
    """The month's cost per version and the budget's status (:func:`cost_report`)."""

    currency: str
    versions: tuple[VersionCost, ...]
    budget: BudgetStatus

    def by_version(self) -> dict[tuple[str, str], float]:
        return {(v.model, str(v.version)): v.cost for v in self.versions}


def _row_cost(spec: KeelSpec, row: UsageRow) -> float:
    tokens = 0.0
    if row.input_tokens or row.output_tokens:
        got = charge_tokens(spec.cost, row.model, TokenUsage(row.input_tokens,
                                                             row.output_tokens), row.bucket)
        tokens = got if isinstance(got, float) else 0.0  # counted as an error at the call
    return version_cost(spec.cost, row.cpu_seconds, row.predictions, row.gpu_seconds, tokens)


def cost_report(spec: KeelSpec, ledger: CostLedger, now: float | None = None) -> CostReport:
    """The calendar month's (UTC) cost so far per model and version, and the budget's status
    (spent, forecast at the spend rate of the last ``cost.forecast_window``, share of the
    budget, when it runs out), from the durable usage ledger.

    Args:
        spec: The keel.yaml (its prices and budget).
        ledger: The usage ledger of the project's store.
        now: Seconds since the epoch (default: now).

    Raises:
        StoreError: the store failed.
    """
    at = time.time() if now is None else now
    start, _ = month_bounds(at)
    window = spec.cost.forecast_seconds
    per: dict[Key, dict[str, float]] = {}
    spent = 0.0
    for row in ledger.usage_by_day(start, at + 1):
        cost = _row_cost(spec, row)
        spent += cost
        acc = per.setdefault((row.model, row.version), dict.fromkeys(("cost", *FIELDS), 0.0))
        acc["cost"] += cost
        for name in FIELDS:
            acc[name] += getattr(row, name)
    recent = sum(_row_cost(spec, row) for row in ledger.usage_by_day(at - window, at + 1))
    versions = tuple(VersionCost(m, v, a["cost"], a["cpu_seconds"], a["gpu_seconds"],
                                 int(a["predictions"]), int(a["input_tokens"]),
                                 int(a["output_tokens"]))
                     for (m, v), a in sorted(per.items()))
    return CostReport(spec.cost.currency, versions,
                      budget_status(spec.cost.monthly_budget, spent, recent, window, at))


@dataclass(frozen=True, slots=True)
class CostRound:
    """One round of :meth:`CostWatch.evaluate`."""

    stored: int
    report: CostReport
    fired: tuple[str, ...] = ()
    resolved: tuple[str, ...] = ()


@dataclass
class CostWatch:
    """Stores usage, keeps the month's cost, watches the budget (see the module doc).

    Args:
        spec: The keel.yaml.
        ledger: The usage ledger.
        meter: The gateway's usage counters.
        delivery: Where budget alerts go (None: nobody to tell, or Prometheus tells).
        clock: Seconds since the epoch.
        runbook_base: Folder path or URL of the runbooks.
    """

    spec: KeelSpec
    ledger: CostLedger
    meter: UsageMeter
    delivery: AlertDelivery | None = None
    clock: Callable[[], float] = time.time
    runbook_base: str = "runbooks"
    last: CostReport | None = None
    told: dict[str, tuple[Mapping[str, str], Mapping[str, str]]] = field(default_factory=dict)
    #: When old usage was last deleted (once a day).
    pruned_at: float = float("-inf")
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.delivery is None:
            return
        names = {a.name for a in budget_alerts(self.spec.cost)}
        self.told = {row.fingerprint: (row.labels, row.annotations)
                     for row in self.delivery.store.alerts(state="firing")
                     if row.labels.get(LABEL_SERVICE) == self.spec.service.name
                     and row.labels.get("alertname") in names}

    def flush(self, now: float | None = None) -> int:
        """Add the usage grown since the last flush to the ledger.

        Raises:
            StoreError: the store failed (the usage is kept for the next flush).
        """
        with self._lock:
            grown, readings = self.meter.pending()
            stored = self.ledger.add(self.clock() if now is None else now, grown)
            self.meter.commit(readings)
            return stored

    def evaluate(self, now: float | None = None) -> CostRound:
        """Flush, read the month back, evaluate the budget alerts and deliver."""
        at = self.clock() if now is None else now
        stored = self.flush(at)
        if at - self.pruned_at >= 86_400:
            self.ledger.prune(at - KEEP_S)
            self.pruned_at = at
        report = self.last = cost_report(self.spec, self.ledger, at)
        if self.delivery is None:
            return CostRound(stored, report)
        firing = conditions(self.spec, report.budget, runbook_base=self.runbook_base)
        changes: list[AlertChange] = []
        for f in firing:
            fp = fingerprint(f.labels)
            if fp not in self.told:
                changes.append(AlertChange(f.labels, "firing", at, f.annotations))
                self.told[fp] = (f.labels, f.annotations)
        holding = {fingerprint(f.labels) for f in firing}
        for fp in [fp for fp in self.told if fp not in holding]:
            labels, notes = self.told.pop(fp)
            changes.append(AlertChange(labels, "resolved", at, notes))
        self.delivery.observe(changes)
        for sink, error in self.delivery.deliver(at).errors:
            log.warning("Budget alert not delivered to %s (kept, retried): %s", sink, error)
        return CostRound(stored, report,
                         tuple(c.labels["alertname"] for c in changes if c.state == "firing"),
                         tuple(c.labels["alertname"] for c in changes if c.state == "resolved"))

    def month_to_date(self) -> dict[tuple[str, str], float]:
        """Per version, the month's cost at the last round (for ``/metrics``)."""
        last = self.last
        if last is None:
            return {}
        if month_bounds(self.clock())[0] != last.budget.month_start:
            return {}  # a new month began since: nothing spent in it yet that we know of
        return last.by_version()


def watches_budget(spec: KeelSpec) -> bool:
    """Whether a server of ``spec`` alerts on its budget itself: a budget, someone to tell,
    and ``cost.evaluated_by: server``."""
    return (spec.cost.monthly_budget is not None and spec.cost.evaluated_by == "server"
            and any(r.targets for r in routing(spec).receivers))


def open_cost_watch(spec: KeelSpec, engine: Engine, metrics: GatewayMetrics, *,
                    delivery: AlertDelivery | None = None,
                    clock: Callable[[], float] = time.time, **options: Any) -> CostWatch | None:
    """The cost watch of a server of ``spec`` (None without prices).

    Args:
        spec: The keel.yaml.
        engine: The store (the ledger table is created if missing).
        metrics: The gateway's metrics (read for usage; ``keelwork_cost_month_to_date`` is
            added to them).
        delivery: The server's alert delivery when it has one already (the SLO watch's):
            one delivery per server, so one sender per notification.
        clock: Seconds since the epoch.
        **options: ``backoff`` and ``timeout_s`` of a new delivery.

    Raises:
        SpecError: a contact reaches nobody.
        StoreError: the store failed.
    """
    if not spec.cost.priced:
        return None
    ledger = CostLedger(engine)
    ledger.ensure_schema()
    if watches_budget(spec):
        if delivery is None:
            delivery = open_delivery(spec, engine, registry=metrics.registry, clock=clock,
                                     **options)
    else:
        delivery = None
    watch = CostWatch(spec, ledger, UsageMeter(metrics), delivery, clock)
    metrics.watch_month(spec.cost.currency, watch.month_to_date)
    return watch


async def cost_loop(watch: CostWatch, *, stop: asyncio.Event,
                    leader: Callable[[], bool] | None = None) -> None:
    """Evaluate every ``cost.evaluation_interval`` until ``stop`` is set (the server flushes
    once more when it closes); a failure is logged, never raised (the next round tries
    again). With ``leader``, a process for which it answers False only stores its own usage
    (the lease holder of :mod:`keelwork.service.leases` evaluates the budget and alerts)."""
    interval = float(watch.spec.cost.interval_seconds)
    while not stop.is_set():
        try:
            await asyncio.to_thread(watch.evaluate if leader is None or leader() else watch.flush)
        except Exception:
            log.exception("Cost evaluation failed; retrying in %g s", interval)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


__all__ = ["CostReport", "CostRound", "CostWatch", "UsageMeter", "VersionCost", "cost_loop",
           "cost_report", "open_cost_watch", "watches_budget"]

"""What ``/dashboard`` shows, gathered from the server's stores into one plain snapshot.

:meth:`Dashboard.snapshot` reads, per model and version: traffic, errors and latency
percentiles over the last day (the :class:`~keelwork.service.traffic.TrafficCache` rollup of the
prediction log), the SLOs' budget left and burn rates (the same counts, over the SLO window and
each tier's windows, as :mod:`keelwork.core.slo.evaluate` reads them), the quality SLOs (the
SLO watch's own counts, read every minute in the background), the latest stored monitoring
window (drift per feature, realised quality with label coverage, the CBPE estimate), the
latest rollout with its decisions, cost and guard hits since the server started
(``keelwork_cost_total``, ``keelwork_guard_hits_total``), open alerts and undelivered
notifications. The page itself is rendered by the pure
:func:`keelwork.core.reports.dashboard.render_dashboard`.

A value nobody measured is ``None`` and shows as "no data", never as 0. Every read is bounded:
the rollup, the latest windows, the last events of one rollout per model, the alert states.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from keelwork.adapters.stores.alert_store import AlertStore, alert_states
from keelwork.adapters.stores.cost_ledger import CostLedger, cost_usage
from keelwork.adapters.stores.monitor_store import MonitorStore, monitor_results
from keelwork.adapters.stores.quality_counts import QualityCountReader
from keelwork.adapters.stores.rollout_store import RolloutStore
from keelwork.adapters.stores.traffic_store import has_tables
from keelwork.core.budget import status_sentence
from keelwork.core.slo.evaluate import SloCounts, quality_windows
from keelwork.core.slo.objectives import FLOOR_RATE_S, SloSet, format_duration, slo_set
from keelwork.core.traffic import HOUR, Totals, latency_edges, merged
from keelwork.service.cost_watch import cost_report
from keelwork.service.traffic import TrafficCache, TrafficView
from keelwork.spec.model import KeelSpec

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from sqlalchemy import Engine

    from keelwork.adapters.stores.registry_store import SqlRegistry
    from keelwork.service.server_parts import ServerParts

log = logging.getLogger("keelwork.dashboard")

#: The span of the traffic table and its sparklines.
DAY_S = 86_400
#: Objectives whose counts the rollup holds; others (quality SLOs) are listed as evaluated
#: elsewhere until their counts are readable here.
COUNTED_SLOS = frozenset({"availability", "error_rate", "latency_p99", "throughput"})
#: Rollout events shown per model, newest last (repeats folded), out of the last MAX_READ.
MAX_EVENTS = 8
MAX_READ = 200
#: Seconds between readings of the quality SLOs' counts (the SLO watch's own reading).
QUALITY_EVERY_S = 60.0
#: Drift columns shown per model (drifted first).
MAX_COLUMNS = 40
_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s'\"]+", re.IGNORECASE)


class Dashboard:
    """Gathers :meth:`snapshot` from a server's stores.

    Args:
        spec: The keel.yaml served.
        engine: The store of the prediction log, monitoring results and alert states.
        registry: The model registry (aliases).
        rollouts: The rollout store.
        metrics: The server's metrics registry (cost counters), or None.
        clock: Unix seconds.
    """

    def __init__(self, spec: KeelSpec, engine: Engine, registry: SqlRegistry,
                 rollouts: RolloutStore, metrics: CollectorRegistry | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.spec = spec
        self.engine = engine
        self.registry = registry
        self.rollouts = rollouts
        self.metrics = metrics
        self.clock = clock
        self.slos: SloSet = slo_set(spec)
        thresholds = [o.threshold_s * 1000.0 for o in self.slos.objectives
                      if o.threshold_s is not None]
        horizon = self.slos.window_s if self.slos.objectives else DAY_S
        self.traffic = TrafficCache(engine, latency_edges(thresholds), horizon_s=horizon,
                                    clock=clock)
        #: The quality SLOs' counts (as the SLO watch reads them), refreshed every
        #: QUALITY_EVERY_S off the request path: (when, per SLO key, per window, per model).
        self.quality_reader = QualityCountReader(engine) if self.slos.quality else None
        self.quality: tuple[float, dict[str, Any]] | None = None
        self._quality_lock = threading.Lock()

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the traffic rollup (see :class:`TrafficCache`) and the quality SLOs' counts
        current until ``stop``."""
        await asyncio.gather(self.traffic.run(stop), self._quality_loop(stop))

    def refresh_quality(self) -> None:
        """Count the quality SLOs' events now (the SLO watch's reading: each window ending at
        now less the SLO's label lag).

        Raises:
            StoreError: the store failed.
        """
        reader = self.quality_reader
        if reader is None:
            return
        with self._quality_lock:  # the reader keeps sums between readings: one at a time
            now = self.clock()
            counts = {o.key: reader.counts(o.indicator, self.slos.models_of(o),
                                           now - o.indicator.lag_s,
                                           quality_windows(self.slos, o))
                      for o in self.slos.quality if o.indicator is not None}
            self.quality = (now, counts)

    async def _quality_loop(self, stop: asyncio.Event) -> None:
        while self.quality_reader is not None and not stop.is_set():
            try:
                await asyncio.to_thread(self.refresh_quality)
            except Exception:
                log.exception("dashboard: counting the quality SLOs failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), QUALITY_EVERY_S)

    def snapshot(self) -> dict[str, Any]:
        """Everything the page shows, as plain data (JSON-ready).

        Raises:
            StoreError: the store failed.
        """
        tables = has_tables(self.engine, [monitor_results.name, alert_states.name,
                                          cost_usage.name])
        aliases = {m.name: dict(m.aliases) for m in self.registry.list_models()}
        cost, hits = self._counters()
        if self.quality_reader is not None and self.quality is None:
            self.refresh_quality()  # the first view waits for the first reading
        models: list[dict[str, Any]] = []
        with self.traffic.view() as view:
            now = view.now if view is not None else self.clock()
            for m in self.spec.models:
                models.append(self._model(m.name, view, now, aliases.get(m.name, {}),
                                          cost))
        monitor = self._monitor() if tables[monitor_results.name] else None
        for entry in models:
            entry["quality_slos"] = [self._quality_slo(o, entry["name"])
                                     for o in self.slos.quality
                                     if o.model in (None, entry["name"])]
            entry["guard_hits"] = hits.get(entry["name"], {})
            entry["monitor"] = None if monitor is None else monitor.get(entry["name"])
            entry["monitoring_stored"] = monitor is not None
            entry["rollout"] = self._rollout(entry["name"])
        return {
            "kind": "keelwork.dashboard", "version": 1,
            "service": self.spec.service.name,
            "owners": list(self.spec.service.owners),
            "generated_at": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
            "now": now, "span_s": DAY_S,
            "slo_window": format_duration(self.slos.window_s) if self.slos.objectives else None,
            "models": models,
            "alerts": self._alerts() if tables[alert_states.name] else None,
            "cost_currency": self.spec.cost.currency,
            "guards": _guards(self.spec),
            "quality_as_of": self.quality[0] if self.quality is not None else None,
            "budget": _budget(self.spec),
            "month": self._month(now) if tables[cost_usage.name] else None,
            "traffic_warm_s": self.traffic.warm_s,
        }

    # ------------------------------------------------------------------ traffic and SLOs
    def _model(self, name: str, view: TrafficView | None, now: float,
               aliases: dict[str, int], cost: dict[tuple[str, str], float]) -> dict[str, Any]:
        champion = aliases.get("champion")
        out: dict[str, Any] = {"name": name, "aliases": aliases, "champion": champion,
                               "versions": [], "slos": [], "log": view is not None}
        if view is None:
            out["slos"] = [self._slo(o, None, None, now) for o in self.slos.objectives]
            return out
        keys = sorted({k for k in (*view.main.keys(), *view.tail.keys()) if k[0] == name})
        versions = {v for _, v in keys} | set(aliases.values())
        since = now - DAY_S
        start = float(int(now) // HOUR * HOUR - 23 * HOUR)  # 24 hours, the last one open
        for version in sorted(versions, reverse=True):
            key = (name, version)
            day = _span(view, key, since, now + 1)
            hourly = [merged([a, b]) for a, b in zip(
                view.main.series(key, start, HOUR, 24),
                view.tail.series(key, start, HOUR, 24), strict=True)]
            out["versions"].append(_version_entry(version, aliases, day, hourly, cost, name))
        out["hour_starts"] = [start + i * HOUR for i in range(24)]
        out["slos"] = [self._slo(o, view, name, now) for o in self.slos.objectives]
        return out

    def _slo(self, o: Any, view: TrafficView | None, model: str | None,
             now: float) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "key": o.key, "title": o.title, "statement": o.statement, "target": o.target,
            "window": format_duration(self.slos.window_s), "counted": o.key in COUNTED_SLOS,
            "ratio": o.is_ratio, "events": None, "bad": None, "budget_left": None,
            "tiers": []}
        if view is None or model is None or o.key not in COUNTED_SLOS:
            return entry
        threshold = o.threshold_s * 1000.0 if o.threshold_s is not None else None

        def counts(window_s: int) -> SloCounts:
            return _model_span(view, model, now - window_s, now + 1).slo_counts(threshold)

        if not o.is_ratio:  # the throughput floor: answered per second, last 5 minutes
            c = counts(FLOOR_RATE_S)
            whole = counts(self.slos.window_s)
            entry["events"] = whole.answered
            entry["rate"] = c.answered / FLOOR_RATE_S if whole.answered else None
            return entry
        whole = counts(self.slos.window_s)
        entry["events"], entry["bad"] = whole.events(o), whole.bad(o)
        ratio = whole.ratio(o)
        entry["budget"] = o.budget
        entry["budget_left"] = None if ratio is None else 1.0 - ratio / o.budget
        for t in self.slos.tiers_for(o):
            long_r, short_r = counts(t.long_s).ratio(o), counts(t.short_s).ratio(o)
            entry["tiers"].append({
                "name": t.name, "severity": t.severity, "long": format_duration(t.long_s),
                "short": format_duration(t.short_s), "threshold": t.burn_rate,
                "burn_long": None if long_r is None else long_r / o.budget,
                "burn_short": None if short_r is None else short_r / o.budget})
        return entry

    def _quality_slo(self, o: Any, model: str) -> dict[str, Any]:
        at, counts = self.quality if self.quality is not None else (None, {})
        per = counts.get(o.key, {})

        def ratio(window_s: int) -> float | None:
            c = per.get(window_s, {}).get(model)
            return None if c is None else c.ratio

        entry: dict[str, Any] = {
            "key": o.key, "title": o.title, "statement": o.statement, "target": o.target,
            "window": format_duration(self.slos.window_s), "counted": True,
            "ratio": o.is_ratio, "events": None, "bad": None, "budget_left": None,
            "tiers": [], "as_of": at, "budget": o.budget}
        whole = per.get(self.slos.window_s, {}).get(model)
        if whole is not None and whole.ratio is not None and o.budget:
            entry["events"], entry["bad"] = whole.events, whole.bad
            entry["budget_left"] = 1.0 - whole.ratio / o.budget
        for t in self.slos.tiers_for(o) if o.budget else ():
            long_r, short_r = ratio(t.long_s), ratio(t.short_s)
            entry["tiers"].append({
                "name": t.name, "severity": t.severity, "long": format_duration(t.long_s),
                "short": format_duration(t.short_s), "threshold": t.burn_rate,
                "burn_long": None if long_r is None else long_r / o.budget,
                "burn_short": None if short_r is None else short_r / o.budget})
        return entry

    # ------------------------------------------------------------------ other stores
    def _monitor(self) -> dict[str, dict[str, Any]]:
        out = {}
        for w in MonitorStore(self.engine).latest_windows():
            body = w.body
            drift = body.get("drift") or {}
            columns = [c for c in drift.get("columns") or [] if isinstance(c, dict)]
            columns.sort(key=lambda c: (not c.get("drift"), -_ratio(c)))
            quality = body.get("quality") or {}
            out[w.model] = {
                "window": w.window, "start": w.start, "end": w.end, "version": w.version,
                "predictions": w.predictions,
                "share_drifted": (drift.get("summary") or {}).get("share_drifted"),
                "columns": [{k: c.get(k) for k in ("column", "kind", "method", "score",
                                                   "threshold", "drift", "status")}
                            for c in columns[:MAX_COLUMNS]],
                "columns_more": max(0, len(columns) - MAX_COLUMNS),
                "realised": quality.get("realised"), "estimated": quality.get("estimated"),
                "attributions": body.get("attributions")}
        return out

    def _rollout(self, model: str) -> dict[str, Any] | None:
        r = self.rollouts.latest(model)
        if r is None:
            return None
        return {"id": r.id, "phase": r.phase, "active": r.active, "strategy": r.strategy,
                "champion": r.champion, "challenger": r.challenger, "step": r.step,
                "steps": list(r.steps), "reason": r.reason, "updated_at": r.updated_at,
                "events": _collapsed(self.rollouts.events(r.id, last=MAX_READ))[-MAX_EVENTS:]}

    def _alerts(self) -> dict[str, Any]:
        store = AlertStore(self.engine)
        rows = store.alerts()
        acks = store.acks() if has_tables(self.engine, ["alert_acks"])["alert_acks"] else {}
        open_: dict[str, dict[str, Any]] = {}
        failures = []
        for r in rows:
            if r.state == "firing" and r.fingerprint not in open_:
                open_[r.fingerprint] = {
                    "name": r.labels.get("alertname", r.fingerprint),
                    "model": r.labels.get("model"), "severity": r.labels.get("severity"),
                    "since": r.since, "summary": r.annotations.get("summary")
                    or r.annotations.get("description"), "receivers": [],
                    "acknowledged_by": _acked(acks.get(r.fingerprint), r.since)}
            if r.state == "firing":
                open_[r.fingerprint]["receivers"].append(r.receiver)
            if r.pending and r.attempts > 0:
                failures.append({"name": r.labels.get("alertname", r.fingerprint),
                                 "receiver": r.receiver, "state": r.state,
                                 "attempts": r.attempts, "retry_at": r.retry_at,
                                 "error": _redact(r.last_error)})
        return {"open": list(open_.values()), "failures": failures}

    def _month(self, now: float) -> dict[str, Any] | None:
        """The calendar month's cost per version and the budget's status, from the durable
        usage ledger the server's cost watch keeps (None: no prices in keel.yaml)."""
        if not self.spec.cost.priced:
            return None
        report = cost_report(self.spec, CostLedger(self.engine), now)
        b = report.budget
        return {"spent": b.spent, "forecast": b.forecast, "share": b.share,
                "exhausted_at": b.exhausted_at, "month_start": b.month_start,
                "by_version": {f"{m}:{v}": c for (m, v), c in report.by_version().items()},
                "sentence": status_sentence(self.spec.cost, b)
                if self.spec.cost.monthly_budget is not None else None}

    def _counters(self) -> tuple[dict[tuple[str, str], float],
                                 dict[str, dict[str, float]]]:
        """From the server's registry, since it started: ``keelwork_cost_total`` per (model,
        version), and ``keelwork_guard_hits_total`` per model, per guard."""
        cost: dict[tuple[str, str], float] = {}
        hits: dict[str, dict[str, float]] = {}
        if self.metrics is None:
            return cost, hits
        for family in self.metrics.collect():
            for s in family.samples:
                if s.name == "keelwork_cost_total" and self.spec.cost.priced:
                    cost[(s.labels["model"], s.labels["version"])] = s.value
                elif s.name == "keelwork_guard_hits_total":
                    per = hits.setdefault(s.labels["model"], {})
                    guard = s.labels["guard"]
                    per[guard] = per.get(guard, 0.0) + s.value
        return cost, hits


def _acked(ack: tuple[float, str] | None, since: float) -> str | None:
    """Who acknowledged this firing of an alert (``keel alerts ack``), if anyone."""
    return ack[1] if ack is not None and ack[0] >= since else None


def _span(view: TrafficView, key: tuple[str, int], since: float, until: float) -> Totals:
    return merged([view.main.totals(key, since, until), view.tail.totals(key, since, until)])


def _model_span(view: TrafficView, model: str, since: float, until: float) -> Totals:
    keys = {k for k in (*view.main.keys(), *view.tail.keys()) if k[0] == model}
    parts = [_span(view, k, since, until) for k in sorted(keys)]
    return merged(parts) if parts else Totals(view.main.edges)


def _version_entry(version: int, aliases: dict[str, int], day: Totals, hourly: list[Totals],
                   cost: dict[tuple[str, str], float], model: str) -> dict[str, Any]:
    roles = sorted(a for a, v in aliases.items() if v == version)
    has = day.requests > 0
    return {
        "version": version, "aliases": roles, "requests": day.requests if has else None,
        "answered": day.answered if has else None,
        "errors": day.count("errors") if has else None,
        "overloaded": day.count("overloaded") if has else None,
        "invalid": day.count("invalid") if has else None,
        "error_share": day.error_share(),
        "p50": day.quantile(0.5), "p95": day.quantile(0.95), "p99": day.quantile(0.99),
        "hourly_requests": [h.requests for h in hourly],
        "hourly_errors": [h.count("errors") for h in hourly],
        "hourly_p99": [h.quantile(0.99) for h in hourly],
        "cost": cost.get((model, str(version))),
    }


def _collapsed(events: list[Any]) -> list[dict[str, Any]]:
    """Rollout events, consecutive repeats of one decision (a gate holding every interval)
    folded into one with a count and its first and last time."""
    out: list[dict[str, Any]] = []
    for e in events:
        entry = {"at": e.at, "first_at": e.at, "action": e.action, "to_phase": e.to_phase,
                 "weight": e.weight, "actor": e.actor, "reason": e.reason,
                 "outcome": (e.decision or {}).get("outcome"), "times": 1}
        last = out[-1] if out else None
        if last is not None and all(last[k] == entry[k] for k in (
                "action", "to_phase", "weight", "actor", "reason", "outcome")):
            last["times"] += 1
            last["at"] = e.at
        else:
            out.append(entry)
    return out


def _ratio(c: dict[str, Any]) -> float:
    s, t = c.get("score"), c.get("threshold")
    if isinstance(s, int | float) and isinstance(t, int | float) and t:
        return float(s) / float(t)
    return 0.0


def _redact(text: str | None) -> str | None:
    """A delivery error without URLs (a webhook URL may carry its secret) and bounded."""
    if text is None:
        return None
    return _URL.sub("<url>", text)[:300]


def _guards(spec: KeelSpec) -> dict[str, Any]:
    """The guards keel.yaml puts in force that count hits (None: not configured)."""
    g = spec.guards
    ood = g.out_of_distribution
    limit = g.rate_limit
    return {"out_of_distribution": None if not ood else {
                "action": "flag" if ood is True else ood.action},
            "rate_limit": None if limit is None else {
                "requests_per_second": limit.requests_per_second, "burst": limit.burst,
                "per": limit.per}}


def _budget(spec: KeelSpec) -> dict[str, Any] | None:
    """keel.yaml's monthly budget (``cost.monthly_budget``, ``cost.alert_at``); None: none."""
    amount = spec.cost.monthly_budget
    if amount is None:
        return None
    return {"monthly": float(amount), "alert_at": list(spec.cost.alert_at)}


def open_dashboard(parts: ServerParts) -> Dashboard:
    """The dashboard of a server (its stores and metrics)."""
    service = parts.service
    return Dashboard(parts.resolved.spec, parts.engine, service.registry,
                     service.rollouts.store, service.gateway.metrics.registry)


__all__ = ["COUNTED_SLOS", "DAY_S", "Dashboard", "open_dashboard"]

"""The parts of a whole server beside its gateway: label, key, audit and flag stores, the flags in
force, the monitoring loop, and the configuration record.

:func:`open_server` is what ``keel serve`` and ``keel demo`` assemble (through
:func:`keelwork.interfaces.http.server.build_server_app`, which only adds the routes). It opens
the stores on the spec's storage URL (one engine shared by the label, key, audit and flag
stores; the gateway keeps its own for the prediction log):

- the keel.yaml it starts with is recorded in the audit log (``config.load``) whenever it
  differs from the one recorded last, so every configuration change is traceable;
- model flags: keel.yaml's plus the store's, polled every 0.25 s so that a change made by
  another server or by ``keel flags put`` applies without a restart;
- monitoring: every ``monitor_interval_s`` the latest windows of each model with a stored
  reference (``keel monitor reference``) are computed and stored, and ``/metrics`` exports
  their drift scores, quality and label coverage;
- SLOs: with ``slos`` and contacts to alert, every ``slos.evaluation_interval`` the server
  evaluates them over its prediction log and notifies (:mod:`keelwork.service.slo_watch`);
- rate limits: ``guards.rate_limit`` per key, tenant or IP, one limit for the servers of a
  store (:mod:`keelwork.service.rate_limits`, demand exchanged every half second);
- retention: with ``retention`` periods, every ``retention.interval`` the server deletes what
  is kept no longer (:mod:`keelwork.service.retention`);
- cost: with prices, every ``cost.evaluation_interval`` the server stores its models' usage
  and, with ``cost.monthly_budget``, watches the budget (:mod:`keelwork.service.cost_watch`);
- once per fleet: of the worker processes of ``keel serve --workers N`` (``fleet``), only the
  holder of the lease ``background:<service>`` runs the monitoring loop, the
  SLO watch, the review fill, retention, the budget alerts and the rollout decisions
  (:mod:`keelwork.service.leases`); flags, rate-limit demand, usage and routing stay per process;
- a fleet across machines (``shared_metrics``): each process publishes its metric values to the
  store and ``/metrics`` answers the fleet's sums (:mod:`keelwork.service.fleet_metrics`).

The HTTP layer annotates the stores it is handed with the Protocols of :mod:`keelwork.types`
(the key store's, :class:`~keelwork.types.ApiKeyStoreProtocol`, has the ``cached`` the key check
uses to stay off the store on the request path), so that interfaces never import an adapter.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from keelwork.adapters.stores.api_keys import ApiKeyStore
from keelwork.adapters.stores.audit_anchor import project_anchors
from keelwork.adapters.stores.audit_store import AuditLog
from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.flag_store import FlagStore
from keelwork.adapters.stores.fleet_metrics_store import FleetMetricsStore
from keelwork.adapters.stores.label_store import LabelStore
from keelwork.adapters.stores.lease_store import LeaseStore
from keelwork.adapters.stores.provenance import default_actor
from keelwork.adapters.stores.rate_limit_store import RateLimitStore
from keelwork.errors import ErrorDetail
from keelwork.service.assembly import Service, open_service
from keelwork.service.cost_watch import CostWatch, cost_loop, open_cost_watch
from keelwork.service.flags.source import FlagSource, check_refs, unresolved_refs
from keelwork.service.fleet_metrics import FleetMetrics
from keelwork.service.gateway.gateway import Loader
from keelwork.service.injection import open_screen
from keelwork.service.leases import Lease, LoopFactory
from keelwork.service.monitoring.metrics import MonitorCollector, monitor_loop
from keelwork.service.monitoring.reference import ensure_references
from keelwork.service.ood import ensure_detectors
from keelwork.service.rate_limits import RateLimiter, open_limiter, rate_limit_loop
from keelwork.service.retention import (
    RetentionReport,
    interval_of,
    retention_loop,
    server_retention,
)
from keelwork.service.review import review_loop
from keelwork.service.slo_watch import SloWatch, interval_s, open_watch, slo_loop
from keelwork.service.subjects import SubjectRequests
from keelwork.spec.flags import FlagSpec
from keelwork.spec.model import ResolvedSpec
from keelwork.spec.settings import Settings

#: Seconds a closing server waits for its loops to finish the round in hand.
CLOSE_GRACE_S = 30.0


@dataclass
class ServerParts:
    """A :class:`~keelwork.service.assembly.Service` with the stores its routes need.

    ``start()`` and ``close()`` are the app's start-up and shutdown hooks.
    """

    resolved: ResolvedSpec
    service: Service
    #: The engine of the label, key, audit and flag stores (and the monitoring results).
    engine: Engine
    audit: AuditLog
    labels: LabelStore
    keys: ApiKeyStore
    flag_store: FlagStore
    flags: FlagSource
    monitor_interval_s: float = 300.0
    #: The server's own SLO evaluation (None: no SLOs, or nobody to tell).
    slo_watch: SloWatch | None = None
    #: One application of keel.yaml's retention (None: it keeps everything).
    retention: Callable[[], RetentionReport] | None = None
    #: A data subject's access and erasure requests (the admin routes).
    subjects: SubjectRequests | None = None
    #: ``guards.rate_limit`` (None: no limit).
    rate_limiter: RateLimiter | None = None
    #: The usage ledger and budget watch (None: no prices).
    cost_watch: CostWatch | None = None
    #: The lease of the work done once per fleet (None: every loop runs here, unguarded).
    lease: Lease | None = None
    #: ``/metrics`` summed through the store over a fleet across machines (None: this
    #: process's own values, or those of the processes sharing its metrics folder).
    fleet_metrics: FleetMetrics | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _stop_monitor: asyncio.Event = field(default_factory=asyncio.Event)
    _lease_task: asyncio.Task[None] | None = None

    def unresolved_flag_refs(self, flag: FlagSpec) -> list[ErrorDetail]:
        """The references of ``flag`` that name no version or alias of its model."""
        return unresolved_refs(flag, self.service.registry)

    async def start(self, *, follower: bool = False) -> None:
        """Start the service (prediction log, rollout controller), the flag poll, the
        monitoring loop and the SLO evaluation (those of them run once per fleet: under the
        lease, which a lone server takes here at once).

        Args:
            follower: A process that serves predictions beside keelwork's app and never does
                the fleet's once-only work (the worker of ``--engine granian`` or ``mosec``,
                whose app beside it runs that work under the lease): it follows the store
                (the flags' poll, rollout routes and aliases, the budget's usage) and takes
                no lease, so the lease always goes to a process that runs every loop.
        """
        lease = None if follower else self.lease
        controller = self.service.rollout_controller
        if follower:
            controller.may_decide = lambda: False  # it routes; the app's lease holder decides
        elif lease is not None:
            await asyncio.to_thread(lease.try_take)
            controller.may_decide = lambda: lease.held
            controller.fleet = True  # decides on every worker's answers
        await self.service.start()
        self._tasks.append(asyncio.create_task(self.flags.run(self._stop_monitor),
                                               name="keel-flag-poll"))
        if follower:
            if self.cost_watch is not None:  # its usage is recorded; the budget is the app's
                self._tasks.append(asyncio.create_task(
                    cost_loop(self.cost_watch, stop=self._stop_monitor, leader=lambda: False),
                    name="keel-cost-watch"))
            return
        if self.monitor_interval_s > 0:
            self._singleton("keel-monitor", lambda stop: monitor_loop(
                self.resolved, interval_s=self.monitor_interval_s, stop=stop,
                engine=self.engine))
        if (watch := self.slo_watch) is not None:
            self._singleton("keel-slo-watch", lambda stop: slo_loop(
                watch, interval=interval_s(self.resolved.spec), stop=stop))
        if self.cost_watch is not None:
            self._tasks.append(asyncio.create_task(
                cost_loop(self.cost_watch, stop=self._stop_monitor,
                          leader=None if lease is None else lambda: lease.held),
                name="keel-cost-watch"))
        if self.rate_limiter is not None:
            self._tasks.append(asyncio.create_task(
                rate_limit_loop(self.rate_limiter, stop=self._stop_monitor),
                name="keel-rate-limit"))
        if self.resolved.spec.review is not None:
            self._singleton("keel-review", lambda stop: review_loop(
                self.resolved, self.engine, stop=stop))
        if (shared := self.fleet_metrics) is not None:
            self._tasks.append(asyncio.create_task(shared.run(self._stop_monitor),
                                                   name="keel-fleet-metrics"))
            self._singleton("keel-fleet-metrics-fold", shared.fold_loop)
        if (retention := self.retention) is not None:
            self._singleton("keel-retention", lambda stop: retention_loop(
                retention, interval=interval_of(self.resolved.spec.retention), stop=stop))
        if lease is not None:
            self._lease_task = asyncio.create_task(lease.run(self._stop_monitor),
                                                   name="keel-lease")

    def _singleton(self, name: str, loop: LoopFactory) -> None:
        """Run ``loop`` under the lease (or here, unguarded, without one)."""
        if self.lease is not None:
            self.lease.guard(name, loop)
        else:
            self._tasks.append(asyncio.create_task(loop(self._stop_monitor), name=name))

    async def close(self) -> None:
        """Stop the loops, close the service and release the stores' engine."""
        self._stop_monitor.set()
        if self._lease_task is not None:  # its loops stop, then the lease is released
            try:
                async with asyncio.timeout(10):
                    await self._lease_task
            except TimeoutError:
                self._lease_task.cancel()
        # Each loop ends after the round in hand (its work runs in a thread, which a cancel
        # would leave running against the engine disposed below); a loop still busy after
        # the grace period is cancelled.
        if self._tasks:
            _, busy = await asyncio.wait(self._tasks, timeout=CLOSE_GRACE_S)
            for task in busy:
                task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.cost_watch is not None:  # the usage since the last round
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.cost_watch.flush)
        await self.service.close()
        self.engine.dispose()


def open_server(resolved: ResolvedSpec, settings: Settings, *,
                monitor_interval_s: float = 300.0, fleet: bool = False,
                shared_metrics: bool = False,
                load: Loader | None = None) -> ServerParts:
    """Open the service of ``resolved`` and every store its routes need (models load at
    start-up).

    Args:
        resolved: The keel.yaml to serve.
        settings: The process settings, read once where the server starts: who the server
            acts as (``user``) and the extra audit anchor (``audit_anchor``).
        monitor_interval_s: Seconds between monitoring runs over the latest windows (drift,
            quality, coverage for ``/metrics``) for models with a stored reference; 0: never.
        fleet: This process is one of several workers (``keel serve --workers N``): the loops
            done once per fleet run under the store's lease. False: a lone process runs them
            all itself, unguarded.
        shared_metrics: The fleet's processes share no metrics folder (replicas on several
            machines): each publishes its values to the store and ``/metrics`` answers the
            fleet's sums (:mod:`keelwork.service.fleet_metrics`).
        load: How the gateway loads a version (default: in this process; ``keel serve --engine
            ray --version-deployments``: through its own deployment).

    Raises:
        StoreError: the store is unreachable.
        ModelNotFoundError: a model is neither registered nor given an artifact.
        SpecError: a keel.yaml flag serves a version or alias that does not exist.
    """
    spec = resolved.spec
    service = open_service(resolved, user=settings.user, audit_anchor=settings.audit_anchor,
                           load=load)
    # A champion registered here from `artifact:` (or elsewhere without one) gets its
    # monitoring reference, as `keel models register` gives a new version (issue 11 item 12).
    ensure_references(resolved)
    engine = make_engine(resolved.storage_url)
    try:
        audit = AuditLog(engine, project_anchors(resolved.project_dir, settings.audit_anchor))
        audit.ensure_schema()
        labels = LabelStore(engine)
        labels.ensure_schema()
        keys = ApiKeyStore(engine, audit)
        keys.ensure_schema()
        flag_store = FlagStore(engine, audit)
        flag_store.ensure_schema()
        # keel.yaml's flags must serve versions and aliases that exist (never a silent
        # fallback on every request).
        check_refs(spec.flags, service.registry, f"{resolved.path}")
        flags = FlagSource(spec.flags, flag_store)
        flags.reload()
        record_config(audit, resolved, actor=default_actor(settings.user))
        watch = open_watch(spec, engine, registry=service.gateway.metrics.registry)
        costs = open_cost_watch(spec, engine, service.gateway.metrics,
                                delivery=watch.delivery if watch is not None else None)
        retention = server_retention(engine, spec.retention, audit,
                                     actor=default_actor(settings.user))
        limiter = open_limiter(spec.guards.rate_limit, RateLimitStore(engine))
        service.gateway.use_ood(ensure_detectors(resolved, engine))
        service.gateway.use_injection(open_screen(spec))
        leases = LeaseStore(engine) if fleet else None
        if leases is not None:
            leases.ensure_schema()
        shared = None
        if shared_metrics:
            exchange = FleetMetricsStore(engine)
            exchange.ensure_schema()
            shared = FleetMetrics(exchange, service.gateway.metrics)
            shared.attach()
    except BaseException:
        engine.dispose()
        service.registry.close()
        raise
    gateway = service.gateway
    gateway.flags = flags
    gateway.components["flags"] = flags.outage.as_dict
    gateway.metrics.registry.register(flags)
    # Drift, quality and label coverage of the latest stored windows, read at scrape time.
    gateway.metrics.registry.register(MonitorCollector(engine))
    subjects = SubjectRequests(resolved.project_dir, engine, audit, service.registry,
                               resolved.storage_url)
    return ServerParts(resolved, service, engine, audit, labels, keys, flag_store, flags,
                       monitor_interval_s, watch, retention, subjects, limiter,
                       cost_watch=costs,
                       lease=None if leases is None else Lease(
                           leases, f"background:{spec.service.name}"),
                       fleet_metrics=shared)


def record_config(audit: AuditLog, resolved: ResolvedSpec, *, actor: str) -> bool:
    """Audit the keel.yaml a server starts with, when it differs from the last one recorded.

    Args:
        audit: The server's audit log.
        resolved: The keel.yaml.
        actor: Who starts the server (the ``user`` setting, else the OS user).

    Returns:
        Whether an entry was appended (``config.load``, with the file's SHA-256).
    """
    digest = hashlib.sha256(resolved.path.read_bytes()).hexdigest()
    target = resolved.spec.service.name
    last = audit.query(action="config.load", target=target, limit=1)
    if last and last[-1].details.get("sha256") == digest:
        return False
    audit.append(actor=actor, action="config.load", target=target,
                 details={"sha256": digest, "path": str(resolved.path),
                          "previous": last[-1].details.get("sha256") if last else None})
    return True


def freeze_heap() -> None:
    """Once a server process has loaded its models: collect, then move every object alive to
    the garbage collector's permanent generation (``gc.freeze``).

    A served model drags in a few hundred thousand long-lived objects (numpy, scikit-learn,
    SQLAlchemy, often torch) that every full collection would otherwise walk again: a pause of
    tens of milliseconds in the request path (measured on ``keel serve --engine granian`` at
    c=64: p99 104 ms without, 14.6 ms with; benchmarks/RESULTS.md, issue 19).
    """
    gc.collect()
    gc.freeze()


__all__ = ["ServerParts", "freeze_heap", "open_server", "record_config"]

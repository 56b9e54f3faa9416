"""Assembling a gateway from a keel.yaml: registry, runtimes, prediction log, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from keelwork.adapters.metrics import GatewayMetrics
from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.prediction_log import PredictionLog
from keelwork.adapters.stores.registry_store import SqlRegistry, open_registry
from keelwork.adapters.stores.rollout_store import RolloutStore
from keelwork.core.redaction import Redactor
from keelwork.errors import ModelNotFoundError
from keelwork.service.gateway.gateway import Gateway, Loader
from keelwork.service.model_tests import gate_on_tests
from keelwork.service.models import load_target, load_verifier, spec_options, target_resolver
from keelwork.service.redaction import build_redactor, pii_stats
from keelwork.service.registration import register_model
from keelwork.service.rollout.controller import RolloutController
from keelwork.service.rollout.operations import RolloutOps
from keelwork.spec.model import ResolvedSpec

log = logging.getLogger("keelwork.serve")


@dataclass
class Service:
    """A gateway with the stores it owns; ``close()`` releases all of them."""

    resolved: ResolvedSpec
    gateway: Gateway
    registry: SqlRegistry
    prediction_log: PredictionLog
    #: Rollout operations (store + registry) and the controller that applies them to traffic.
    rollouts: RolloutOps
    rollout_controller: RolloutController
    #: The online feature store (keel.yaml's ``features``); None: none declared.
    feature_store: Any = None
    #: What keel.yaml's PII settings remove before anything is stored (None: nothing).
    redactor: Redactor | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stop: asyncio.Event | None = None

    async def start(self) -> None:
        self.prediction_log.start()
        self._stop = asyncio.Event()
        self._tasks.append(asyncio.create_task(self.rollout_controller.run(self._stop),
                                               name="keel-rollout-controller"))

    async def close(self) -> None:
        if self._stop is not None:
            self._stop.set()
        for task in self._tasks:
            try:  # a tick in progress finishes (its store reads too) before the stores close
                async with asyncio.timeout(10):
                    await task
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks.clear()
        await self.prediction_log.aclose()
        # The log's engine is the service's (open_service made it): its pool goes with it.
        self.prediction_log.engine.dispose()
        self.registry.close()
        if self.feature_store is not None:
            self.feature_store.close()


def ensure_registered(resolved: ResolvedSpec, registry: SqlRegistry) -> None:
    """Register each spec model that names an artifact but has no version yet."""
    for m in resolved.spec.models:
        try:
            registry.resolve(m.name)
            continue
        except ModelNotFoundError:
            pass
        if m.artifact is None:
            raise ModelNotFoundError(
                f"Model '{m.name}' is not registered and keel.yaml names no artifact for it. "
                f"Register it with 'keel models register {m.name} PATH --runtime {m.runtime}' "
                "or add 'artifact:' to the model in keel.yaml.")
        artifact: Any = m.artifact if m.runtime == "python" else resolved.resolve_path(
            m.artifact)
        mv = register_model(registry, m.name, artifact, m.runtime,
                            options=spec_options(resolved, m.name), aliases=m.aliases,
                            source_dir=resolved.project_dir,
                            allow_unsafe_pickle=m.allow_unsafe_pickle)
        log.info("registered %s version %d from %s", m.name, mv.version, m.artifact)


def open_service(resolved: ResolvedSpec, metrics: GatewayMetrics | None = None, *,
                 rollout_poll_s: float = 0.25, user: str | None = None,
                 audit_anchor: Path | None = None, load: Loader | None = None) -> Service:
    """Open the stores of ``resolved`` and build its gateway (models load at app start-up).

    ``user`` (who registers keel.yaml's artifacts and acts in rollouts when no one is named)
    and ``audit_anchor`` (a second anchor of the audit log) are the process settings of those
    names; by default the OS user and the project's anchor only. ``load``: how the gateway
    loads a version (default: :func:`~keelwork.service.models.load_target`, in this process).

    Raises:
        StoreError: the store is unreachable.
        ModelNotFoundError: a model is neither registered nor given an artifact.
        ModelLoadError: a spec artifact fails to load while being registered.
    """
    spec = resolved.spec
    registry = open_registry(resolved.project_dir, resolved.storage_url, user=user,
                             audit_anchor=audit_anchor)
    try:
        ensure_registered(resolved, registry)
    except BaseException:
        registry.close()
        raise
    resolve = target_resolver(resolved, registry)
    load = load if load is not None else load_target

    metrics = metrics or GatewayMetrics()
    m = metrics

    def on_batch(destination: str, rows: int, seconds: float) -> None:
        m.child(m.log_records, destination).inc(rows)
        if destination in ("store", "replay"):
            m.log_commit.observe(seconds)

    from keelwork.service.payload_keys import payload_keys

    log_engine = make_engine(resolved.storage_url)
    keys = payload_keys(resolved.project_dir, log_engine,  # crypto-shredding by subject
                        resolved.spec.storage.subject_keys_url)
    plog = PredictionLog(log_engine, resolved.spool_dir, durability=spec.storage.durability,
                         on_batch=on_batch, seal=None if keys is None else keys.seal_rows)
    metrics.watch_log(lambda: {k: float(v) for k, v in plog.stats().items()
                               if isinstance(v, int | float)})
    features, feature_store = _online_features(resolved)
    redactor = build_redactor(spec, resolved.project_dir)
    if redactor is not None:
        metrics.watch_pii(partial(pii_stats, redactor))
    gateway = Gateway(spec, resolve, load, plog, metrics, features, redactor)
    gateway.components["prediction_log"] = lambda: _log_health(plog)
    metrics.watch_health(gateway.health)
    gateway.project_dir = resolved.project_dir
    store = RolloutStore(registry.engine, registry.audit)
    store.ensure_schema()
    ops = RolloutOps(store, registry, verify=load_verifier(resolved, registry),
                     tests_gate=gate_on_tests(resolved, registry.engine))
    controller = RolloutController(gateway, ops, poll_s=rollout_poll_s)
    gateway.components["rollout_controller"] = controller.outage.as_dict
    return Service(resolved, gateway, registry, plog, ops, controller, feature_store, redactor)


def _log_health(plog: PredictionLog) -> dict[str, Any]:
    """The prediction log's state, from its stats: degraded while records go to the spool."""
    stats = plog.stats()
    return {"degraded": not stats["store_available"], "spool_records": stats["spool_records"],
            "last_error": stats["last_error"] if not stats["store_available"] else None}


def _online_features(resolved: ResolvedSpec) -> tuple[Any, Any]:
    """OnlineFeatures + its store when keel.yaml declares entities or transforms, else Nones."""
    section = resolved.spec.features
    if not section.entities and not section.transforms:
        return None, None
    from keelwork.adapters.data.feature_modules import compile_features
    from keelwork.adapters.stores.features import open_feature_store
    from keelwork.core.features.online import OnlineFeatures

    pipeline = compile_features(resolved)
    store = open_feature_store(resolved.storage_url)
    return OnlineFeatures(section, store, pipeline=pipeline), store

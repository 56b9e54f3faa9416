"""The whole server for a keel.yaml: gateway, feedback, admin routes, keys, audit, flags.

:func:`build_server_app` is what ``keel serve`` and ``keel demo`` run. It opens the stores the
routes need on the spec's storage URL (one engine shared by the label, key, audit and flag
stores; the gateway keeps its own for the prediction log) and ties their lifecycles to the app:

- ``POST /v1/feedback``: the ``feedback`` scope per ``guards.feedback_auth`` (by default once
  the store holds any active key, or when ``guards.require_api_key`` is set); labels are
  attributed to the key, relabels audited, and restricted to the original labeller with
  ``guards.relabel: same_labeller``;
- ``/v1/admin/...`` (flags, rollouts, rollback, keys): always an API key with the ``admin`` scope
  (``keel keys create --scope admin``); changes are written to the audit log;
- the keel.yaml it starts with is recorded in the audit log (``config.load``) whenever it
  differs from the one recorded last, so every configuration change is traceable;
- monitoring: every ``monitor_interval_s`` the latest windows of each model with a stored
  reference (``keel monitor reference``) are computed and stored, and ``/metrics`` exports
  their drift scores, quality and label coverage;
- model flags: keel.yaml's plus the store's, polled every second so that a change made by
  another server or by ``keel flags put`` applies without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import Depends, FastAPI

from keelwork.adapters.stores.api_keys import ApiKeyStore
from keelwork.adapters.stores.audit_store import AuditLog, project_audit_log
from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.flag_store import FlagStore
from keelwork.adapters.stores.label_store import LabelStore
from keelwork.interfaces.http.app import create_app
from keelwork.interfaces.http.auth import feedback_auth, require_scope
from keelwork.interfaces.http.feedback import feedback_router
from keelwork.interfaces.http.flag_routes import flag_router
from keelwork.interfaces.http.key_routes import key_router
from keelwork.interfaces.http.rollout_routes import rollout_router
from keelwork.service.assembly import open_service
from keelwork.service.flags.source import FlagSource, check_refs, unresolved_refs
from keelwork.service.monitoring.metrics import MonitorCollector, monitor_loop
from keelwork.service.monitoring.reference import ensure_references
from keelwork.spec.model import ResolvedSpec


def build_server_app(resolved: ResolvedSpec, *, freeze_gc: bool = True,
                     monitor_interval_s: float = 300.0) -> FastAPI:
    """Open every store of ``resolved`` and build the app (models load at start-up).

    Args:
        resolved: The keel.yaml to serve.
        freeze_gc: See :func:`~keelwork.interfaces.http.app.create_app`.
        monitor_interval_s: Seconds between monitoring runs over the latest windows (drift,
            quality, coverage for ``/metrics``) for models with a stored reference; 0: never.

    Raises:
        StoreError: the store is unreachable.
        ModelNotFoundError: a model is neither registered nor given an artifact.
    """
    spec = resolved.spec
    service = open_service(resolved)
    # A champion registered here from `artifact:` (or elsewhere without one) gets its
    # monitoring reference, as `keel models register` gives a new version (issue 11 item 12).
    ensure_references(resolved)
    engine = make_engine(resolved.storage_url)
    try:
        audit = project_audit_log(engine, resolved.project_dir)
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
        record_config(audit, resolved)
    except BaseException:
        engine.dispose()
        service.registry.close()
        raise
    service.gateway.flags = flags
    service.gateway.components["flags"] = flags.outage.as_dict
    service.gateway.metrics.registry.register(flags)
    # Drift, quality and label coverage of the latest stored windows, read at scrape time.
    service.gateway.metrics.registry.register(MonitorCollector(engine))

    admin = [Depends(require_scope("admin", keys))]
    feedback = [Depends(feedback_auth(keys, spec.guards.feedback_auth,
                                      require_api_key=spec.guards.require_api_key))]
    routers = [
        feedback_router(labels, max_body_bytes=spec.guards.max_body_bytes,
                        dependencies=feedback, relabel=spec.guards.relabel,
                        audit=audit, outputs=spec.contract.outputs,
                        max_unknown=spec.monitoring.labels.max_unknown_per_request,
                        unknown_ttl_s=spec.monitoring.labels.unknown_ttl_seconds),
        flag_router(flags, flag_store, [m.name for m in spec.models], dependencies=admin,
                    check_refs=lambda flag: unresolved_refs(flag, service.registry)),
        rollout_router(service, dependencies=admin),
        key_router(keys, dependencies=admin),
    ]
    tasks: list[asyncio.Task[Any]] = []
    stop_monitor = asyncio.Event()

    async def startup() -> None:
        await service.start()
        tasks.append(asyncio.create_task(flags.run(), name="keel-flag-poll"))
        if monitor_interval_s > 0:
            tasks.append(asyncio.create_task(
                monitor_loop(resolved, interval_s=monitor_interval_s, stop=stop_monitor,
                             engine=engine),
                name="keel-monitor"))

    async def shutdown() -> None:
        stop_monitor.set()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await service.close()
        engine.dispose()

    return create_app(service.gateway, on_startup=startup, on_shutdown=shutdown,
                      freeze_gc=freeze_gc, routers=routers, api_keys=keys)


def record_config(audit: AuditLog, resolved: ResolvedSpec) -> bool:
    """Audit the keel.yaml a server starts with, when it differs from the last one recorded.

    Returns:
        Whether an entry was appended (``config.load``, with the file's SHA-256).
    """
    import hashlib

    from keelwork.adapters.stores.provenance import default_actor

    digest = hashlib.sha256(resolved.path.read_bytes()).hexdigest()
    target = resolved.spec.service.name
    last = audit.query(action="config.load", target=target, limit=1)
    if last and last[-1].details.get("sha256") == digest:
        return False
    audit.append(actor=default_actor(), action="config.load", target=target,
                 details={"sha256": digest, "path": str(resolved.path),
                          "previous": last[-1].details.get("sha256") if last else None})
    return True

"""The whole server for a keel.yaml: gateway, feedback, admin routes, keys, audit, flags.

:func:`build_server_app` is what ``keel serve`` and ``keel demo`` run. The service layer
assembles the gateway and the stores the routes need
(:func:`keelwork.service.server_parts.open_server`); this module adds the routes and ties the
parts' lifecycle to the app's:

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
  another server or by ``keel flags put`` applies without a restart;
- ``/dashboard``: the read-only page (:mod:`keelwork.interfaces.http.dashboard_routes`), its
  traffic rollup warmed at start and kept current beside the other loops;
- ``/review`` and ``/v1/review``: the human review page and API
  (:mod:`keelwork.interfaces.http.review_routes`, the ``review`` scope when keys are on).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import Depends, FastAPI

from keelwork.interfaces.http.app import create_app
from keelwork.interfaces.http.auth import feedback_auth, require_scope
from keelwork.interfaces.http.dashboard_routes import dashboard_router
from keelwork.interfaces.http.explain_routes import explain_router
from keelwork.interfaces.http.feedback import feedback_router
from keelwork.interfaces.http.flag_routes import flag_router
from keelwork.interfaces.http.key_routes import key_router
from keelwork.interfaces.http.review_routes import review_router
from keelwork.interfaces.http.rollout_routes import rollout_router
from keelwork.interfaces.http.subject_routes import subject_router
from keelwork.service.dashboard import open_dashboard
from keelwork.service.explain import open_explainer
from keelwork.service.gateway.gateway import Loader
from keelwork.service.redaction import record_scrubber
from keelwork.service.review_desk import open_review_desk
from keelwork.service.server_parts import open_server
from keelwork.spec.fairness_checks import label_attributes
from keelwork.spec.model import ResolvedSpec
from keelwork.spec.settings import Settings, load_settings


def build_server_app(resolved: ResolvedSpec, *, settings: Settings | None = None,
                     freeze_gc: bool = True, monitor_interval_s: float = 300.0,
                     fleet: bool = False, metrics_dir: Path | None = None,
                     shared_metrics: bool = False,
                     load: Loader | None = None) -> FastAPI:
    """Open every store of ``resolved`` and build the app (models load at start-up).

    Args:
        resolved: The keel.yaml to serve.
        settings: The process settings (``keel serve`` passes the ones it read at start-up);
            default: read from the environment here, once, as the server starts.
        freeze_gc: See :func:`~keelwork.interfaces.http.app.create_app`.
        monitor_interval_s: Seconds between monitoring runs over the latest windows (drift,
            quality, coverage for ``/metrics``) for models with a stored reference; 0: never.
        fleet: One of ``keel serve --workers N``'s processes: the loops done once per fleet
            run under the store's lease (see :func:`~keelwork.service.server_parts.open_server`).
        metrics_dir: Where every worker of the fleet keeps its Prometheus values: ``/metrics``
            answers with their sums (see :class:`~keelwork.adapters.metrics.GatewayMetrics`).
        shared_metrics: A ``fleet`` whose processes share no ``metrics_dir`` (Ray replicas
            across machines): they publish their values to the store and ``/metrics`` sums
            them from there (:mod:`keelwork.service.fleet_metrics`).
        load: How the gateway loads a version (default: in this process).

    Raises:
        StoreError: the store is unreachable.
        ModelNotFoundError: a model is neither registered nor given an artifact.
        SpecError: a ``KEELWORK_*`` variable holds a value its setting cannot take.
    """
    spec = resolved.spec
    settings = settings if settings is not None else load_settings()
    parts = open_server(resolved, settings, monitor_interval_s=monitor_interval_s,
                        fleet=fleet, shared_metrics=fleet and shared_metrics, load=load)
    if metrics_dir is not None:
        parts.service.gateway.metrics.fleet_dir = metrics_dir
    keys = parts.keys
    admin = [Depends(require_scope("admin", keys))]
    feedback = [Depends(feedback_auth(keys, spec.guards.feedback_auth,
                                      require_api_key=spec.guards.require_api_key))]
    routers = [
        feedback_router(parts.labels, max_body_bytes=spec.guards.max_body_bytes,
                        dependencies=feedback, relabel=spec.guards.relabel,
                        audit=parts.audit, outputs=spec.contract.outputs,
                        max_unknown=spec.monitoring.labels.max_unknown_per_request,
                        unknown_ttl_s=spec.monitoring.labels.unknown_ttl_seconds,
                        scrub=record_scrubber(spec, resolved.project_dir,
                                              parts.service.redactor),
                        label_fields=label_attributes(spec)),
        flag_router(parts.flags, parts.flag_store, [m.name for m in spec.models],
                    dependencies=admin, check_refs=parts.unresolved_flag_refs),
        rollout_router(parts.service, dependencies=admin),
        key_router(keys, dependencies=admin),
    ]
    if parts.subjects is not None:
        routers.append(subject_router(parts.subjects, dependencies=admin))
    dashboard = open_dashboard(parts)
    routers.append(dashboard_router(dashboard, keys,
                                    require_api_key=spec.guards.require_api_key))
    routers.append(review_router(open_review_desk(parts, settings), keys,
                                 require_api_key=spec.guards.require_api_key))
    routers.append(explain_router(open_explainer(resolved, parts.service.gateway,
                                                 parts.engine, parts.service.redactor)))
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    async def start() -> None:
        await parts.start()
        tasks.append(asyncio.create_task(dashboard.run(stop), name="keel-dashboard"))

    async def close() -> None:
        stop.set()
        for task in tasks:
            await task
        await parts.close()

    return create_app(parts.service.gateway, on_startup=start, on_shutdown=close,
                      freeze_gc=freeze_gc, routers=routers, api_keys=keys,
                      rate_limit=parts.rate_limiter.take if parts.rate_limiter else None)


__all__ = ["build_server_app"]

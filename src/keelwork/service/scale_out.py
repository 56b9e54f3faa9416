"""``keel serve --engine ray``: the checks before Ray Serve replicas start, and what they start
with (:mod:`keelwork.adapters.engines.ray_serve` runs them).

Every replica is a whole server (as each worker of ``keel serve --workers N`` is: see
:mod:`keelwork.service.serving`) on the keel.yaml's store: the prediction log written by each
replica's own writer, the once-per-fleet loops in the holder of the store's lease, rollout
decisions read from the shared log. Ray may place replicas on any node of its cluster (a Ray
started here too, once other machines join it), so the store must be one every node reaches:
PostgreSQL. A SQLite file lives on one disk; on one machine ``keel serve --workers N`` shares it.

``/metrics``: with a Ray started here, the replicas keep their values in one folder and whichever
replica answers a scrape sums them all (prometheus-client's multi-process mode, as the workers
do). On a cluster given by ``--address`` the folder would be per node, so it is not set: each
replica answers with its own values.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from keelwork.adapters.engines.ray_serve import RayServeConfig, replica_count, require_ray
from keelwork.adapters.engines.ray_serve import serve as serve_on_ray
from keelwork.adapters.engines.ray_versions import (
    IDLE_S,
    VersionClient,
    VersionKeeper,
    app_name,
    bind_version,
    describe_target,
)
from keelwork.adapters.stores.engine import make_engine, normalize_url
from keelwork.adapters.stores.registry_store import open_registry
from keelwork.adapters.stores.version_uses import VersionUses
from keelwork.errors import ErrorDetail, SpecError
from keelwork.service.gateway.host import ModelTarget
from keelwork.service.models import load_target, resolve_target
from keelwork.service.serving import MAX_WORKERS_PER_CPU
from keelwork.spec.model import ResolvedSpec
from keelwork.spec.settings import (
    METRICS_DIR_VARIABLE,
    WORKER_HANDOFF,
    settings_environment,
)


def replica_bounds(resolved: ResolvedSpec, replicas: int | None) -> tuple[int, int, str]:
    """(the replicas at the least, at the most, where that was said): ``--replicas N`` runs N;
    without it, keel.yaml's ``server.replicas`` (``min``, and ``max`` for the autoscaler)."""
    if replicas is not None:
        return replicas, replicas, "--replicas"
    r = resolved.spec.server.replicas
    return r.min, r.most, "server.replicas.max" if r.max is not None else "server.replicas.min"


def check_replicas(resolved: ResolvedSpec, replicas: int, *, address: str | None = None,
                   cpus: int | None = None, field: str = "--replicas") -> int:
    """Check that ``replicas`` Ray Serve replicas can serve ``resolved``.

    Args:
        resolved: The keel.yaml.
        replicas: How many may run at once (``--replicas``, or ``server.replicas``' most).
        address: The Ray cluster's address; None: a Ray started on this machine.
        cpus: This machine's CPUs (default: ``os.cpu_count()``), for a Ray started here.
        field: Where ``replicas`` was given, for the errors.

    Returns:
        ``replicas``.

    Raises:
        MissingExtraError: Ray Serve is not installed (the install hint).
        SpecError: fewer than one replica, more than this machine can hold (a Ray started
            here; a cluster's CPUs are checked once connected), or a store that is not
            PostgreSQL (``storage.url`` named in the details).
    """
    require_ray()
    if replicas < 1:
        raise SpecError(f"{field} must be >= 1; got {replicas}.",
                        [ErrorDetail(field, "min_replicas", replicas)])
    cpus = cpus if cpus is not None else (os.cpu_count() or 1)
    most = MAX_WORKERS_PER_CPU * cpus
    if address is None and replicas > most:
        raise SpecError(
            f"{field} {replicas} is more than this machine can hold: at most {most} "
            f"({MAX_WORKERS_PER_CPU} per CPU, {cpus} CPUs); each loads every model. Give "
            "--address of a Ray cluster to spread them over several machines.",
            [ErrorDetail(field, "max_replicas", replicas)])
    backend = normalize_url(resolved.storage_url).get_backend_name()
    if backend != "postgresql":
        raise SpecError(
            f"{resolved.path}: storage.url is a {backend} store, which Ray Serve replicas "
            "cannot share (Ray may place them on any node of its cluster): give storage.url a "
            "PostgreSQL URL (postgresql://user@host/db), or serve a SQLite store from one "
            "machine with `keel serve --workers N`.",
            [ErrorDetail("storage.url", "shared_store", backend)])
    return replicas


def replica_env(handoff: str, *, metrics_dir: Path | None, address: str | None) -> dict[str, str]:
    """The environment every replica starts with: ``keel serve``'s hand-off, the shared metrics
    folder (a Ray started here), and on a cluster the ``KEELWORK_*`` settings of this process
    (a Ray started here passes its whole environment to the replicas already)."""
    env = {WORKER_HANDOFF: handoff}
    if metrics_dir is not None:
        env[METRICS_DIR_VARIABLE] = str(metrics_dir)
    if address is not None:
        env.update(settings_environment())
    return env


def serve_replicas(build: Callable[[], Any], resolved: ResolvedSpec, replicas: int, *,
                   host: str, port: int, env: dict[str, str], address: str | None = None,
                   on_ready: Callable[[], None] | None = None,
                   most: int | None = None, version_deployments: bool = False) -> None:
    """Serve ``resolved`` with ``replicas`` Ray Serve replicas, each building its app with
    ``build`` (a module-level function), until SIGINT or SIGTERM; with ``most`` above
    ``replicas``, Serve's autoscaler runs between them, aiming at keel.yaml's
    ``server.replicas.target_ongoing_requests``. With ``version_deployments``, this process
    keeps one Serve application per model version the replicas use (:func:`version_keeper`).

    Raises:
        EngineError: the cluster cannot be reached or hold them, or a replica did not start.
    """
    spec = resolved.spec
    count = replica_count(replicas, most, spec.server.replicas.target)
    keeper = version_keeper(resolved, env, count) if version_deployments else None
    serve_on_ray(build, RayServeConfig(
        name=spec.service.name, replicas=replicas, host=host, port=port, address=address,
        env=env, max_replicas=most, target_ongoing_requests=spec.server.replicas.target,
        max_body_bytes=spec.guards.max_body_bytes,
        body_read_timeout_s=spec.guards.body_read_timeout_s), on_ready=on_ready,
        keep=None if keeper is None else keeper.tick,
        let_go=None if keeper is None else keeper.close)


def _uses(resolved: ResolvedSpec) -> VersionUses:
    uses = VersionUses(make_engine(resolved.storage_url))
    uses.ensure_schema()
    return uses


def version_keeper(resolved: ResolvedSpec, env: dict[str, str],
                   count: dict[str, Any] | None = None) -> VersionKeeper:
    """``keel serve``'s keeper of the version applications: each is bound to the version's
    target, loaded by :func:`~keelwork.service.models.load_target` (keelwork's own loaders),
    batched as the model's ``batching:`` says, with ``count`` replicas (the gateway's count:
    :func:`~keelwork.adapters.engines.ray_serve.replica_count` of ``--replicas`` or
    keel.yaml's ``server.replicas``; default: ``server.replicas``'); its replicas start with
    ``env``."""
    if count is None:
        r = resolved.spec.server.replicas
        count = replica_count(r.min, r.max, r.target)
    spec = resolved.spec

    def deployment(target: dict[str, Any]) -> Any:
        batching = spec.model(str(target["name"])).batching
        artifact = target["artifact"]
        model = ModelTarget(
            str(target["name"]), int(target["version"]), str(target["runtime"]),
            artifact if target["runtime"] == "python" else Path(artifact),
            dict(target["options"]), bool(target["allow_unsafe_pickle"]))
        most = batching.max_batch_size if batching.enabled else 1
        return bind_version(model, load_target, most, batching.max_wait_ms / 1000, env,
                            count)

    return VersionKeeper(spec.service.name, _uses(resolved), deployment,
                         registered=_registered(resolved))


def _registered(resolved: ResolvedSpec) -> Callable[[], dict[str, dict[str, Any]]]:
    """The versions of keel.yaml's models registered in the last :data:`IDLE_S` seconds: each
    application's name -> its target (what the keeper deploys ahead of their first use)."""
    registry = open_registry(resolved.project_dir, resolved.storage_url, audit=False)
    spec = resolved.spec

    def recent() -> dict[str, dict[str, Any]]:
        since = time.time() - IDLE_S
        out: dict[str, dict[str, Any]] = {}
        for m in spec.models:
            for mv in registry.list_versions(m.name):
                if mv.created_at.timestamp() >= since:
                    target = resolve_target(registry, f"{m.name}:{mv.version}", resolved)
                    out[app_name(spec.service.name, m.name, mv.version)] = describe_target(
                        target)
        return out

    return recent


def version_loader(resolved: ResolvedSpec) -> VersionClient:
    """A gateway replica's loader: each version through its own deployment, served in this
    replica (:func:`~keelwork.service.models.load_target`) while that deployment starts."""
    return VersionClient(resolved.spec.service.name, _uses(resolved), fallback=load_target)


__all__ = ["check_replicas", "replica_bounds", "replica_env", "serve_replicas",
           "version_keeper", "version_loader"]

"""Several server processes on one machine (``keel serve --workers N``): the checks before they
start, and what each of them needs to build its app.

Every worker is a whole server (:func:`keelwork.service.server_parts.open_server`) on the one
store of the keel.yaml: its prediction log writes there through its own writer and its own spool
directory under ``storage.spool_dir`` (:mod:`keelwork.adapters.stores.prediction_spool`), and the
work meant to run once (alerts, retention, rollout decisions, ...) runs in the holder of the
server's lease only (:mod:`keelwork.service.leases`). The workers share the listening socket, so
the kernel spreads connections among them.

Refused before any worker starts: an in-memory SQLite store (each process would have its own,
empty one) and more workers than :data:`MAX_WORKERS_PER_CPU` per CPU of the machine.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from keelwork.adapters.processes import fit_connections, process_alive
from keelwork.adapters.stores.engine import normalize_url
from keelwork.errors import ErrorDetail, SpecError
from keelwork.spec.model import GuardsSection, ResolvedSpec

#: More workers than this per CPU only adds memory (each loads every model) and contention.
MAX_WORKERS_PER_CPU = 4


def check_workers(resolved: ResolvedSpec, workers: int, *, cpus: int | None = None) -> int:
    """Check that ``workers`` server processes can serve ``resolved`` on this machine.

    Args:
        resolved: The keel.yaml.
        workers: How many processes (``--workers`` or ``server.workers``).
        cpus: The machine's CPUs (default: ``os.cpu_count()``).

    Returns:
        ``workers``.

    Raises:
        SpecError: fewer than one worker, more than the machine can hold, or several workers on
            a store they cannot share (``server.workers`` named in the details).
    """
    path = f"{resolved.path}: server.workers"
    if workers < 1:
        raise SpecError(f"{path} must be >= 1; got {workers}.",
                        [ErrorDetail("server.workers", "min_workers", workers)])
    cpus = cpus if cpus is not None else (os.cpu_count() or 1)
    most = MAX_WORKERS_PER_CPU * cpus
    if workers > most:
        raise SpecError(
            f"{path} asks for {workers} processes, more than this machine can hold: at most "
            f"{most} ({MAX_WORKERS_PER_CPU} per CPU, {cpus} CPUs); each loads every model.",
            [ErrorDetail("server.workers", "max_workers", workers)])
    url = normalize_url(resolved.storage_url)
    if workers > 1 and url.get_backend_name() == "sqlite" \
            and url.database in (None, "", ":memory:"):
        raise SpecError(
            f"{path} asks for {workers} processes, but the store is an in-memory SQLite "
            "database, which processes cannot share: give storage.url a file "
            "(sqlite:///keel.db) or a PostgreSQL URL.",
            [ErrorDetail("server.workers", "store_not_shared", workers)])
    return workers


def fleet_metrics_dir(resolved: ResolvedSpec, pid: int | None = None) -> Path:
    """A fresh folder for the Prometheus metric values of one ``keel serve``'s workers
    (``.keel/metrics/serve-<pid>`` beside the keel.yaml), after removing those of earlier
    runs whose process is gone, so the folders stay as many as the servers running.
    """
    root = resolved.project_dir / ".keel" / "metrics"
    root.mkdir(parents=True, exist_ok=True)
    for old in root.glob("serve-*"):
        try:
            alive = process_alive(int(old.name.removeprefix("serve-")))
        except ValueError:  # not one of ours
            continue
        if not alive:
            shutil.rmtree(old, ignore_errors=True)
    here = root / f"serve-{os.getpid() if pid is None else pid}"
    shutil.rmtree(here, ignore_errors=True)  # a pid used again: start empty
    here.mkdir()
    return here


def connection_bound(guards: GuardsSection) -> tuple[int, str | None]:
    """The connections a server process of this machine holds open at once
    (``guards.max_connections``), its open-file limit raised to hold them (inherited by the
    processes it starts); a note when the hard limit leaves room for fewer than the default.

    Raises:
        SpecError: ``guards.max_connections`` is set past what the hard limit holds.
    """
    return fit_connections(guards.max_connections, "max_connections" in guards.model_fields_set)


__all__ = ["MAX_WORKERS_PER_CPU", "check_workers", "connection_bound", "fleet_metrics_dir"]

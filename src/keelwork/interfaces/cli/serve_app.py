"""The app factory each worker of ``keel serve --workers N`` imports (uvicorn's ``factory=True``).

uvicorn starts several workers only from an import string: it binds the port in the parent and
spawns the workers, each of which imports :func:`worker_app` and calls it. The parent passes what
the factory needs (the keel.yaml's path, the log level, whether to write the access log) in one
environment variable, :data:`HANDOFF_VARIABLE`, as JSON: it is the parent's message to its own
children, not a setting a user sets (those are the ``KEELWORK_*`` variables, which each worker
reads and checks as ``keel serve`` does).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from keelwork.spec.settings import WORKER_HANDOFF, worker_handoff

#: The environment variable by which ``keel serve`` hands its options to its workers.
HANDOFF_VARIABLE = WORKER_HANDOFF


def handoff(spec_path: Path, log_level: str, access_log: bool, *,
            metrics_dir: Path | None = None, version_deployments: bool = False) -> str:
    """The value of :data:`HANDOFF_VARIABLE` for the workers of one ``keel serve``
    (``metrics_dir``: where the workers' Prometheus values are summed at a scrape;
    ``version_deployments``: each model version is served by its own Ray Serve deployment)."""
    return json.dumps({"spec": str(spec_path.resolve()), "log_level": log_level,
                       "access_log": access_log,
                       "metrics_dir": None if metrics_dir is None else str(metrics_dir),
                       "version_deployments": version_deployments})


def worker_app() -> Any:
    """Build one worker's app from the options ``keel serve`` handed down.

    Raises:
        RuntimeError: not started by ``keel serve --workers`` (the variable is missing).
    """
    raw = worker_handoff()
    if not raw:
        raise RuntimeError(f"{HANDOFF_VARIABLE} is not set: this factory is for the workers "
                           "that `keel serve --workers N` starts.")
    options = json.loads(raw)
    from keelwork.interfaces.cli.output import configure_logging
    from keelwork.interfaces.http.server import build_server_app
    from keelwork.spec import load_spec
    from keelwork.spec.settings import load_settings

    configure_logging(str(options["log_level"]), bool(options["access_log"]))
    settings = load_settings()  # checked in each worker, as `keel serve` checks them
    shared = options.get("metrics_dir")
    resolved = load_spec(Path(options["spec"]))
    from keelwork.interfaces.http.head_deadline import apply_connection_guards

    apply_connection_guards(resolved.spec.guards)  # this process's (`keel serve` said any note)
    load = None
    if options.get("version_deployments"):
        from keelwork.service.scale_out import version_loader

        load = version_loader(resolved)
    # Without a shared folder (Ray replicas across machines) the values meet in the store.
    return build_server_app(resolved, settings=settings, fleet=True,
                            metrics_dir=None if shared is None else Path(shared), load=load,
                            shared_metrics=shared is None)


def serve_admin_app(argv: Sequence[str]) -> None:
    """The fast engines' admin app (``python -m keelwork.interfaces.cli.serve_app HOST PORT
    LOG_LEVEL``): :func:`worker_app` on uvicorn, with the request-head deadline of
    :mod:`keelwork.interfaces.http.head_deadline` (which uvicorn's command line cannot
    name)."""
    import uvicorn

    from keelwork.interfaces.http.head_deadline import head_deadline_protocol

    host, port, log_level = argv
    uvicorn.run("keelwork.interfaces.cli.serve_app:worker_app", factory=True, host=host,
                port=int(port), log_level=log_level, access_log=False,
                timeout_graceful_shutdown=10, http=head_deadline_protocol())


if __name__ == "__main__":
    serve_admin_app(sys.argv[1:])

__all__ = ["HANDOFF_VARIABLE", "handoff", "serve_admin_app", "worker_app"]

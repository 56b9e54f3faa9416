"""``keel serve --engine granian``: the checks before it starts, what its worker process opens,
and the wiring of the engine (:mod:`keelwork.adapters.engines.granian_front`).

One process tree: the ``keel serve`` process runs granian (its Rust HTTP front on the port and
one worker process running keelwork's RSGI app, :mod:`keelwork.interfaces.http.rsgi_app`), and
keelwork's whole app (uvicorn) on the admin port, a child it stops as it stops. granian serves
each model's KServe V1 ``:predict`` (each request parsed and checked alone, then predicted, logged
and counted a batch at a time: :class:`~keelwork.service.batch_predict.BatchQueue`); the admin
port serves everything else, predict too.

The worker is a server on the keel.yaml's store, like a worker of ``keel serve --workers N``;
the loops meant to run once run in the admin app, under the store's lease. The gateway's own
micro-batching is off in the worker (:func:`~keelwork.service.batch_predict.unbatched`): the
queue forms the batches. The RSGI app sees each request's headers: it checks API keys on
predict (``guards.require_api_key``) as the default engine does. Refused before anything starts:
``guards.rate_limit`` (the predict route does not count per caller).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from keelwork.adapters.engines.granian_front import GranianConfig, require_granian
from keelwork.adapters.engines.granian_front import serve as serve_on_granian
from keelwork.errors import ErrorDetail, SpecError
from keelwork.service.batch_predict import (
    BatchPredictor,
    BatchQueue,
    InFlight,
    check_engine,
    unbatched,
)
from keelwork.service.server_parts import ServerParts, freeze_heap, open_server
from keelwork.spec.model import ResolvedSpec
from keelwork.spec.settings import Settings

#: The engine's name, in messages.
ENGINE = "granian"


def check_granian(resolved: ResolvedSpec, *, port: int, admin_port: int) -> None:
    """Check that ``keel serve --engine granian`` can serve ``resolved``.

    Raises:
        MissingExtraError: granian is not installed (``pip install 'keelwork[granian]'``).
        SpecError: a guard the engine does not enforce is on, or the two ports are one.
    """
    require_granian()
    # the RSGI app reads the headers; granian's front has the head deadline and the bound
    check_engine(resolved, ENGINE, checks_keys=True, connection_guards=True)
    if admin_port == port:
        raise SpecError(f"--admin-port must differ from the port ({port}): granian serves "
                        "predict there, keelwork's app the rest on the admin port.",
                        [ErrorDetail("admin_port", "distinct", admin_port)])


def granian_config(resolved: ResolvedSpec, *, host: str, port: int, target: str,
                   log_level: str, max_connections: int | None = None) -> GranianConfig:
    """The engine's configuration: ``target`` (the RSGI app) on ``host:port``, holding at
    most ``max_connections`` connections (default: ``guards.max_connections``; the RSGI app
    bounds the requests in flight, ``guards.max_concurrency``) and closing one without a
    whole request head within ``guards.header_read_timeout_s``; granian logs warnings and
    errors only unless keel serve's level is debug."""
    level = "debug" if log_level.lower() == "debug" else "warning"
    guards = resolved.spec.guards
    return GranianConfig(target=target, host=host, port=port, log_level=level,
                         max_connections=guards.max_connections if max_connections is None
                         else max_connections,
                         header_read_timeout_s=guards.header_read_timeout_s)


def serve_granian(config: GranianConfig, admin: Sequence[str], env: Mapping[str, str]) -> None:
    """Run the engine, with keelwork's app (the ``admin`` command) beside it, until
    SIGINT/SIGTERM."""
    serve_on_granian(config, daemons=[("keelwork-app", list(admin))], daemon_env=env)


@dataclass
class BatchServer:
    """The worker's server: its parts (store, models, log, metrics) and one queue per model."""

    parts: ServerParts
    queues: dict[str, BatchQueue]


def open_batch_server(resolved: ResolvedSpec, settings: Settings,
                      loop: asyncio.AbstractEventLoop) -> BatchServer:
    """Open and start the worker's server on ``loop`` (not running yet): the prediction log,
    every model loaded, a :class:`BatchQueue` per model (``batching.max_batch_size``
    requests at most, 1 with batching off), ``guards.max_concurrency`` requests in flight on
    them together."""
    parts = open_server(unbatched(resolved), settings, monitor_interval_s=0, fleet=True)
    # the prediction log, the rollout controller (routing), the flags' poll, the usage: a
    # follower of the store; keelwork's app beside it runs the fleet's once-only loops
    loop.run_until_complete(parts.start(follower=True))
    gateway = parts.service.gateway
    loop.run_until_complete(gateway.start())
    freeze_heap()  # every model loaded: full collections stop walking them (p99)
    # guards.max_concurrency: predict requests in flight on all the queues together
    # (granian's front bounds the connections, guards.max_connections, not the requests)
    flight = InFlight(most=resolved.spec.guards.max_concurrency)
    queues = {m.name: BatchQueue(BatchPredictor(gateway, m.name),
                                 m.batching.max_batch_size if m.batching.enabled else 1,
                                 in_flight=flight)
              for m in resolved.spec.models}
    return BatchServer(parts, queues)


__all__ = ["ENGINE", "BatchServer", "check_granian", "granian_config", "open_batch_server",
           "serve_granian"]

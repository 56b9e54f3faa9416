"""``keel serve --engine granian``: granian's Rust HTTP front hands each request to keelwork's
RSGI app in one worker process (https://github.com/emmett-framework/granian).

granian parses HTTP in Rust and calls the app's ``__rsgi__`` coroutine with the request (its
headers included) and a protocol object to answer with: no ASGI dictionaries, no framework in
between. The app (an import path, ``module:attribute``, which granian's worker process imports) is
keelwork's; this module only runs the server, with ``daemons`` (e.g. keelwork's whole app on
another port) as children that are terminated when it stops.

granian is imported only inside these functions: the base install never needs it.
"""

from __future__ import annotations

import importlib
import multiprocessing
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keelwork.adapters.engines.daemons import stop_daemon
from keelwork.errors import MissingExtraError


@dataclass(frozen=True)
class GranianConfig:
    """How to run the front.

    Attributes:
        target: The RSGI app, ``module:attribute``.
        host: The bind address.
        port: The port.
        log_level: granian's own log level.
        max_connections: Connections the worker holds open at once (granian's
            ``backpressure``: a connection holds its permit until it closes, kept alive or
            not); past it, granian accepts no connection until one closes, and the kernel's
            listen backlog holds the new ones. None: granian's default (its backlog, 1024).
        header_read_timeout_s: Seconds a connection has to send a whole request head, from
            its opening or its previous answer (granian's HTTP/1 ``header_read_timeout``);
            else it is closed. None: granian's default (30 s, and only from a request's
            first byte: a silent connection is held).
    """

    target: str
    host: str
    port: int
    log_level: str = "warning"
    max_connections: int | None = None
    header_read_timeout_s: float | None = None


def require_granian() -> None:
    """Raises:
        MissingExtraError: ``granian`` is not installed (the ``granian`` extra)."""
    try:
        importlib.import_module("granian")
    except ImportError as exc:
        raise MissingExtraError("granian", "granian", "keel serve --engine granian") from exc


def server_options(config: GranianConfig) -> dict[str, Any]:
    """granian's options: the RSGI interface, one worker process with one runtime thread (the
    batches form on its one event loop), no access log (keelwork's app writes its own), and
    at most ``max_connections`` connections held at once."""
    options: dict[str, Any] = {
        "target": config.target, "address": config.host, "port": config.port, "workers": 1,
        "runtime_threads": 1, "log_level": config.log_level, "log_access": False}
    if config.max_connections is not None:
        options["backpressure"] = config.max_connections
    if config.header_read_timeout_s is not None:
        # HTTP/1 only: in granian's `auto` mode a connection is held silent while granian
        # waits for bytes to tell HTTP/1 from HTTP/2, before any deadline starts. In HTTP/1
        # mode the deadline runs from the connection's opening.
        options["http"] = "1"
        options["header_read_timeout_ms"] = max(1, round(config.header_read_timeout_s * 1000))
    return options


def serve(config: GranianConfig, daemons: Sequence[tuple[str, list[str]]] = (),
          daemon_env: Mapping[str, str] | None = None) -> None:
    """Run the front (and ``daemons``) until SIGINT/SIGTERM.

    Raises:
        MissingExtraError: granian is not installed.
    """
    require_granian()
    granian: Any = importlib.import_module("granian")
    constants: Any = importlib.import_module("granian.constants")
    levels: Any = importlib.import_module("granian.log")
    options = server_options(config)
    if "header_read_timeout_ms" in options:
        http: Any = importlib.import_module("granian.http")
        options["http1_settings"] = http.HTTP1Settings(
            header_read_timeout=options.pop("header_read_timeout_ms"))
        options["http"] = constants.HTTPModes(options["http"])
    # granian starts its worker with multiprocessing's start method: spawn, so the worker is a
    # fresh interpreter (the environment handed down, e.g. the metrics folder, read as it
    # imports; no threads of this process forked), as Mosec's workers are.
    multiprocessing.set_start_method("spawn", force=True)
    server = granian.Granian(interface=constants.Interfaces.RSGI,
                             log_level=levels.LogLevels(options.pop("log_level")), **options)
    children = [subprocess.Popen(command, env=dict(daemon_env or {}))
                for _, command in daemons]
    try:
        server.serve()
    finally:
        for child in children:
            stop_daemon(child)


__all__ = ["GranianConfig", "require_granian", "serve", "server_options"]

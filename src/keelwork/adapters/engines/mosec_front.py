"""``keel serve --engine mosec``: Mosec's Rust HTTP front forms the batches, keelwork's gateway
answers them in Mosec's Python workers.

Mosec (https://github.com/mosecorg/mosec) parses HTTP and queues requests in Rust; a Python
worker process receives whole batches over a Unix socket. Per model route, two stages run, each
one worker process (:mod:`keelwork.adapters.engines.mosec_workers`):

* ``Admit`` takes ONE request at a time (Mosec answers a whole batch with one status, so a request
  that is to get its own 400 or 422 must be judged alone): the handler parses and checks it, and
  either refuses it with keelwork's JSON error body or passes its instances on.
* ``Answer`` takes the admitted requests in batches of up to ``max_batch_size``, with no wait (it
  takes what is queued the moment it is free: a lone request is answered at once, and under load
  the batches form by themselves), and answers each request with its own body.

The handler (:class:`keelwork.types.BatchHandler`) is built in each worker process from
``mosec_workers.HANDLER_VARIABLE`` (``module:function``, called with the model's name):
keelwork's service and interfaces are not imported here. Beside the workers, ``daemons`` (e.g.
keelwork's whole app on another port) run as children that Mosec watches: when one exits, the
server stops (:func:`serve` raises); when the server stops, they are terminated.

Mosec reads its own options from the command line: :func:`serve` hands them over in
``sys.argv`` (and restores it). Mosec is imported only inside these functions and in the workers'
module: the base install never needs it.
"""

from __future__ import annotations

import contextlib
import importlib
import signal
import subprocess
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keelwork.adapters.engines.daemons import stop_daemon
from keelwork.errors import EngineError, MissingExtraError


@dataclass(frozen=True)
class MosecConfig:
    """How to run the front.

    Attributes:
        models: The models served: each gets ``/v1/models/<name>:predict`` and its two stages.
        max_batch_size: Per model, the largest batch of requests ``Answer`` takes.
        host: The bind address.
        port: The port.
        handler: The handler factory, ``module:function``, called with a model's name.
        work_dir: Mosec's folder for its sockets and its configuration.
        timeout_ms: A request not answered in this time is answered 408 by Mosec.
        env: Environment variables every worker starts with.
        max_body_bytes: A larger request body is answered 413 by Mosec.
        log_level: Mosec's own log level (``error``: a refused request is not a log line).
    """

    models: Sequence[str]
    max_batch_size: Mapping[str, int]
    host: str
    port: int
    handler: str
    work_dir: Path
    timeout_ms: int = 3000
    env: Mapping[str, str] = field(default_factory=dict)
    max_body_bytes: int = 1_048_576
    log_level: str = "error"


def predict_route(model: str) -> str:
    """The KServe V1 route of ``model``."""
    return f"/v1/models/{model}:predict"


def require_mosec() -> None:
    """Raises:
        MissingExtraError: ``mosec`` is not installed (the ``mosec`` extra)."""
    try:
        importlib.import_module("mosec")
    except ImportError as exc:
        raise MissingExtraError("mosec", "mosec", "keel serve --engine mosec") from exc


def mosec_argv(config: MosecConfig) -> list[str]:
    """The command line Mosec's own parser reads (it reads ``sys.argv``)."""
    return ["keel-serve-mosec", "--address", config.host, "--port", str(config.port),
            "--path", str(config.work_dir), "--timeout", str(config.timeout_ms),
            "--wait", "0", "--max-request-size", str(config.max_body_bytes),
            "--log-level", config.log_level]


@contextlib.contextmanager
def _argv(argv: list[str]) -> Iterator[None]:
    saved = sys.argv
    sys.argv = argv
    try:
        yield
    finally:
        sys.argv = saved


def serve(config: MosecConfig, daemons: Sequence[tuple[str, list[str]]] = (),
          daemon_env: Mapping[str, str] | None = None) -> None:
    """Run the front and its workers (and ``daemons``) until SIGINT/SIGTERM.

    Args:
        config: What to serve, where.
        daemons: ``(name, command)`` of child processes to run beside the workers.
        daemon_env: Their environment.

    Raises:
        MissingExtraError: Mosec is not installed.
        EngineError: the port is taken, Mosec could not start, or it stopped unasked (a worker
            or a daemon exited).
    """
    require_mosec()
    mosec: Any = importlib.import_module("mosec")
    from keelwork.adapters.engines import mosec_workers  # imports Mosec

    with _argv(mosec_argv(config)), warnings.catch_warnings():
        # `--wait 0` (no batching window: take what is queued) is Mosec's deprecated option;
        # append_worker treats a max_wait_time of 0 as "use --wait".
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            server = mosec.Server()
        except RuntimeError as exc:  # Mosec checks the port as it reads its options
            raise EngineError(f"Mosec cannot start: {exc}") from None
    env = {**config.env, mosec_workers.HANDLER_VARIABLE: config.handler}
    for model in config.models:
        model_env = [{**env, mosec_workers.MODEL_VARIABLE: model}]
        route = predict_route(model)
        server.append_worker(mosec_workers.Admit, num=1, max_batch_size=1, env=model_env,
                             route=route, timeout=config.timeout_ms / 1000.0)
        server.append_worker(mosec_workers.Answer, num=1,
                             max_batch_size=config.max_batch_size[model], max_wait_time=0,
                             env=model_env, route=route, timeout=config.timeout_ms / 1000.0)
    children: list[subprocess.Popen[bytes]] = []
    asked: list[int] = []
    terminate = server._terminate  # Mosec's own; it also stops when a worker or daemon dies

    def on_stop(signum: int, frame: Any) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            asked.append(signum)
        terminate(signum, frame)

    server._terminate = on_stop  # bound as the signal handler by run()
    try:
        for name, command in daemons:
            child = subprocess.Popen(command, env=dict(daemon_env or {}))
            children.append(child)
            server.register_daemon(name, child)
        server.run()
    finally:
        for child in children:
            stop_daemon(child)
    if not asked:
        raise EngineError("Mosec stopped unasked: a worker or the app beside it exited (its "
                          "log says why).")


__all__ = ["MosecConfig", "mosec_argv", "predict_route", "require_mosec", "serve"]

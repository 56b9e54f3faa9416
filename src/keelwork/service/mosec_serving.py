"""``keel serve --engine mosec``: the checks before it starts, what each of its worker processes
opens, and the wiring of the engine (:mod:`keelwork.adapters.engines.mosec_front`).

One process tree: the ``keel serve`` process runs Mosec (its Rust front on the port, and per model
two worker processes: ``Admit`` and ``Answer``), and keelwork's whole app (uvicorn) on the admin
port, a child that Mosec watches. Mosec's front serves each model's KServe V1 ``:predict``; the
admin port serves everything else (health and readiness, the Open Inference Protocol, ``/metrics``
summed over every process of the tree, the admin routes, the dashboard), and predict too.

Every worker process is a server on the keel.yaml's store (:class:`BatchWorker`), like a worker
of ``keel serve --workers N``: the prediction log writes there through its own writer; the loops
meant to run once (monitoring, alerts, retention, ...) run in the admin app, under the store's
lease. The gateway's own micro-batching is off in the workers (:func:`~keelwork.service.
batch_predict.unbatched`): Mosec forms the batches.

Refused before anything starts (:func:`~keelwork.service.batch_predict.check_engine`): a
keel.yaml whose predict guards need the request's headers or its caller (API keys, rate limits):
Mosec's workers never see them, and a guard accepted and not enforced is worse than a refusal.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from keelwork.adapters.engines.mosec_front import MosecConfig, require_mosec
from keelwork.adapters.engines.mosec_front import serve as serve_on_mosec
from keelwork.errors import ErrorDetail, SpecError
from keelwork.service.batch_predict import (
    Admitted,
    Answer,
    BatchPredictor,
    check_engine,
    unbatched,
)
from keelwork.service.server_parts import ServerParts, freeze_heap, open_server
from keelwork.spec.model import ResolvedSpec
from keelwork.spec.settings import Settings

T = TypeVar("T")

#: The engine's name, in messages.
ENGINE = "mosec"
#: Seconds Mosec gives a request beyond the slowest model's ``timeout_ms`` (the queue, the log).
TIMEOUT_MARGIN_S = 2.0


def check_mosec(resolved: ResolvedSpec, *, port: int, admin_port: int) -> None:
    """Check that ``keel serve --engine mosec`` can serve ``resolved``.

    Raises:
        MissingExtraError: Mosec is not installed (``pip install 'keelwork[mosec]'``).
        SpecError: a guard the engine cannot enforce is on, or the two ports are one.
    """
    require_mosec()
    check_engine(resolved, ENGINE)
    if admin_port == port:
        raise SpecError(f"--admin-port must differ from the port ({port}): Mosec's front "
                        "serves predict there, keelwork's app the rest on the admin port.",
                        [ErrorDetail("admin_port", "distinct", admin_port)])


def mosec_config(resolved: ResolvedSpec, *, host: str, port: int, handler: str,
                 work_dir: Path, env: Mapping[str, str]) -> MosecConfig:
    """The engine's configuration for ``resolved``: every model's route, its batch size
    (``batching.max_batch_size``; 1 with batching off), Mosec's timeout above every model's."""
    models = resolved.spec.models
    slowest_s = max((m.timeout_ms for m in models), default=1000.0) / 1000.0
    return MosecConfig(
        models=[m.name for m in models],
        max_batch_size={m.name: m.batching.max_batch_size if m.batching.enabled else 1
                        for m in models},
        host=host, port=port, handler=handler, work_dir=work_dir,
        timeout_ms=int((2 * slowest_s + TIMEOUT_MARGIN_S) * 1000), env=dict(env),
        max_body_bytes=resolved.spec.guards.max_body_bytes)


def work_dir() -> Path:
    """A fresh folder for Mosec's sockets and configuration: short, under the system's temporary
    folder (a Unix socket's path holds at most 107 bytes); Mosec removes it as it stops."""
    return Path(tempfile.mkdtemp(prefix="keel-mosec-"))


def serve_mosec(config: MosecConfig, admin: Sequence[str], env: Mapping[str, str]) -> None:
    """Run the engine, with keelwork's app (the ``admin`` command) beside it, until
    SIGINT/SIGTERM.

    Raises:
        EngineError: Mosec could not start, or stopped unasked (a worker or the app exited).
    """
    try:
        serve_on_mosec(config, daemons=[("keelwork-app", list(admin))], daemon_env=env)
    finally:
        shutil.rmtree(config.work_dir, ignore_errors=True)


class BatchWorker:
    """One worker process's server: the store, the models, the log and the metrics, on an event
    loop of its own that runs in a thread of its own, driven by the engine's synchronous calls.

    The loop runs all the time, not only during a call: the server's own loops (the model flags'
    poll, the fleet's lease and what runs under it, the rollout controller) keep their pace
    between requests, as on the default engine.

    Args:
        resolved: The keel.yaml (its micro-batching is turned off here).
        settings: The process settings.
        model: The model this worker's route serves.
    """

    def __init__(self, resolved: ResolvedSpec, settings: Settings, model: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="keel-worker-loop",
                                        daemon=True)
        self._thread.start()
        self.parts: ServerParts = open_server(unbatched(resolved), settings,
                                              monitor_interval_s=0, fleet=True)
        # the prediction log, the rollout controller (routing), the flags' poll, the usage: a
        # follower of the store; keelwork's app beside it runs the fleet's once-only loops
        self.run(self.parts.start(follower=True))
        gateway = self.parts.service.gateway
        self.run(gateway.start())  # every model loaded
        freeze_heap()  # full collections stop walking the models (p99)
        self.predictor = BatchPredictor(gateway, model)
        #: The project folder, which error messages must not reveal.
        self.project_dir = resolved.project_dir

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` on this worker's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()

    def admit(self, instances: list[Any], probabilities: bool) -> Admitted:
        """One request checked alone: admitted, or refused through the gateway.

        Raises:
            ContractViolation: it breaks the contract (counted and logged).
        """
        if self.predictor.breaks_contract(instances):
            self.run(self.predictor.refuse(instances))
        return Admitted(instances, probabilities)

    def classes(self) -> tuple[Any, ...] | None:
        """:meth:`BatchPredictor.classes`."""
        return self.run(self.predictor.classes())

    def predict(self, batch: Sequence[Admitted]) -> list[Answer]:
        """:meth:`BatchPredictor.predict` (raises the gateway's error)."""
        return self.run(self.predictor.predict(batch))

    def close(self) -> None:
        """Stop the server's loops, close the service and its stores, then the loop."""
        self.run(self.parts.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self.loop.is_running():
            self.loop.close()


__all__ = ["ENGINE", "BatchWorker", "check_mosec", "mosec_config", "serve_mosec", "work_dir"]

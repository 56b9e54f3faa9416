"""A model version served by its own Ray Serve deployment, as the gateway sees it: a
``ModelRuntime`` whose calls go through a Serve handle (``keel serve --engine ray
--version-deployments``; :mod:`keelwork.adapters.engines.ray_versions` makes it), or, while that
deployment starts, through the version loaded in the gateway's own process.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from keelwork.core.batch_members import Answer, Failure
from keelwork.errors import Overloaded, PredictionError, named_by_model

#: What a call raises when its version replica was gone while it held it (SIGKILL, its node
#: lost): Ray's ``RayActorError``. Nothing without Ray (no handle is ever attached then).
REPLICA_GONE: tuple[type[BaseException], ...]
try:
    from ray.exceptions import RayActorError
    REPLICA_GONE = (RayActorError,)
except ImportError:  # pragma: no cover
    REPLICA_GONE = ()

log = logging.getLogger("keelwork.ray")

#: Seconds a client is told to wait (Retry-After) when the version's replicas were lost twice.
LOST_RETRY_AFTER_S = 1.0

#: What the version deployment answers a call with: its outcome, and the CPU and GPU seconds its
#: share of the model calls used.
Served = tuple[Answer | Failure, float, float]


def _raise(outcome: Answer | Failure, label: str) -> list[Any]:
    if isinstance(outcome, Failure):
        raise PredictionError(f"The model {label} raised {outcome.error}: {outcome.message}")
    return outcome.outputs


class VersionRuntime:
    """A model version served by its own deployment: a ``ModelRuntime`` whose calls go through
    a Serve handle. ``predict_async`` is what the gateway awaits (its own batcher stands aside:
    the deployment batches); ``predict`` and ``predict_proba`` block (for callers off the event
    loop). ``cpu_seconds()`` and ``gpu_seconds()``: the CPU and GPU time its calls used in the
    version replica so far (the gateway's cost and ``/metrics`` count them). ``tag``: the
    version replica that answered the description.

    Started with ``handle`` None and a ``local`` runtime (the version loaded in this process
    while its deployment starts), it calls ``local`` (its CPU time counted here) until
    :meth:`attach` hands it the deployment; ``local`` is unloaded once its last call ends."""

    def __init__(self, handle: Any, label: str, signature: Any, kind: str, tag: str,
                 on_unload: Callable[[], None], local: Any = None) -> None:
        self._handle = handle
        self._label = label
        self._signature = signature
        self.kind = f"ray-version:{kind}"
        self.tag = tag
        self._on_unload = on_unload
        self._cpu = 0.0
        self._gpu = 0.0
        self._cpu_lock = threading.Lock()
        self._local = local
        self._in_flight = 0
        self.unloaded = threading.Event()

    @property
    def attached(self) -> bool:
        """Whether the calls go to the deployment (not to the in-process stand-in)."""
        with self._cpu_lock:
            return self._handle is not None

    def cpu_seconds(self) -> float:
        with self._cpu_lock:
            return self._cpu

    def gpu_seconds(self) -> float:
        with self._cpu_lock:
            return self._gpu

    def _served(self, served: Served) -> list[Any]:
        outcome, cpu, gpu = served
        with self._cpu_lock:
            self._cpu += cpu
            self._gpu += gpu
        return _raise(outcome, self._label)

    def _enter(self) -> tuple[Any, Any]:
        """(the handle, None), or (None, the in-process runtime) counted as in flight."""
        with self._cpu_lock:
            if self._handle is None:
                self._in_flight += 1
            return self._handle, self._local

    def _leave(self) -> None:
        with self._cpu_lock:
            self._in_flight -= 1

    def _call_local(self, local: Any, method: str, instances: list[Any]) -> Any:
        started = time.thread_time()
        try:
            return getattr(local, method)(instances)
        except Exception as exc:  # named as the deployment's answer names it
            named = named_by_model(self._label, exc)
            if named is exc:
                raise
            raise named from exc
        finally:
            with self._cpu_lock:
                self._cpu += time.thread_time() - started
            self._leave()

    def attach(self, handle: Any, tag: str, *, settle_s: float = 30.0) -> None:
        """Send every later call to the deployment behind ``handle``; unload the in-process
        runtime once its calls in flight end (waiting at most ``settle_s``)."""
        with self._cpu_lock:
            self._handle, self.tag = handle, tag
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline:
            with self._cpu_lock:
                if self._in_flight <= 0:
                    break
            time.sleep(0.02)
        self._drop_local()

    def _drop_local(self) -> None:
        with self._cpu_lock:
            local, self._local = self._local, None
        if local is not None:
            try:
                local.unload()
            except Exception:  # unloading is best effort
                log.debug("unloading the in-process %s failed", self._label, exc_info=True)

    @property
    def signature(self) -> Any:
        return self._signature

    def load(self) -> None:
        """Loaded by its deployment."""

    # A version replica that dies while it holds a call (SIGKILL, a lost node) fails the call
    # with Ray's RayActorError. The call is sent once more: Serve's router takes another
    # replica, and the version deployment keeps nothing (the gateway logs the answer), so a
    # second call is safe. Lost again: 503 with Retry-After, never a bare 500.

    async def predict_async(self, instances: list[Any]) -> list[Any]:
        handle, local = self._enter()
        if handle is None:
            return list(await asyncio.to_thread(self._call_local, local, "predict",
                                                list(instances)))
        for attempt in (1, 2):
            try:
                return self._served(await handle.predict.remote(list(instances)))
            except REPLICA_GONE as exc:
                self._gone(exc, attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def predict(self, instances: Any) -> list[Any]:
        handle, local = self._enter()
        if handle is None:
            return list(self._call_local(local, "predict", list(instances)))
        return self._served(self._blocking(handle.predict, list(instances)))

    def predict_proba(self, instances: Any) -> Any:
        handle, local = self._enter()
        if handle is None:
            return self._call_local(local, "predict_proba", list(instances))
        return self._blocking(handle.predict_proba, list(instances))

    def _blocking(self, method: Any, instances: list[Any]) -> Any:
        for attempt in (1, 2):
            try:
                return method.remote(instances).result()
            except REPLICA_GONE as exc:
                self._gone(exc, attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _gone(self, exc: BaseException, attempt: int) -> None:
        """After a first loss the call is sent again; a second one is a 503."""
        if attempt > 1:
            raise Overloaded(
                f"The replica serving {self._label} was lost during the call, twice; retry "
                f"after {LOST_RETRY_AFTER_S:g} s.", retry_after=LOST_RETRY_AFTER_S) from exc
        log.warning("a replica of %s was lost during a call (%s); sending it again",
                    self._label, type(exc).__name__)

    def unload(self) -> None:
        self.unloaded.set()
        self._drop_local()
        self._on_unload()


__all__ = ["Served", "VersionRuntime"]

"""One loaded model version with its batcher: the unit the gateway routes requests to."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keelwork.core.batching import MicroBatcher
from keelwork.core.contracts.record import as_records
from keelwork.errors import KeelworkError, PredictionError, named_by_model
from keelwork.spec.model import BatchingSection
from keelwork.types import ModelRuntime


@dataclass(frozen=True, slots=True)
class ModelTarget:
    """Everything needed to load one model version (resolved from the registry)."""

    name: str
    version: int
    runtime: str
    artifact: Path | str
    options: dict[str, Any] = field(default_factory=dict)
    allow_unsafe_pickle: bool = False

    @property
    def label(self) -> str:
        return f"{self.name}:{self.version}"


#: Closes of retired hosts under way (a task needs a reference until it ends).
_CLOSING: set[asyncio.Task[None]] = set()

#: Called after each model call with (target, batch size, requests, seconds).
CallObserver = Callable[["ModelTarget", int, int, float], None]
#: Called in the worker thread after each model call with (target, CPU seconds it used).
CpuObserver = Callable[["ModelTarget", float], None]
#: The optional runtime method giving the GPU seconds of its calls so far (a running total).
GPU_HOOK = "gpu_seconds"
#: The optional runtime coroutine method for a runtime that batches on its own (a version
#: served by its own Ray Serve deployment): awaited on the event loop, keelwork's batcher
#: standing aside.
ASYNC_HOOK = "predict_async"
#: The optional method of such a runtime giving the CPU seconds its calls used elsewhere so far
#: (a running total, reported by the process that ran the model); its growth goes to the
#: CPU observer after each call.
CPU_HOOK = "cpu_seconds"
#: Called in the worker thread after a model call with (target, GPU seconds since the last).
GpuObserver = Callable[["ModelTarget", float], None]


class ModelHost:
    """A loaded runtime for one model version, called through a micro-batcher or directly.

    Model calls run in a small thread pool of their own so that a slow model never blocks the
    event loop, and a model that hangs only exhausts its own threads. Each call's CPU time is
    read in its thread (``time.thread_time``, two clock reads per batch) and handed to
    ``cpu_observer``: the cost of a version (CPU of threads the runtime starts is not in it).
    A runtime that measures its GPU time has a ``gpu_seconds()`` method, the running total of
    its calls (an optional hook, as ``predict_proba`` is); its growth is handed to
    ``gpu_observer`` after each call.
    """

    def __init__(self, target: ModelTarget, runtime: ModelRuntime, batching: BatchingSection,
                 observer: CallObserver | None = None, threads: int = 2,
                 cpu_observer: CpuObserver | None = None,
                 gpu_observer: GpuObserver | None = None) -> None:
        self.target = target
        self.runtime = runtime
        self.batching = batching
        self._observer = observer
        self._cpu_observer = cpu_observer
        self._gpu_observer = (gpu_observer if callable(getattr(runtime, GPU_HOOK, None))
                              else None)
        self._gpu_lock = threading.Lock()
        self._gpu_seen = 0.0
        self._cpu_seen = 0.0
        self._pool = ThreadPoolExecutor(max_workers=threads,
                                        thread_name_prefix=f"keel-{target.name}")
        self._batcher: MicroBatcher | None = None
        self._users = 0
        self._reorder: bool | None = None  # see in_model_order
        self._retiring = False
        self.closed = False
        self._async: Callable[[list[Any]], Awaitable[list[Any]]] | None = getattr(
            runtime, ASYNC_HOOK, None)
        if batching.enabled and self._async is None:
            self._batcher = MicroBatcher(self._run_in_pool, max_batch_size=batching.max_batch_size,
                                         max_wait_ms=batching.max_wait_ms,
                                         observer=self._observe_batch)

    def in_model_order(self, instances: list[Any], names: tuple[str, ...]) -> list[Any]:
        """``instances`` as this model reads them: an array instance holds its values in the
        contract's order (``names``, as the contract checked it); a model that names its
        features in another order (or others) gets such an instance as a record keyed by
        field name, which its runtime puts in the model's order."""
        if self._reorder is None:
            mine = getattr(getattr(self.runtime, "signature", None), "feature_names", None)
            self._reorder = bool(names) and mine is not None and tuple(mine) != names
        return as_records(instances, names) if self._reorder else instances

    @property
    def queue_depth(self) -> int:
        return self._batcher.queue_depth if self._batcher is not None else 0

    def _call(self, instances: list[Any]) -> list[Any]:
        cpu_started = time.thread_time()
        try:
            return self.runtime.predict(instances)
        except Exception as exc:  # named with the served version (errors.named_by_model)
            named = named_by_model(self.target.label, exc)
            if named is exc:
                raise
            raise named from exc
        finally:  # a failed call used the CPU too
            self._spent(cpu_started)

    def _spent(self, cpu_started: float) -> None:
        if self._cpu_observer is not None:
            self._cpu_observer(self.target, time.thread_time() - cpu_started)
        if self._gpu_observer is not None:
            self._spent_gpu()

    def _spent_gpu(self) -> None:
        assert self._gpu_observer is not None
        # Calls overlap in the pool's threads: the growth since the last reading is
        # handed on once, so the total is exact whichever call reads it.
        with self._gpu_lock:
            total = float(getattr(self.runtime, GPU_HOOK)())
            grown, self._gpu_seen = max(0.0, total - self._gpu_seen), max(
                total, self._gpu_seen)
        if grown:
            self._gpu_observer(self.target, grown)

    async def _call_async(self, call: Callable[[list[Any]], Awaitable[list[Any]]],
                          instances: list[Any]) -> list[Any]:
        try:
            return await call(list(instances))
        except KeelworkError:
            raise
        except Exception as exc:  # the runtime's own failure, named
            raise PredictionError(
                f"The model {self.target.label} raised {type(exc).__name__}: {exc}") from exc
        finally:  # the CPU (and GPU) the model used in another process, as it reported it
            hook = getattr(self.runtime, CPU_HOOK, None)
            if self._cpu_observer is not None and callable(hook):
                total = float(hook())
                grown, self._cpu_seen = max(0.0, total - self._cpu_seen), max(
                    total, self._cpu_seen)
                if grown:
                    self._cpu_observer(self.target, grown)
            if self._gpu_observer is not None:
                self._spent_gpu()

    async def _run_in_pool(self, instances: list[Any]) -> list[Any]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, instances)

    def _observe_batch(self, size: int, requests: int, seconds: float) -> None:
        if self._observer is not None:
            self._observer(self.target, size, requests, seconds)

    async def predict(self, instances: list[Any]) -> list[Any]:
        """Outputs for ``instances`` (one each); the caller applies the timeout."""
        if self._batcher is not None:
            return await self._batcher.submit(instances)
        started = time.perf_counter()
        out = await (self._run_in_pool(instances) if self._async is None
                     else self._call_async(self._async, instances))
        self._observe_batch(len(instances), 1, time.perf_counter() - started)
        return out

    def acquire(self) -> None:
        """A request starts using this host: a :meth:`retire` waits for it."""
        self._users += 1

    def release(self) -> None:
        """The request that called :meth:`acquire` is done with this host."""
        self._users -= 1
        if self._retiring and self._users == 0 and not self.closed:
            task = asyncio.get_running_loop().create_task(self.close())
            _CLOSING.add(task)
            task.add_done_callback(_CLOSING.discard)

    async def retire(self) -> None:
        """Unload now when idle, else as soon as the last request using it ends; then hand
        the memory back to the operating system (see :func:`release_memory`)."""
        self._retiring = True
        if self._users == 0:
            await self.close()

    @property
    def classes(self) -> tuple[Any, ...] | None:
        """The model's classes (the columns of :meth:`predict_proba`); None: no probabilities."""
        return self.runtime.signature.classes

    def _call_proba(self, instances: list[Any]) -> list[list[float]] | None:
        cpu_started = time.thread_time()
        try:
            return self.runtime.predict_proba(instances)
        except KeelworkError:
            raise
        except Exception as exc:
            raise PredictionError(f"The model {self.target.label} raised {type(exc).__name__} "
                                  f"computing probabilities: {exc}") from exc
        finally:
            self._spent(cpu_started)

    async def predict_proba(self, instances: list[Any]) -> list[list[float]] | None:
        """Class probabilities of ``instances`` (not batched); None when the model has none."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call_proba, instances)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._batcher is not None:
            await self._batcher.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(Exception):  # unloading must never take the server down
            self.runtime.unload()
        if self._retiring:  # unloaded for good (not at shutdown): its memory goes back soon
            _schedule_release()


#: The pending :func:`release_memory` run, if any: unloads close together share one.
_RELEASE: list[asyncio.Task[None]] = []
#: Seconds an unload waits for others before the memory is handed back.
RELEASE_DELAY_S = 0.5


def _schedule_release() -> None:
    if _RELEASE and not _RELEASE[0].done():
        return

    async def later() -> None:
        await asyncio.sleep(RELEASE_DELAY_S)
        await asyncio.to_thread(release_memory)

    _RELEASE[:] = [asyncio.get_running_loop().create_task(later())]


def release_memory() -> None:
    """Collect the unloaded model's reference cycles and return freed heap to the OS.

    glibc keeps freed memory in its per-thread arenas (models load in worker threads), so an
    unloaded model would leave the process's RSS where it was; ``malloc_trim`` gives it back.
    Elsewhere than glibc, only the collection runs. A full collection costs tens of
    milliseconds on a large heap, so unloads within :data:`RELEASE_DELAY_S` share one.
    """
    import gc

    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None

"""One loaded model version with its batcher: the unit the gateway routes requests to."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keelwork.core.batching import MicroBatcher
from keelwork.errors import KeelworkError, PredictionError
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


#: Called after each model call with (target, batch size, requests, seconds).
CallObserver = Callable[["ModelTarget", int, int, float], None]


class ModelHost:
    """A loaded runtime for one model version, called through a micro-batcher or directly.

    Model calls run in a small thread pool of their own so that a slow model never blocks the
    event loop, and a model that hangs only exhausts its own threads.
    """

    def __init__(self, target: ModelTarget, runtime: ModelRuntime, batching: BatchingSection,
                 observer: CallObserver | None = None, threads: int = 2) -> None:
        self.target = target
        self.runtime = runtime
        self.batching = batching
        self._observer = observer
        self._pool = ThreadPoolExecutor(max_workers=threads,
                                        thread_name_prefix=f"keel-{target.name}")
        self._batcher: MicroBatcher | None = None
        if batching.enabled:
            self._batcher = MicroBatcher(self._run_in_pool, max_batch_size=batching.max_batch_size,
                                         max_wait_ms=batching.max_wait_ms,
                                         observer=self._observe_batch)

    @property
    def queue_depth(self) -> int:
        return self._batcher.queue_depth if self._batcher is not None else 0

    def _call(self, instances: list[Any]) -> list[Any]:
        try:
            return self.runtime.predict(instances)
        except PredictionError as exc:  # name the served version, keep the runtime's words
            raise PredictionError(f"The model {self.target.label} failed: {exc.message}",
                                  exc.details) from exc
        except KeelworkError:
            raise
        except Exception as exc:  # the model's own failure, named
            raise PredictionError(
                f"The model {self.target.label} raised {type(exc).__name__}: {exc}") from exc

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
        out = await self._run_in_pool(instances)
        self._observe_batch(len(instances), 1, time.perf_counter() - started)
        return out

    @property
    def classes(self) -> tuple[Any, ...] | None:
        """The model's classes (the columns of :meth:`predict_proba`); None: no probabilities."""
        return self.runtime.signature.classes

    def _call_proba(self, instances: list[Any]) -> list[list[float]] | None:
        try:
            return self.runtime.predict_proba(instances)
        except KeelworkError:
            raise
        except Exception as exc:
            raise PredictionError(f"The model {self.target.label} raised {type(exc).__name__} "
                                  f"computing probabilities: {exc}") from exc

    async def predict_proba(self, instances: list[Any]) -> list[list[float]] | None:
        """Class probabilities of ``instances`` (not batched); None when the model has none."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call_proba, instances)

    async def close(self) -> None:
        if self._batcher is not None:
            await self._batcher.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(Exception):  # unloading must never take the server down
            self.runtime.unload()

"""GPU time of model calls on CUDA, measured with CUDA events (for ``cost.gpu_hour``).

A CUDA kernel runs after the Python call that queued it returns, so wall time around a call
measures the queueing, not the GPU's work. :class:`CudaClock` records a timing event on the
device before and after the call, waits for the second (``synchronize``: the call's results
are about to be copied to the host anyway), and adds the GPU time between them to a running
total that the gateway reads through ``gpu_seconds()``
(the optional runtime hook of :data:`keelwork.service.gateway.host.GPU_HOOK`).

Events on one device's stream also span another thread's kernels queued between them, so a
clock lets one call at a time onto its device: each call's time is its own, and the GPU, which
runs one stream's kernels in order anyway, loses nothing by it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class CudaClock:
    """Runs calls one at a time on a CUDA device and keeps their GPU seconds.

    Args:
        torch: The ``torch`` module (passed in: tests hand a fake one; torch loads only where
            a runtime runs on a GPU).
    """

    def __init__(self, torch: Any) -> None:
        self._cuda = torch.cuda
        self._lock = threading.Lock()
        self._total = 0.0

    def run(self, call: Callable[[], T]) -> T:
        """``call()`` between two timing events; its GPU time is added (a failed call's too:
        the GPU worked)."""
        with self._lock:
            start = self._cuda.Event(enable_timing=True)
            end = self._cuda.Event(enable_timing=True)
            start.record()
            try:
                return call()
            finally:
                end.record()
                end.synchronize()
                self._total += float(start.elapsed_time(end)) / 1000.0  # milliseconds

    def seconds(self) -> float:
        """GPU seconds of every call so far."""
        with self._lock:
            return self._total


__all__ = ["CudaClock"]

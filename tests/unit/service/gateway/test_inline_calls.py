"""A fast model's calls run on the event loop once proven fast; anything else stays in the
pool: a runtime that may wait (a Python callable, ONNX Runtime's own threads), one loaded by
unsafe pickle, and the calls after one that took too long (until a four times longer streak)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

from keelwork.core.signature import Signature
from keelwork.errors import PredictionError
from keelwork.service.gateway.host import INLINE_AFTER, INLINE_MAX_S, ModelHost, ModelTarget
from keelwork.spec.model import BatchingSection


class Runtime:
    """A runtime of ``kind`` that records the thread of each call; ``burn_s`` of CPU per call."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.threads: list[int] = []
        self.burn_s = 0.0
        self.fail = False

    def load(self) -> None:
        pass

    def predict(self, instances: Sequence[Any]) -> list[Any]:
        self.threads.append(threading.get_ident())
        end = time.thread_time() + self.burn_s
        while time.thread_time() < end:
            pass
        if self.fail:
            raise ValueError("broken")
        return [1 for _ in instances]

    def predict_proba(self, instances: Sequence[Any]) -> None:
        return None

    @property
    def signature(self) -> Signature:
        return Signature()

    def unload(self) -> None:
        pass


def _host(kind: str, *, unsafe: bool = False) -> tuple[ModelHost, Runtime]:
    runtime = Runtime(kind)
    target = ModelTarget("m", 1, kind, "x", allow_unsafe_pickle=unsafe)
    return ModelHost(target, runtime, BatchingSection(enabled=False)), runtime


async def _calls(host: ModelHost, n: int) -> None:
    for _ in range(n):
        assert await host.predict([{"a": 1}]) == [1]


def test_a_fast_bounded_runtime_moves_to_the_loop_and_back_when_a_call_is_slow() -> None:
    async def run() -> None:
        host, runtime = _host("sklearn")
        loop_thread = threading.get_ident()
        await _calls(host, INLINE_AFTER)
        assert loop_thread not in runtime.threads  # proven in the pool first
        assert host.inline
        await _calls(host, 5)
        assert runtime.threads[-5:] == [loop_thread] * 5
        runtime.burn_s = INLINE_MAX_S * 3  # one slow call: the next ones go to the pool
        await _calls(host, 1)
        assert not host.inline
        runtime.burn_s = 0.0
        await _calls(host, 3)
        assert loop_thread not in runtime.threads[-3:]
        await _calls(host, INLINE_AFTER * 4 - 4)  # a longer streak is asked the second time
        assert not host.inline
        await _calls(host, 1)
        assert host.inline
        await host.close()

    asyncio.run(run())


@pytest.mark.parametrize(("kind", "unsafe"), [("python", False), ("onnx", False),
                                             ("sklearn", True)])
def test_a_runtime_that_may_wait_or_was_unpickled_stays_in_the_pool(kind: str,
                                                                     unsafe: bool) -> None:
    async def run() -> None:
        host, runtime = _host(kind, unsafe=unsafe)
        await _calls(host, INLINE_AFTER * 2)
        assert not host.inline
        assert threading.get_ident() not in runtime.threads
        await host.close()

    asyncio.run(run())


def test_a_failing_call_on_the_loop_is_named_and_sends_calls_back_to_the_pool() -> None:
    async def run() -> None:
        host, runtime = _host("sklearn")
        await _calls(host, INLINE_AFTER)
        assert host.inline
        runtime.fail = True
        with pytest.raises(PredictionError, match=r"m:1 raised ValueError: broken"):
            await host.predict([{"a": 1}])
        assert not host.inline
        await host.close()

    asyncio.run(run())

"""What ``models[].timeout_ms`` bounds: the model's call, not the loading of its version.

A version's first request loads it (imports, weights, a runtime session) before it calls the
model; a slow load must not turn that first request into a 504, since the user's timeout is about
how long the model may take to answer. The call itself stays bounded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import pytest

from keelwork.core.predictions import PredictionRecord
from keelwork.errors import ModelTimeout
from keelwork.service.gateway.gateway import Gateway
from keelwork.service.gateway.host import ModelTarget
from keelwork.spec.loader import parse_spec

SPEC = """\
service: {name: t, owners: [t@example.com]}
models:
  - {name: m, runtime: python, artifact: "x:y", timeout_ms: 100,
     batching: {enabled: false}}
"""
SLOW_LOAD_S = 0.5  # five times the timeout


class Runtime:
    kind = "fake"

    def __init__(self, version: int, call_s: float) -> None:
        self.version = version
        self.call_s = call_s

    def predict(self, instances: Sequence[Any]) -> list[Any]:
        time.sleep(self.call_s)
        return [self.version for _ in instances]

    def unload(self) -> None:
        return None


class Sink:
    async def write(self, records: Sequence[PredictionRecord]) -> None:
        return None


def _gateway(call_s: dict[int, float]) -> Gateway:
    def resolve(name: str, ref: str | None) -> ModelTarget:
        return ModelTarget(name, int(ref) if ref else 1, "python", "x:y")

    def load(target: ModelTarget) -> Runtime:
        if target.version != 1:  # the champion loads at start; the others on first use
            time.sleep(SLOW_LOAD_S)
        return Runtime(target.version, call_s.get(target.version, 0.0))

    return Gateway(parse_spec(SPEC, env={}), resolve, load, Sink())


def test_a_slow_load_does_not_count_against_the_first_calls_timeout() -> None:
    async def body() -> None:
        gw = _gateway({})
        await gw.start()
        began = time.perf_counter()
        result = await gw.predict("m", "2", [{}])  # loads version 2, then calls it
        waited = time.perf_counter() - began
        assert result.version == 2
        assert waited >= SLOW_LOAD_S  # it did wait for the load...
        await gw.close()

    asyncio.run(body())  # ...and answered instead of timing out after 100 ms


def test_the_call_itself_stays_bounded_by_timeout_ms() -> None:
    async def body() -> None:
        gw = _gateway({3: 0.4})
        await gw.start()
        with pytest.raises(ModelTimeout, match="within 100 ms"):
            await gw.predict("m", "3", [{}])
        await gw.close()

    asyncio.run(body())

"""A version replica lost while it holds a call (``keel serve --engine ray
--version-deployments``): the gateway's runtime sends the call once more, which Serve routes to a
live replica; lost twice, the request is a 503 with Retry-After (never Ray's error as a bare
500), and a fallback model, where keel.yaml names one, answers instead."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from keelwork.adapters.engines.version_runtime import LOST_RETRY_AFTER_S, VersionRuntime
from keelwork.core.batch_members import Answer
from keelwork.core.predictions import PredictionRecord
from keelwork.errors import Overloaded
from keelwork.service.gateway.gateway import Gateway
from keelwork.service.gateway.host import ModelTarget
from keelwork.spec.loader import parse_spec

exceptions = pytest.importorskip(
    "ray.exceptions", reason="ray[serve] is not installed: pip install 'keelwork[ray]'")


class _Response:
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome

    def _value(self) -> Any:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome

    def result(self, timeout_s: float | None = None) -> Any:
        return self._value()

    def __await__(self) -> Any:
        async def value() -> Any:
            return self._value()
        return value().__await__()


class _Method:
    """Answers with ``outcomes`` in turn (the last one for ever); records each call."""

    def __init__(self, outcomes: list[Any]) -> None:
        self.outcomes = outcomes
        self.calls = 0

    def remote(self, instances: list[Any]) -> _Response:
        self.calls += 1
        return _Response(self.outcomes[min(self.calls, len(self.outcomes)) - 1])


class _Handle:
    def __init__(self, outcomes: list[Any]) -> None:
        self.predict = _Method(outcomes)
        self.predict_proba = _Method([[[0.5, 0.5]] if not isinstance(o, BaseException) else o
                                      for o in outcomes])


def _served(n: int) -> tuple[Answer, float, float]:
    return Answer([2.0] * n), 0.0, 0.0


def _runtime(handle: _Handle) -> VersionRuntime:
    return VersionRuntime(handle, "m:1", None, "python", "r1@host:1", on_unload=lambda: None)


def test_a_call_lost_with_its_replica_is_sent_again_and_answered() -> None:
    handle = _Handle([exceptions.ActorDiedError(), _served(1)])
    runtime = _runtime(handle)
    assert asyncio.run(runtime.predict_async([{"a": 1}])) == [2.0]
    assert handle.predict.calls == 2
    blocking = _Handle([exceptions.ActorUnavailableError("gone", None), _served(2)])
    assert _runtime(blocking).predict([{"a": 1}, {"a": 2}]) == [2.0, 2.0]
    assert blocking.predict.calls == 2
    proba = _Handle([exceptions.ActorDiedError(), _served(1)])
    assert _runtime(proba).predict_proba([{"a": 1}]) == [[0.5, 0.5]]


def test_a_call_lost_twice_is_a_503_with_retry_after() -> None:
    handle = _Handle([exceptions.ActorDiedError()])
    with pytest.raises(Overloaded, match="m:1 was lost during the call, twice") as lost:
        asyncio.run(_runtime(handle).predict_async([{"a": 1}]))
    assert lost.value.retry_after == LOST_RETRY_AFTER_S
    assert handle.predict.calls == 2  # once more, not for ever
    with pytest.raises(Overloaded):
        _runtime(_Handle([exceptions.ActorDiedError()])).predict([{"a": 1}])


def test_another_error_is_not_taken_for_a_lost_replica() -> None:
    handle = _Handle([RuntimeError("the handle is closed")])
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(_runtime(handle).predict_async([{"a": 1}]))
    assert handle.predict.calls == 1


SPEC = """\
service: {name: t, owners: [t@example.com]}
models:
  - {name: m, runtime: python, artifact: "x:y", fallback: backup, batching: {enabled: false}}
  - {name: plain, runtime: python, artifact: "x:y", batching: {enabled: false}}
  - {name: backup, runtime: python, artifact: "x:y", batching: {enabled: false}}
"""


class _Backup:
    kind = "fake"

    def predict(self, instances: Sequence[Any]) -> list[Any]:
        return [-1.0 for _ in instances]

    def unload(self) -> None:
        return None


class _Sink:
    async def write(self, records: Sequence[PredictionRecord]) -> None:
        return None


def test_through_the_gateway_the_fallback_answers_else_a_503() -> None:
    def resolve(name: str, ref: str | None) -> ModelTarget:
        return ModelTarget(name, 1, "python", "x:y")

    def load(target: ModelTarget) -> Any:
        if target.name == "backup":
            return _Backup()
        return VersionRuntime(_Handle([exceptions.ActorDiedError()]), target.label, None,
                              "python", "r1@host:1", on_unload=lambda: None)

    async def body() -> None:
        gw = Gateway(parse_spec(SPEC, env={}), resolve, load, _Sink())
        await gw.start()
        answered = await gw.predict("m", None, [{}])
        assert answered.predictions == [-1.0] and answered.fallback_used
        with pytest.raises(Overloaded) as lost:
            await gw.predict("plain", None, [{}])
        assert lost.value.retry_after == LOST_RETRY_AFTER_S
        await gw.close()

    asyncio.run(body())

"""GPU seconds and reported tokens, charged per version: a fake runtime that reports GPU time
(no GPU on this machine: the runtime hook gpu_seconds() is what is tested) and
one whose answers report token usage, through a real gateway, read back from /metrics."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from keelwork.core.predictions import PredictionRecord
from keelwork.service.gateway.gateway import Gateway
from keelwork.service.gateway.host import ModelTarget
from keelwork.spec.loader import parse_spec

SPEC = """\
service: {{name: t, owners: [t@example.com]}}
models: [{{name: m, runtime: python, artifact: "x:y", batching: {{enabled: false}}}}]
cost: {cost}
"""
GPU_PER_CALL = 0.125


class GpuRuntime:
    """Reports a known GPU time per call, as a CUDA runtime timing its kernels would."""

    kind = "fake-gpu"

    def __init__(self) -> None:
        self._total = 0.0
        self._lock = threading.Lock()

    def predict(self, instances: Sequence[Any]) -> list[Any]:
        with self._lock:
            self._total += GPU_PER_CALL
        return [0 for _ in instances]

    def gpu_seconds(self) -> float:
        with self._lock:
            return self._total

    def unload(self) -> None:
        pass


class TokenRuntime:
    """Answers with a usage of 100 input and 20 output tokens per instance (or a given one)."""

    kind = "fake-llm"

    def __init__(self, usage: Any = None) -> None:
        self.usage = usage if usage is not None else {"input_tokens": 100, "output_tokens": 20}

    def predict(self, instances: Sequence[Any]) -> list[Any]:
        return [{"text": "ok", "usage": self.usage} for _ in instances]

    def unload(self) -> None:
        pass


class Sink:
    def __init__(self) -> None:
        self.records: list[PredictionRecord] = []

    async def write(self, records: Sequence[PredictionRecord]) -> None:
        self.records.extend(records)


def _gateway(cost: str, runtime: Any) -> tuple[Gateway, Sink]:
    sink = Sink()
    gw = Gateway(parse_spec(SPEC.format(cost=cost), env={}),
                 lambda name, _ref: ModelTarget(name, 2, "python", "x:y"),
                 lambda _t: runtime, sink)
    return gw, sink


def _serve(gw: Gateway, calls: int) -> None:
    async def body() -> None:
        await gw.start()
        try:
            for i in range(calls):
                await gw.predict("m", None, [i, i + 1])
        finally:
            await gw.close()
    asyncio.run(body())


def _samples(gw: Gateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = gw.metrics.render()[0].decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_a_runtime_on_a_gpu_is_charged_its_gpu_seconds() -> None:
    runtime = GpuRuntime()
    gw, _ = _gateway("{gpu_hour: 7.2}", runtime)
    _serve(gw, 8)
    got = _samples(gw)
    labels = (("model", "m"), ("version", "2"))
    assert got[("keelwork_model_gpu_seconds_total", labels)] == pytest.approx(8 * GPU_PER_CALL)
    cost = got[("keelwork_cost_total", (("currency", "USD"), *labels))]
    assert cost == pytest.approx(8 * GPU_PER_CALL / 3600 * 7.2)


def test_tokens_are_charged_at_the_price_of_their_day() -> None:
    today = dt.datetime.now(dt.UTC).date()
    old, new = today - dt.timedelta(days=30), today - dt.timedelta(days=1)
    cost = (f"{{token_prices: [{{since: {old}, input_per_1k: 9, output_per_1k: 9}}, "
            f"{{since: {new}, input_per_1k: 0.5, output_per_1k: 1.5}}, "
            f"{{since: {today + dt.timedelta(days=1)}, input_per_1k: 7, output_per_1k: 7}}]}}")
    gw, sink = _gateway(cost, TokenRuntime())
    _serve(gw, 5)  # 10 answers: 1000 input, 200 output tokens
    got = _samples(gw)
    labels = (("model", "m"), ("version", "2"))
    assert got[("keelwork_tokens_total", (("kind", "input"), *labels))] == 1000
    assert got[("keelwork_tokens_total", (("kind", "output"), *labels))] == 200
    assert got[("keelwork_cost_total", (("currency", "USD"), *labels))] == pytest.approx(
        1000 / 1000 * 0.5 + 200 / 1000 * 1.5)
    assert got.get(("keelwork_token_price_missing_total", labels), 0.0) == 0.0
    assert all("cost_error" not in r.request_meta for r in sink.records)


@pytest.mark.parametrize(("cost", "why"), [
    ("{per_1k_predictions: 1}", "sets no cost.token_prices"),
    ("{token_prices: [{since: 2999-01-01, input_per_1k: 1, output_per_1k: 1}]}",
     "no cost.token_prices entry is in effect"),
    ("{token_prices: [{since: 2020-01-01, input_per_1k: 1, output_per_1k: 1, model: other}]}",
     "no cost.token_prices entry is in effect"),
])
def test_tokens_without_a_price_are_an_error_never_free(
        cost: str, why: str, caplog: pytest.LogCaptureFixture) -> None:
    spec_cost = cost.replace("model: other", "model: m2")
    text = SPEC.format(cost=spec_cost).replace(
        "models: [", "models: [{name: m2, runtime: python, artifact: 'x:y'}, ")
    sink = Sink()
    gw = Gateway(parse_spec(text, env={}), lambda name, _ref: ModelTarget(name, 2, "python",
                                                                          "x:y"),
                 lambda _t: TokenRuntime(), sink)
    with caplog.at_level("ERROR", logger="keelwork.cost"):
        _serve(gw, 3)
    got = _samples(gw)
    labels = (("model", "m"), ("version", "2"))
    assert got[("keelwork_token_price_missing_total", labels)] == 3
    assert got[("keelwork_tokens_total", (("kind", "input"), *labels))] == 600
    # keelwork_cost_total holds what is priced (the answers, where priced), no token charge:
    # the tokens are the error counted above, not a charge of 0 passed off as their cost
    priced = 6 / 1000 if "per_1k_predictions" in cost else 0.0
    assert got[("keelwork_cost_total", (("currency", "USD"), *labels))] == pytest.approx(priced)
    assert len(sink.records) == 6
    assert all(why in r.request_meta["cost_error"] for r in sink.records)
    [line] = [r.message for r in caplog.records]  # logged once a minute, not per request
    assert why in line and "fix cost.token_prices" in line


def test_an_unreadable_usage_is_an_error_too() -> None:
    gw, sink = _gateway("{token_prices: [{since: 2020-01-01, input_per_1k: 1, "
                        "output_per_1k: 1}]}", TokenRuntime({"input_tokens": -4}))
    _serve(gw, 1)
    got = _samples(gw)
    assert got[("keelwork_token_price_missing_total", (("model", "m"), ("version", "2")))] == 1
    assert "usage.input_tokens must be a whole number >= 0; got -4" in \
        sink.records[0].request_meta["cost_error"]

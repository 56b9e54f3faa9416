"""The cost of a synthetic workload of known cost, read back from a live app's /metrics.

The model burns a known CPU time per instance (``callables:burns_cpu``, CPU time of its own
thread, so a loaded machine changes how long it takes, not what it costs). N requests later,
``keelwork_model_cpu_seconds_total`` and ``keelwork_cost_total`` are at least N x the burned time
(x the price) and within 5% above it (the runtime's own work around the call); a flat price per
answer is exactly answers / 1000 x price.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from fixtures import models as fm
from fixtures.callables import BURN_CPU_S
from keelwork.adapters.runtimes import load_runtime
from keelwork.core.predictions import PredictionRecord
from keelwork.interfaces.http.app import create_app
from keelwork.service.gateway.gateway import Gateway
from keelwork.service.gateway.host import ModelTarget
from keelwork.spec.loader import parse_spec

N = 25
SPEC = """\
service: {name: cost, owners: [t@example.com]}
models: [{name: burner, runtime: python, artifact: "callables:burns_cpu"}]
"""


class Sink:
    async def write(self, records: Sequence[PredictionRecord]) -> None:
        pass


@pytest.fixture
def no_gc() -> Iterator[None]:
    """No collection lands inside a measured call (it would be charged to the model)."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _gateway(cost: str) -> Gateway:
    return Gateway(parse_spec(SPEC + f"cost: {cost}\n", env={}),
                   lambda name, _ref: ModelTarget(name, 3, "python", "callables:burns_cpu"),
                   lambda t: load_runtime("python", str(t.artifact),
                                          {"path": str(fm.FIXTURES_DIR)}),
                   Sink())


def _scrape(client: TestClient) -> dict[str, float]:
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            if s.name == "keelwork_cost_total":
                assert s.labels == {"model": "burner", "version": "3", "currency": "EUR"}
            elif s.name == "keelwork_model_cpu_seconds_total":
                assert s.labels == {"model": "burner", "version": "3"}
            elif s.name not in ("keelwork_predictions_total", "keelwork_cost_idle_total"):
                continue
            out[s.name] = s.value
    return out


def _run(client: TestClient, n: int) -> None:
    for i in range(n):
        r = client.post("/v1/models/burner:predict", json={"instances": [i]})
        assert r.status_code == 200, r.text


@pytest.mark.usefixtures("no_gc")
def test_cpu_seconds_and_their_cost_are_within_5_percent_of_the_burned_cpu() -> None:
    price = 36.0  # per CPU-hour: 0.01 per CPU-second
    with TestClient(create_app(_gateway(f"{{currency: EUR, cpu_hour: {price}}}"))) as client:
        _run(client, 1)  # the first call pays for what it imports; it is not in the sums below
        before = _scrape(client)
        _run(client, N)
        after = _scrape(client)
    burned = N * BURN_CPU_S
    cpu = after["keelwork_model_cpu_seconds_total"] - before["keelwork_model_cpu_seconds_total"]
    assert burned <= cpu <= burned * 1.05, (cpu, burned)
    cost = after["keelwork_cost_total"] - before["keelwork_cost_total"]
    expected = burned / 3600 * price
    assert expected * (1 - 1e-9) <= cost <= expected * 1.05, (cost, expected)
    assert after["keelwork_predictions_total"] == N + 1
    # The idle share is there, apart, and the process spent at least the model's CPU.
    assert after["keelwork_cost_idle_total"] >= 0.0


def test_a_price_per_answer_alone_is_exactly_answers_times_price() -> None:
    price = 0.37
    with TestClient(create_app(_gateway(f"{{currency: EUR, per_1k_predictions: {price}}}"))
                    ) as client:
        _run(client, 7)
        got = _scrape(client)
    assert got["keelwork_predictions_total"] == 7
    assert got["keelwork_cost_total"] == 7 / 1000 * price
    assert "keelwork_cost_idle_total" not in got

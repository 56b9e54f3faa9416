"""``keelwork_cost_total`` and ``keelwork_cost_idle_total``: derived at scrape time from the
CPU seconds and answers counted per version, at keel.yaml's prices."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from keelwork.adapters.metrics import GatewayMetrics
from keelwork.spec.cost import CostSection


def _samples(metrics: GatewayMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render()[0].decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_cost_per_version_and_the_idle_share() -> None:
    clock = [100.0]
    m = GatewayMetrics()
    m.watch_cost(CostSection(currency="EUR", cpu_hour=3.6, per_1k_predictions=2.0),
                 process_cpu=lambda: clock[0])
    m.child(m.model_cpu, "a", "1").inc(30.0)
    m.child(m.model_cpu, "a", "2").inc(10.0)
    m.child(m.predictions, "a", "1").inc(500)
    m.child(m.predictions, "b", "1").inc(1000)  # answered without a measured call
    got = _samples(m)
    cost = {labels: v for (name, labels), v in got.items() if name == "keelwork_cost_total"}
    assert cost == {
        (("currency", "EUR"), ("model", "a"), ("version", "1")): pytest.approx(0.03 + 1.0),
        (("currency", "EUR"), ("model", "a"), ("version", "2")): pytest.approx(0.01),
        (("currency", "EUR"), ("model", "b"), ("version", "1")): pytest.approx(2.0),
    }
    idle = got[("keelwork_cost_idle_total", (("currency", "EUR"),))]
    assert idle == pytest.approx((100.0 - 40.0) / 3600 * 3.6)
    assert got[("keelwork_model_cpu_seconds_total", (("model", "a"), ("version", "1")))] == 30.0


def test_the_idle_counter_never_steps_back() -> None:
    clock = [50.0]
    m = GatewayMetrics()
    m.watch_cost(CostSection(cpu_hour=3600.0), process_cpu=lambda: clock[0])
    key = ("keelwork_cost_idle_total", (("currency", "USD"),))
    assert _samples(m)[key] == pytest.approx(50.0)
    # A call that was in flight at the last scrape ends: its CPU moves from idle to the model.
    m.child(m.model_cpu, "a", "1").inc(5.0)
    clock[0] = 52.0
    assert _samples(m)[key] == pytest.approx(50.0)
    clock[0] = 60.0
    assert _samples(m)[key] == pytest.approx(55.0)


def test_a_flat_price_exports_no_idle_share_and_no_prices_no_cost() -> None:
    m = GatewayMetrics()
    m.watch_cost(CostSection(per_1k_predictions=1.0))
    m.child(m.predictions, "a", "1").inc(3)
    names = {name for name, _ in _samples(m)}
    assert "keelwork_cost_total" in names and "keelwork_cost_idle_total" not in names
    plain = GatewayMetrics()
    plain.child(plain.predictions, "a", "1").inc(3)
    assert not {n for n, _ in _samples(plain)} & {"keelwork_cost_total",
                                                   "keelwork_cost_idle_total"}

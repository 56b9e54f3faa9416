"""``/metrics`` of a fleet without a shared metrics folder: three processes' metrics (each its
own registry, as on three machines) publish to one store, and a scrape of any of them answers
the same sums, parsed from the exposition text as Prometheus reads it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from keelwork.adapters.metrics import GatewayMetrics
from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.fleet_metrics_store import RETIRED, FleetMetricsStore
from keelwork.errors import StoreError
from keelwork.service.fleet_metrics import FleetMetrics


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def _scrape(m: GatewayMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    payload, _ = m.render()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(payload.decode())
            for s in family.samples}


def _requests(m: GatewayMetrics, status: str = "ok") -> float:
    return _scrape(m).get(("keelwork_requests_total", (("model", "m"), ("status", status),
                                                        ("version", "1"))), 0.0)


def _in_flight(m: GatewayMetrics) -> float:
    return _scrape(m)[("keelwork_requests_in_flight", ())]


def _fleet(tmp_path: Path, clock: Clock, n: int = 3) -> tuple[list[GatewayMetrics],
                                                               list[FleetMetrics]]:
    store = FleetMetricsStore(make_engine(f"sqlite:///{tmp_path / 'keel.db'}"), clock)
    store.ensure_schema()
    metrics = [GatewayMetrics() for _ in range(n)]
    shares = [FleetMetrics(store, m, replica=f"r{i}", clock=clock)
              for i, m in enumerate(metrics)]
    for share in shares:
        share.attach()
    return metrics, shares


def _count(m: GatewayMetrics, n: int, status: str = "ok") -> None:
    m.requests.labels("m", "1", status).inc(n)
    m.latency.labels("m").observe(0.002)


def _three_published(tmp_path: Path, clock: Clock) -> tuple[list[GatewayMetrics],
                                                             list[FleetMetrics]]:
    """Three processes that answered 3, 5 and 7 requests, 2 in flight each, published."""
    metrics, shares = _fleet(tmp_path, clock)
    for m, n in zip(metrics, (3, 5, 7), strict=True):
        _count(m, n)
        m.in_flight.set(2)
    for share in shares:
        share.publish()
    return metrics, shares


def test_every_process_answers_the_fleet_s_sums(tmp_path: Path) -> None:
    clock = Clock()
    metrics, shares = _three_published(tmp_path, clock)
    for m in metrics:
        assert _requests(m) == 15
        assert _in_flight(m) == 6
        hist = _scrape(m)[("keelwork_request_duration_seconds_count", (("model", "m"),))]
        assert hist == 3
    _count(metrics[0], 1, "invalid")
    # the answering process's own values are as of now, the others' as last published
    assert _requests(metrics[0], "invalid") == 1
    assert _requests(metrics[1], "invalid") == 0
    shares[0].publish()
    assert _requests(metrics[1], "invalid") == 1


def test_a_gone_process_keeps_its_counts_and_loses_its_gauges(tmp_path: Path) -> None:
    clock = Clock()
    metrics, shares = _three_published(tmp_path, clock)
    clock.now += 30  # r2 stops publishing (it died)
    shares[0].publish()
    shares[1].publish()
    assert _requests(metrics[0]) == 15
    assert _in_flight(metrics[0]) == 4
    assert shares[0].fold_gone() == 1
    rows = {r.replica for r in shares[0].store.rows()}
    assert rows == {"r0", "r1", RETIRED}  # bounded: the live ones and the retired sum
    assert _requests(metrics[1]) == 15 and _in_flight(metrics[1]) == 4


def test_a_process_folded_while_paused_is_never_counted_twice(tmp_path: Path) -> None:
    clock = Clock()
    metrics, shares = _fleet(tmp_path, clock, n=2)
    _count(metrics[0], 4)
    _count(metrics[1], 6)
    shares[0].publish()
    shares[1].publish()
    clock.now += 30  # r1 pauses; r0 goes on and folds it
    shares[0].publish()
    assert shares[0].fold_gone() == 1
    _count(metrics[1], 2)  # r1 wakes up and counts more
    assert _requests(metrics[1]) == 12  # its scrape before it publishes again: no double
    shares[1].publish()
    for m in metrics:
        assert _requests(m) == 12
    rows = {r.replica for r in shares[0].store.rows()}
    assert rows == {"r0", "r1", RETIRED}


def test_a_scrape_with_the_store_down_answers_the_last_values_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    metrics, shares = _fleet(tmp_path, clock, n=2)
    _count(metrics[0], 4)
    _count(metrics[1], 6)
    shares[1].publish()
    assert _requests(metrics[0]) == 10

    def down() -> list[object]:
        raise StoreError("the store is down")

    monkeypatch.setattr(shares[0].store, "rows", down)
    _count(metrics[0], 1)
    assert _requests(metrics[0]) == 11


def test_the_loop_publishes_and_marks_the_process_gone_as_it_stops(tmp_path: Path) -> None:
    clock = Clock()
    metrics, shares = _fleet(tmp_path, clock, n=2)
    _count(metrics[0], 4)
    metrics[0].in_flight.set(3)

    async def serve_briefly() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(shares[0].run(stop))
        await asyncio.sleep(0.2)
        stop.set()
        await task

    asyncio.run(serve_briefly())
    assert _requests(metrics[1]) == 4
    assert _in_flight(metrics[1]) == 0  # gone: its gauge left at once, its counts stayed
    assert shares[1].fold_gone() == 1
    assert _requests(metrics[1]) == 4

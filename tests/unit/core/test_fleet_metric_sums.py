"""The fleet's sums of published snapshots: counters and histograms add up over every process
that ever served (the dead ones' too, through the retired sum), gauges over the live ones."""

from __future__ import annotations

from typing import Any

from keelwork.core.fleet_metrics import add, fleet_view, fold, subtract


def _counter(value: float, **labels: str) -> dict[str, Any]:
    return {"keelwork_requests": {"type": "counter", "help": "h", "samples": [
        ["keelwork_requests_total", sorted(labels.items()), value]]}}


def _gauge(value: float) -> dict[str, Any]:
    return {"keelwork_requests_in_flight": {"type": "gauge", "help": "g", "samples": [
        ["keelwork_requests_in_flight", [], value]]}}


def _value(snap: dict[str, Any], family: str, **labels: str) -> float:
    want = sorted(labels.items())
    return sum(v for _, lab, v in snap[family]["samples"] if sorted(map(tuple, lab)) == want)


def test_counters_add_up_by_label_set_and_gauges_only_when_asked() -> None:
    a = {**_counter(3, model="m", status="200"), **_gauge(2)}
    b = {**_counter(4, model="m", status="200"), **_gauge(5)}
    c = _counter(1, model="m", status="422")
    summed = add([a, b, c])
    assert _value(summed, "keelwork_requests", model="m", status="200") == 7
    assert _value(summed, "keelwork_requests", model="m", status="422") == 1
    assert _value(summed, "keelwork_requests_in_flight") == 7
    assert "keelwork_requests_in_flight" not in add([a, b], gauges=False)


def test_histograms_sum_their_buckets_counts_and_sums() -> None:
    def hist(n: float, total: float) -> dict[str, Any]:
        return {"lat": {"type": "histogram", "help": "", "samples": [
            ["lat_bucket", [["le", "0.1"]], n], ["lat_bucket", [["le", "+Inf"]], n],
            ["lat_count", [], n], ["lat_sum", [], total]]}}
    summed = add([hist(2, 0.1), hist(3, 0.4)])
    assert _value(summed, "lat", le="+Inf") == 5
    assert _value(summed, "lat") == 5 + 0.5  # count and sum share the empty label set here
    samples = {(name, tuple(map(tuple, lab))): v for name, lab, v in summed["lat"]["samples"]}
    assert samples[("lat_count", ())] == 5
    assert abs(samples[("lat_sum", ())] - 0.5) < 1e-12


def test_the_dead_keep_their_counts_and_lose_their_gauges() -> None:
    own = {**_counter(10, model="m"), **_gauge(1)}
    live = [{**_counter(5, model="m"), **_gauge(2)}]
    dead = [{**_counter(7, model="m"), **_gauge(9)}]
    retired = fold(None, dead)
    assert "keelwork_requests_in_flight" not in retired
    view = fleet_view(own, live, [retired])
    assert _value(view, "keelwork_requests", model="m") == 22
    assert _value(view, "keelwork_requests_in_flight") == 3
    # folding more dead ones onto the retired sum keeps what it had
    again = fold(retired, [_counter(1, model="m")])
    assert _value(again, "keelwork_requests", model="m") == 8


def test_subtract_leaves_what_was_counted_since_the_base() -> None:
    now = {**_counter(12, model="m"), **_gauge(4)}
    base = {**_counter(10, model="m"), **_gauge(3)}
    since = subtract(now, base)
    assert _value(since, "keelwork_requests", model="m") == 2
    assert _value(since, "keelwork_requests_in_flight") == 4  # a gauge is its current value
    assert subtract(now, {}) == add([now])

"""Traffic rollups: outcomes as the SLOs count them, percentiles from the bins, minutes folded
into hours, memory bounded."""

from __future__ import annotations

import random

import pytest

from keelwork.core.traffic import Rollup, Totals, latency_edges, merged, outcome

NOW = 1_800_000_000.0  # a multiple of 3600


@pytest.mark.parametrize(("status", "guard", "expected"), [
    ("ok", None, "answered"), ("fallback", "timeout", "answered"), ("error", None, "errors"),
    ("error", "load", "errors"), ("rejected", "input", "errors"),
    ("rejected", "concurrency", "overloaded"), ("rejected", "contract", "invalid"),
    ("ok", "shadow", None), ("error", "shadow", None), ("weird", None, "other")])
def test_outcomes_count_as_the_slo_evaluation_counts(status: str, guard: str | None,
                                                     expected: str | None) -> None:
    assert outcome(status, guard) == expected


def test_slo_thresholds_become_exact_edges() -> None:
    edges = latency_edges([123.0])
    assert 123.0 in edges and 250.0 in edges  # the exported histogram's 0.25 s bucket
    assert list(edges) == sorted(set(edges))


def _rollup_of(latencies: list[float], edges: tuple[float, ...]) -> Rollup:
    r = Rollup(edges)
    for x in latencies:
        b = next((i for i, e in enumerate(edges) if x <= e), len(edges))
        r.add("m", 1, int(NOW - 120), "ok", None, b, 1, now=NOW)
    return r


def test_percentiles_are_within_a_bin_of_the_exact_ones() -> None:
    rnd = random.Random(3)
    xs = sorted(rnd.lognormvariate(2.0, 0.7) for _ in range(20_000))
    edges = latency_edges()
    t = _rollup_of(xs, edges).totals(("m", 1), NOW - 3600, NOW)
    for q in (0.5, 0.95, 0.99):
        exact = xs[int(q * len(xs)) - 1]
        got = t.quantile(q)
        assert got is not None and abs(got - exact) / exact < 0.25, (q, got, exact)


def test_no_answered_request_has_no_percentile_and_no_error_share() -> None:
    t = Totals(latency_edges())
    assert t.quantile(0.99) is None and t.error_share() is None and t.requests == 0


def test_within_threshold_is_exact_on_an_edge_and_feeds_slo_counts() -> None:
    edges = latency_edges([100.0])
    r = _rollup_of([99.9, 100.0, 100.1, 5.0], edges)
    r.add("m", 1, int(NOW - 60), "error", None, None, 2, now=NOW)
    r.add("m", 1, int(NOW - 60), "rejected", "concurrency", None, 1, now=NOW)
    r.add("m", 1, int(NOW - 60), "rejected", "contract", None, 7, now=NOW)
    c = r.totals(("m", 1), NOW - 600, NOW).slo_counts(100.0)
    assert (c.answered, c.errors, c.overloaded, c.fast) == (4, 2, 1, 3)
    t = r.totals(("m", 1), NOW - 600, NOW)
    assert t.requests == 14 and t.count("invalid") == 7
    assert t.error_share() == pytest.approx(2 / 7)  # the contract's refusals left out


def test_minutes_fold_into_hours_and_the_horizon_forgets() -> None:
    edges = latency_edges()
    r = Rollup(edges, minute_horizon_s=3600, horizon_s=4 * 3600)
    for k in range(4 * 60):  # one request a minute for 4 hours
        r.add("m", 2, int(NOW - 4 * 3600 + 60 * k), "ok", None, 3, 1, now=NOW)
    assert r.totals(("m", 2), NOW - 4 * 3600, NOW).requests == 240
    later = NOW + 2 * 3600
    r.compact(later)
    assert all(s >= later - 3600 for s in r.minutes[("m", 2)])
    kept = r.totals(("m", 2), NOW - 4 * 3600, later).requests
    assert kept == 120  # the 2 oldest hours are past the horizon now
    hourly = r.series(("m", 2), NOW - 2 * 3600, 3600, 2)
    assert [h.requests for h in hourly] == [60, 60]


def test_series_are_bounded_and_the_excess_is_counted() -> None:
    r = Rollup(latency_edges(), max_series=2)
    for v in range(5):
        r.add("m", v, int(NOW - 60), "ok", None, 0, 10, now=NOW)
    assert r.keys() == [("m", 0), ("m", 1)] and r.dropped == 30


def test_merged_sums_totals() -> None:
    edges = latency_edges()
    a, b = _rollup_of([1.0], edges), _rollup_of([2.0, 3.0], edges)
    t = merged([a.totals(("m", 1), 0, NOW), b.totals(("m", 1), 0, NOW)])
    assert t.answered == 3 and sum(t.bins) == 3


@pytest.mark.parametrize("status", ["ok", "fallback", "error", "rejected", "weird", ""])
@pytest.mark.parametrize("guard", [None, "shadow", "input", "concurrency", "contract", "load",
                                   "timeout", ""])
def test_the_coded_status_and_guard_count_the_same(status: str, guard: str | None) -> None:
    """The store groups by the statuses and guards ``outcome`` tells apart, by index."""
    from keelwork.core.traffic import told

    assert outcome(*told(status, guard)) == outcome(status, guard)

"""keel.yaml's slos: accepted (enforced by the generated rules), and what cannot work refused
at `keel spec validate` with path and line."""

from __future__ import annotations

import pytest

from keelwork.errors import SpecError
from keelwork.spec.loader import parse_spec
from keelwork.spec.metric_names import LATENCY_BUCKETS, REQUEST_DURATION, REQUESTS

BASE = ("service: {name: s, owners: [a@example.com]}\n"
        "models: [{name: m, runtime: python, artifact: 'a:b', batching: {max_wait_ms: 60}}]\n")


def _problem(section: str) -> tuple[str, str, int | None, str]:
    with pytest.raises(SpecError) as err:
        parse_spec(BASE + section, env={})
    [d] = err.value.details
    return d.path, d.rule, d.line, d.message


def test_slos_are_accepted_now_that_rules_enforce_them() -> None:
    spec = parse_spec(BASE + "slos:\n  availability: 0.999\n  latency_p99_ms: 100\n"
                      "  error_rate: 0.01\n  throughput_rps: 5\n  window: 28d\n"
                      "  min_events: 20\n", env={})
    assert spec.slos.latency_p99_ms == 100 and spec.slos.min_events == 20


def test_a_latency_that_is_not_a_bucket_names_the_nearest() -> None:
    path, rule, line, message = _problem("slos:\n  latency_p99_ms: 40\n")
    assert (path, rule, line) == ("slos.latency_p99_ms", "latency_bucket", 4)
    assert "nearest are 25 and 50 (ms)" in message and REQUEST_DURATION in message


def test_a_p99_under_the_batching_wait_cannot_be_met() -> None:
    path, rule, line, message = _problem("slos:\n  latency_p99_ms: 50\n")
    assert (path, rule, line) == ("slos.latency_p99_ms", "slo_unmeetable", 4)
    assert "models[0].batching.max_wait_ms (60 ms)" in message


def test_a_tier_that_can_never_fire_is_refused() -> None:
    path, rule, _, message = _problem("slos: {availability: 0.9}\n")
    assert (path, rule) == ("slos.availability", "tier_never_fires")
    assert "fast" in message


@pytest.mark.parametrize(("section", "rule"), [
    ("slos: {availability: 0.99, window: 12h}", "slo_window"),
    ("slos: {availability: 0.99, tiers: [{name: a, long_window: 5m, short_window: 1h, "
     "burn_rate: 2}]}", "tier_windows"),
    ("slos: {availability: 0.99, window: 7d, tiers: [{name: a, long_window: 8d, "
     "short_window: 1h, burn_rate: 2}]}", "tier_window"),
    ("slos: {availability: 0.99, tiers: [{name: a, long_window: 1h, short_window: 5m, "
     "burn_rate: 2}, {name: a, long_window: 2h, short_window: 5m, burn_rate: 2}]}",
     "duplicate_tier"),
    ("slos: {availability: 0.99, min_events: 0}", "greater_than"),
    ("slos: {availabilty: 0.99}", "extra_forbidden"),
])
def test_bad_slos_are_refused(section: str, rule: str) -> None:
    assert _problem(section + "\n")[1] == rule


def test_the_metric_names_are_what_the_gateway_exports() -> None:
    from keelwork.adapters.metrics import GatewayMetrics

    m = GatewayMetrics()
    m.child(m.requests, "m", "1", "ok").inc()
    m.child(m.latency, "m").observe(0.01)
    text = m.render()[0].decode()
    assert f'{REQUESTS}{{model="m",status="ok",version="1"}}' in text
    for bound in LATENCY_BUCKETS:
        assert f'{REQUEST_DURATION}_bucket{{le="{bound!r}",model="m"}}' in text

"""core/slo: tiers (the workbook's, scaled), budget math, the plain-words text."""

from __future__ import annotations

import math

import pytest

from keelwork.core.slo import budget_spent, burn_rate, describe_burn, hours_left, scale_tiers
from keelwork.core.slo.objectives import format_duration, objectives_of, slo_set, tiers_of
from keelwork.spec.loader import parse_spec

BASE = ("service: {name: iris, owners: [ml@example.com, ops@example.com]}\n"
        "models: [{name: m, runtime: python, artifact: 'a:b'}, "
        "{name: n, runtime: python, artifact: 'a:c'}]\n")


def test_the_workbook_tiers_for_30_days() -> None:
    tiers = scale_tiers(30 * 86_400)
    assert [(t.name, t.severity, t.long_s, t.short_s, t.burn_rate) for t in tiers] == [
        ("fast", "page", 3600, 300, 14.4), ("slow", "page", 21_600, 1800, 6.0),
        ("ticket", "ticket", 259_200, 21_600, 1.0)]
    # the shares of the budget each tier fires on: 2%, 5%, 10%
    assert [round(t.budget_share(30 * 86_400), 4) for t in tiers] == [0.02, 0.05, 0.1]


def test_tiers_scale_with_the_window_and_keep_their_share_of_the_budget() -> None:
    week = scale_tiers(7 * 86_400)
    assert [format_duration(t.long_s) for t in week] == ["14m", "84m", "1008m"]
    assert [format_duration(t.short_s) for t in week] == ["1m", "7m", "84m"]
    for t in week:
        assert t.budget_share(7 * 86_400) == pytest.approx(
            {"fast": 0.02, "slow": 0.05, "ticket": 0.1}[t.name], rel=0.05)
    day = scale_tiers(86_400)
    assert all(t.short_s >= 60 and t.short_s < t.long_s for t in day)


def test_configured_tiers_are_used_as_written() -> None:
    spec = parse_spec(BASE + "slos:\n  availability: 0.99\n  tiers:\n"
                      "    - {name: fast, long_window: 2h, short_window: 10m, burn_rate: 10}\n",
                      env={})
    [t] = tiers_of(spec.slos)
    assert (t.name, t.severity, t.long_s, t.short_s, t.burn_rate) == ("fast", "page", 7200,
                                                                       600, 10.0)


def test_burn_math() -> None:
    assert burn_rate(0.0144, 0.001) == pytest.approx(14.4)
    assert budget_spent(0.00023, 0.001) == pytest.approx(0.23)
    # 77% of a 30-day budget left, burning 60x: 720 h * 0.77 / 60
    assert hours_left(0.23, 60.0, 30 * 86_400) == pytest.approx(9.24)
    assert hours_left(1.2, 2.0, 30 * 86_400) < 0
    assert math.isinf(hours_left(0.5, 0.0, 30 * 86_400))


def test_the_alert_says_in_plain_words_how_fast_the_budget_goes() -> None:
    assert describe_burn(30 * 86_400, 0.23, 61.6) == (
        "at this rate the 30-day error budget is gone in 9.0 h; 23% already spent")
    assert describe_burn(7 * 86_400, 1.4, 3.0) == (
        "the 7-day error budget is already gone; 140% spent")


def test_objectives_and_their_budgets() -> None:
    spec = parse_spec(BASE + "slos: {availability: 0.999, error_rate: 0.02, "
                      "latency_p99_ms: 250, throughput_rps: 5, window: 7d}\n", env={})
    objs = objectives_of(spec.slos)
    assert [(o.key, o.budget) for o in objs] == [
        ("availability", pytest.approx(0.001)), ("error_rate", 0.02), ("latency_p99", 0.01),
        ("throughput", None)]
    assert objs[2].threshold_s == 0.25
    slos = slo_set(spec)
    assert slos.owners == ("ml@example.com", "ops@example.com") and slos.models == ("m", "n")
    names = [a.name for a in slos.alerts()]
    assert names[:4] == ["KeelworkAvailabilityBurnFast", "KeelworkAvailabilityBurnSlow",
                         "KeelworkAvailabilityBurnTicket", "KeelworkAvailabilityNoData"]
    assert names[-2:] == ["KeelworkThroughputBelowFloor", "KeelworkThroughputNoData"]
    assert len(set(names)) == len(names)

"""The monthly budget's arithmetic and words: calendar months in UTC, the forecast, when the
budget runs out, which alerts hold."""

from __future__ import annotations

import datetime as dt

import pytest

from keelwork.core.budget import (
    budget_alerts,
    budget_status,
    conditions,
    day_words,
    month_bounds,
    spent_alert_name,
)
from keelwork.spec.loader import parse_spec

BASE = ("service: {name: shop, owners: [a@example.com]}\n"
        "models: [{name: m, runtime: python, artifact: 'a:b'}]\n")


def _ts(*args: int) -> float:
    return dt.datetime(*args, tzinfo=dt.UTC).timestamp()


@pytest.mark.parametrize(("now", "start", "end"), [
    (_ts(2026, 12, 5, 10, 30), _ts(2026, 12, 1), _ts(2027, 1, 1)),
    (_ts(2028, 2, 29, 23, 59, 59), _ts(2028, 2, 1), _ts(2028, 3, 1)),
    (_ts(2026, 3, 1), _ts(2026, 3, 1), _ts(2026, 4, 1)),
])
def test_the_month_is_the_calendar_month_in_utc(now: float, start: float, end: float) -> None:
    assert month_bounds(now) == (start, end)


def test_a_steady_rate_forecasts_the_month_and_the_day_it_runs_out() -> None:
    # December: 31 days. 100 spent by the 10th at 00:00, 10 a day (6h window: 2.5 spent).
    now = _ts(2026, 12, 10)
    s = budget_status(300.0, 100.0, 2.5, 6 * 3600, now)
    assert s.forecast == pytest.approx(100 + 10 * 22)
    assert s.share == pytest.approx(1 / 3)
    assert s.exhausted_at == pytest.approx(_ts(2026, 12, 30))  # 200 left at 10 a day
    assert day_words(s.exhausted_at or 0) == "December 30"
    # a budget that holds: no day this month
    assert budget_status(1000.0, 100.0, 2.5, 6 * 3600, now).exhausted_at is None
    # spent already: now
    assert budget_status(50.0, 100.0, 2.5, 6 * 3600, now).exhausted_at == now
    # no spend in the window: the forecast is what is spent
    assert budget_status(300.0, 100.0, 0.0, 6 * 3600, now).forecast == 100.0


def test_the_alerts_of_a_budget() -> None:
    cost = parse_spec(BASE + "cost: {cpu_hour: 1, monthly_budget: 10, alert_at: [1.2, 0.5, "
                      "1.0]}\n", env={}).cost
    got = [(a.name, a.severity, a.tier) for a in budget_alerts(cost)]
    assert got == [("KeelworkCostBudgetSpent50", "ticket", "50%"),
                   ("KeelworkCostBudgetSpent100", "page", "100%"),
                   ("KeelworkCostBudgetSpent120", "page", "120%"),
                   ("KeelworkCostBudgetForecast", "ticket", "forecast")]
    assert spent_alert_name(0.125) == "KeelworkCostBudgetSpent12_5"
    no_budget = parse_spec(BASE + "cost: {cpu_hour: 1}\n", env={}).cost
    assert budget_alerts(no_budget) == []


def _firing(budget: float, spent: float, window_spend: float) -> dict[str, dict[str, str]]:
    spec = parse_spec(BASE + f"cost: {{per_1k_predictions: 1, monthly_budget: {budget}}}\n",
                      env={})
    status = budget_status(budget, spent, window_spend, 6 * 3600, _ts(2026, 12, 10))
    return {f.alert.name: {**f.labels, **f.annotations} for f in conditions(spec, status)}


def test_shares_fire_from_their_threshold_on() -> None:
    assert _firing(300, 239.99, 0) == {}
    got = _firing(300, 240, 0)
    assert list(got) == ["KeelworkCostBudgetSpent80"]
    assert got["KeelworkCostBudgetSpent80"]["description"] == (
        "at this rate the monthly budget of 300 USD (calendar month, UTC) lasts the month; "
        "80% already spent (forecast for the month: 240.00 USD). Runbook: "
        "runbooks/KeelworkCostBudgetSpent80.md")
    assert {k: v for k, v in got["KeelworkCostBudgetSpent80"].items()
            if k in ("service", "severity", "slo", "tier")} == {
        "service": "shop", "severity": "ticket", "slo": "cost_budget", "tier": "80%"}
    gone = _firing(300, 310, 0)
    assert sorted(gone) == ["KeelworkCostBudgetSpent100", "KeelworkCostBudgetSpent80"]
    assert gone["KeelworkCostBudgetSpent100"]["severity"] == "page"
    assert gone["KeelworkCostBudgetSpent100"]["description"].startswith(
        "the monthly budget of 300 USD (calendar month, UTC) is already spent; 103% spent")


def test_the_forecast_fires_while_the_rate_would_overspend_and_says_when() -> None:
    # 10 a day from the 10th: 100 + 220 = 320 > 300, runs out on the 30th
    got = _firing(300, 100, 2.5)
    assert list(got) == ["KeelworkCostBudgetForecast"]
    assert got["KeelworkCostBudgetForecast"]["description"] == (
        "at this rate the monthly budget of 300 USD (calendar month, UTC) is spent on "
        "December 30; 33% already spent (forecast for the month: 320.00 USD). Runbook: "
        "runbooks/KeelworkCostBudgetForecast.md")
    assert _firing(330, 100, 2.5) == {}  # 320 <= 330
    # once spent, the forecast stops and the 100% alert speaks
    assert "KeelworkCostBudgetForecast" not in _firing(300, 300, 2.5)

"""The dashboard page from a snapshot: "no data" where nothing was measured, numbers formatted,
user strings escaped, nothing external."""

from __future__ import annotations

import re
from typing import Any

import pytest

from keelwork.core.reports.dashboard import count, money, ms, rate, render_dashboard, share


def _version(**over: Any) -> dict[str, Any]:
    v: dict[str, Any] = {
        "version": 3, "aliases": ["champion"], "requests": 1234567, "answered": 1230000,
        "errors": 4567, "overloaded": 0, "invalid": 0, "error_share": 0.0037,
        "p50": 4.55, "p95": 18.2, "p99": 1234.0, "hourly_requests": [10] * 24,
        "hourly_errors": [1] * 24, "hourly_p99": [5.0] * 23 + [None], "cost": 12.345}
    v.update(over)
    return v


def _snap(models: list[dict[str, Any]], alerts: Any = None) -> dict[str, Any]:
    return {"service": "svc", "owners": ["a@example.com"], "generated_at": "x",
            "now": 1_800_000_000.0, "span_s": 86400, "slo_window": "30d", "models": models,
            "alerts": alerts, "cost_currency": "EUR", "budget": None,
            "traffic_warm_s": 0.1}


def _model(**over: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"name": "credit", "aliases": {"champion": 3}, "champion": 3,
                         "versions": [], "slos": [], "log": True, "monitor": None,
                         "monitoring_stored": False, "rollout": None,
                         "hour_starts": [1_800_000_000.0 - 3600 * (23 - i) for i in range(24)]}
    m.update(over)
    return m


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


def test_numbers_are_formatted() -> None:
    assert count(1234567) == "1,234,567" and count(0) == "0"
    assert share(0.0037) == "0.37%" and share(0.123) == "12.3%" and share(0.0) == "0.00%"
    assert ms(4.554) == "4.55 ms" and ms(1234.0) == "1.23 s" and ms(250.0) == "250 ms"
    assert rate(2.43) == "2.4x" and money(12.345, "EUR") == "12.35 EUR"
    assert money(0.0042, "USD") == "0.0042 USD"


@pytest.mark.parametrize("value", [None, float("nan"), "12"])
def test_missing_numbers_say_no_data(value: Any) -> None:
    for f in (count, share, ms, rate):
        assert "no data" in f(value)


def test_a_model_without_traffic_shows_no_data_never_zero() -> None:
    html = render_dashboard(_snap([_model(versions=[_version(
        requests=None, answered=None, errors=None, overloaded=None, invalid=None,
        error_share=None, p50=None, p95=None, p99=None, cost=None,
        hourly_requests=[0] * 24, hourly_errors=[0] * 24, hourly_p99=[None] * 24)])]))
    row = html[html.index("<b>v3</b>"):]
    row = row[:row.index("</tr>")]
    # requests, errors, error rate, p50, p95, p99, both charts, cost
    assert _text(row).count("no data") == 9
    assert ">0<" not in row and "0.00%" not in row
    head = html[html.index('class="kpis"'):html.index("</section>")]
    assert "no data" in head  # totals and alerts: nothing measured


def test_a_store_without_a_log_and_without_monitoring_says_so() -> None:
    html = render_dashboard(_snap([_model(log=False)]))
    assert "no prediction log yet" in html
    assert "no monitoring results in this store yet" in html
    assert "No alert state in this store" in html


def test_measured_values_are_shown_with_their_charts() -> None:
    html = render_dashboard(_snap([_model(versions=[_version()])]))
    text = _text(html)
    for expected in ("1,234,567", "4,567", "0.37%", "4.55 ms", "18.2 ms", "1.23 s",
                     "12.35 EUR"):
        assert expected in text, expected
    assert html.count("<rect") >= 24 and "<polyline" in html
    assert "not configured" in text  # guards are not built yet
    assert "no budget set" in text


def test_slo_budget_and_burn_rates() -> None:
    slo = {"key": "availability", "title": "Availability", "statement": "99.9% answered",
           "target": 0.999, "window": "30d", "counted": True, "ratio": True, "events": 1000,
           "bad": 3, "budget": 0.001, "budget_left": -2.0,
           "tiers": [{"name": "fast", "severity": "page", "long": "1h", "short": "5m",
                      "threshold": 14.4, "burn_long": 20.0, "burn_short": 15.0},
                     {"name": "slow", "severity": "page", "long": "6h", "short": "30m",
                      "threshold": 6.0, "burn_long": None, "burn_short": 3.0}]}
    html = render_dashboard(_snap([_model(slos=[slo])]))
    text = _text(html)
    assert "error budget spent" in text and "20.0x" in text and "15.0x" in text
    assert "t-bad\">page" in html  # the fast tier burns over its threshold
    assert "no data" in html[html.index("slow"):]


def test_user_strings_are_escaped_and_nothing_is_loaded_from_outside() -> None:
    alerts = {"open": [{"name": "<img src=x>", "model": "m", "severity": "page",
                        "since": 1.0, "summary": "<b>", "receivers": ["r"]}],
              "failures": [{"name": "A", "receiver": "r", "state": "firing", "attempts": 3,
                            "retry_at": 2.0, "error": "<script>alert(1)</script>"}]}
    html = render_dashboard(_snap([_model(name="<script>x</script>")], alerts))
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html
    assert not re.search(r"(src|href)=\"?https?:", html) and "@import" not in html
    assert "Notifications not delivered" in html


def test_quality_slos_and_guard_hits() -> None:
    quality = {"key": "mae", "title": "MAE", "statement": "mean error under 2", "target": 2.0,
               "window": "30d", "counted": True, "ratio": True, "events": 120.0,
               "bad": 17.25, "budget": 0.5, "budget_left": 0.71, "tiers": [],
               "as_of": 1_800_000_000.0}
    snap = _snap([_model(quality_slos=[quality], guard_hits={"out_of_distribution": 7.0})])
    snap["guards"] = {"out_of_distribution": {"action": "flag"},
                      "rate_limit": {"requests_per_second": 50.0, "burst": 10, "per": "key"}}
    text = " ".join(_text(render_dashboard(snap)).split())
    assert "quality" in text and "17.2 bad of 120 events" in text and "71.0%" in text
    assert "out_of_distribution (flag): 7 instances" in text
    assert "rate_limit: 50/s per key (burst 10)" in text and "not configured" not in text
    quiet = _snap([_model()])
    quiet["guards"] = {"out_of_distribution": {"action": "reject"}, "rate_limit": None}
    assert "none since the server started" in _text(render_dashboard(quiet))


def test_the_month_and_the_budget() -> None:
    snap = _snap([_model(name="m")])
    snap["budget"] = {"monthly": 10.0, "alert_at": [0.8, 1.0]}
    snap["month"] = {"spent": 5.0, "forecast": 12.5, "share": 0.5, "exhausted_at": None,
                     "month_start": 0.0, "by_version": {"m:1": 4.0, "m:2": 1.0, "x:1": 9.0},
                     "sentence": "at this rate the monthly budget is spent on December 19"}
    text = " ".join(_text(render_dashboard(snap)).split())
    assert "v1 4.00 EUR, v2 1.00 EUR" in text and "x:1" not in text and "9.00" not in text
    assert "5.00 EUR of 10.00 EUR (50.0%)" in text and "forecast 12.50 EUR" in text
    assert "spent on December 19" in text
    snap["month"] = None
    assert "spent: no data" in " ".join(_text(render_dashboard(snap)).split())

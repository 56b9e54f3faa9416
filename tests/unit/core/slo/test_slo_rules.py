"""core/slo.rules: event-weighted ratios, min events, no data, labels, inhibit rules."""

from __future__ import annotations

from keelwork.core.slo import inhibit_rules, rule_groups, slo_set
from keelwork.core.slo.promtest import promtool_tests
from keelwork.core.slo.runbooks import runbooks
from keelwork.spec.loader import parse_spec
from keelwork.spec.metric_names import REQUEST_DURATION, REQUESTS

SPEC = ("service: {name: iris, owners: [ml@example.com]}\n"
        "models: [{name: m, runtime: python, artifact: 'a:b'}]\n"
        "slos: {availability: 0.999, latency_p99_ms: 100, throughput_rps: 2, min_events: 50}\n")


def _rules(key: str, **kw: object) -> list[dict[str, object]]:
    docs = rule_groups(slo_set(parse_spec(SPEC, env={})), **kw)  # type: ignore[arg-type]
    [group] = docs[key]["groups"]
    rules: list[dict[str, object]] = group["rules"]
    return rules


def _by(rules: list[dict[str, object]], key: str, name: str) -> dict[str, object]:
    return next(r for r in rules if r.get(key) == name)


def test_the_ratio_is_bad_events_over_all_events_summed_per_model() -> None:
    rules = _rules("availability")
    expr = str(_by(rules, "record", "keelwork:slo_error_ratio:rate1h")["expr"])
    # sums first, then one division: never an average of per-series ratios (sloth #332)
    assert expr.count("sum by (model) (rate(") == 3 and "avg" not in expr
    assert f'{REQUESTS}{{status=~"error|overloaded"}}' in expr
    assert f'{REQUESTS}{{status!="invalid"}}' in expr
    period = str(_by(rules, "record", "keelwork:slo_error_ratio:rate30d")["expr"])
    assert "[30d]" in period and "avg_over_time" not in period


def test_latency_counts_requests_over_the_bucket() -> None:
    expr = str(_by(_rules("latency_p99"), "record", "keelwork:slo_error_ratio:rate5m")["expr"])
    assert f'{REQUEST_DURATION}_bucket{{le="0.1"}}' in expr
    assert f"{REQUEST_DURATION}_count" in expr


def test_a_burn_alert_needs_both_windows_and_min_events_and_carries_routing_labels() -> None:
    alert = _by(_rules("availability"), "alert", "KeelworkAvailabilityBurnFast")
    expr = str(alert["expr"])
    assert "rate1h" in expr and "rate5m" in expr and "> 0.0144" in expr
    assert "keelwork:slo_events:increase1h" in expr and ">= 50" in expr
    assert alert["labels"] == {"severity": "page", "slo": "availability", "tier": "fast",
                               "service": "iris"}
    notes = alert["annotations"]
    assert isinstance(notes, dict)
    assert notes["runbook_url"] == "runbooks/KeelworkAvailabilityBurnFast.md"
    assert "at this rate the 30-day error budget is gone in" in notes["description"]
    assert "already spent" in notes["description"]


def test_a_slower_page_holds_and_yields_to_a_faster_page_tiers_burn() -> None:
    """One incident, one page: the slow page waits the fast tier's short window (``for``) and
    stays quiet while the fast tier's long window burns over 14.4x; the fast page and the
    ticket are as before."""
    rules = _rules("availability")
    fast, slow, ticket = (_by(rules, "alert", f"KeelworkAvailabilityBurn{t}")
                          for t in ("Fast", "Slow", "Ticket"))
    assert slow["for"] == "5m" and "for" not in fast and "for" not in ticket
    sel = '{service="iris",slo="availability"}'
    assert str(slow["expr"]).endswith(
        f"\nunless on (model) (keelwork:slo_error_ratio:rate1h{sel} > 0.0144\n"
        f"  and on (model) keelwork:slo_events:increase1h{sel} >= 50)")
    assert "unless" not in str(fast["expr"]) and "unless" not in str(ticket["expr"])
    assert str(slow["expr"]).count("unless") == 1


def test_no_data_is_an_alert_of_its_own() -> None:
    alert = _by(_rules("availability", labels={"job": "keel"}),
                "alert", "KeelworkAvailabilityNoData")
    assert alert["expr"] == f'absent({REQUESTS}{{model="m",job="keel"}})'
    assert alert["for"] == "10m"


def test_runbook_base_url() -> None:
    alert = _by(_rules("throughput", runbook_base="https://ops.example.com/rb/"),
                "alert", "KeelworkThroughputBelowFloor")
    assert alert["annotations"] == {**alert["annotations"],  # type: ignore[dict-item]
                                    "runbook_url": "https://ops.example.com/rb/"
                                                   "KeelworkThroughputBelowFloor.md"}
    assert alert["expr"] == 'keelwork:slo_throughput:rate5m{service="iris",slo="throughput"} < 2'


def test_inhibit_rules_quiet_the_slower_tiers_while_a_faster_one_fires() -> None:
    rules = inhibit_rules(parse_spec(SPEC, env={}))
    pairs = [(r["source_matchers"][0], r["target_matchers"][0]) for r in rules]
    assert ('alertname="KeelworkAvailabilityBurnFast"',
            'alertname="KeelworkAvailabilityBurnSlow"') in pairs
    assert ('alertname="KeelworkAvailabilityBurnSlow"',
            'alertname="KeelworkAvailabilityBurnTicket"') in pairs
    assert not any("Slow" in s and "Fast" in t for s, t in pairs)
    assert all(r["equal"] == ["service", "slo", "model"] for r in rules)
    assert len(rules) == 6  # 3 pairs for each of the two ratio SLOs


def test_the_promtool_tests_assert_absent_at_t_minus_1_and_firing_at_t() -> None:
    slos = slo_set(parse_spec(SPEC, env={}))
    doc = promtool_tests(slos, slos.objectives[0], "availability.rules.yml")
    fast = next(c for c in doc["tests"] if c["name"].startswith(
        "KeelworkAvailabilityBurnFast: fires"))
    before, at = fast["alert_rule_test"]
    assert int(at["eval_time"][:-1]) - int(before["eval_time"][:-1]) == 1
    assert before["exp_alerts"] == [] and len(at["exp_alerts"]) == 1
    names = [c["name"] for c in doc["tests"]]
    assert any("min_events" in n for n in names) and any("event-weighted" in n for n in names)
    assert any("no data" in n for n in names)


def test_one_runbook_per_alert_with_owner_and_commands() -> None:
    slos = slo_set(parse_spec(SPEC, env={}))
    books = runbooks(slos)
    assert set(books) == {a.name for a in slos.alerts()}
    text = books["KeelworkAvailabilityBurnFast"]
    assert "keel log tail --model m --status error" in text
    assert "keel monitor run --model m --window 1h --since 1h" in text
    assert "keel rollback m" in text and "ml@example.com" in text
    slow = books["KeelworkAvailabilityBurnSlow"]
    assert ("fires only after its condition held 5m, and not while the long window of "
            "`KeelworkAvailabilityBurnFast` burns") in " ".join(slow.split())
    assert "held" not in text and "held" not in books["KeelworkAvailabilityBurnTicket"]

"""core/slo/evaluate: the generated rules' conditions, labels and words, over counts."""

from __future__ import annotations

import pytest

from keelwork.core.slo import describe_burn, rule_groups, slo_set
from keelwork.core.slo.evaluate import (
    Evaluator,
    SloCounts,
    WindowCounts,
    conditions,
    windows_needed,
)
from keelwork.core.slo.objectives import SloSet
from keelwork.core.slo.rules import alert_annotations, alert_labels
from keelwork.spec.loader import parse_spec

BASE = ("service: {name: iris, owners: [ml@example.com]}\n"
        "models: [{name: m, runtime: python, artifact: 'a:b'}, "
        "{name: n, runtime: python, artifact: 'a:c'}]\n")
HOUR, FIVE_MIN, SIX_H, HALF_H, DAYS3, MONTH = 3600, 300, 21_600, 1800, 259_200, 2_592_000


def _slos(extra: str = "slos:\n  availability: 0.999\n") -> SloSet:
    return slo_set(parse_spec(BASE + extra, env={}))


def _steady(slos: SloSet, per_window: dict[int, SloCounts], model: str = "m",
            other: SloCounts | None = None) -> WindowCounts:
    """Counts for every window: ``per_window``'s, else plenty of good requests (the other
    model ``n`` holds ``other``, by default good requests too)."""
    good = other if other is not None else SloCounts(answered=10_000, fast=10_000)
    fine = SloCounts(answered=100_000, fast=100_000)
    return {w: {model: per_window.get(w, fine), "n": good} for w in windows_needed(slos)}


def _names(slos: SloSet, counts: WindowCounts, model: str = "m") -> list[str]:
    return [f.alert.name for f in conditions(slos, counts) if f.model == model]


def test_the_windows_read_are_the_rules_windows() -> None:
    slos = _slos()
    assert windows_needed(slos) == [FIVE_MIN, HALF_H, HOUR, SIX_H, DAYS3, MONTH]
    floor = _slos("slos:\n  throughput_rps: 1\n")
    assert FIVE_MIN in windows_needed(floor)


def test_a_fast_burn_fires_with_the_rules_labels_and_words() -> None:
    slos = _slos()
    bad = SloCounts(answered=980, errors=20)  # 2% bad: over 14.4 x 0.1%
    month = SloCounts(answered=99_977, errors=23)  # 23% of the budget spent
    counts = _steady(slos, {HOUR: bad, FIVE_MIN: bad, MONTH: month})
    [fired] = [f for f in conditions(slos, counts) if f.model == "m"]
    a = fired.alert
    assert a.name == "KeelworkAvailabilityBurnFast"
    assert fired.labels == {"alertname": a.name, **alert_labels(slos, a), "model": "m"}
    sentence = describe_burn(MONTH, 0.23, 20.0)
    assert fired.annotations == alert_annotations(slos, a, "runbooks", model="m",
                                                  sentence=sentence)
    assert "at this rate the 30-day error budget is gone in 27.7 h; 23% already spent" in \
        fired.annotations["description"]
    # the same name and labels as the Prometheus rule
    rule = next(r for g in rule_groups(slos)["availability"]["groups"] for r in g["rules"]
                if r.get("alert") == a.name)
    assert {k: v for k, v in fired.labels.items() if k not in ("alertname", "model")} == \
        rule["labels"]


def test_both_windows_must_burn() -> None:
    slos = _slos()
    bad, good = SloCounts(answered=980, errors=20), SloCounts(answered=1000)
    assert _names(slos, _steady(slos, {HOUR: bad, FIVE_MIN: good})) == []
    assert _names(slos, _steady(slos, {HOUR: good, FIVE_MIN: bad})) == []
    # exactly at the threshold is not over it (the rules compare with >)
    edge = SloCounts(answered=10_000 - 144, errors=144)
    assert _names(slos, _steady(slos, {HOUR: edge, FIVE_MIN: edge})) == []


def test_min_events_on_the_long_window() -> None:
    slos = _slos()  # min_events 100
    few = SloCounts(answered=50, errors=49)
    enough = SloCounts(answered=51, errors=49)
    assert _names(slos, _steady(slos, {HOUR: few, FIVE_MIN: few})) == []
    assert _names(slos, _steady(slos, {HOUR: enough, FIVE_MIN: few})) == [
        "KeelworkAvailabilityBurnFast"]


def test_no_data_is_its_own_alert_and_never_good() -> None:
    slos = _slos()
    empty: WindowCounts = {}
    # no event: no burn (no ratio), but no data for every model
    assert {(f.alert.name, f.model) for f in conditions(slos, empty)} == {
        ("KeelworkAvailabilityNoData", "m"), ("KeelworkAvailabilityNoData", "n")}
    # an empty short window does not read as good: no burn, and the model has data
    bad = SloCounts(answered=900, errors=100)
    counts = _steady(slos, {HOUR: bad, FIVE_MIN: SloCounts()})
    assert _names(slos, counts) == []
    # no data fires after 10 minutes, as the rule's ``for``
    ev = Evaluator(slos)
    assert ev.step(empty, 1000.0).firing == []
    assert ev.step(empty, 1599.0).firing == []
    assert len(ev.step(empty, 1600.0).firing) == 2
    data = _steady(slos, {}, other=SloCounts())
    assert [f.model for f in ev.step(data, 1630.0).firing] == ["n"]
    assert ev.step(_steady(slos, {}), 1660.0).firing == []
    assert ev.step(empty, 1690.0).firing == []  # the 10 minutes start again
    assert len(ev.step(empty, 2290.0).firing) == 2


def test_ratios_are_event_weighted() -> None:
    slos = _slos()
    # the error-rate SLO counts errors only; availability errors and overloads
    c = SloCounts(answered=900, errors=50, overloaded=50, fast=800)
    [avail] = slos.objectives
    assert c.ratio(avail) == pytest.approx(0.1)
    err = _slos("slos:\n  error_rate: 0.01\n  latency_p99_ms: 250\n")
    er, lat = err.objectives
    assert c.ratio(er) == pytest.approx(0.05)
    assert c.ratio(lat) == pytest.approx(100 / 900)  # answered only
    assert SloCounts().ratio(er) is None


def test_a_faster_tier_inhibits_the_slower_ones_of_the_same_slo_and_model() -> None:
    slos = _slos()
    bad = SloCounts(answered=900, errors=100)  # 10%: every tier burns
    counts = {w: {"m": bad, "n": bad} for w in windows_needed(slos)}
    ev = Evaluator(slos).step(counts, 0.0)
    assert sorted((f.alert.name, f.model) for f in ev.firing) == [
        ("KeelworkAvailabilityBurnFast", "m"), ("KeelworkAvailabilityBurnFast", "n")]
    # the ticket is inhibited; the slow page does not even hold: the burn is the fast page's
    assert sorted((f.alert.name, f.model) for f in ev.inhibited) == [
        ("KeelworkAvailabilityBurnTicket", "m"), ("KeelworkAvailabilityBurnTicket", "n")]
    # the fast tier stops (its short window is good): the ticket is no longer inhibited, but
    # the slow page stays quiet while the fast tier's long window burns over 14.4x (its short
    # window outlasts the fast one's: it would page a second time for the same incident)
    good = SloCounts(answered=1000)
    calmer = {w: {"m": good if w == FIVE_MIN else bad, "n": good} for w in windows_needed(slos)}
    later = Evaluator(slos).step(calmer, 0.0)
    assert [(f.alert.name, f.model) for f in later.firing] == [
        ("KeelworkAvailabilityBurnTicket", "m")]
    assert later.inhibited == []


def test_the_slow_page_pages_for_a_burn_too_slow_for_the_fast_one() -> None:
    slos = _slos()  # budget 0.1%: fast over 1.44%, slow over 0.6%
    slow_burn = SloCounts(answered=990, errors=10)  # 1%: slow and ticket, not fast
    counts = _steady(slos, {w: slow_burn for w in (HOUR, FIVE_MIN, SIX_H, HALF_H, DAYS3)})
    ev = Evaluator(slos)

    def pages(at: float) -> list[str]:
        return [f.alert.name for f in ev.step(counts, at).firing if f.alert.severity == "page"]

    # it holds for the fast tier's short window (5 min) first, then pages (and from then on
    # inhibits the ticket)
    assert pages(0.0) == [] and pages(299.0) == []
    fired = ev.step(counts, 300.0)
    assert [f.alert.name for f in fired.firing] == ["KeelworkAvailabilityBurnSlow"]
    assert [f.alert.name for f in fired.inhibited] == ["KeelworkAvailabilityBurnTicket"]
    # once the fast tier's long window held a faster burn (2% in the last hour), the slow
    # page does not hold: that burn is the fast tier's
    recent = _steady(slos, {HOUR: SloCounts(answered=980, errors=20), FIVE_MIN: slow_burn,
                            SIX_H: slow_burn, HALF_H: slow_burn, DAYS3: slow_burn})
    assert "KeelworkAvailabilityBurnSlow" not in _names(slos, recent)
    # ... unless those are too few events for the fast tier to page (min_events 100)
    few = _steady(slos, {HOUR: SloCounts(answered=49, errors=1), FIVE_MIN: slow_burn,
                         SIX_H: slow_burn, HALF_H: slow_burn, DAYS3: slow_burn})
    assert "KeelworkAvailabilityBurnSlow" in _names(slos, few)


def test_at_a_burns_start_the_slow_page_waits_for_the_fast_one() -> None:
    """With little history both long windows hold the same requests, and the slow tier crosses
    its lower rate first; it holds 5 minutes, by which time the fast tier pages instead."""
    slos = _slos()
    ev = Evaluator(slos)

    def pages(per_window: dict[int, SloCounts], at: float) -> list[str]:
        counts = {w: {"m": per_window.get(w, per_window[0])} for w in windows_needed(slos)}
        return [f.alert.name for f in ev.step(counts, at).firing if f.alert.severity == "page"]

    young = SloCounts(answered=990, errors=10)  # the same 1% in every window
    assert pages({0: young}, 0.0) == []
    burning = SloCounts(answered=900, errors=100)
    assert pages({0: burning}, 60.0) == ["KeelworkAvailabilityBurnFast"]
    # the fast page resolves (short window good): the slow one neither paged nor pages now
    assert pages({0: burning, FIVE_MIN: SloCounts(answered=1000)}, 400.0) == []


def test_latency_counts_answered_requests_over_the_threshold() -> None:
    slos = _slos("slos:\n  latency_p99_ms: 250\n")
    slow = SloCounts(answered=1000, errors=500, fast=800)  # errors are no latency event
    assert _names(slos, _steady(slos, {HOUR: slow, FIVE_MIN: slow})) == [
        "KeelworkLatencyP99BurnFast"]


def test_the_throughput_floor_holds_for_five_minutes() -> None:
    slos = _slos("slos:\n  throughput_rps: 1\n")
    low = {FIVE_MIN: {"m": SloCounts(answered=150), "n": SloCounts(answered=600)},
           MONTH: {"m": SloCounts(answered=10_000), "n": SloCounts(answered=10_000)}}
    ev = Evaluator(slos)
    assert ev.step(low, 0.0).firing == []
    [f] = ev.step(low, 300.0).firing
    assert (f.alert.name, f.model) == ("KeelworkThroughputBelowFloor", "m")
    assert f.annotations == alert_annotations(slos, f.alert, "runbooks", model="m",
                                              value="0.50")
    # a model without data is the no-data alert's, not the floor's
    assert [a.alert.name for a in conditions(slos, {})] == ["KeelworkThroughputNoData"] * 2

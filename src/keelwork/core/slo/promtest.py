"""``promtool test rules`` files for the SLO rules: each alert absent at minute T-1, firing at T.

Each test case scripts a traffic pattern and computes T from the burn-rate formula, not
from a run of Prometheus. For a tier with long window L minutes, rate b and budget e, and
traffic whose bad share jumps from 0 to p at minute E (after at least L healthy minutes), the
long window's bad share k minutes later is p*k/L, so the tier fires at the first k with
p*k/L > b*e (the short window, shorter, is already over it). p is chosen so that b*e*L/p sits
half-way between two whole minutes, and so that T is the same whether a range selector
includes the sample at its start (Prometheus 2) or not (Prometheus 3): the short window is
full by then, so the alert's text (from the short window) is the same for both as well. A
slower page tier fires its ``for`` (the fastest page tier's short window) after its condition
first holds, and its p stays under the faster page tiers' rates, which would make the burn
theirs (:meth:`~keelwork.core.slo.objectives.SloSet.faster_pages`).

Beside the tiers: no data is an alert (service-level-operator #19); too few events do not
page (pyrra #1925); a version with ten failing requests next to one with a thousand good ones
does not page, as an average of the two ratios would (sloth #332).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from keelwork.core.slo.objectives import (
    FLOOR_FOR_S,
    FLOOR_RATE_S,
    NO_DATA_FOR_S,
    Alert,
    Objective,
    SloSet,
    Tier,
    budget_spent,
    burn_rate,
    describe_burn,
)
from keelwork.core.slo.rules import BAD_STATUSES, alert_annotations, alert_labels
from keelwork.spec.metric_names import REQUEST_DURATION, REQUESTS, bucket_label

Case = dict[str, Any]
#: Minutes of busy traffic at the start of a burn case (see :func:`_burn_case`).
_BUSY_MIN = 10


def _counter(segments: list[tuple[int, float]]) -> str:
    """promtool's series notation for a counter at 0 at minute 0, then ``(minutes, increase
    per minute)`` segments."""
    parts, value = ["0"], 0.0
    for minutes, step in segments:
        if minutes <= 0:
            continue
        parts.append(f"{value + step!r}+{step!r}x{minutes - 1}")
        value += step * minutes
    return " ".join(parts)


def _selector(metric: str, labels: Mapping[str, str]) -> str:
    return metric + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _series(o: Objective, model: str, good: list[tuple[int, float]],
            bad: list[tuple[int, float]], extra: Mapping[str, str]) -> list[dict[str, str]]:
    """Input series of one model (and one ``extra`` label set) with good and bad events."""
    base = {"model": model, **extra}
    if o.threshold_s is not None:
        total = _merge(good, bad)
        return [
            {"series": _selector(f"{REQUEST_DURATION}_count", base), "values": _counter(total)},
            {"series": _selector(f"{REQUEST_DURATION}_bucket",
                                 {**base, "le": bucket_label(o.threshold_s)}),
             "values": _counter(good)}]
    bad_status = BAD_STATUSES[o.key].split("|")[0]
    return [
        {"series": _selector(REQUESTS, {**base, "status": "ok", "version": "1"}),
         "values": _counter(good)},
        {"series": _selector(REQUESTS, {**base, "status": bad_status, "version": "1"}),
         "values": _counter(bad)}]


def _merge(a: list[tuple[int, float]], b: list[tuple[int, float]]) -> list[tuple[int, float]]:
    assert [m for m, _ in a] == [m for m, _ in b]
    return [(m, x + y) for (m, x), (_, y) in zip(a, b, strict=True)]


def _near_half(x: float) -> bool:
    """Whether printing ``x`` rounded could flip on float noise (x*1 close to n + 0.5)."""
    return abs((x % 1.0) - 0.5) < 1e-6


def _burn_case(slos: SloSet, a: Alert, model: str, extra: Mapping[str, str],
               runbook_base: str) -> Case | None:
    """The case of one burn tier, or None when no error pattern can make it fire."""
    o, t = a.objective, a.tier
    assert t is not None and o.budget is not None
    long_m, short_m = t.long_s // 60, t.short_s // 60
    thr = t.threshold(o.budget)
    hold = slos.page_hold_s(a) // 60  # a slower page tier's ``for``, in minutes
    for n in range(short_m, long_m // 2):
        x = n + 0.5  # b*e*L/p: the crossing, half-way between two minutes
        p = thr * long_m / x
        if p > 1.0:
            continue
        k = n + 1 + hold  # the condition holds from minute n + 1, fires ``hold`` later
        # a faster page tier's long window must stay under its rate (well under: a window
        # still partly before the jump is read with extrapolation), or the burn is its page
        if any(p * min(k, f.tier.long_s // 60) / (f.tier.long_s // 60)
               >= 0.95 * f.tier.threshold(o.budget)
               for f in slos.faster_pages(a) if f.tier is not None):
            continue
        per_min = max(60.0, math.ceil(2 * slos.min_events / long_m))
        # A busy first stretch (older than any long window) dilutes the budget spent to about
        # a quarter, so the text reads "gone in ... h" rather than "already gone".
        ramp = long_m + 5
        busy = max(1.0, round((p * k / (0.25 * o.budget) - (ramp + k)) / _BUSY_MIN, 3))
        start = _BUSY_MIN + ramp
        spent = budget_spent(p * k / (busy * _BUSY_MIN + ramp + k), o.budget)
        burn = burn_rate(p, o.budget)
        left = (1.0 - spent) * (slos.window_s / 3600.0) / burn
        if _near_half(left * 10) or _near_half(spent * 100):
            continue
        sentence = describe_burn(slos.window_s, spent, burn)
        after = k + 2
        good = [(_BUSY_MIN, per_min * busy), (ramp, per_min), (after, per_min * (1 - p))]
        bad = [(_BUSY_MIN, 0.0), (ramp, 0.0), (after, per_min * p)]
        return {
            "name": f"{a.name}: fires {k} min after the bad share jumps to {p:.4g}"
                    + (f" (its condition holds for {hold} min first)" if hold else ""),
            "interval": "1m",
            "input_series": _series(o, model, good, bad, extra),
            "alert_rule_test": [
                {"eval_time": f"{start + k - 1}m", "alertname": a.name, "exp_alerts": []},
                {"eval_time": f"{start + k}m", "alertname": a.name, "exp_alerts": [{
                    "exp_labels": {**alert_labels(slos, a), "model": model},
                    "exp_annotations": alert_annotations(slos, a, runbook_base, model=model,
                                                   sentence=sentence)}]}]}
    return None


def _after_fast_case(slos: SloSet, a: Alert, model: str,
                     extra: Mapping[str, str]) -> Case | None:
    """Every request fails for a while, then none: the fast page's incident, and slower page
    tier ``a`` never fires, neither at the start nor once the fast page resolved while its own
    short window still burns. None when ``a``'s windows make that untrue by design (its short
    window outlasts the fast tier's long one, or it crosses its rate a hold before the fast).
    """
    o, t, fast = a.objective, a.tier, slos.faster_pages(a)[0].tier
    assert t is not None and fast is not None and o.budget is not None
    thr_s, thr_f = t.threshold(o.budget), fast.threshold(o.budget)
    long_s, short_s = t.long_s // 60, t.short_s // 60
    long_f, hold = fast.long_s // 60, slos.page_hold_s(a) // 60
    if (thr_f >= 1.0 or (1 - thr_s) * short_s >= (1 - thr_f) * long_f - 1
            or thr_f * long_f >= thr_s * long_s + hold - 1):
        return None
    per_min = max(60.0, math.ceil(2 * slos.min_events / long_f))
    history, burn = long_s + 5, max(math.ceil(thr_s * long_s) + 2, short_s + 2, long_f)
    after = short_s + long_f + hold + 5
    good = [(history, per_min), (burn, 0.0), (after, per_min)]
    bad = [(history, 0.0), (burn, per_min), (after, 0.0)]
    return {"name": f"{a.name}: every request fails for {burn} min: that is the fast page's "
                    "incident, and the slower page never fires, nor after the fast one resolved",
            "interval": "1m", "input_series": _series(o, model, good, bad, extra),
            "alert_rule_test": [{"eval_time": f"{m}m", "alertname": a.name, "exp_alerts": []}
                                for m in range(history, history + burn + after)]}


def _quiet_case(slos: SloSet, o: Objective, fast: Alert, model: str,
                extra: Mapping[str, str], name: str, good: list[tuple[int, float]],
                bad: list[tuple[int, float]], series: list[dict[str, str]] | None = None,
                ) -> Case:
    assert fast.tier is not None
    at = fast.tier.long_s // 60 + 5
    return {"name": name, "interval": "1m",
            "input_series": series or _series(o, model, good, bad, extra),
            "alert_rule_test": [{"eval_time": f"{at}m", "alertname": fast.name,
                                 "exp_alerts": []}]}


def _ratio_cases(slos: SloSet, o: Objective, model: str, extra: Mapping[str, str],
                 runbook_base: str) -> list[Case]:
    burns = [a for a in slos.alerts() if a.objective == o and a.kind == "burn"]
    cases = [c for a in burns if (c := _burn_case(slos, a, model, extra, runbook_base))]
    cases += [c for a in burns if slos.faster_pages(a)
              and (c := _after_fast_case(slos, a, model, extra))]
    fast = burns[0]
    t: Tier | None = fast.tier
    assert t is not None and o.budget is not None
    long_m = t.long_s // 60 + 6
    few = slos.min_events / (2.0 * (t.long_s // 60))
    cases.append(_quiet_case(
        slos, o, fast, model, extra, f"{fast.name}: every request fails, but fewer than "
        f"min_events ({slos.min_events}) in {t.long_s // 60} min: no alert",
        [(long_m, 0.0)], [(long_m, few)]))
    if t.threshold(o.budget) < 0.5:
        big = max(1000.0, 2.0 * slos.min_events / (t.long_s // 60))
        small = big * t.threshold(o.budget) / 4
        series = (_series(o, model, [(long_m, big)], [(long_m, 0.0)], {**extra, "instance": "a"})
                  + _series(o, model, [(long_m, 0.0)], [(long_m, small)],
                            {**extra, "instance": "b"}))
        cases.append(_quiet_case(
            slos, o, fast, model, extra, f"{fast.name}: instance b fails every request, "
            "but serves few: the event-weighted ratio is under the threshold (an average of "
            "the two ratios, 50%, would page)", [], [], series))
    return cases


def _floor_case(slos: SloSet, a: Alert, model: str, extra: Mapping[str, str],
                runbook_base: str) -> Case:
    """Traffic at 1/0.45 of the floor stops at minute E: the 5-minute rate is under the floor
    from E+3 on (with or without the range's first sample), and the alert fires 5 min later."""
    o = a.objective
    per_min = o.target * 60.0 / 0.45
    start, stop_after = 20, 3 + FLOOR_FOR_S // 60
    fires = start + stop_after
    good = [(start, per_min), (stop_after + 2, 0.0)]
    series = [{"series": _selector(REQUESTS, {"model": model, **extra, "status": "ok",
                                              "version": "1"}), "values": _counter(good)}]
    assert FLOOR_RATE_S == 300
    return {
        "name": f"{a.name}: traffic stops at minute {start}", "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": f"{fires - 1}m", "alertname": a.name, "exp_alerts": []},
            {"eval_time": f"{fires}m", "alertname": a.name, "exp_alerts": [{
                "exp_labels": {**alert_labels(slos, a), "model": model},
                "exp_annotations": alert_annotations(slos, a, runbook_base, model=model,
                                               value="0.00")}]}]}


def _no_data_case(slos: SloSet, a: Alert, extra: Mapping[str, str],
                  runbook_base: str) -> Case:
    at = NO_DATA_FOR_S // 60
    return {
        "name": f"{a.name}: no series at all is no data, never 100% good", "interval": "1m",
        "input_series": [{"series": 'up{job="elsewhere"}', "values": f"1x{at + 2}"}],
        "alert_rule_test": [
            {"eval_time": f"{at - 1}m", "alertname": a.name, "exp_alerts": []},
            {"eval_time": f"{at}m", "alertname": a.name, "exp_alerts": [
                {"exp_labels": {**alert_labels(slos, a), **extra, "model": m},
                 "exp_annotations": alert_annotations(slos, a, runbook_base, model=m)}
                for m in slos.models]}]}


def promtool_tests(slos: SloSet, o: Objective, rule_file: str, *,
                   labels: Mapping[str, str] | None = None,
                   runbook_base: str = "runbooks") -> dict[str, Any]:
    """A ``promtool test rules`` document for the rules of ``o`` (in ``rule_file``, a path
    relative to the test file), built with the same ``labels`` and ``runbook_base``."""
    extra = dict(labels or {})
    model = slos.models[0]
    cases: list[Case] = []
    if o.is_ratio:
        cases += _ratio_cases(slos, o, model, extra, runbook_base)
    for a in slos.alerts():
        if a.objective != o:
            continue
        if a.kind == "floor":
            cases.append(_floor_case(slos, a, model, extra, runbook_base))
        elif a.kind == "no_data":
            cases.append(_no_data_case(slos, a, extra, runbook_base))
    return {"rule_files": [rule_file], "evaluation_interval": "1m", "tests": cases}

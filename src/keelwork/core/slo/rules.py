"""Prometheus recording and alerting rules for the SLOs of a keel.yaml (as plain data).

Per objective, one rule group:

- recording rules ``keelwork:slo_error_ratio:rate<W>`` for every window a tier uses and for
  the SLO window: bad events over all events, each summed over the model's series first
  (``sum by (model)`` of each, then the ratio), so the ratio is event-weighted: an instance
  or version serving ten requests weighs a hundredth of one serving a thousand (an average
  of per-series ratios would let it page alone, sloth #332);
- ``keelwork:slo_events:increase<W>``: the events of each long window, so that a tier needs
  ``slos.min_events`` before it alerts (pyrra #1925);
- ``keelwork:slo_budget_spent:ratio``: the share of the window's budget spent;
- one alert per tier (both windows over ``burn_rate x budget``), whose value is the hours left
  at the short window's rate; a slower page tier also needs every faster page tier's long
  window under that tier's rate, and holds for the fastest page tier's short window (``for``)
  before it fires, so one incident pages once (:meth:`SloSet.faster_pages`); and a no-data
  alert: missing metrics never read as good
  (service-level-operator #19); the ratio of a model without requests is not a number, so no
  burn alert fires on it either.

The throughput floor is a threshold, not a ratio: ``KeelworkThroughputBelowFloor`` fires when
a model's answered requests per second stay under it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keelwork.core.slo.objectives import (
    FLOOR_FOR_S,
    FLOOR_RATE_S,
    NO_DATA_FOR_S,
    Alert,
    Objective,
    SloSet,
    burn_sentence,
    format_duration,
    slo_set,
)
from keelwork.spec.metric_names import REQUEST_DURATION, REQUESTS, bucket_label
from keelwork.spec.model import KeelSpec

Rule = dict[str, Any]

ERROR_RATIO = "keelwork:slo_error_ratio:rate"
EVENTS = "keelwork:slo_events:increase"
SPENT = "keelwork:slo_budget_spent:ratio"
THROUGHPUT = "keelwork:slo_throughput:rate"

#: ``status`` values that are bad events, per objective (:data:`metric_names.STATUSES`).
BAD_STATUSES = {"availability": "error|overloaded", "error_rate": "error"}
#: Requests refused by the contract are the client's fault: no event of any SLO.
NOT_COUNTED = "invalid"
ANSWERED = "ok|fallback"


def _matchers(*parts: str, labels: Mapping[str, str]) -> str:
    extra = [f'{k}="{v}"' for k, v in sorted(labels.items())]
    return "{" + ",".join([*parts, *extra]) + "}"


def _sum_rate(metric: str, matchers: str, window: str, fn: str = "rate") -> str:
    return f"sum by (model) ({fn}({metric}{matchers}[{window}]))"


def _total(o: Objective, window: str, labels: Mapping[str, str], fn: str = "rate") -> str:
    if o.threshold_s is not None:
        return _sum_rate(f"{REQUEST_DURATION}_count", _matchers(labels=labels), window, fn)
    return _sum_rate(REQUESTS, _matchers(f'status!="{NOT_COUNTED}"', labels=labels), window, fn)


def error_ratio_expr(o: Objective, window: str, labels: Mapping[str, str]) -> str:
    """PromQL: the bad share of ``o``'s events over ``window``, per model, event-weighted."""
    total = _total(o, window, labels)
    if o.threshold_s is not None:
        good = _sum_rate(f"{REQUEST_DURATION}_bucket",
                         _matchers(f'le="{bucket_label(o.threshold_s)}"', labels=labels), window)
        return f"({total} - {good}) / {total}"
    bad = _sum_rate(REQUESTS, _matchers(f'status=~"{BAD_STATUSES[o.key]}"', labels=labels),
                    window)
    # no bad series yet (nothing ever failed) is 0 bad events, not a missing ratio
    return f"({bad} or 0 * {total}) / {total}"


def own_labels(slos: SloSet, o: Objective) -> dict[str, str]:
    """The labels of every series the rules of ``o`` record."""
    return {"service": slos.service, "slo": o.key}


def _pick(slos: SloSet, o: Objective) -> str:
    return _matchers(labels=own_labels(slos, o))


def runbook_link(base: str, alert: str) -> str:
    """Where the runbook of ``alert`` is: ``base`` (a folder path or URL) plus its file."""
    return f"{base.rstrip('/')}/{alert}.md" if base else f"{alert}.md"


def alert_labels(slos: SloSet, a: Alert) -> dict[str, str]:
    # No ``owner`` label: an SLO of the service belongs to all its owners, and keel alerts
    # config sends an alert that names one owner to that owner alone.
    return {"severity": a.severity, "slo": a.objective.key, "tier": a.tier_label,
            "service": slos.service}


def spent_template(slos: SloSet, o: Objective) -> str:
    """Prometheus template code printing the budget spent in percent (for the model)."""
    query = (f'100 * {SPENT}{{service="{slos.service}",slo="{o.key}",model="%s"}}')
    return (f"{{{{ with printf `{query}` $labels.model | query }}}}"
            "{{ . | first | value | printf \"%.0f\" }}{{ else }}?{{ end }}")


def alert_annotations(slos: SloSet, a: Alert, runbook_base: str, *,
                model: str = "{{ $labels.model }}", sentence: str | None = None,
                value: str = '{{ printf "%.2f" $value }}') -> dict[str, str]:
    """The alert's ``summary``, ``description`` (plain words) and ``runbook_url``.

    By default the text holds Prometheus template code; a test passes what it expects the
    code to print (``model``, the burn ``sentence``, the floor's ``value``) instead.
    """
    o, link = a.objective, runbook_link(runbook_base, a.name)
    if a.kind == "burn":
        t = a.tier
        assert t is not None and o.budget is not None
        hours = sentence if sentence is not None else (
            "{{ if gt $value 0.0 }}" + burn_sentence(
                slos.window_s, '{{ printf "%.1f" $value }}', spent_template(slos, o))
            + "{{ else }}" + burn_sentence(slos.window_s, None, spent_template(slos, o))
            + "{{ end }}")
        return {
            "summary": f"{o.title} SLO of {slos.service}/{model}: the error budget burns "
                       f"{t.burn_rate:g}x too fast",
            "description": f"{o.statement}: over the last {format_duration(t.long_s)} and "
                           f"{format_duration(t.short_s)} more than "
                           f"{100 * t.threshold(o.budget):.4g}% of the events of model {model} "
                           f"were bad; {hours}. Runbook: {link}",
            "runbook_url": link}
    if a.kind == "floor":
        return {
            "summary": f"Throughput of {slos.service}/{model} below its floor",
            "description": f"model {model} answers {value} requests/s, under the floor of "
                           f"{o.target:g}/s for {format_duration(FLOOR_FOR_S)}. "
                           f"Runbook: {link}",
            "runbook_url": link}
    return {
        "summary": f"No data for the {o.title} SLO of {slos.service}/{model}",
        "description": f"Prometheus has no {o.title.lower()} metrics of model {model} since "
                       f"{format_duration(NO_DATA_FOR_S)}: the SLO is unknown, not met (no "
                       "scrape, a stopped server, or a model never called). Runbook: "
                       f"{link}",
        "runbook_url": link}


def _no_data_expr(slos: SloSet, o: Objective, labels: Mapping[str, str]) -> str:
    metric = f"{REQUEST_DURATION}_count" if o.threshold_s is not None else REQUESTS
    return " or ".join(f"absent({metric}{_matchers('model=' + _quote(m), labels=labels)})"
                       for m in slos.models)


def _quote(value: str) -> str:
    return '"' + value + '"'


def windows_of(slos: SloSet) -> list[int]:
    """Every window (seconds) a tier uses, shortest first, then the SLO window."""
    ws = sorted({w for t in slos.tiers for w in (t.long_s, t.short_s)} - {slos.window_s})
    return [*ws, slos.window_s]


def _ratio_rules(slos: SloSet, o: Objective, labels: Mapping[str, str]) -> list[Rule]:
    own = own_labels(slos, o)
    rules: list[Rule] = [
        {"record": f"{ERROR_RATIO}{format_duration(w)}",
         "expr": error_ratio_expr(o, format_duration(w), labels), "labels": dict(own)}
        for w in windows_of(slos)]
    rules += [{"record": f"{EVENTS}{format_duration(w)}",
               "expr": _total(o, format_duration(w), labels, "increase"), "labels": dict(own)}
              for w in sorted({t.long_s for t in slos.tiers})]
    assert o.budget is not None
    rules.append({"record": SPENT, "expr": f"{ERROR_RATIO}{slos.window}{_pick(slos, o)} / "
                                           f"{o.budget:.12g}", "labels": dict(own)})
    return rules


def _burn_expr(slos: SloSet, a: Alert) -> str:
    o, t, pick = a.objective, a.tier, _pick(slos, a.objective)
    assert t is not None and o.budget is not None
    long_w, short_w = format_duration(t.long_s), format_duration(t.short_s)
    thr = f"{t.threshold(o.budget):.12g}"
    hours = slos.window_s / 3600.0
    expr = (f"(1 - {SPENT}{pick}) * {hours:.12g} / ({ERROR_RATIO}{short_w}{pick} / "
            f"{o.budget:.12g})\n"
            f"and on (model) {ERROR_RATIO}{long_w}{pick} > {thr}\n"
            f"and on (model) {ERROR_RATIO}{short_w}{pick} > {thr}\n"
            f"and on (model) {EVENTS}{long_w}{pick} >= {slos.min_events}")
    for f in slos.faster_pages(a):  # that burn is the faster tier's page (one per incident)
        ft = f.tier
        assert ft is not None
        f_long = format_duration(ft.long_s)
        expr += (f"\nunless on (model) ({ERROR_RATIO}{f_long}{pick} > "
                 f"{ft.threshold(o.budget):.12g}\n"
                 f"  and on (model) {EVENTS}{f_long}{pick} >= {slos.min_events})")
    return expr


def group(slos: SloSet, o: Objective, *, labels: Mapping[str, str] | None = None,
          runbook_base: str = "runbooks") -> dict[str, Any]:
    """The rule group of one objective."""
    sel = dict(labels or {})
    if o.is_ratio:
        rules = _ratio_rules(slos, o, sel)
    else:
        w = format_duration(FLOOR_RATE_S)
        rules = [{"record": f"{THROUGHPUT}{w}", "labels": own_labels(slos, o),
                  "expr": _sum_rate(REQUESTS, _matchers(f'status=~"{ANSWERED}"', labels=sel),
                                    w)}]
    for a in slos.alerts():
        if a.objective != o:
            continue
        rule: Rule = {"alert": a.name}
        if a.kind == "burn":
            rule["expr"] = _burn_expr(slos, a)
            if slos.page_hold_s(a):
                rule["for"] = format_duration(slos.page_hold_s(a))
        elif a.kind == "floor":
            rule["expr"] = (f"{THROUGHPUT}{format_duration(FLOOR_RATE_S)}{_pick(slos, o)} < "
                            f"{o.target:.12g}")
            rule["for"] = format_duration(FLOOR_FOR_S)
        else:
            rule["expr"] = _no_data_expr(slos, o, sel)
            rule["for"] = format_duration(NO_DATA_FOR_S)
        rule["labels"] = alert_labels(slos, a)
        rule["annotations"] = alert_annotations(slos, a, runbook_base)
        rules.append(rule)
    return {"name": f"keelwork-slo-{slos.service}-{o.key}", "rules": rules}


def rule_groups(slos: SloSet, *, labels: Mapping[str, str] | None = None,
                runbook_base: str = "runbooks") -> dict[str, dict[str, Any]]:
    """Per objective key, a Prometheus rule file (``{"groups": [...]}``) as plain data.

    Args:
        slos: The service's SLOs (:func:`keelwork.core.slo.slo_set`).
        labels: Label matchers added to every metric selector (``{"job": "keel"}``), for a
            Prometheus that scrapes several services.
        runbook_base: Folder path or URL of the runbooks (``keel runbook``).
    """
    return {o.key: {"groups": [group(slos, o, labels=labels, runbook_base=runbook_base)]}
            for o in slos.objectives}


def inhibit_rules(spec: KeelSpec) -> list[dict[str, Any]]:
    """Alertmanager ``inhibit_rules``: while a tier fires, the slower tiers of the same SLO and
    model stay quiet, so one incident sends one page (pyrra #1883).

    Tiers are ordered pages first, then by long window; each inhibits every one after it.
    """
    slos = slo_set(spec)
    out: list[dict[str, Any]] = []
    for o in slos.objectives:
        burns = [a for a in slos.alerts() if a.objective == o and a.kind == "burn"]
        for i, faster in enumerate(burns):
            for slower in burns[i + 1:]:
                out.append({
                    "source_matchers": [f'alertname="{faster.name}"',
                                        f'service="{slos.service}"'],
                    "target_matchers": [f'alertname="{slower.name}"',
                                        f'service="{slos.service}"'],
                    "equal": ["service", "slo", "model"]})
    return out

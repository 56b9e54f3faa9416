"""keel.yaml's SLOs as OpenSLO v1 documents: a Service, per SLO an SLI, the SLO (with its
burn tiers as AlertPolicies) and one notification target per owner."""

from __future__ import annotations

from typing import Any

from keelwork.core.slo.objectives import Alert, Objective, SloSet, format_duration
from keelwork.core.slo.rules import ANSWERED, BAD_STATUSES, NOT_COUNTED
from keelwork.spec.metric_names import REQUEST_DURATION, REQUESTS, bucket_label

API_VERSION = "openslo/v1"


def _name(*parts: str) -> str:
    """An RFC 1123 name (lower case, digits, '-'), as OpenSLO wants for metadata.name."""
    text = "-".join(parts).lower().replace("_", "-").replace(".", "-")
    return "".join(c for c in text if c.isalnum() or c == "-").strip("-")[:63]


def _doc(kind: str, name: str, spec: dict[str, Any], display: str | None = None,
         ) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if display:
        meta["displayName"] = display
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": meta, "spec": spec}


def _source(query: str) -> dict[str, Any]:
    return {"metricSource": {"type": "Prometheus", "spec": {"query": query}}}


def _keelwork(description: str) -> dict[str, Any]:
    return {"metricSource": {"type": "keelwork", "spec": {"description": description}}}


def _quality_indicator(o: Objective) -> dict[str, Any]:
    """A quality SLO's SLI: a ratio of event counts keelwork's server reads from its log."""
    ind = o.indicator
    assert ind is not None
    bad, total = {
        "accuracy": ("labelled answers whose class is not the label", "labelled answers"),
        "f1": ("false positives + false negatives",
               "2 x true positives + false positives + false negatives"),
        "mae": ("the sum of the absolute errors of labelled answers", "labelled answers"),
        "violation_rate": ("requests refused by the input contract", "requests"),
        "null_rate": ("null values of the counted inputs", "values of the counted inputs"),
        "label_coverage": ("predictions without a label", "predictions"),
        "drift": (f"predictions of {ind.slice} slices where {ind.features[0]} drifted",
                  f"predictions of {ind.slice} slices compared with the reference"),
    }[ind.metric]
    lag = f"; windows end {format_duration(ind.lag_s)} ago" if ind.lag_s else ""
    note = f" (prediction log joined with labels, evaluated by keel serve{lag})"
    return {"ratioMetric": {"counter": False, "bad": _keelwork(bad + note),
                            "total": _keelwork(total + note)}}


def _indicator(o: Objective) -> dict[str, Any]:
    if o.indicator is not None:
        return _quality_indicator(o)
    if o.threshold_s is not None:
        return {"ratioMetric": {
            "counter": True,
            "good": _source(f"sum by (model) ({REQUEST_DURATION}_bucket"
                            f'{{le="{bucket_label(o.threshold_s)}"}})'),
            "total": _source(f"sum by (model) ({REQUEST_DURATION}_count)")}}
    if o.is_ratio:
        return {"ratioMetric": {
            "counter": True,
            "bad": _source(f'sum by (model) ({REQUESTS}{{status=~"{BAD_STATUSES[o.key]}"}})'),
            "total": _source(f'sum by (model) ({REQUESTS}{{status!="{NOT_COUNTED}"}})')}}
    return {"thresholdMetric": _source(
        f'sum by (model) (rate({REQUESTS}{{status=~"{ANSWERED}"}}[5m]))')}


def _policy(slos: SloSet, a: Alert, targets: list[str]) -> dict[str, Any]:
    t = a.tier
    assert t is not None
    return _doc("AlertPolicy", _name(slos.service, a.objective.key, t.name), {
        "description": f"{a.objective.title}: burn rate over {t.burn_rate:g} for "
                       f"{format_duration(t.long_s)} and {format_duration(t.short_s)}",
        "alertWhenBreaching": True, "alertWhenResolved": False,
        "alertWhenNoData": False,
        "conditions": [{"kind": "AlertCondition", "metadata": {"name": _name(a.name)},
                        "spec": {"severity": a.severity, "condition": {
                            "kind": "burnrate", "op": "gte", "threshold": t.burn_rate,
                            "lookbackWindow": format_duration(t.long_s),
                            "alertAfter": format_duration(t.short_s)}}}],
        "notificationTargets": [{"targetRef": name} for name in targets]},
        a.name)


def openslo_documents(slos: SloSet) -> list[dict[str, Any]]:
    """Every document, Service first."""
    docs = [_doc("Service", _name(slos.service), {
        "description": f"keelwork service {slos.service} (models: {', '.join(slos.models)})"})]
    targets = []
    for i, owner in enumerate(slos.owners):
        name = _name(slos.service, "owner", str(i + 1))
        targets.append(name)
        docs.append(_doc("AlertNotificationTarget", name, {
            "target": owner, "description": "service.owners of keel.yaml"}, owner))
    for o in (*slos.objectives, *slos.quality):
        sli = _name(slos.service, o.key, "sli")
        docs.append(_doc("SLI", sli, {"description": o.statement, **_indicator(o)}))
        policies = [_policy(slos, a, targets) for a in slos.alerts()
                    if a.objective == o and a.kind == "burn"]
        docs += policies
        objective: dict[str, Any] = {"displayName": o.title}
        method = "Occurrences"
        if o.indicator is not None and o.indicator.metric == "mae":
            objective.update({"op": "lte", "value": o.target})
        elif o.indicator is not None:
            assert o.budget is not None
            objective["target"] = round(1.0 - o.budget, 12)
        elif o.is_ratio:
            objective["target"] = o.target
        else:
            objective.update({"op": "gte", "value": o.target, "timeSliceTarget": 1.0,
                              "timeSliceWindow": "5m"})
            method = "Timeslices"
        docs.append(_doc("SLO", _name(slos.service, o.key), {
            "description": o.statement, "service": _name(slos.service),
            "indicatorRef": sli,
            "timeWindow": [{"duration": slos.window, "isRolling": True}],
            "budgetingMethod": method, "objectives": [objective],
            "alertPolicies": [p["metadata"]["name"] for p in policies]}, o.title))
    return docs

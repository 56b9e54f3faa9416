"""A Grafana dashboard for a keel.yaml, as plain data (pure).

``keel dashboard grafana`` writes it; Grafana imports it as it is (Dashboards > Import, or a
provisioning folder). Per model, one row of panels over keelwork's own metrics:

- traffic: requests per second by version and status (``keelwork_requests_total``);
- errors: the failed share (``error`` and ``overloaded`` over every request the SLOs count:
  the contract's refusals are the client's and left out, as in the SLO rules);
- latency: p50, p95 and p99 from ``keelwork_request_duration_seconds`` buckets
  (``histogram_quantile`` over the summed bucket rates);
- per SLO with an error budget: the burn rate of each tier's short and long window, read from
  the recording rules ``keel slo rules`` writes (``keelwork:slo_error_ratio:rate<W>`` over the
  budget), and the budget left (``1 - keelwork:slo_budget_spent:ratio``); without those rules
  loaded in Prometheus the panels are empty, never zero;
- cost, when keel.yaml sets prices: ``keelwork_cost_total`` per hour by version.

Every expression is plain PromQL with fixed windows (no Grafana ``$__`` macros), so that
promtool parses each one as it is. The Prometheus data source is a dashboard variable
(``datasource``), picked at import.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keelwork.core.slo.objectives import SloSet, format_duration, slo_set
from keelwork.core.slo.rules import ERROR_RATIO, SPENT, own_labels
from keelwork.spec.metric_names import REQUEST_DURATION, REQUESTS
from keelwork.spec.model import KeelSpec

#: The dashboard JSON model's schema version this generator writes (Grafana 10-11).
SCHEMA_VERSION = 39
DATASOURCE: dict[str, str] = {"type": "prometheus", "uid": "${datasource}"}
RATE = "5m"
_WIDTH = 24


def _q(value: str) -> str:
    """A PromQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _sel(labels: Mapping[str, str], *raw: str) -> str:
    """A selector of equality matchers for ``labels`` plus ``raw`` matchers as written."""
    return "{" + ",".join([*(f"{k}={_q(v)}" for k, v in sorted(labels.items())), *raw]) + "}"


def _target(ref: str, expr: str, legend: str) -> dict[str, Any]:
    return {"refId": ref, "expr": expr, "legendFormat": legend, "datasource": DATASOURCE,
            "range": True}


def _panel(ident: int, title: str, targets: list[dict[str, Any]], *, unit: str,
           x: int, y: int, w: int = 8, h: int = 8, description: str = "",
           minimum: float | None = 0.0, maximum: float | None = None) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit, "custom": {"lineWidth": 2, "fillOpacity": 8}}
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    return {"id": ident, "type": "timeseries", "title": title, "description": description,
            "datasource": DATASOURCE, "gridPos": {"h": h, "w": w, "x": x, "y": y},
            "targets": targets, "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom",
                                   "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}}}


class _Ids:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> int:
        self.n += 1
        return self.n


def _model_panels(model: str, slos: SloSet, priced: bool, ids: _Ids,
                  y: int) -> tuple[list[dict[str, Any]], int]:
    m = {"model": model}
    panels: list[dict[str, Any]] = [{"id": ids(), "type": "row", "title": f"Model {model}",
                                     "collapsed": False, "panels": [],
                                     "gridPos": {"h": 1, "w": _WIDTH, "x": 0, "y": y}}]
    y += 1
    sel = _sel(m)
    counted = _sel(m, 'status!="invalid"')
    failed = _sel(m, 'status=~"error|overloaded"')
    panels.append(_panel(ids(), "Traffic (requests/s)", [_target(
        "A", f"sum by (version, status) (rate({REQUESTS}{sel}[{RATE}]))",
        "v{{version}} {{status}}")], unit="reqps", x=0, y=y,
        description="Prediction requests per second by version and outcome."))
    panels.append(_panel(ids(), "Errors (share failed)", [_target(
        "A", f"sum by (version) (rate({REQUESTS}{failed}[{RATE}])) / sum by (version) "
             f"(rate({REQUESTS}{counted}[{RATE}]))", "v{{version}}")],
        unit="percentunit", x=8, y=y, maximum=1.0,
        description="Failed (error, overloaded) over the requests the SLOs count."))
    panels.append(_panel(ids(), "Latency quantiles", [_target(
        ref, f"histogram_quantile({q}, sum by (le) (rate({REQUEST_DURATION}_bucket{sel}"
             f"[{RATE}])))", f"p{round(q * 100)}")
        for ref, q in (("A", 0.5), ("B", 0.95), ("C", 0.99))], unit="s", x=16, y=y,
        description="From the keelwork_request_duration_seconds buckets."))
    y += 8
    x = 0
    for o in slos.objectives:
        if o.budget is None:
            continue
        pick = _sel({**own_labels(slos, o), **m})
        # One series per window the tiers read (a window shared by two tiers once).
        uses: dict[int, list[str]] = {}
        for t in slos.tiers:
            uses.setdefault(t.short_s, []).append(f"{t.name} short, {t.burn_rate:g}x")
            uses.setdefault(t.long_s, []).append(f"{t.name} long, {t.burn_rate:g}x")
        targets = [_target(chr(ord("A") + i),
                           f"{ERROR_RATIO}{format_duration(w)}{pick} / {o.budget:.12g}",
                           f"burn {format_duration(w)} ({'; '.join(uses[w])})")
                   for i, w in enumerate(sorted(uses))]
        targets.append(_target(chr(ord("A") + len(targets)), f"1 - {SPENT}{pick}",
                               f"budget left ({slos.window})"))
        panels.append(_panel(ids(), f"{o.title} SLO: burn rate", targets, unit="none",
                             x=x, y=y, w=12, description=f"{o.statement}. Burn rate: bad "
                             "share over the error budget (1 spends it in exactly the SLO "
                             "window); needs the rules of `keel slo rules`."))
        x = 12 - x
        if x == 0:
            y += 8
    if x:
        y += 8
    if priced:
        panels.append(_panel(ids(), "Cost per hour", [_target(
            "A", f"sum by (version, currency) (increase(keelwork_cost_total{sel}[1h]))",
            "v{{version}} {{currency}}")], unit="none", x=0, y=y, w=_WIDTH,
            description="keelwork_cost_total over the last hour, by version."))
        y += 8
    return panels, y


def grafana_dashboard(spec: KeelSpec) -> dict[str, Any]:
    """The Grafana dashboard JSON model of ``spec`` (see the module docstring)."""
    slos = slo_set(spec)
    ids = _Ids()
    panels: list[dict[str, Any]] = []
    y = 0
    for m in spec.models:
        more, y = _model_panels(m.name, slos, spec.cost.priced, ids, y)
        panels += more
    name = spec.service.name
    return {
        "id": None, "uid": f"keelwork-{name}"[:40], "title": f"keelwork: {name}",
        "description": spec.service.description or f"Served by keelwork ({name}).",
        "tags": ["keelwork", name], "timezone": "utc", "editable": True, "graphTooltip": 1,
        "time": {"from": "now-24h", "to": "now"}, "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION, "version": 1, "links": [],
        "annotations": {"list": []},
        "templating": {"list": [{"name": "datasource", "label": "Prometheus",
                                 "type": "datasource", "query": "prometheus",
                                 "current": {}, "hide": 0, "refresh": 1,
                                 "options": [], "regex": ""}]},
        "panels": panels,
    }


def expressions(dashboard: Mapping[str, Any]) -> list[str]:
    """Every PromQL expression of a dashboard (its panels' targets, rows' panels too)."""
    out: list[str] = []

    def walk(panels: Any) -> None:
        for p in panels or []:
            out.extend(t["expr"] for t in p.get("targets") or [] if t.get("expr"))
            walk(p.get("panels"))

    walk(dashboard.get("panels"))
    return out


__all__ = ["DATASOURCE", "SCHEMA_VERSION", "expressions", "grafana_dashboard"]

"""The ``/dashboard`` page: one self-contained HTML page from a dashboard snapshot (pure).

The snapshot is the plain data :meth:`keelwork.service.dashboard.Dashboard.snapshot` gathers;
this module only lays it out: no script, no external URL, a few lines of inline CSS, inline
SVG charts (:mod:`keelwork.core.reports.sparks`), so it paints in one pass however much the
log holds. A value nobody measured (None) is written "no data", never 0; every user-supplied
string is escaped.

Numbers: counts with thousands separators; shares as percentages (two decimals under 1%);
latencies in ms (3 significant digits) or s from a second on; burn rates with one decimal and
an "x"; money with two decimals and the currency.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from keelwork.core.reports.charts import esc, tag
from keelwork.core.reports.reliance_html import reliance_panel
from keelwork.core.reports.sparks import bars, line, meter, score_strip

NO_DATA = '<span class="nd">no data</span>'

_CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#0f172a;
margin:0;background:#f1f5f9}
header{background:#0f172a;color:#e2e8f0;padding:14px 28px}
header h1{font-size:19px;margin:0;color:#fff}header p{margin:2px 0 0;font-size:12px;color:#94a3b8}
main{max-width:1320px;margin:0 auto;padding:18px 28px 40px}
h2{font-size:18px;margin:0}h3{font-size:13px;margin:0 0 8px;color:#334155;
text-transform:uppercase;letter-spacing:.04em}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px;
margin:0 0 18px}
.kpi{background:#fff;border:1px solid #e2e8f0;border-radius:10px;padding:10px 14px}
.kpi b{display:block;font-size:22px;font-variant-numeric:tabular-nums}
.kpi span{color:#64748b;font-size:12px}
.kpi.bad{border-color:#fecaca;background:#fef2f2}.kpi.bad b{color:#b91c1c}
.model{background:#fff;border:1px solid #e2e8f0;border-radius:12px;margin:0 0 22px;
box-shadow:0 1px 2px rgba(15,23,42,.04)}
.mhead{display:flex;align-items:center;gap:10px;padding:14px 18px;border-bottom:1px solid #e2e8f0}
.mbody{padding:14px 18px}
.grid{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:14px;margin-top:14px}
@media (max-width:900px){.grid{grid-template-columns:minmax(0,1fr)}}
.panel{border:1px solid #e2e8f0;border-radius:10px;padding:12px 14px;background:#fcfdfe;
min-width:0;overflow-x:auto}
.nw{white-space:nowrap}
table{border-collapse:collapse;width:100%}
th,td{padding:5px 8px;border-bottom:1px solid #eef2f6;text-align:left;vertical-align:middle}
th{font-weight:600;font-size:11px;color:#64748b;text-transform:uppercase;letter-spacing:.03em}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr:last-child td{border-bottom:0}
.tag{display:inline-block;padding:1px 8px;border-radius:9px;font-size:12px;color:#fff;
background:#64748b;white-space:nowrap}
.t-ok{background:#16a34a}.t-bad{background:#dc2626}.t-warn{background:#d97706}
.t-info{background:#2563eb}.t-mute{background:#94a3b8}
.nd{color:#94a3b8;font-style:italic;white-space:nowrap}
.note{color:#64748b;font-size:12px}.err{color:#b91c1c}
.alerts{border:1px solid #fecaca;background:#fff7f7;border-radius:12px;padding:12px 18px;
margin:0 0 18px}
.calm{border-color:#bbf7d0;background:#f0fdf4}
svg{display:block}svg.meter{display:inline-block;vertical-align:middle}
.kv{display:grid;grid-template-columns:auto 1fr;gap:2px 12px;font-size:13px}
.kv dt{color:#64748b}.kv dd{margin:0}
footer{color:#64748b;font-size:12px;max-width:1320px;margin:0 auto;padding:0 28px 28px}
"""


# --------------------------------------------------------------------------- number formats
def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def count(value: Any) -> str:
    """An integer with thousands separators; None: "no data"."""
    if isinstance(value, bool) or not isinstance(value, int):
        return NO_DATA
    return f"{value:,}"


def share(value: Any) -> str:
    """A share in [0, 1] as a percentage: two decimals under 1%, one above."""
    v = _finite(value)
    if v is None:
        return NO_DATA
    p = v * 100
    return f"{p:.2f}%" if abs(p) < 1 else f"{p:.1f}%"


def ms(value: Any) -> str:
    """A latency in ms: 3 significant digits, in s from one second on."""
    v = _finite(value)
    if v is None:
        return NO_DATA
    if v >= 1000:
        return f"{v / 1000:.3g} s"
    return f"{v:.3g} ms"


def rate(value: Any) -> str:
    """A burn rate: ``2.4x``."""
    v = _finite(value)
    return NO_DATA if v is None else f"{v:.1f}x"


def money(value: Any, currency: str) -> str:
    v = _finite(value)
    if v is None:
        return NO_DATA
    return f"{v:,.4f} {esc(currency)}" if 0 < abs(v) < 0.01 else f"{v:,.2f} {esc(currency)}"


def score(value: Any) -> str:
    v = _finite(value)
    return NO_DATA if v is None else f"{v:.3g}"


def when(ts: Any) -> str:
    v = _finite(ts)
    if v is None:
        return NO_DATA
    return datetime.fromtimestamp(v, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _hour(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:00")


# --------------------------------------------------------------------------- sections
def _kpi(value: str, label: str, bad: bool = False) -> str:
    return (f'<div class="kpi{" bad" if bad else ""}"><b>{value}</b>'
            f"<span>{esc(label)}</span></div>")


def _summary(snap: Mapping[str, Any]) -> str:
    versions = [v for m in snap["models"] for v in m["versions"]]
    requests = [v["requests"] for v in versions if v["requests"] is not None]
    errors = sum(v["errors"] or 0 for v in versions)
    counted = sum((v["answered"] or 0) + (v["errors"] or 0) + (v["overloaded"] or 0)
                  for v in versions)
    p99 = [v["p99"] for v in versions if v["p99"] is not None]
    alerts = snap.get("alerts")
    opened = None if alerts is None else len(alerts["open"])
    failed = None if alerts is None else len(alerts["failures"])
    return ('<div class="kpis">'
            + _kpi(count(sum(requests)) if requests else NO_DATA, "requests, last 24 h")
            + _kpi(share(errors / counted) if counted else NO_DATA, "errors, last 24 h",
                   bad=bool(errors))
            + _kpi(ms(max(p99)) if p99 else NO_DATA, "worst p99 latency, last 24 h")
            + _kpi(count(opened) if opened is not None else NO_DATA, "open alerts",
                   bad=bool(opened))
            + _kpi(count(failed) if failed is not None else NO_DATA,
                   "undelivered notifications", bad=bool(failed))
            + "</div>")


def _alerts(snap: Mapping[str, Any]) -> str:
    alerts = snap.get("alerts")
    if alerts is None:
        return ('<section class="alerts calm"><h3>Alerts</h3><p class="note">No alert state '
                "in this store: the server evaluates no SLO alerts (no <code>slos</code>, no "
                "contact to tell, or <code>slos.evaluated_by: prometheus</code>).</p></section>")
    rows = []
    for a in alerts["open"]:
        sev = a.get("severity") or ""
        rows.append(f"<tr><td>{tag(sev or 'alert', 'bad' if sev == 'page' else 'warn')}</td>"
                    f"<td><b>{esc(a['name'])}</b></td><td>{esc(a.get('model') or '')}</td>"
                    f"<td>{esc(a.get('summary') or '')}</td><td class=\"n\">{when(a['since'])}"
                    f"</td><td>{esc(', '.join(a['receivers']))}</td><td>"
                    + (esc(a["acknowledged_by"]) if a.get("acknowledged_by")
                       else '<span class="note">not yet</span>') + "</td></tr>")
    fails = []
    for f in alerts["failures"]:
        fails.append(f"<tr><td><b>{esc(f['name'])}</b></td><td>{esc(f['receiver'])}</td>"
                     f"<td>{esc(f['state'])}</td><td class=\"n\">{count(f['attempts'])}</td>"
                     f"<td class=\"n\">{when(f['retry_at'])}</td>"
                     f"<td class=\"err\">{esc(f.get('error') or '')}</td></tr>")
    calm = not rows and not fails
    out = [f'<section class="alerts{" calm" if calm else ""}"><h3>Alerts</h3>']
    if rows:
        out.append("<table><thead><tr><th>severity</th><th>alert</th><th>model</th><th>what"
                   "</th><th class=\"n\">since</th><th>told</th><th>acknowledged</th></tr></thead>"
                   "<tbody>"
                   + "".join(rows) + "</tbody></table>")
    else:
        out.append('<p class="note">No open alert.</p>')
    if fails:
        out.append('<h3 style="margin-top:12px">Notifications not delivered (kept, retried)</h3>'
                   "<table><thead><tr><th>alert</th><th>receiver</th><th>state</th>"
                   "<th class=\"n\">tries</th><th class=\"n\">next try</th><th>last error</th>"
                   "</tr></thead><tbody>" + "".join(fails) + "</tbody></table>")
    return "".join(out) + "</section>"


def _versions(m: Mapping[str, Any], currency: str) -> str:
    if not m["log"]:
        return f'<p class="note">{NO_DATA}: the store holds no prediction log yet.</p>'
    if not m["versions"]:
        return f'<p class="note">{NO_DATA}: no version registered or served yet.</p>'
    hours = m.get("hour_starts") or []
    rows = []
    r = m.get("rollout")
    challenger = r["challenger"] if r is not None and r["active"] else None
    for v in m["versions"]:
        roles = " ".join(tag(a, "info" if a == "champion" else "mute") for a in v["aliases"])
        if v["version"] == challenger:
            roles += " " + tag("challenger", "warn")
        if v["requests"] is None:
            chart = trend = NO_DATA
        else:
            titles = [f"{_hour(h)}: {n:,} requests, {e:,} failed"
                      for h, n, e in zip(hours, v["hourly_requests"], v["hourly_errors"],
                                         strict=False)]
            chart = bars(v["hourly_requests"], v["hourly_errors"], titles)
            trend = line(v["hourly_p99"], [f"{_hour(h)}: p99 {_plain_ms(p)}"
                                           for h, p in zip(hours, v["hourly_p99"],
                                                           strict=False)])
        err_cls = ' class="n err"' if (v["errors"] or 0) > 0 else ' class="n"'
        rows.append(
            f"<tr><td><b>v{v['version']}</b> {roles}</td>"
            f"<td class=\"n\">{count(v['requests'])}</td>"
            f"<td{err_cls}>{count(v['errors'])}</td>"
            f"<td class=\"n\">{share(v['error_share'])}</td>"
            f"<td class=\"n\">{ms(v['p50'])}</td><td class=\"n\">{ms(v['p95'])}</td>"
            f"<td class=\"n\">{ms(v['p99'])}</td><td>{chart}</td><td>{trend}</td>"
            f"<td class=\"n\">{money(v['cost'], currency)}</td></tr>")
    return ("<table><thead><tr><th>version</th><th class=\"n\">requests</th>"
            "<th class=\"n\">errors</th><th class=\"n\">error rate</th><th class=\"n\">p50</th>"
            "<th class=\"n\">p95</th><th class=\"n\">p99</th><th>requests / hour (red: "
            "failed)</th><th>p99 / hour</th><th class=\"n\">cost since start</th></tr></thead>"
            "<tbody>" + "".join(rows) + "</tbody></table>")


def _plain_ms(value: float | None) -> str:
    return "no data" if value is None else (f"{value / 1000:.3g} s" if value >= 1000
                                            else f"{value:.3g} ms")


def _events(value: Any) -> str:
    """An event count: an integer, or a sum of weights (mae) to one decimal."""
    if isinstance(value, float) and math.isfinite(value) and not value.is_integer():
        return f"{value:,.1f}"
    v = _finite(value)
    return NO_DATA if v is None else f"{int(v):,}"


def _slos(m: Mapping[str, Any], window: str | None) -> str:
    out = ['<div class="panel"><h3>SLOs' + (f" · {esc(window)} window" if window else "")
           + "</h3>"]
    slos = [*m["slos"], *m.get("quality_slos", [])]
    if not slos:
        out.append('<p class="note">No SLO in keel.yaml (<code>slos</code>).</p></div>')
        return "".join(out)
    for s in slos:
        quality = "as_of" in s
        kind = (f' {tag("quality")} <span class="note">counted {when(s["as_of"])}</span>'
                if quality else "")
        out.append(f'<div style="margin:0 0 10px"><b>{esc(s["title"])}</b>{kind} '
                   f'<span class="note">{esc(s["statement"])}</span><br>')
        if not s["counted"]:
            out.append('<span class="note">evaluated by the SLO watch; not charted here '
                       "yet.</span></div>")
            continue
        if not s["ratio"]:
            r = s.get("rate")
            out.append(("answered per second, last 5 min: " + (NO_DATA if r is None else
                                                                f"<b>{r:.3g}</b>"))
                       + "</div>")
            continue
        left = s["budget_left"]
        state = NO_DATA if left is None else (
            f"<b>{share(max(left, 0.0))}</b> of the error budget left" if left > 0
            else '<b class="err">error budget spent</b>')
        events = ("" if s["events"] is None else
                  f' <span class="note">({_events(s["bad"])} bad of {_events(s["events"])} '
                  "events)</span>")
        out.append(f"{meter(left)} {state}{events}")
        if s["tiers"]:
            rows = []
            for t in s["tiers"]:
                hot = all(_finite(b) is not None and b > t["threshold"]
                          for b in (t["burn_long"], t["burn_short"]))
                rows.append(f"<tr><td class=\"nw\">{tag(t['severity'], 'bad' if hot else 'mute')} "
                            f"{esc(t['name'])}</td><td class=\"n\">{rate(t['burn_long'])} "
                            f"<span class=\"note\">{esc(t['long'])}</span></td>"
                            f"<td class=\"n\">{rate(t['burn_short'])} <span class=\"note\">"
                            f"{esc(t['short'])}</span></td><td class=\"n\">"
                            f"{rate(t['threshold'])}</td></tr>")
            out.append("<table style=\"margin-top:4px\"><thead><tr><th>tier</th>"
                       "<th class=\"n\">burn, long</th><th class=\"n\">burn, short</th>"
                       "<th class=\"n\">alerts above</th></tr></thead><tbody>"
                       + "".join(rows) + "</tbody></table>")
        out.append("</div>")
    return "".join(out) + "</div>"


def _quality(w: Mapping[str, Any]) -> str:
    realised, estimated = w.get("realised") or {}, w.get("estimated") or {}
    metrics = [k for k in ("accuracy", "f1", "roc_auc", "mae", "rmse")
               if _finite(realised.get(k)) is not None or _finite(estimated.get(k)) is not None]
    rows = []
    for k in metrics:
        band = estimated.get(f"{k}_band")
        band_text = (f' <span class="note">[{score(band[0])}, {score(band[1])}]</span>'
                     if isinstance(band, Sequence) and len(band) == 2 else "")
        rows.append(f"<tr><td>{esc(k)}</td><td class=\"n\">{score(realised.get(k))}</td>"
                    f"<td class=\"n\">{score(estimated.get(k))}{band_text}</td></tr>")
    coverage = realised.get("coverage")
    cov = (f'label coverage {meter(_finite(coverage), width=90, label="label coverage")} '
           f"<b>{share(coverage)}</b>"
           + (f' <span class="note">({count(realised.get("labelled"))} labelled)</span>'
              if realised.get("labelled") is not None else ""))
    if not rows:
        return (f'<p style="margin:8px 0 0">{cov}</p><p class="note">Quality: {NO_DATA} '
                "(no labels in the window and no CBPE estimate).</p>")
    method = esc(estimated.get("method") or "CBPE").upper() if estimated else "CBPE"
    return (f'<p style="margin:8px 0 4px">{cov}</p><table><thead><tr><th>quality</th>'
            f'<th class="n">realised (labels)</th><th class="n">estimated ({method})</th>'
            "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _monitor(m: Mapping[str, Any]) -> str:
    out = ['<div class="panel"><h3>Drift and quality · latest monitoring window</h3>']
    w = m.get("monitor")
    if w is None:
        why = ("no window stored for this model yet" if m.get("monitoring_stored")
               else "no monitoring results in this store yet")
        out.append(f"<p>{NO_DATA}: <span class=\"note\">{why} (a stored reference, then "
                   "<code>keel monitor run</code> or the server's monitoring loop).</span></p>")
        return "".join(out) + "</div>"
    version = f" · v{w['version']}" if w.get("version") is not None else ""
    out.append(f'<p class="note" style="margin:0 0 6px">{esc(w["window"])} window '
               f"{when(w['start'])} → {when(w['end'])}{version} · {count(w['predictions'])} "
               f"predictions · {share(w.get('share_drifted'))} of columns drifted</p>")
    rows = []
    for c in w["columns"]:
        verdict = (tag("drift", "bad") if c.get("drift") is True else tag("ok", "ok")
                   if c.get("drift") is False else tag(str(c.get("status") or "not compared")))
        rows.append(f"<tr><td><b>{esc(c.get('column'))}</b></td><td>{verdict}</td>"
                    f"<td class=\"n\">{score(c.get('score'))}</td>"
                    f"<td>{score_strip(_finite(c.get('score')), _finite(c.get('threshold')), c.get('drift'))}</td>"  # noqa: E501
                    f"<td class=\"note\">{esc(c.get('method') or '')}</td></tr>")
    if rows:
        more = (f'<p class="note">and {w["columns_more"]} more columns</p>'
                if w.get("columns_more") else "")
        out.append("<table><thead><tr><th>feature</th><th>drift</th><th class=\"n\">score"
                   "</th><th>vs threshold</th><th>method</th></tr></thead><tbody>"
                   + "".join(rows) + "</tbody></table>" + more)
    else:
        out.append(f"<p>Drift per feature: {NO_DATA}</p>")
    out.append(_quality(w))
    out.append(reliance_panel(w.get("attributions")))
    return "".join(out) + "</div>"


def _rollout(m: Mapping[str, Any]) -> str:
    out = ['<div class="panel"><h3>Rollout</h3>']
    r = m.get("rollout")
    if r is None:
        out.append('<p class="note">No rollout of this model yet.</p>')
        return "".join(out) + "</div>"
    kind = "info" if r["active"] else ("ok" if r["phase"] == "promoted" else "warn")
    steps = r.get("steps") or []
    weight = steps[r["step"]] if r["active"] and 0 <= r["step"] < len(steps) else None
    out.append(f"<p>{tag(r['phase'], kind)} {esc(r['strategy'])} v{r['champion']} → "
               f"v{r['challenger']}" + (f" · <b>{weight}%</b> to v{r['challenger']}"
                                        if weight is not None else "")
               + (f' <span class="note">{esc(r["reason"])}</span>' if r.get("reason") else "")
               + "</p>")
    rows = []
    for e in reversed(r["events"]):
        times = e.get("times") or 1
        span = (f'<div class="note">{times}x since {when(e.get("first_at"))}</div>'
                if times > 1 else "")
        why = esc(e["actor"]) + (f": {esc(e['reason'])}" if e.get("reason") else "")
        rows.append(f"<tr><td class=\"n\">{when(e['at'])}{span}</td>"
                    f"<td><b>{esc(e['action'])}</b> → {esc(e['to_phase'])}"
                    f"{' · ' + esc(e['outcome']) if e.get('outcome') else ''}"
                    f'<div class="note">{why}</div></td>'
                    f"<td class=\"n\">{e['weight']}%</td></tr>")
    out.append("<table><thead><tr><th class=\"n\">when</th><th>decision, by whom, why</th>"
               "<th class=\"n\">weight</th></tr></thead><tbody>" + "".join(rows)
               + "</tbody></table>")
    return "".join(out) + "</div>"


def _guards(m: Mapping[str, Any], snap: Mapping[str, Any]) -> str:
    guards = snap.get("guards") or {}
    ood, limit = guards.get("out_of_distribution"), guards.get("rate_limit")
    if ood is None and limit is None:
        return ('<span class="nd">not configured</span> <span class="note">'
                "(<code>guards.out_of_distribution</code>, <code>guards.rate_limit</code>)"
                "</span>")
    parts = []
    hits = m.get("guard_hits") or {}
    if ood is not None:
        n = hits.get("out_of_distribution")
        parts.append(f"out_of_distribution ({esc(ood['action'])}): "
                     + (f"<b>{_events(n)}</b> instances" if n else
                        "none since the server started"))
    if limit is not None:
        parts.append(f"rate_limit: {limit['requests_per_second']:g}/s per "
                     f"{esc(limit['per'])} (burst {limit['burst']}); "
                     '<span class="note">its 429s are not counted per model</span>')
    return "<br>".join(parts)


def _cost_guards(m: Mapping[str, Any], snap: Mapping[str, Any]) -> str:
    currency = snap.get("cost_currency") or ""
    costs = [v["cost"] for v in m["versions"] if _finite(v.get("cost")) is not None]
    total = money(sum(costs), currency) if costs else NO_DATA
    month = snap.get("month")
    mine = ({k: c for k, c in month["by_version"].items() if k.split(":")[0] == m["name"]}
            if month else {})
    month_text = (", ".join(f"v{esc(k.split(':')[1])} {money(c, currency)}"
                            for k, c in sorted(mine.items())) if mine else NO_DATA)
    budget = snap.get("budget")
    if budget is None:
        budget_text = ('<span class="note">no budget set (<code>cost.monthly_budget</code>)'
                       "</span>")
    elif month is None:
        budget_text = f"{money(budget.get('monthly'), currency)} a month; spent: {NO_DATA}"
    else:
        share_left = month.get("share")
        budget_text = (f"{meter(None if share_left is None else 1 - share_left, width=90, label='budget left')} "  # noqa: E501
                       f"<b>{money(month['spent'], currency)}</b> of "
                       f"{money(budget.get('monthly'), currency)} ({share(share_left)}), "
                       f"forecast {money(month['forecast'], currency)}"
                       + (f'<div class="note">{esc(month["sentence"])}</div>'
                          if month.get("sentence") else ""))
    return ('<div class="panel"><h3>Cost and guards</h3><dl class="kv">'
            f"<dt>cost since the server started</dt><dd>{total}</dd>"
            f"<dt>this month (UTC), all servers</dt><dd>{month_text}</dd>"
            f"<dt>monthly budget (service)</dt><dd>{budget_text}</dd>"
            f"<dt>guard hits since the server started</dt><dd>{_guards(m, snap)}</dd>"
            "</dl></div>")


def _model(m: Mapping[str, Any], snap: Mapping[str, Any]) -> str:
    head = [f'<div class="mhead"><h2>{esc(m["name"])}</h2>']
    if m.get("champion") is not None:
        head.append(tag(f"champion v{m['champion']}", "info"))
    r = m.get("rollout")
    if r is not None and r["active"]:
        head.append(tag(f"rollout {r['phase']}", "warn"))
    head.append("</div>")
    return ('<section class="model">' + "".join(head) + '<div class="mbody">'
            + _versions(m, snap.get("cost_currency") or "")
            + '<div class="grid">' + _slos(m, snap.get("slo_window")) + _monitor(m)
            + _rollout(m) + _cost_guards(m, snap) + "</div></div></section>")


def render_dashboard(snap: Mapping[str, Any], *, refresh_s: int | None = 60) -> str:
    """The dashboard page of ``snap`` (a :meth:`Dashboard.snapshot`).

    Args:
        snap: The snapshot.
        refresh_s: Reload the page every so many seconds (a ``<meta http-equiv="refresh">``,
            no script); None: never.
    """
    owners = ", ".join(snap.get("owners") or [])
    meta = (f'<meta http-equiv="refresh" content="{int(refresh_s)}">' if refresh_s else "")
    body = [f"<header><h1>{esc(snap['service'])} · keelwork dashboard</h1>"
            f"<p>{when(snap.get('now'))} · traffic over the last 24 h"
            + (f" · SLO window {esc(snap['slo_window'])}" if snap.get("slo_window") else "")
            + (f" · owners {esc(owners)}" if owners else "") + "</p></header><main>",
            _summary(snap), _alerts(snap)]
    body += [_model(m, snap) for m in snap["models"]]
    body.append("</main><footer>Read-only. Traffic, errors and latency come from the "
                "prediction log (percentiles from a histogram of six bins per decade); "
                "SLO burn rates are bad share over error budget for each tier's windows; "
                "drift and quality are the latest stored monitoring window; cost is "
                "<code>keelwork_cost_total</code> since this server started. "
                "<i>no data</i> means nothing was measured, never zero.</footer>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">" + meta
            + f"<title>{esc(snap['service'])} · keelwork dashboard</title>"
            f"<style>{_CSS}</style></head><body>" + "".join(body) + "</body></html>\n")


__all__ = ["NO_DATA", "count", "money", "ms", "rate", "render_dashboard", "share"]

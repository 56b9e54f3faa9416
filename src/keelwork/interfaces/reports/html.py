"""Self-contained HTML for drift reports and monitor reports.

One file, no external URL, no script, a few lines of inline CSS; charts are inline SVG built
from the report's aggregates (:mod:`keelwork.interfaces.reports.charts`), so a report of a
million-row table is as small and opens as fast as one of a thousand rows (Evidently embeds its
data and a JavaScript renderer; its HTML of 243k rows took minutes to open, evidently #15).

Numbers: the page shows exactly the numbers of the JSON report it was rendered from. Integers are
written as they are; a float is written to 4 significant digits (``format(x, ".4g")``) inside a
``<data value="...">`` element whose ``value`` is the JSON's own text of the number
(``repr(x)``, what :func:`json.dumps` writes), so nothing is recomputed and the full precision
is one attribute away. Missing numbers (``null``) show as an en dash.

Every user-supplied string (column names, category labels, segment values, file names, notes) is
HTML-escaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from keelwork.interfaces.reports.charts import (
    DETECT,
    DRIFT,
    OK,
    category_bars,
    esc,
    fmt,
    heatmap,
    line_chart,
    numeric_hist,
    score_bar,
)

#: Windows shown in detail in a monitor report (see ``_detailed``).
MAX_DETAILED = 48
_ALERT = '<span class="tag drift">alert</span>'
#: Quality metrics charted, in this order, when a window reports them.
QUALITY_METRICS = ("accuracy", "f1", "roc_auc", "precision", "recall", "mae", "rmse")

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#0f172a;
margin:0;background:#f8fafc}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
h3{font-size:14px;margin:0 0 6px;overflow-wrap:anywhere}
.sub{color:#475569;margin:0 0 16px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:12px 14px}
.kpi b{display:block;font-size:22px}.kpi span{color:#475569;font-size:12px}
table{border-collapse:collapse;background:#fff;width:100%;border:1px solid #e2e8f0}
th,td{padding:5px 8px;border-bottom:1px solid #e2e8f0;text-align:left;vertical-align:middle}
th{background:#f1f5f9;font-weight:600;font-size:12px;color:#334155}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.tag{display:inline-block;padding:1px 7px;border-radius:9px;font-size:12px;color:#fff}
.drift{background:""" + DRIFT + """}.ok{background:""" + OK + """}
.detectable{background:""" + DETECT + """}.other{background:#64748b}
.dist{display:grid;grid-template-columns:repeat(auto-fill,minmax(390px,1fr));gap:12px}
.note{color:#475569;font-size:12px;overflow-wrap:anywhere}
svg.chart{display:block;max-width:100%;height:auto}
details{margin:6px 0}summary{cursor:pointer;font-weight:600}
"""


# --------------------------------------------------------------------------- helpers
def num(value: Any) -> str:
    """A number as the page shows it (see the module docstring for the rule)."""
    if isinstance(value, float) and math.isfinite(value):
        return f'<data value="{value!r}">{fmt(value)}</data>'
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return fmt(value)
    if isinstance(value, float):
        return fmt(None)
    return esc(value)


def _pct(value: Any) -> str:
    """A share written as a percentage, with the JSON's number in ``value``."""
    if isinstance(value, float | int) and not isinstance(value, bool) and math.isfinite(value):
        return f'<data value="{value!r}">{value * 100:.1f}%</data>'
    return fmt(None)


def _page(title: str, body: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{_CSS}</style></head><body><main>"
            + "".join(body) + "</main></body></html>\n")


def _verdict(col: Mapping[str, Any]) -> str:
    if col.get("drift") is True:
        # A column missing from the current data is a schema change: an alarm, named as such.
        word = "missing" if col.get("status") == "missing" else "drift"
        return f'<span class="tag drift">{word}</span>'
    if col.get("drift") is False:
        if col.get("detectable"):
            return '<span class="tag detectable">detectable</span>'
        return '<span class="tag ok">ok</span>'
    return f'<span class="tag other">{esc(col.get("status") or "not compared")}</span>'


def _kpi(value: str, label: str) -> str:
    return f'<div class="card kpi"><b>{value}</b><span>{esc(label)}</span></div>'


def _column_notes(col: Mapping[str, Any]) -> str:
    parts = []
    metrics = col.get("metrics")
    if col.get("floor") is not None or col.get("noise") is not None:
        parts.append(f"floor {num(col.get('floor'))}, noise {num(col.get('noise'))}")
    if isinstance(metrics, Mapping) and metrics:
        parts.append(", ".join(f"{esc(k)} {num(v)}" for k, v in metrics.items()))
    nulls = col.get("null_share")
    if isinstance(nulls, Mapping):
        parts.append(f"nulls {_pct(nulls.get('reference'))} → {_pct(nulls.get('current'))}")
    new = col.get("new_categories") or []
    if new:
        parts.append("new: " + ", ".join(f"{esc(n.get('category'))} ({num(n.get('count'))})"
                                         for n in new[:8] if isinstance(n, Mapping))
                     + (f" + {len(new) - 8} more" if len(new) > 8 else ""))
    missing = col.get("missing_categories") or []
    if missing:
        parts.append("missing: " + ", ".join(esc(m) for m in missing[:8])
                     + (f" + {len(missing) - 8} more" if len(missing) > 8 else ""))
    if (col.get("drift") is None or col.get("status") == "missing") and col.get("reason"):
        parts.append(esc(col["reason"]))
    return "<br>".join(parts)


def _order(columns: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Drifted first, then detectable, then by score relative to threshold, then the rest."""
    def key(c: Mapping[str, Any]) -> tuple[int, float]:
        s, t = c.get("score"), c.get("threshold")
        ratio = s / t if isinstance(s, float | int) and isinstance(t, float | int) and t else 0.0
        rank = 0 if c.get("drift") else 1 if c.get("detectable") else 2 if (
            c.get("drift") is False) else 3
        return rank, -ratio
    return sorted((c for c in columns if isinstance(c, Mapping)), key=key)


def columns_table(columns: Sequence[Mapping[str, Any]]) -> str:
    """The per-column verdict table: status, method, score, threshold, bar, notes."""
    rows = []
    for c in _order(columns):
        rows.append(
            f"<tr><td><b>{esc(c.get('column', ''))}</b></td><td>{esc(c.get('kind') or '')}</td>"
            f"<td>{_verdict(c)}</td><td>{esc(c.get('method') or '')}</td>"
            f"<td class=\"n\">{num(c.get('score'))}</td>"
            f"<td class=\"n\">{num(c.get('threshold'))}</td>"
            f"<td>{score_bar(_f(c.get('score')), _f(c.get('threshold')), drift=c.get('drift'), detectable=bool(c.get('detectable')))}</td>"  # noqa: E501
            f"<td class=\"note\">{_column_notes(c)}</td></tr>")
    return ("<table><thead><tr><th>column</th><th>kind</th><th>verdict</th><th>method</th>"
            "<th>score</th><th>threshold</th><th>score vs threshold (line)</th><th>notes</th>"
            "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _f(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, float | int):
        return None
    return float(value) if math.isfinite(value) else None


# --------------------------------------------------------------------------- drift report
def render_drift_html(report: Mapping[str, Any], *, title: str = "Drift report",
                      reference_name: str = "reference", current_name: str = "current",
                      reference_profile: Any = None, current_profile: Any = None) -> str:
    """One drift report (:func:`keelwork.core.monitors.drift_report`) as a self-contained page.

    Args:
        report: The report dict (as returned or read back from its JSON).
        title: The page's heading.
        reference_name: What the reference was (a file name), shown, escaped.
        current_name: What the current data was.
        reference_profile: The reference :class:`~keelwork.core.monitors.TableProfile`; with
            ``current_profile``, adds a reference-vs-current distribution chart per column
            (the report itself carries verdicts, not distributions).
        current_profile: The current profile, built against ``reference_profile``.

    Returns:
        The HTML document.
    """
    rows = report.get("rows") or {}
    summary = report.get("summary") or {}
    columns = [c for c in report.get("columns") or [] if isinstance(c, Mapping)]
    drifted = summary.get("drifted") or []
    body = [f"<h1>{esc(title)}</h1>",
            f'<p class="sub">current <b>{esc(current_name)}</b> ({num(rows.get("current"))} rows)'
            f' against reference <b>{esc(reference_name)}</b> ({num(rows.get("reference"))} rows)'
            f"</p>",
            '<div class="cards">',
            _kpi(f"{len(drifted)} / {num(summary.get('columns', len(columns)))}",
                 "columns drifted"),
            _kpi(_pct(summary.get("share_drifted")), "share of compared columns drifted"),
            _kpi(str(len(summary.get("detectable") or [])), "detectable, below the floor"),
            _kpi(str(len(summary.get("not_compared") or [])), "not compared"),
            "</div>"]
    if drifted:
        body.append(f'<p>Drifted: {", ".join(f"<b>{esc(d)}</b>" for d in drifted)}</p>')
    body += ["<h2>Columns</h2>", columns_table(columns), _rule_note()]
    if reference_profile is not None and current_profile is not None:
        body += ["<h2>Distributions</h2>", '<div class="dist">',
                 *_distribution_cards(columns, reference_profile, current_profile), "</div>"]
    return _page(title, body)


def _rule_note() -> str:
    return ('<p class="note">The bar is the score relative to the column\'s threshold (the dark '
            "line; past 2.5x the bar is clipped). A column drifts when its score exceeds the "
            "threshold, the larger of a minimum effect size and the 99% sampling-noise level; "
            "<i>detectable</i> means above the noise but below the minimum effect size. Floats "
            "are shown to 4 significant digits; each holds the JSON report's exact value.</p>")


def _distribution_cards(columns: Sequence[Mapping[str, Any]], ref_profile: Any,
                        cur_profile: Any) -> list[str]:
    cards = []
    for c in _order(columns):
        name = c.get("column")
        ref = ref_profile.columns.get(name)
        cur = cur_profile.columns.get(name)
        if ref is None or cur is None:
            continue
        if ref.kind == "numeric":
            chart = numeric_hist(ref.edges, ref.counts, cur.counts,
                                 lo=_min(ref.minimum, cur.minimum),
                                 hi=_max(ref.maximum, cur.maximum))
            stats = (f"mean {num(ref.mean)} → {num(cur.mean)}, sd {num(ref.std)} → "
                     f"{num(cur.std)}")
        else:
            ref_new, cur_new = dict(ref.new), dict(cur.new)
            extra = [k for k, _ in ref.new] + sorted(k for k in cur_new if k not in ref_new)
            labels = [*ref.vocabulary, "(other)", *extra]
            chart = category_bars(labels, [*ref.counts, ref.other, *(ref_new.get(k, 0)
                                                                     for k in extra)],
                                  [*cur.counts, cur.other, *(cur_new.get(k, 0) for k in extra)])
            stats = f"{len(ref.vocabulary)} reference categories"
        cards.append(f'<div class="card"><h3>{esc(name)} {_verdict(c)}</h3>{chart}'
                     f'<div class="note">{stats}</div></div>')
    return cards


def _min(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


# --------------------------------------------------------------------------- monitor report
def render_monitor_html(report: Mapping[str, Any]) -> str:
    """A monitor report (``keel monitor run``) as a self-contained page.

    Time series over the windows: share of columns drifted, each column's score relative to its
    threshold (a heat map), realised quality against CBPE's estimate with its band, and label
    coverage; then a table of windows and, per window, its column and segment verdicts in a
    ``<details>`` element (opens without JavaScript). Missing or null parts are left out.

    Args:
        report: The report dict (kind ``keelwork.monitor-report``).

    Returns:
        The HTML document.
    """
    model = report.get("model") or "model"
    windows = [w for w in report.get("windows") or [] if isinstance(w, Mapping)]
    ref = report.get("reference") or {}
    title = f"Monitoring: {model}"
    body = [f"<h1>{esc(title)}</h1>",
            f'<p class="sub">{len(windows)} window(s) of {esc(report.get("window") or "?")}; '
            f"reference {num(ref.get('rows'))} rows from {esc(ref.get('source') or '?')} "
            f"(created {esc(ref.get('created_at') or '?')}); generated "
            f"{esc(report.get('generated_at') or '?')}</p>"]
    if not windows:
        body.append("<p>No windows in this report.</p>")
        return _page(title, body)
    labels = [_short(w.get("start")) for w in windows]
    drifts = [w.get("drift") if isinstance(w.get("drift"), Mapping) else None
              for w in windows]
    body += ["<h2>Share of columns drifted</h2>", '<div class="card">',
             line_chart(labels, [("share drifted", [_share(d) for d in drifts])],
                        y_range=(0.0, 1.0), percent=True),
             '<p class="note">A gap: no column could be compared (an empty window).</p>',
             "</div>"]
    body += _heatmap_section(labels, drifts)
    body += _quality_section(labels, windows)
    body += ["<h2>Windows</h2>", _windows_table(windows)]
    detailed = _detailed(windows)
    body.append("<h2>Window details</h2>")
    if len(detailed) < len(windows):
        body.append(f'<p class="note">{len(detailed)} of {len(windows)} windows in detail: '
                    "those with drift or a quality alert first, then the latest; every window "
                    "is in the JSON report.</p>")
    for i in detailed:
        body.append(_window_details(windows[i], labels[i]))
    body.append(_rule_note())
    return _page(title, body)


def _detailed(windows: list[Mapping[str, Any]]) -> list[int]:
    """Indices of the windows shown in detail, in time order (at most :data:`MAX_DETAILED`).

    A month of hourly windows would otherwise repeat every column's table 720 times; the
    charts above already cover every window.
    """
    def flagged(w: Mapping[str, Any]) -> bool:
        d = w.get("drift")
        est = _part(w, "estimated") or {}
        alert = est.get("alert")
        return bool((d.get("summary") or {}).get("drifted") if isinstance(d, Mapping) else False
                    ) or (isinstance(alert, Mapping) and any(alert.values()))

    order = sorted(range(len(windows)), key=lambda i: (not flagged(windows[i]), -i))
    return sorted(order[:MAX_DETAILED])


def _short(iso: Any) -> str:
    try:
        return datetime.fromisoformat(str(iso)).strftime("%m-%d %H:%M")
    except ValueError:
        return str(iso)


def _share(drift: Mapping[str, Any] | None) -> float | None:
    """The window's drifted share, or None when it compared no column (the report's 0.0 there
    would read as "no drift" on the chart)."""
    summary = (drift or {}).get("summary")
    if not isinstance(summary, Mapping):
        return None
    total, skipped = summary.get("columns"), summary.get("not_compared") or []
    if isinstance(total, int) and total <= len(skipped):
        return None
    return _f(summary.get("share_drifted"))


def _time(iso: Any) -> str:
    if iso is None:
        return ""
    return f'<time datetime="{esc(iso)}" title="{esc(iso)}">{esc(_short(iso))}</time>'


def _heatmap_section(labels: list[str], drifts: list[Mapping[str, Any] | None]) -> list[str]:
    names: list[str] = []
    for d in drifts:
        for c in (d or {}).get("columns") or []:
            if isinstance(c, Mapping) and c.get("column") not in names:
                names.append(str(c.get("column")))
    if not names:
        return []
    cells = []
    for name in names:
        row: list[tuple[float | None, bool | None]] = []
        for d in drifts:
            col = next((c for c in (d or {}).get("columns") or []
                        if isinstance(c, Mapping) and c.get("column") == name), None)
            s, t = (_f(col.get("score")), _f(col.get("threshold"))) if col else (None, None)
            ratio = max(0.0, s) / t if s is not None and t else None
            row.append((ratio, col.get("drift") if col else None))
        cells.append(row)
    return ["<h2>Drift per column</h2>", '<div class="card">', heatmap(names, labels, cells),
            '<p class="note">Shade: score relative to threshold (full at 2x); red, outlined: '
            "drift; grey: not compared.</p></div>"]


def _quality_section(labels: list[str], windows: list[Mapping[str, Any]]) -> list[str]:
    realised = [_part(w, "realised") for w in windows]
    estimated = [_part(w, "estimated") for w in windows]
    out: list[str] = []
    for m in QUALITY_METRICS:
        r = [_f(q.get(m)) if q else None for q in realised]
        e = [_f(q.get(m)) if q else None for q in estimated]
        if all(v is None for v in r + e):
            continue
        band = [_band(q.get(f"{m}_band")) if q else None for q in estimated]
        series = [(f"realised {m}", r)]
        if any(v is not None for v in e):
            series.append((f"estimated {m} (CBPE)", e))
        out += [f"<h3>{esc(m)}</h3>",
                line_chart(labels, series, bands=[(f"estimated {m} (CBPE)", band)],
                           dashed=[f"estimated {m} (CBPE)"],
                           bounds=None if m in ("mae", "rmse") else (0.0, 1.0))]
    coverage = [_f(q.get("coverage")) if q else None for q in realised]
    if any(v is not None for v in coverage):
        out += ["<h3>label coverage</h3>",
                line_chart(labels, [("labelled share", coverage)], y_range=(0.0, 1.0),
                           percent=True, height=160)]
    if not out:
        return []
    return ["<h2>Quality</h2>", '<div class="card">', *out,
            '<p class="note">Solid: realised from ground truth; dashed with shaded band: '
            "estimated from scores (CBPE) with its 95% band.</p></div>"]


def _part(w: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    q = w.get("quality")
    part = q.get(key) if isinstance(q, Mapping) else None
    return part if isinstance(part, Mapping) else None


def _band(value: Any) -> list[float] | None:
    if isinstance(value, Sequence) and len(value) == 2:
        lo, hi = _f(value[0]), _f(value[1])
        if lo is not None and hi is not None:
            return [lo, hi]
    return None


def _windows_table(windows: list[Mapping[str, Any]]) -> str:
    rows = []
    for w in windows:
        d = w.get("drift")
        s = (d.get("summary") if isinstance(d, Mapping) else None) or {}
        real, est = _part(w, "realised") or {}, _part(w, "estimated") or {}
        drifted = s.get("drifted") or []
        rows.append(
            f"<tr><td>{_time(w.get('start'))}</td><td>{_time(w.get('end'))}</td>"
            f"<td class=\"n\">{num(w.get('predictions'))}</td>"
            f"<td>{esc(w.get('status') or '')}</td>"
            f"<td class=\"n\">{_pct(s.get('share_drifted'))}</td>"
            f"<td>{', '.join(esc(c) for c in drifted)}</td>"
            f"<td class=\"n\">{num(real.get('accuracy'))}</td>"
            f"<td class=\"n\">{num(est.get('accuracy'))}</td>"
            f"<td class=\"n\">{_pct(real.get('coverage'))}</td>"
            f"<td>{esc(real.get('state') or '')}</td></tr>")
    return ("<table><thead><tr><th>start</th><th>end</th><th>predictions</th><th>status</th>"
            "<th>drifted share</th><th>drifted columns</th><th>accuracy</th>"
            "<th>est. accuracy</th><th>label coverage</th><th>labels</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def _window_details(w: Mapping[str, Any], label: str) -> str:
    d = w.get("drift") if isinstance(w.get("drift"), Mapping) else None
    parts = [f"<details><summary>window {esc(label)} ({num(w.get('predictions'))} "
             f"predictions)</summary>"]
    for note in w.get("notes") or []:
        parts.append(f'<p class="note">{esc(note)}</p>')
    if d:
        parts.append(columns_table([c for c in d.get("columns") or []
                                    if isinstance(c, Mapping)]))
    parts += _quality_table(w)
    segments = [s for s in w.get("segments") or [] if isinstance(s, Mapping)]
    if segments:
        rows = []
        for s in segments:
            summ = s.get("summary") or {}
            found = s.get("quality")
            quality: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
            rows.append(f"<tr><td>{esc(s.get('field') or '')}</td>"
                        f"<td>{esc(s.get('value') or '')}</td>"
                        f"<td class=\"n\">{num(s.get('predictions'))}</td>"
                        f"<td class=\"n\">{_pct(summ.get('share_drifted'))}</td>"
                        f"<td>{', '.join(esc(c) for c in summ.get('drifted') or [])}</td>"
                        f"<td class=\"n\">{num(quality.get('labelled'))}</td>"
                        f"<td class=\"n\">{num(quality.get('accuracy'))}</td>"
                        f"<td class=\"n\">{num(quality.get('mae'))}</td>"
                        f"<td class=\"note\">{esc(s.get('note') or '')}</td></tr>")
        parts.append("<h3>segments</h3><table><thead><tr><th>field</th><th>value</th>"
                     "<th>predictions</th><th>drifted share</th><th>drifted columns</th>"
                     "<th>labelled</th><th>accuracy</th><th>mae</th><th>note</th></tr>"
                     "</thead><tbody>" + "".join(rows) + "</tbody></table>")
    parts.append("</details>")
    return "".join(parts)


def _quality_table(w: Mapping[str, Any]) -> list[str]:
    real, est = _part(w, "realised"), _part(w, "estimated")
    if real is None and est is None:
        return []
    rows = []
    for m in QUALITY_METRICS:
        r = real.get(m) if real else None
        e = est.get(m) if est else None
        if r is None and e is None:
            continue
        band = _band(est.get(f"{m}_band")) if est else None
        alert = (est.get("alert") or {}).get(m) if est else None
        rows.append(f"<tr><td>{esc(m)}</td><td class=\"n\">{num(r)}</td>"
                    f"<td class=\"n\">{num(e)}</td><td class=\"n\">"
                    + (f"{num(band[0])} \u2013 {num(band[1])}" if band else fmt(None))
                    + "</td><td>" + (_ALERT if alert else "") + "</td></tr>")
    extra = ""
    if real:
        extra = (f'<p class="note">labelled {num(real.get("labelled"))}, coverage '
                 f'{_pct(real.get("coverage"))}, delay p50 {num(real.get("delay_p50_s"))} s, '
                 f'p90 {num(real.get("delay_p90_s"))} s, state {esc(real.get("state") or "?")}'
                 "</p>")
    q = w.get("quality")
    why = q.get("estimated_reason") if isinstance(q, Mapping) else None
    if est is None and why:
        extra += f'<p class="note">{esc(why)}</p>'
    return ["<h3>quality</h3><table><thead><tr><th>metric</th><th>realised</th>"
            "<th>estimated</th><th>band</th><th></th></tr></thead><tbody>" + "".join(rows)
            + "</tbody></table>" + extra]


__all__ = ["MAX_DETAILED", "QUALITY_METRICS", "columns_table", "num", "render_drift_html",
           "render_monitor_html"]

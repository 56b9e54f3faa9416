"""The monitor report page (``keel monitor run``): drift, quality and label coverage over the
windows, then each window's verdicts (see :mod:`keelwork.core.reports.page` for the number and
escaping rules)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from keelwork.core.reports.charts import (
    esc,
    fmt,
    heatmap,
    line_chart,
)
from keelwork.core.reports.fairness_html import fairness_section
from keelwork.core.reports.page import (
    ALERT,
    MAX_DETAILED,
    QUALITY_METRICS,
    columns_table,
    finite,
    num,
    page,
    pct,
    rule_note,
)


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
        return page(title, body)
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
    body += fairness_section(labels, windows)
    body += ["<h2>Windows</h2>", _windows_table(windows)]
    detailed = _detailed(windows)
    body.append("<h2>Window details</h2>")
    if len(detailed) < len(windows):
        body.append(f'<p class="note">{len(detailed)} of {len(windows)} windows in detail: '
                    "those with drift or a quality alert first, then the latest; every window "
                    "is in the JSON report.</p>")
    for i in detailed:
        body.append(_window_details(windows[i], labels[i]))
    body.append(rule_note())
    return page(title, body)


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
    return finite(summary.get("share_drifted"))


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
            s, t = (finite(col.get("score")), finite(col.get("threshold"))) if col else (None, None)
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
        r = [finite(q.get(m)) if q else None for q in realised]
        e = [finite(q.get(m)) if q else None for q in estimated]
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
    coverage = [finite(q.get("coverage")) if q else None for q in realised]
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
        lo, hi = finite(value[0]), finite(value[1])
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
            f"<td class=\"n\">{pct(s.get('share_drifted'))}</td>"
            f"<td>{', '.join(esc(c) for c in drifted)}</td>"
            f"<td class=\"n\">{num(real.get('accuracy'))}</td>"
            f"<td class=\"n\">{num(est.get('accuracy'))}</td>"
            f"<td class=\"n\">{pct(real.get('coverage'))}</td>"
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
                        f"<td class=\"n\">{pct(summ.get('share_drifted'))}</td>"
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
                    + "</td><td>" + (ALERT if alert else "") + "</td></tr>")
    extra = ""
    if real:
        extra = (f'<p class="note">labelled {num(real.get("labelled"))}, coverage '
                 f'{pct(real.get("coverage"))}, delay p50 {num(real.get("delay_p50_s"))} s, '
                 f'p90 {num(real.get("delay_p90_s"))} s, state {esc(real.get("state") or "?")}'
                 "</p>")
    q = w.get("quality")
    why = q.get("estimated_reason") if isinstance(q, Mapping) else None
    if est is None and why:
        extra += f'<p class="note">{esc(why)}</p>'
    return ["<h3>quality</h3><table><thead><tr><th>metric</th><th>realised</th>"
            "<th>estimated</th><th>band</th><th></th></tr></thead><tbody>" + "".join(rows)
            + "</tbody></table>" + extra]


__all__ = ["render_monitor_html"]

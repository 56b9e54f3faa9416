"""Server-side inline SVG charts for the HTML reports.

Written by hand rather than with a charting library because every maintained one (matplotlib,
plotly, altair, bokeh) either ships a JavaScript runtime into the page or renders images whose
size and first paint grow with the data, while a report must open instantly, work with
JavaScript off and carry no external URL. Each chart here is a few dozen SVG elements built from
*aggregates* (profile counts, report scores), so its size never depends on the row count.

Every string that reaches the markup goes through :func:`esc`; numbers are formatted by
:func:`fmt` (see :mod:`keelwork.core.reports.page` for the rounding rule).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import TypeVar

_T = TypeVar("_T")

#: Colours: reference, current, and the verdicts (readable on white, distinct for most colour
#: vision deficiencies because drift/ok also differ in lightness and carry a text label).
REF = "#94a3b8"
CUR = "#2563eb"
DRIFT = "#dc2626"
OK = "#16a34a"
DETECT = "#d97706"
MUTED = "#64748b"
GRID = "#e2e8f0"
#: Series colours; red is kept out so that only drift reads as an alarm.
PALETTE = ("#2563eb", "#7c3aed", "#0891b2", "#d97706", "#db2777", "#4d7c0f")


def esc(text: object) -> str:
    """``text`` escaped for HTML/SVG text and attribute values."""
    return html.escape(str(text), quote=True)


def tag(text: str, kind: str = "mute") -> str:
    """A small coloured label (the pages' ``tag t-<kind>`` style: ok, bad, mute, ...)."""
    return f'<span class="tag t-{kind}">{esc(text)}</span>'


def fmt(value: float | int | bool | None) -> str:
    """A number as shown in the reports: integers exactly, floats to 4 significant digits."""
    if value is None:
        return "\u2013"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return "\u2013"
    return f"{value:.4g}"


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    # No xmlns: inline SVG in HTML needs none, and the page carries no URL at all.
    return (f'<svg class="chart" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(label)}">'
            f'{"".join(body)}</svg>')


def _text(x: float, y: float, s: str, *, anchor: str = "start", size: int = 11,
          color: str = MUTED, weight: str = "normal") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{color}" '
            f'text-anchor="{anchor}" font-weight="{weight}">{esc(s)}</text>')


# --------------------------------------------------------------------------- drift bars
def score_bar(score: float | None, threshold: float | None, *, drift: bool | None,
              detectable: bool = False, width: int = 160, height: int = 16) -> str:
    """One column's score against its threshold: the threshold sits at 40 % of the width.

    A shared scale across columns would be meaningless (methods differ in units), so the bar
    reads as "score relative to this column's threshold"; scores past 2.5x are clipped with an
    arrow.
    """
    if score is None or threshold is None or threshold <= 0:
        return _svg(width, height, [f'<rect x="0" y="6" width="{width}" height="4" '
                                    f'fill="{GRID}"/>'], "not compared")
    at = 0.4 * width
    ratio = max(0.0, score) / threshold
    length = min(ratio * at, width - 2)
    color = DRIFT if drift else DETECT if detectable else OK
    body = [f'<rect x="0" y="3" width="{width}" height="10" fill="{GRID}" rx="2"/>',
            f'<rect x="0" y="3" width="{length:.1f}" height="10" fill="{color}" rx="2"/>',
            f'<line x1="{at:.1f}" y1="0" x2="{at:.1f}" y2="{height}" stroke="#0f172a" '
            f'stroke-width="2"/>']
    if ratio * at > width - 2:
        body.append(f'<path d="M{width - 8},4 L{width - 1},8 L{width - 8},12 Z" fill="#fff"/>')
    return _svg(width, height, body, f"score {fmt(score)} against threshold {fmt(threshold)}")


# --------------------------------------------------------------------------- distributions
def numeric_hist(edges: Sequence[float], ref_counts: Sequence[int],
                 cur_counts: Sequence[int], *, lo: float | None, hi: float | None,
                 width: int = 400, height: int = 160) -> str:
    """Reference (grey area) and current (blue line) densities over the reference's bins.

    Bins are the profile's quantile bins, so they differ in width: heights are densities
    (share / bin width), which keeps the shapes honest. The open outer bins (values outside the
    reference's range) span to the smallest/largest value seen, ``lo``/``hi``. A long tail
    would squeeze the body into a few pixels, so when the whole range is more than 3x the
    reference's 1st-99th percentile range the axis shows only the bins holding that range and
    the chart says how much of each sample lies outside.
    """
    if not edges or len(ref_counts) != len(edges) + 1 or len(cur_counts) != len(ref_counts):
        return ""
    xs = [min(lo if lo is not None else edges[0], edges[0]), *edges,
          max(hi if hi is not None else edges[-1], edges[-1])]
    full = xs[-1] - xs[0] or 1.0
    total_r, total_c = sum(ref_counts) or 1, sum(cur_counts) or 1
    cum, first, last = 0.0, 0, len(ref_counts) - 1
    for i, n in enumerate(ref_counts):
        before, cum = cum, cum + n / total_r
        if before < 0.01 <= cum:
            first = i
        if before < 0.99 <= cum:
            last = i
            break
    clipped = full > 3 * (xs[last + 1] - xs[first]) > 0
    shown = range(first, last + 1) if clipped else range(len(ref_counts))
    x_lo, x_hi = xs[shown[0]], xs[shown[-1] + 1]
    span = x_hi - x_lo or 1.0
    pad, top, bottom = 8, 18, 22
    plot_w, plot_h = width - 2 * pad, height - top - bottom

    def densities(counts: Sequence[int], total: int) -> list[float]:
        # A zero-width outer bin (nothing beyond the range) still shows its mass as a sliver
        # of 0.5 % of the axis rather than vanishing or dividing by zero.
        return [counts[i] / total / max(xs[i + 1] - xs[i], span * 0.005) for i in shown]

    dr, dc = densities(ref_counts, total_r), densities(cur_counts, total_c)
    peak = max([*dr, *dc, 1e-300])

    def x(v: float) -> float:
        return pad + (v - x_lo) / span * plot_w

    def y(d: float) -> float:
        return top + plot_h - d / peak * plot_h

    def steps(ds: list[float]) -> str:
        pts = [f"{x(x_lo):.1f},{y(0):.1f}"]
        for d, i in zip(ds, shown, strict=True):
            x0, x1 = x(xs[i]), x(max(xs[i + 1], xs[i] + span * 0.005))
            pts += [f"{x0:.1f},{y(d):.1f}", f"{x1:.1f},{y(d):.1f}"]
        pts.append(f"{x(x_hi):.1f},{y(0):.1f}")
        return " ".join(pts)

    base = top + plot_h
    body = [f'<line x1="{pad}" y1="{base}" x2="{width - pad}" y2="{base}" stroke="{GRID}"/>',
            f'<polygon points="{steps(dr)}" fill="{REF}" fill-opacity="0.55" stroke="none"/>',
            f'<polyline points="{steps(dc)}" fill="none" stroke="{CUR}" stroke-width="2"/>',
            _text(pad, height - 6, fmt(x_lo)),
            _text(width - pad, height - 6, fmt(x_hi), anchor="end"),
            *_legend(width - pad, 11)]
    if clipped:
        out_r = 1 - sum(ref_counts[i] for i in shown) / total_r
        out_c = 1 - sum(cur_counts[i] for i in shown) / total_c
        body.append(_text(width / 2, height - 6, f"tails cut: outside ref {out_r:.1%}, "
                                                 f"cur {out_c:.1%}", anchor="middle"))
    return _svg(width, height, body, "reference and current distributions")


def _legend(right: float, y: float) -> list[str]:
    return [f'<rect x="{right - 128}" y="{y - 8}" width="10" height="10" fill="{REF}"/>',
            _text(right - 114, y, "reference"),
            f'<rect x="{right - 56}" y="{y - 8}" width="10" height="10" fill="{CUR}"/>',
            _text(right - 42, y, "current")]


def category_bars(labels: Sequence[str], ref_counts: Sequence[int], cur_counts: Sequence[int],
                  *, limit: int = 12, width: int = 400) -> str:
    """Reference and current shares per category (the ``limit`` largest), paired bars.

    Categories are ranked by the larger of their two shares, so a new category that took over
    is shown even though the reference never had it.
    """
    tr, tc = sum(ref_counts) or 1, sum(cur_counts) or 1
    rows = [(lab, r / tr, c / tc) for lab, r, c in zip(labels, ref_counts, cur_counts,
                                                       strict=True)]
    rows.sort(key=lambda t: -max(t[1], t[2]))
    hidden = len(rows) - limit
    rows = rows[:limit]
    label_w, row_h, top = 110, 22, 18
    bar_w = width - label_w - 52
    peak = max([max(r, c) for _, r, c in rows] + [1e-12])
    height = top + row_h * len(rows) + (16 if hidden > 0 else 4)
    body = _legend(width - 4, 11)
    for i, (lab, r, c) in enumerate(rows):
        y0 = top + i * row_h
        shown = lab if len(lab) <= 16 else lab[:15] + "…"
        body.append(f"<g><title>{esc(lab)}: reference {fmt(r)}, current {fmt(c)}</title>"
                    + _text(label_w - 6, y0 + 13, shown, anchor="end", color="#0f172a")
                    + f'<rect x="{label_w}" y="{y0 + 2}" width="{r / peak * bar_w:.1f}" '
                    f'height="8" fill="{REF}"/>'
                    f'<rect x="{label_w}" y="{y0 + 11}" width="{c / peak * bar_w:.1f}" '
                    f'height="8" fill="{CUR}"/>'
                    + _text(label_w + max(r, c) / peak * bar_w + 4, y0 + 14,
                            f"{c:.1%}") + "</g>")
    if hidden > 0:
        body.append(_text(label_w, height - 4, f"+ {hidden} more categories"))
    return _svg(width, height, body, "reference and current category shares")


# --------------------------------------------------------------------------- time series
def line_chart(x_labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]],
               *, bands: Sequence[tuple[str, Sequence[Sequence[float] | None]]] = (),
               y_range: tuple[float, float] | None = None, threshold: float | None = None,
               width: int = 1080, height: int = 200, percent: bool = False,
               dashed: Sequence[str] = (), bounds: tuple[float, float] | None = None) -> str:
    """Lines over the windows (gaps where a value is None), optional shaded bands.

    Args:
        x_labels: One label per window (only the first, last and a few between are written).
        series: ``(name, values)``; a name in ``dashed`` is drawn dashed.
        bands: ``(series name, [low, high] per window or None)``, shaded in its line's colour.
        y_range: Fixed axis; default: from the data.
        threshold: A horizontal reference line.
        width: Pixels.
        height: Pixels.
        percent: Label the axis in percent.
        dashed: Series drawn dashed (estimates).
        bounds: Where the axis from the data may reach at most (a metric in [0, 1]: its
            rounded-out axis never shows impossible values like 1.2).
    """
    n = len(x_labels)
    values = [v for _, vs in series for v in vs if v is not None]
    values += [b for _, bs in bands for band in bs if band for b in band]
    if threshold is not None:
        values.append(threshold)
    if y_range is None:
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        if hi - lo < 1e-9:
            lo, hi = lo - 0.5, hi + 0.5
        y_range = _nice(lo, hi)
        if bounds is not None:
            y_range = (max(bounds[0], y_range[0]), min(bounds[1], y_range[1]))
            if y_range[1] <= y_range[0]:
                y_range = bounds
    lo, hi = y_range
    left, right, top, bottom = 48, 12, 22, 24
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(i: int) -> float:
        return left + (plot_w / 2 if n == 1 else i / (n - 1) * plot_w)

    def y(v: float) -> float:
        return top + plot_h - (v - lo) / (hi - lo) * plot_h

    def tick(v: float) -> str:
        return f"{v:.0%}" if percent else fmt(v)

    body = []
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        body += [f'<line x1="{left}" y1="{y(v):.1f}" x2="{width - right}" y2="{y(v):.1f}" '
                 f'stroke="{GRID}"/>', _text(left - 6, y(v) + 4, tick(v), anchor="end")]
    step = max(1, math.ceil(n / 6))
    for i in range(0, n, step):
        # The outermost labels are anchored inwards so they are not cut at the edges.
        anchor = "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle"
        body.append(_text(x(i), height - 6, x_labels[i], anchor=anchor))
    colors = {name: PALETTE[i % len(PALETTE)] for i, (name, _) in enumerate(series)}
    for name, bs in bands:
        runs = _runs([(i, b) for i, b in enumerate(bs) if b is not None])
        for run in runs:
            upper = [f"{x(i):.1f},{y(b[1]):.1f}" for i, b in run]
            lower = [f"{x(i):.1f},{y(b[0]):.1f}" for i, b in reversed(run)]
            if len(run) == 1:  # a lone window: a vertical whisker
                i, b = run[0]
                body.append(f'<line x1="{x(i):.1f}" y1="{y(b[0]):.1f}" x2="{x(i):.1f}" '
                            f'y2="{y(b[1]):.1f}" stroke="{colors.get(name, MUTED)}" '
                            f'stroke-width="6" stroke-opacity="0.25"/>')
            else:
                body.append(f'<polygon points="{" ".join(upper + lower)}" '
                            f'fill="{colors.get(name, MUTED)}" fill-opacity="0.15"/>')
    if threshold is not None:
        body.append(f'<line x1="{left}" y1="{y(threshold):.1f}" x2="{width - right}" '
                    f'y2="{y(threshold):.1f}" stroke="{DRIFT}" stroke-dasharray="4 3"/>')
    legend_x = left
    for name, vs in series:
        color = colors[name]
        dash = ' stroke-dasharray="6 4"' if name in dashed else ""
        present = [(k, val) for k, val in enumerate(vs) if val is not None]
        for line in _runs(present):
            pts = " ".join(f"{x(k):.1f},{y(val):.1f}" for k, val in line)
            body.append(f'<polyline points="{pts}" fill="none" stroke="{color}" '
                        f'stroke-width="2"{dash}/>')
        # Past a few dozen windows the markers would merge into a thick band; lines only.
        for k, val in present if n <= 60 else ():
            body.append(f'<circle cx="{x(k):.1f}" cy="{y(val):.1f}" r="3" fill="{color}">'
                        f"<title>{esc(name)} {esc(x_labels[k])}: {tick(val)}</title></circle>")
        body += [f'<line x1="{legend_x}" y1="10" x2="{legend_x + 16}" y2="10" '
                 f'stroke="{color}" stroke-width="2"{dash}/>',
                 _text(legend_x + 20, 14, name, color="#0f172a")]
        legend_x += 30 + 7 * len(name)
    return _svg(width, height, body, "; ".join(name for name, _ in series))


def _nice(lo: float, hi: float) -> tuple[float, float]:
    """``[lo, hi]`` widened to multiples of a round step (1, 2, 2.5 or 5 x 10^k), 4 steps."""
    raw = (hi - lo) / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    low = math.floor(lo / step) * step
    while low + 4 * step < hi:  # rounding the bottom down may push the top out
        step = next(m * magnitude for m in (1, 2, 2.5, 5, 10, 20) if m * magnitude > step)
        low = math.floor(lo / step) * step
    return low, low + 4 * step


def _runs(points: list[tuple[int, _T]]) -> list[list[tuple[int, _T]]]:
    """Consecutive-index runs, so a line breaks where a window has no value."""
    runs: list[list[tuple[int, _T]]] = []
    for i, v in points:
        if runs and runs[-1][-1][0] == i - 1:
            runs[-1].append((i, v))
        else:
            runs.append([(i, v)])
    return runs


def heatmap(rows: Sequence[str], x_labels: Sequence[str],
            cells: Sequence[Sequence[tuple[float | None, bool | None]]], *,
            width: int = 1080) -> str:
    """Columns x windows, each cell shaded by score / threshold, a drifted cell outlined.

    Args:
        rows: Column names.
        x_labels: Window labels.
        cells: Per row, per window ``(score / threshold or None, drift)``.
        width: Pixels.
    """
    label_w, top, row_h = 170, 20, 18
    n = max(1, len(x_labels))
    cell_w = (width - label_w - 8) / n
    gap = 1.0 if cell_w >= 4 else 0.0  # hundreds of windows: cells touch
    height = top + row_h * len(rows) + 6
    body = []
    step = max(1, math.ceil(n / 6))
    for j in range(0, len(x_labels), step):
        body.append(_text(label_w + (j + 0.5) * cell_w, 13, x_labels[j], anchor="middle"))
    for i, name in enumerate(rows):
        y0 = top + i * row_h
        shown = name if len(name) <= 26 else name[:25] + "…"
        body.append(_text(label_w - 6, y0 + 13, shown, anchor="end", color="#0f172a"))
        for j, (ratio, drift) in enumerate(cells[i]):
            if ratio is None:
                fill, opacity = GRID, 1.0
            else:
                fill = DRIFT if drift else OK
                opacity = min(1.0, 0.15 + 0.85 * min(ratio, 2.0) / 2.0)
            stroke = ' stroke="#7f1d1d" stroke-width="1.5"' if drift and gap else ""
            tip = "not compared" if ratio is None else f"{ratio:.2f}x threshold"
            body.append(f'<rect x="{label_w + j * cell_w + gap:.1f}" y="{y0 + 1}" '
                        f'width="{cell_w - 2 * gap:.2f}" height="{row_h - 2}" fill="{fill}" '
                        f'fill-opacity="{opacity:.2f}"{stroke}><title>{esc(name)} '
                        f"{esc(x_labels[j] if j < len(x_labels) else '')}: {tip}</title></rect>")
    return _svg(width, height, body, "drift score relative to threshold per column and window")


__all__ = ["category_bars", "esc", "fmt", "heatmap", "line_chart", "numeric_hist", "score_bar",
           "tag"]

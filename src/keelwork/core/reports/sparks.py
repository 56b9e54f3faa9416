"""Small inline SVG charts for the dashboard: bar sparklines, line sparklines, meters.

Like :mod:`keelwork.core.reports.charts`: hand-written SVG of a few dozen elements built from
aggregates, no script, no URL; every string goes through :func:`esc`. A missing value (None)
is a gap, never drawn as zero.
"""

from __future__ import annotations

from collections.abc import Sequence

from keelwork.core.reports.charts import CUR, DRIFT, GRID, MUTED, OK, esc

AMBER = "#d97706"


def _svg(width: int, height: int, body: list[str], label: str, cls: str = "spark") -> str:
    return (f'<svg class="{cls}" width="{width}" height="{height}" viewBox="0 0 {width} '
            f'{height}" role="img" aria-label="{esc(label)}">{"".join(body)}</svg>')


def bars(values: Sequence[int], errors: Sequence[int], titles: Sequence[str], *,
         width: int = 168, height: int = 34, label: str = "requests per hour") -> str:
    """One bar per span (requests), its failed part stacked in red; ``titles`` are the
    hover texts, one per bar."""
    n = max(1, len(values))
    top = max([*values, 1])
    slot = width / n
    body = [f'<line x1="0" y1="{height - 0.5}" x2="{width}" y2="{height - 0.5}" '
            f'stroke="{GRID}"/>']
    for i, v in enumerate(values):
        x = i * slot + 0.5
        w = max(1.0, slot - 1.5)
        h = 0.0 if v <= 0 else max(1.5, (height - 2) * v / top)
        bad = errors[i] if i < len(errors) else 0
        hb = 0.0 if bad <= 0 else max(1.5, (height - 2) * bad / top)
        title = f"<title>{esc(titles[i])}</title>" if i < len(titles) else ""
        body.append(f'<g>{title}<rect x="{x:.1f}" y="0" width="{w:.1f}" height="{height}" '
                    f'fill="transparent"/>'
                    f'<rect x="{x:.1f}" y="{height - h:.1f}" width="{w:.1f}" height="{h:.1f}" '
                    f'rx="1" fill="{CUR}" fill-opacity="0.75"/>'
                    + (f'<rect x="{x:.1f}" y="{height - hb:.1f}" width="{w:.1f}" '
                       f'height="{hb:.1f}" fill="{DRIFT}"/>' if hb else "") + "</g>")
    return _svg(width, height, body, label)


def line(values: Sequence[float | None], titles: Sequence[str], *, width: int = 168,
         height: int = 34, label: str = "p99 latency per hour", color: str = "#7c3aed") -> str:
    """A line over the spans; a None is a gap (no answered request then)."""
    n = len(values)
    present = [v for v in values if v is not None]
    if not present:
        return _svg(width, height, [f'<text x="{width / 2}" y="{height / 2 + 4}" '
                                    f'text-anchor="middle" font-size="11" fill="{MUTED}">'
                                    "no data</text>"], label)
    hi = max(present) * 1.1 or 1.0

    def x(i: int) -> float:
        return width / 2 if n == 1 else 2 + i * (width - 4) / (n - 1)

    def y(v: float) -> float:
        return height - 2 - (height - 4) * v / hi

    body: list[str] = []
    run: list[str] = []
    for i, v in enumerate(values):
        if v is None:
            if run:
                body.append(_poly(run, color))
            run = []
            continue
        run.append(f"{x(i):.1f},{y(v):.1f}")
        title = f"<title>{esc(titles[i])}</title>" if i < len(titles) else ""
        body.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="1.6" fill="{color}">'
                    f"{title}</circle>")
    if run:
        body.append(_poly(run, color))
    return _svg(width, height, body, label)


def _poly(points: list[str], color: str) -> str:
    if len(points) == 1:
        return ""
    return (f'<polyline points="{" ".join(points)}" fill="none" stroke="{color}" '
            'stroke-width="1.6" stroke-linejoin="round"/>')


def meter(share: float | None, *, width: int = 150, height: int = 10,
          label: str = "error budget left") -> str:
    """A bar filled to ``share`` (0..1, clipped): green above half, amber above a tenth, red
    below; None draws an empty track."""
    body = [f'<rect x="0" y="0" width="{width}" height="{height}" rx="{height / 2}" '
            f'fill="{GRID}"/>']
    if share is not None:
        s = min(1.0, max(0.0, share))
        color = OK if s > 0.5 else AMBER if s > 0.1 else DRIFT
        if s > 0:
            body.append(f'<rect x="0" y="0" width="{max(height, width * s):.1f}" '
                        f'height="{height}" rx="{height / 2}" fill="{color}"/>')
    return _svg(width, height, body, label, cls="meter")


def score_strip(score: float | None, threshold: float | None, drift: bool | None, *,
                width: int = 96, height: int = 10) -> str:
    """A drift score against its threshold (the dark tick, at two thirds of the width; past
    1.5x the threshold the bar is clipped)."""
    body = [f'<rect x="0" y="2" width="{width}" height="{height - 4}" rx="3" fill="{GRID}"/>']
    if score is not None and threshold:
        tick = width * 2 / 3
        w = min(width, tick * score / threshold)
        color = DRIFT if drift else OK
        body.append(f'<rect x="0" y="2" width="{max(1.0, w):.1f}" height="{height - 4}" '
                    f'rx="3" fill="{color}"/>')
        body.append(f'<line x1="{tick:.1f}" y1="0" x2="{tick:.1f}" y2="{height}" '
                    'stroke="#0f172a" stroke-width="1.5"/>')
    return _svg(width, height, body, "score against threshold", cls="meter")


def share_bar(share: float, *, width: int = 120, height: int = 10,
              label: str = "share") -> str:
    """A neutral bar filled to ``share`` (0..1, clipped) of its track."""
    s = min(1.0, max(0.0, share))
    body = [f'<rect x="0" y="2" width="{width}" height="{height - 4}" rx="3" fill="{GRID}"/>']
    if s > 0:
        body.append(f'<rect x="0" y="2" width="{max(1.0, width * s):.1f}" '
                    f'height="{height - 4}" rx="3" fill="{CUR}"/>')
    return _svg(width, height, body, label, cls="meter")


__all__ = ["bars", "line", "meter", "score_strip", "share_bar"]

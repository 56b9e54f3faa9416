"""The launch checklist (``keel check --html``) as a self-contained page: the verdict, a bar of
passed / failed / not checked items, then one row per item with what was found and the fix, and
its machine-readable facts in a ``<details>`` element (opens without JavaScript). Every string
is HTML-escaped; numbers follow :mod:`keelwork.core.reports.page`'s rule."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from keelwork.core.reports.charts import DRIFT, OK, esc
from keelwork.core.reports.page import kpi, page

#: Each status: its label on the page, its colour.
STATUSES: dict[str, tuple[str, str]] = {
    "pass": ("pass", OK),
    "fail": ("FAIL", DRIFT),
    "not_checked": ("not checked", "#d97706"),
}

_WIDTH, _HEIGHT = 640, 34


def status_bar(counts: Mapping[str, int]) -> str:
    """One horizontal bar split by status, each part as wide as its share of the items."""
    total = sum(counts.values())
    parts = [f'<svg class="chart" viewBox="0 0 {_WIDTH} {_HEIGHT}" width="{_WIDTH}" '
             f'height="{_HEIGHT}" role="img" aria-label="items by result">']
    x = 0.0
    for status, (label, colour) in STATUSES.items():
        n = counts.get(status, 0)
        if not n or not total:
            continue
        width = _WIDTH * n / total
        parts.append(f'<rect x="{x:.1f}" y="4" width="{width:.1f}" height="{_HEIGHT - 8}" '
                     f'fill="{colour}"><title>{esc(label)}: {n}</title></rect>')
        if width >= 70:
            parts.append(f'<text x="{x + 8:.1f}" y="{_HEIGHT / 2 + 4:.1f}" fill="#fff" '
                         f'font-size="12">{esc(label)} {n}</text>')
        x += width
    parts.append("</svg>")
    return "".join(parts)


def render_check_html(report: Mapping[str, Any]) -> str:
    """A ``keel check`` report (``{"ok", "service", "strict", "items": [...]}``, the JSON that
    ``keel check --json`` prints) as a page."""
    items: Sequence[Mapping[str, Any]] = [i for i in report.get("items") or []
                                          if isinstance(i, Mapping)]
    counts = {s: sum(1 for i in items if i.get("status") == s) for s in STATUSES}
    ok = bool(report.get("ok"))
    service = report.get("service") or "service"
    title = f"Launch check: {service}"
    verdict = ("ready to launch: no item fails" if ok else
               "not ready: " + ("an item fails or was not checked (--strict)"
                                if report.get("strict") else "an item fails"))
    body = [f"<h1>{esc(title)}</h1>",
            f'<p class="sub"><span class="tag {"ok" if ok else "drift"}">'
            f'{"pass" if ok else "FAIL"}</span> {esc(verdict)}</p>',
            '<div class="cards">',
            *(kpi(str(counts[s]), label) for s, (label, _) in STATUSES.items()),
            "</div>", f'<div class="card">{status_bar(counts)}</div>',
            "<h2>Items</h2>",
            "<table><tr><th>item</th><th>result</th><th>what was found</th><th>fix</th></tr>"]
    for item in items:
        status = str(item.get("status") or "")
        label, colour = STATUSES.get(status, (status or "?", "#64748b"))
        facts = item.get("facts") or {}
        details = ("" if not facts else
                   "<details><summary>facts</summary><pre>"
                   + esc(json.dumps(facts, indent=2, sort_keys=True, default=str))
                   + "</pre></details>")
        body.append(f'<tr id="{esc(item.get("name"))}"><td><b>{esc(item.get("name"))}</b></td>'
                    f'<td><span class="tag" style="background:{colour};white-space:nowrap">'
                    f'{esc(label)}</span></td><td>{esc(item.get("detail") or "")}{details}</td>'
                    f'<td>{esc(item.get("fix") or "")}</td></tr>')
    body.append("</table>")
    return page(title, body)


__all__ = ["STATUSES", "render_check_html", "status_bar"]

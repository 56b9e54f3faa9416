"""Self-contained HTML for drift reports and monitor reports.

One file, no external URL, no script, a few lines of inline CSS; charts are inline SVG built
from the report's aggregates (:mod:`keelwork.core.reports.charts`), so a report of a
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
from typing import Any

from keelwork.core.reports.charts import (
    DETECT,
    DRIFT,
    OK,
    esc,
    fmt,
    score_bar,
)

#: Windows shown in detail in a monitor report (see ``_detailed``).
MAX_DETAILED = 48
ALERT = '<span class="tag drift">alert</span>'
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


def pct(value: Any) -> str:
    """A share written as a percentage, with the JSON's number in ``value``."""
    if isinstance(value, float | int) and not isinstance(value, bool) and math.isfinite(value):
        return f'<data value="{value!r}">{value * 100:.1f}%</data>'
    return fmt(None)


def page(title: str, body: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{_CSS}</style></head><body><main>"
            + "".join(body) + "</main></body></html>\n")


def verdict(col: Mapping[str, Any]) -> str:
    if col.get("drift") is True:
        # A column missing from the current data is a schema change: an alarm, named as such.
        word = "missing" if col.get("status") == "missing" else "drift"
        return f'<span class="tag drift">{word}</span>'
    if col.get("drift") is False:
        if col.get("detectable"):
            return '<span class="tag detectable">detectable</span>'
        return '<span class="tag ok">ok</span>'
    return f'<span class="tag other">{esc(col.get("status") or "not compared")}</span>'


def kpi(value: str, label: str) -> str:
    return f'<div class="card kpi"><b>{value}</b><span>{esc(label)}</span></div>'


def column_notes(col: Mapping[str, Any]) -> str:
    parts = []
    metrics = col.get("metrics")
    if col.get("floor") is not None or col.get("noise") is not None:
        parts.append(f"floor {num(col.get('floor'))}, noise {num(col.get('noise'))}")
    if isinstance(metrics, Mapping) and metrics:
        parts.append(", ".join(f"{esc(k)} {num(v)}" for k, v in metrics.items()))
    nulls = col.get("null_share")
    if isinstance(nulls, Mapping):
        parts.append(f"nulls {pct(nulls.get('reference'))} → {pct(nulls.get('current'))}")
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


def order(columns: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
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
    for c in order(columns):
        rows.append(
            f"<tr><td><b>{esc(c.get('column', ''))}</b></td><td>{esc(c.get('kind') or '')}</td>"
            f"<td>{verdict(c)}</td><td>{esc(c.get('method') or '')}</td>"
            f"<td class=\"n\">{num(c.get('score'))}</td>"
            f"<td class=\"n\">{num(c.get('threshold'))}</td>"
            f"<td>{score_bar(finite(c.get('score')), finite(c.get('threshold')), drift=c.get('drift'), detectable=bool(c.get('detectable')))}</td>"  # noqa: E501
            f"<td class=\"note\">{column_notes(c)}</td></tr>")
    return ("<table><thead><tr><th>column</th><th>kind</th><th>verdict</th><th>method</th>"
            "<th>score</th><th>threshold</th><th>score vs threshold (line)</th><th>notes</th>"
            "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, float | int):
        return None
    return float(value) if math.isfinite(value) else None



def rule_note() -> str:
    return ('<p class="note">The bar is the score relative to the column\'s threshold (the dark '
            "line; past 2.5x the bar is clipped). A column drifts when its score exceeds the "
            "threshold, the larger of a minimum effect size and the 99% sampling-noise level; "
            "<i>detectable</i> means above the noise but below the minimum effect size. Floats "
            "are shown to 4 significant digits; each holds the JSON report's exact value.</p>")


__all__ = ["ALERT", "MAX_DETAILED", "QUALITY_METRICS", "column_notes", "columns_table", "finite",
           "kpi", "num", "order", "page", "pct", "rule_note", "verdict"]

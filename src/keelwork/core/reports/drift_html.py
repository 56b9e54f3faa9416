"""The drift report page: verdicts, scores against thresholds, and each column's reference and
current distributions (see :mod:`keelwork.core.reports.page` for the number and escaping rules)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from keelwork.core.reports.charts import (
    category_bars,
    esc,
    numeric_hist,
)
from keelwork.core.reports.page import (
    columns_table,
    kpi,
    num,
    order,
    page,
    pct,
    rule_note,
    verdict,
)


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
            kpi(f"{len(drifted)} / {num(summary.get('columns', len(columns)))}",
                 "columns drifted"),
            kpi(pct(summary.get("share_drifted")), "share of compared columns drifted"),
            kpi(str(len(summary.get("detectable") or [])), "detectable, below the floor"),
            kpi(str(len(summary.get("not_compared") or [])), "not compared"),
            "</div>"]
    if drifted:
        body.append(f'<p>Drifted: {", ".join(f"<b>{esc(d)}</b>" for d in drifted)}</p>')
    body += ["<h2>Columns</h2>", columns_table(columns), rule_note()]
    if reference_profile is not None and current_profile is not None:
        body += ["<h2>Distributions</h2>", '<div class="dist">',
                 *_distribution_cards(columns, reference_profile, current_profile), "</div>"]
    return page(title, body)


def _distribution_cards(columns: Sequence[Mapping[str, Any]], ref_profile: Any,
                        cur_profile: Any) -> list[str]:
    cards = []
    for c in order(columns):
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
        cards.append(f'<div class="card"><h3>{esc(name)} {verdict(c)}</h3>{chart}'
                     f'<div class="note">{stats}</div></div>')
    return cards


def _min(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


__all__ = ["render_drift_html"]

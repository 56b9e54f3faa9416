"""The fairness part of the monitor report page: each protected field's demographic-parity
difference over the windows (with its confidence band and the threshold), then the latest
window with labelled answers in detail: every group's rates with their intervals and every
measure's verdict (see :mod:`keelwork.core.fairness`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from keelwork.core.reports.charts import esc, fmt, line_chart
from keelwork.core.reports.page import ALERT

_RATES = ("selection_rate", "tpr", "fpr", "precision")
_WORDS = {"ok": "ok", "uncertain": "uncertain (interval spans the threshold)",
          "no_data": "no data (fewer than two groups)"}


def fairness_section(labels: Sequence[str], windows: Sequence[Mapping[str, Any]]) -> list[str]:
    """HTML blocks for the windows' ``fairness`` entries; none when no window has one."""
    fair = [w.get("fairness") if isinstance(w.get("fairness"), Mapping) else None
            for w in windows]
    if not any(fair):
        return []
    body = ["<h2>Fairness</h2>"]
    first = next(f for f in fair if f)
    body.append(f'<p class="sub">Labelled answers per group of each protected field; '
                f"favourable class {esc(first.get('positive_label'))}; intervals at "
                f"{fmt(100 * float(first.get('confidence') or 0))}% confidence, simultaneous "
                "over a field's groups. A measure alerts only when its whole interval is "
                "beyond the threshold.</p>")
    fields = [f["field"] for f in first.get("fields") or []]
    for name in fields:
        values, bands = [], []
        threshold = None
        for f in fair:
            m = _measure(f, name, "demographic_parity_difference")
            values.append(m.get("value") if m else None)
            bands.append(m.get("interval") if m else None)
            threshold = threshold if m is None else m.get("threshold", threshold)
        body += [f"<h3>{esc(name)}: demographic parity difference</h3>", '<div class="card">',
                 line_chart(labels, [("difference", values)],
                            bands=[("difference", bands)], threshold=threshold,
                            bounds=(0.0, 1.0)), "</div>"]
    latest = next((f for f in reversed(fair) if f and f.get("labelled")), None)
    if latest is not None:
        body.append(f"<h3>Latest window with labels ({fmt(latest.get('labelled'))} labelled "
                    "answers)</h3>")
        for f in latest.get("fields") or []:
            body.append(_field_tables(f))
    return body


def _measure(fair: Mapping[str, Any] | None, field: str, measure: str
             ) -> Mapping[str, Any] | None:
    for f in (fair or {}).get("fields") or []:
        if f.get("field") == field:
            for m in f.get("measures") or []:
                if m.get("measure") == measure and m.get("value") is not None:
                    return dict(m)
    return None


def _interval(iv: Sequence[float] | None) -> str:
    return "" if not iv else f"{fmt(iv[0])} to {fmt(iv[1])}"


def _field_tables(f: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{esc(g['value'])}</td><td>{fmt(g['labelled'])}</td>"
        + "".join(f"<td>{fmt(g[r])} <span class=\"note\">({_interval(g['intervals'][r])})"
                  "</span></td>" for r in _RATES) + "</tr>"
        for g in f.get("groups") or [])
    measures = "".join(
        f"<tr><td>{esc(m['measure'])}</td><td>{fmt(m['value'])}</td>"
        f"<td>{_interval(m['interval'])}</td><td>{fmt(m['threshold'])}</td><td>"
        + (ALERT if m["status"] == "alert" else esc(_WORDS.get(m["status"], m["status"])))
        + "</td></tr>" for m in f.get("measures") or [])
    skipped = f.get("skipped_groups") or 0
    note = (f'<p class="note">{fmt(skipped)} group(s) below the minimum size not compared: '
            + esc(", ".join(f"{s['value']} ({s['labelled']})" for s in f.get("skipped") or []))
            + "</p>") if skipped else ""
    return (f"<h4>{esc(f['field'])}</h4><table><tr><th>group</th><th>labelled</th>"
            "<th>selection rate</th><th>TPR</th><th>FPR</th><th>precision</th></tr>"
            f"{rows}</table>{note}<table><tr><th>measure</th><th>value</th><th>interval</th>"
            f"<th>threshold</th><th>verdict</th></tr>{measures}</table>")


__all__ = ["fairness_section"]

"""The dashboard's panel of what a model relied on: mean |attribution| per feature over the
explained predictions of the latest monitoring window (``POST :explain``'s stored
explanations, as ``keel monitor run`` sums them), largest first, each with its share of the
total and its share over the reference rows, and how far the proportions moved from the
reference's (total variation; shifted past its threshold). A window without explained
predictions says so: nothing was measured."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keelwork.core.reports.charts import esc, tag
from keelwork.core.reports.sparks import share_bar

#: Features shown, at most (the rest are counted).
MAX_FEATURES = 8


def reliance_panel(view: Mapping[str, Any] | None) -> str:
    """The panel's HTML for a window's ``attributions`` entry (None: no explained answer)."""
    head = "<h4>What the model relied on · mean |attribution| per feature</h4>"
    if not view or not view.get("explained"):
        return (head + '<p><span class="nd">no data</span>: <span class="note">no prediction '
                "of this window was explained (<code>POST /v1/models/NAME:explain</code>)."
                "</span></p>")
    ranked = [(str(k), float(v)) for k, v in dict(view.get("mean_abs") or {}).items()]
    ranked.sort(key=lambda kv: -kv[1])
    total = sum(v for _, v in ranked) or 1.0
    ref = view.get("reference")
    base = {str(k): abs(float(v)) for k, v in dict((ref or {}).get("mean_abs") or {}).items()}
    base_total = sum(base.values()) or 1.0
    rows = "".join(
        f"<tr><td><b>{esc(name)}</b></td><td class=\"n\">{value:.4g}</td>"
        f"<td>{share_bar(value / total, label=f'{name}: {value / total:.0%} of the total')}"
        f"</td><td class=\"n\">{value / total:.0%}</td><td class=\"n\">"
        + (f"{base.get(name, 0.0) / base_total:.0%}" if base else "&ndash;") + "</td></tr>"
        for name, value in ranked[:MAX_FEATURES])
    more = (f'<p class="note">and {len(ranked) - MAX_FEATURES} more features</p>'
            if len(ranked) > MAX_FEATURES else "")
    return (head + f'<p class="note" style="margin:0 0 6px">over {int(view["explained"])} '
            f"explained predictions · {_moved(ref)}</p><table><thead><tr><th>feature</th>"
            "<th class=\"n\">mean |attr.|</th><th>share</th><th class=\"n\"></th>"
            "<th class=\"n\">reference</th></tr></thead><tbody>"
            + rows + "</tbody></table>" + more)


def _moved(ref: Mapping[str, Any] | None) -> str:
    if ref is None:
        return "no reference baseline (the model has no exact explainer)"
    distance = ref.get("distance")
    if distance is None:
        return "not comparable with the reference"
    verdict = tag("shifted", "bad") if ref.get("shifted") else tag("steady", "ok")
    return (f"{float(distance):.2f} of the reliance moved from the reference's "
            f"{int(ref.get('explained') or 0)} rows {verdict}")


__all__ = ["MAX_FEATURES", "reliance_panel"]

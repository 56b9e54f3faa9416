"""``keel dashboard grafana``: the Grafana dashboard of a keel.yaml, as JSON text or a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from keelwork.adapters.data.atomic import write_text_atomic
from keelwork.core.grafana import expressions, grafana_dashboard
from keelwork.spec.model import KeelSpec


def grafana_json(spec: KeelSpec) -> str:
    """The dashboard JSON model of ``spec`` (:func:`keelwork.core.grafana.grafana_dashboard`),
    indented, ending with a newline."""
    return json.dumps(grafana_dashboard(spec), indent=2) + "\n"


def write_grafana(spec: KeelSpec, out: Path) -> dict[str, Any]:
    """Write the dashboard of ``spec`` to ``out`` (atomically: a reader never sees half).

    Returns:
        ``{"path", "panels", "expressions"}``: where, how many panels, how many PromQL
        expressions.

    Raises:
        OSError: ``out`` cannot be written.
    """
    dashboard = grafana_dashboard(spec)
    write_text_atomic(out, json.dumps(dashboard, indent=2) + "\n")
    panels = sum(1 for p in dashboard["panels"] if p["type"] != "row")
    return {"path": str(out), "panels": panels, "expressions": len(expressions(dashboard))}


__all__ = ["grafana_json", "write_grafana"]

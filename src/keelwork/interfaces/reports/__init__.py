"""Reports a person reads: self-contained HTML (inline SVG charts) for drift and monitor reports.

The JSON reports are the source of truth; these renderers only lay their numbers out (see
:mod:`keelwork.interfaces.reports.html` for the rounding rule).
"""

from __future__ import annotations

from keelwork.interfaces.reports.html import render_drift_html, render_monitor_html

__all__ = ["render_drift_html", "render_monitor_html"]

"""Reports a person reads: self-contained HTML (inline SVG charts) for drift and monitor reports.

The JSON reports are the source of truth; these renderers only lay their numbers out (see
:mod:`keelwork.core.reports.page` for the rounding rule).
"""

from __future__ import annotations

from keelwork.core.reports.drift_html import render_drift_html
from keelwork.core.reports.monitor_html import render_monitor_html

__all__ = ["render_drift_html", "render_monitor_html"]

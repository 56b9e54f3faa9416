"""Monitoring over the prediction log: stored references, windowed runs, /metrics export.

- :mod:`~keelwork.service.monitoring.reference`: build and store a
  :class:`~keelwork.service.monitoring.reference.MonitorReference` (``keel monitor reference``,
  the ``keel models register`` hook).
- :mod:`~keelwork.service.monitoring.runner`: ``run_monitor``
  reads the log in windows and writes one result per window (``keel monitor run``).
- :mod:`~keelwork.adapters.stores.monitor_store`: the ``monitor_references`` and
  ``monitor_results`` tables.
- :mod:`~keelwork.service.monitoring.metrics`: a Prometheus collector of the latest window.

Nothing heavy is imported here.
"""

from __future__ import annotations

from pathlib import Path


def write_report(path: Path, text: str) -> None:
    """Write a report (JSON, an HTML page, a saved profile) to ``path`` atomically: a failure
    leaves whatever ``path`` held before.

    Raises:
        OSError: the file cannot be written.
    """
    from keelwork.adapters.data.atomic import write_text_atomic

    write_text_atomic(path, text)


__all__ = ["write_report"]

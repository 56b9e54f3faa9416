"""Monitoring over the prediction log: stored references, windowed runs, /metrics export.

- :mod:`~keelwork.adapters.monitoring.reference`: build and store a
  :class:`~keelwork.adapters.monitoring.reference.MonitorReference` (``keel monitor reference``,
  the ``keel models register`` hook).
- :mod:`~keelwork.adapters.monitoring.runner`: ``run_monitor``
  reads the log in windows and writes one result per window (``keel monitor run``).
- :mod:`~keelwork.adapters.monitoring.store`: the ``monitor_references`` and
  ``monitor_results`` tables.
- :mod:`~keelwork.adapters.monitoring.metrics`: a Prometheus collector of the latest window.

Nothing heavy is imported here.
"""

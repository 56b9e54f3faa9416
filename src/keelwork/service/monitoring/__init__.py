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

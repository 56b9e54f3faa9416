"""Delivering alerts to their owners: who gets which alert, and in what words.

Pure rules, no I/O: :mod:`keelwork.core.alerting.routing` (contacts of keel.yaml -> receivers,
and the routing tree by service, severity and owner), :mod:`keelwork.core.alerting.alertmanager`
(that tree as an Alertmanager configuration, with its inhibit rules) and
:mod:`keelwork.core.alerting.notification` (an alert's state change as one notification: its
fingerprint, its text, the retry back-off). The sinks that send are in
``keelwork.adapters.notifiers``; the use-cases in ``keelwork.service.alerting``.

Alerts are matched by these labels, which keelwork's generated Prometheus rules put on them:
``service``, ``severity`` (``page`` or ``ticket``), ``owner``, ``slo`` and ``tier``.
"""

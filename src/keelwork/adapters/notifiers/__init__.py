"""Sinks that deliver alert notifications: one module per kind, each a
:class:`keelwork.types.Notifier` (``send`` raises :class:`keelwork.errors.NotificationError`
when the notification did not arrive; retries and de-duplication are the caller's,
``keelwork.service.alerting``).

- :mod:`keelwork.adapters.notifiers.webhook`: Alertmanager's webhook JSON, POSTed;
- :mod:`keelwork.adapters.notifiers.slack`: a Slack-compatible incoming-webhook message;
- :mod:`keelwork.adapters.notifiers.smtp`: a plain-text e-mail over SMTP (STARTTLS, AUTH).
"""

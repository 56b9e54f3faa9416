"""A webhook sink: POST the notification as Alertmanager's webhook JSON (version 4)."""

from __future__ import annotations

from typing import Any

import httpx

from keelwork.core.alerting.notification import Notification
from keelwork.errors import NotificationError

#: Seconds a sink has to answer one notification.
TIMEOUT_S = 10.0


def post_json(url: str, payload: dict[str, Any], *, timeout_s: float, what: str) -> None:
    """POST ``payload``; a 2xx answer is delivery.

    Raises:
        NotificationError: no connection, a time-out or a non-2xx answer. The message names
            the host, never the whole URL (a webhook URL often carries a token).
    """
    host = httpx.URL(url).host
    try:
        response = httpx.post(url, json=payload, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise NotificationError(f"The {what} at {host} could not be reached: "
                                f"{type(exc).__name__}: {exc}".replace(url, host)) from None
    if not 200 <= response.status_code < 300:
        raise NotificationError(f"The {what} at {host} answered {response.status_code}: "
                                f"{response.text[:200]}")


class WebhookNotifier:
    """POSTs each notification to ``url``.

    Args:
        url: The receiver's http(s) URL.
        timeout_s: Seconds the receiver has to answer.
    """

    kind = "webhook"

    def __init__(self, url: str, *, timeout_s: float = TIMEOUT_S) -> None:
        self.url = url
        self.timeout_s = timeout_s

    def send(self, notification: Notification) -> None:
        """Deliver one notification.

        Raises:
            NotificationError: it was not delivered.
        """
        post_json(self.url, notification.webhook_payload(), timeout_s=self.timeout_s,
                  what="webhook")


__all__ = ["WebhookNotifier", "post_json"]

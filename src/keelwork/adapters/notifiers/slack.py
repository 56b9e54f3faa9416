"""A Slack-compatible sink: an incoming-webhook message (Slack, Mattermost, Rocket.Chat)."""

from __future__ import annotations

from keelwork.adapters.notifiers.webhook import TIMEOUT_S, post_json
from keelwork.core.alerting.notification import Notification


class SlackNotifier:
    """Posts each notification to a Slack-compatible incoming webhook.

    Args:
        url: The incoming webhook's URL (a secret: it is never shown in messages).
        channel: ``#channel`` or ``@handle`` to post to (None: the webhook's own).
        timeout_s: Seconds the endpoint has to answer.
    """

    kind = "slack"

    def __init__(self, url: str, channel: str | None = None, *,
                 timeout_s: float = TIMEOUT_S) -> None:
        self.url = url
        self.channel = channel
        self.timeout_s = timeout_s

    def send(self, notification: Notification) -> None:
        """Deliver one notification.

        Raises:
            NotificationError: it was not delivered.
        """
        post_json(self.url, notification.slack_payload(self.channel),
                  timeout_s=self.timeout_s, what="Slack-compatible webhook")


__all__ = ["SlackNotifier"]

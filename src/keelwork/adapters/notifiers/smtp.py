"""An e-mail sink: the notification as a plain-text mail over SMTP."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from keelwork.core.alerting.notification import Notification
from keelwork.errors import NotificationError

#: Seconds the SMTP server has to answer each step.
TIMEOUT_S = 10.0


class SmtpNotifier:
    """Mails each notification to ``to``.

    Args:
        to: The address.
        smarthost: ``host:port`` of the SMTP server.
        sender: The From address.
        username: SMTP AUTH user (None: no AUTH).
        password: SMTP AUTH password.
        require_tls: Refuse to send unless the server offers STARTTLS.
        timeout_s: Seconds the server has to answer each step.
    """

    kind = "email"

    def __init__(self, to: str, *, smarthost: str, sender: str, username: str | None = None,
                 password: str | None = None, require_tls: bool = False,
                 timeout_s: float = TIMEOUT_S) -> None:
        host, _, port = smarthost.rpartition(":")
        self.to = to
        self.host = host.strip("[]")
        self.port = int(port)
        self.sender = sender
        self.username = username
        self.password = password
        self.require_tls = require_tls
        self.timeout_s = timeout_s

    def message(self, notification: Notification) -> EmailMessage:
        """The mail of one notification."""
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = self.to
        msg["Subject"] = notification.email_subject()
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain="keelwork")
        msg["X-Keelwork-Fingerprint"] = notification.fingerprint
        msg["X-Keelwork-State"] = notification.state
        msg.set_content(notification.text())
        return msg

    def send(self, notification: Notification) -> None:
        """Deliver one notification.

        Raises:
            NotificationError: the server is unreachable, refused the login or the mail.
        """
        where = f"{self.host}:{self.port}"
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                smtp.ehlo()
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                elif self.require_tls:
                    raise NotificationError(f"The SMTP server at {where} offers no STARTTLS, "
                                            "and alerts.smtp.require_tls is set")
                if self.username is not None:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(self.message(notification))
        except (OSError, smtplib.SMTPException) as exc:
            raise NotificationError(f"The SMTP server at {where} did not take the mail: "
                                    f"{type(exc).__name__}: {exc}") from None


__all__ = ["SmtpNotifier"]

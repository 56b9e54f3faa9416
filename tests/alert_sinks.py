"""Local notification sinks for the alerting tests, and what they received as one list.

- :class:`HttpSink`: an HTTP server on loopback keeping every JSON body POSTed to it (a
  webhook receiver, or a Slack-compatible incoming webhook);
- :class:`SmtpSink`: an SMTP server on loopback (aiosmtpd) keeping every mail;
- :class:`Sinks`: one of each, and :meth:`Sinks.notices`: every notification received, as
  ``(sink, alert, state)``, read the same way whether Alertmanager or keelwork's own delivery
  sent it (Alertmanager's webhook JSON; a Slack attachment or a mail subject starting
  ``[FIRING] <alertname>``).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HttpSink:
    """An HTTP server on loopback that keeps every JSON body POSTed to it, with its path and
    arrival time."""

    def __init__(self) -> None:
        self.port = free_port()
        self.lock = threading.Lock()
        self.posts: list[tuple[float, str, dict[str, Any]]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                with sink.lock:
                    sink.posts.append((time.time(), self.path, body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def received(self) -> list[tuple[float, str, dict[str, Any]]]:
        with self.lock:
            return list(self.posts)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpSink:
    """An SMTP server on loopback (aiosmtpd) that keeps every mail with its arrival time."""

    def __init__(self) -> None:
        controller = pytest.importorskip("aiosmtpd.controller")
        self.port = free_port()
        self.lock = threading.Lock()
        self.mails: list[tuple[float, Message]] = []
        self.controller = controller.Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.mails.append((time.time(), message_from_bytes(envelope.content)))
        return "250 OK"

    def received(self) -> list[tuple[float, Message]]:
        with self.lock:
            return list(self.mails)

    def stop(self) -> None:
        self.controller.stop()


@dataclass(frozen=True)
class Notice:
    """One alert in one notification, as a sink received it."""

    sink: str
    alert: str
    state: str
    at: float
    #: Where it went: the webhook's path, the Slack channel, the mail's recipient.
    to: str = ""


_TITLE = re.compile(r"^\[(FIRING|RESOLVED)(?::\d+)?\] (\w+)")


def _title(text: str) -> tuple[str, str] | None:
    found = _TITLE.match(text.strip())
    return (found.group(2), found.group(1).lower()) if found else None


class Sinks:
    """A webhook receiver, a Slack-compatible endpoint and an SMTP server, all on loopback."""

    WEBHOOK_PATH = "/hook"
    SLACK_PATH = "/slack/T0/B0"

    def __init__(self) -> None:
        self.webhook = HttpSink()
        self.slack = HttpSink()
        self.smtp = SmtpSink()

    def close(self) -> None:
        self.smtp.stop()
        self.slack.stop()
        self.webhook.stop()

    def notices(self) -> list[Notice]:
        """Every alert of every notification received so far, oldest first.

        Raises:
            AssertionError: a sink received something that is no alert notification.
        """
        out: list[Notice] = []
        for at, path, body in self.webhook.received():
            for alert in body["alerts"]:
                out.append(Notice("webhook", alert["labels"]["alertname"], alert["status"], at,
                                  path))
        for at, _, body in self.slack.received():
            found = _title(body["attachments"][0]["title"])
            assert found is not None, f"not an alert message: {body}"
            out.append(Notice("slack", *found, at, body.get("channel", "")))
        for at, mail in self.smtp.received():
            found = _title(str(mail["Subject"]))
            assert found is not None, f"not an alert mail: {mail['Subject']}"
            out.append(Notice("email", *found, at, str(mail["To"])))
        return sorted(out, key=lambda n: n.at)

    def by_sink(self, since: float = 0.0) -> dict[str, dict[str, list[str]]]:
        """Per sink, per alert, the states notified (in order) from ``since`` on."""
        out: dict[str, dict[str, list[str]]] = {"webhook": {}, "slack": {}, "email": {}}
        for n in self.notices():
            if n.at >= since:
                out[n.sink].setdefault(n.alert, []).append(n.state)
        return out

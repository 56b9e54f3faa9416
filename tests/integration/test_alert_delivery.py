"""keelwork's own alert delivery through real sinks on loopback: an HTTP webhook receiver, a
Slack-compatible JSON receiver and an SMTP server (aiosmtpd). One notification per change of
state; a sink that is down is retried with back-off, the failure kept in the store and
counted on ``keelwork_notifications_failed_total``, and delivered once the sink is back, even
after a restart."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from keelwork.adapters.stores.engine import make_engine
from keelwork.core.alerting.notification import AlertChange
from keelwork.service.alerting import AlertDelivery, open_delivery
from keelwork.spec.loader import parse_spec
from keelwork.spec.model import KeelSpec

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")

PAGE = {"alertname": "ErrorBudgetBurn", "service": "churn", "severity": "page",
        "slo": "availability", "tier": "fast", "owner": "ops@example.com"}
#: No owner label: every owner gets it (an owner label picks that owner alone).
TICKET = {**{k: v for k, v in PAGE.items() if k != "owner"}, "severity": "ticket",
          "tier": "ticket"}
NOTES = {"summary": "at this rate the 30-day error budget is gone in 9 h; 23% already spent",
         "runbook_url": "https://runbooks.example/churn/availability"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """An HTTP server on loopback that keeps every JSON body POSTed to it, by path."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.bodies: dict[str, list[dict[str, Any]]] = {}
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                bodies.setdefault(self.path, []).append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class Mailbox:
    """What the SMTP server received."""

    def __init__(self) -> None:
        self.mails: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def sinks() -> Iterator[tuple[Receiver, Mailbox, int, int]]:
    """The Slack-compatible receiver and the SMTP server, up; the pager's port, left down."""
    chat = Receiver(free_port()).start()
    mailbox = Mailbox()
    smtp_port = free_port()
    smtp = aiosmtpd_controller.Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    try:
        yield chat, mailbox, smtp_port, free_port()
    finally:
        smtp.stop()
        chat.stop()


def make_spec(chat: Receiver, smtp_port: int, pager_port: int) -> KeelSpec:
    return parse_spec(f"""
service:
  name: churn
  owners: [ops@example.com, "#ml-alerts"]
  on_call: {{contact: "http://127.0.0.1:{pager_port}/page"}}
models: [{{name: m, runtime: python, artifact: 'x:y'}}]
alerts:
  smtp: {{smarthost: "127.0.0.1:{smtp_port}", from: keel@example.com}}
  receivers:
    - {{name: chat, kind: slack, url: "${{CHAT_URL}}"}}
""", env={"CHAT_URL": f"http://127.0.0.1:{chat.port}/hooks/T0/B0"})


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = make_engine(f"sqlite:///{tmp_path / 'keel.db'}")
    yield made
    made.dispose()


def delivery(spec: KeelSpec, engine: Engine, now: list[float]) -> tuple[AlertDelivery,
                                                                        CollectorRegistry]:
    registry = CollectorRegistry()
    return open_delivery(spec, engine, registry=registry, timeout_s=2.0,
                         clock=lambda: now[0]), registry


def failures(registry: CollectorRegistry, receiver: str) -> float:
    return registry.get_sample_value("keelwork_notifications_failed_total",
                                     {"receiver": receiver}) or 0.0


def test_each_state_change_is_delivered_once_to_each_sink(
        sinks: tuple[Receiver, Mailbox, int, int], engine: Engine) -> None:
    chat, mailbox, smtp_port, pager_port = sinks
    pager = Receiver(pager_port).start()
    try:
        now = [1_000.0]
        alerts, registry = delivery(make_spec(chat, smtp_port, pager_port), engine, now)
        assert alerts.observe([AlertChange(PAGE, "firing", 990.0, NOTES)]) == 1
        assert alerts.observe([AlertChange(PAGE, "firing", 995.0, NOTES)]) == 0  # de-duplicated
        assert alerts.observe([AlertChange(TICKET, "firing", 990.0, NOTES)]) == 2  # mail, chat
        report = alerts.deliver()
        assert (report.sent, report.failed) == (3, 0)
        assert alerts.deliver().sent == 0  # nothing twice

        (page,) = pager.bodies["/page"]
        assert page["status"] == "firing" and page["receiver"] == "churn-on-call"
        assert page["alerts"][0]["labels"] == PAGE
        assert page["alerts"][0]["annotations"]["runbook_url"] == NOTES["runbook_url"]
        (posted,) = chat.bodies["/hooks/T0/B0"]
        assert posted["channel"] == "#ml-alerts" and NOTES["summary"] in posted["text"]
        (mail,) = mailbox.mails
        assert mail["To"] == "ops@example.com" and mail["Subject"].startswith("[FIRING]")
        body = mail.get_payload()
        assert NOTES["summary"] in body and NOTES["runbook_url"] in body
        assert "tier = ticket" in body

        now[0] = 2_000.0
        assert alerts.observe([AlertChange(PAGE, "resolved", 1_990.0, NOTES)]) == 1
        assert alerts.deliver().sent == 1
        assert [b["status"] for b in pager.bodies["/page"]] == ["firing", "resolved"]
        assert registry.get_sample_value("keelwork_notifications_sent_total",
                                         {"receiver": "churn-on-call"}) == 2.0
        assert alerts.pending() == {}
    finally:
        pager.stop()


def test_a_sink_that_is_down_is_retried_with_backoff_and_nothing_is_lost(
        sinks: tuple[Receiver, Mailbox, int, int], engine: Engine) -> None:
    chat, _, smtp_port, pager_port = sinks
    spec = make_spec(chat, smtp_port, pager_port)
    now = [1_000.0]
    alerts, registry = delivery(spec, engine, now)
    alerts.observe([AlertChange(PAGE, "firing", 1_000.0, NOTES)])

    report = alerts.deliver()  # the pager is down
    assert (report.sent, report.failed) == (0, 1)
    assert "could not be reached" in report.errors[0][1]
    (row,) = alerts.store.alerts()
    assert (row.attempts, row.retry_at, row.notified_state) == (1, 1_001.0, None)
    assert row.last_error and "127.0.0.1" in row.last_error
    now[0] = 1_000.5
    assert alerts.deliver().failed == 0  # not before its back-off
    now[0] = 1_001.0
    assert alerts.deliver().failed == 1
    (row,) = alerts.store.alerts()
    assert (row.attempts, row.retry_at) == (2, 1_003.0)  # twice as long
    assert failures(registry, "churn-on-call") == 2.0
    assert registry.get_sample_value("keelwork_notifications_pending",
                                     {"receiver": "churn-on-call"}) == 1.0

    # a restart: the state comes back from the store, and the sink is back too
    pager = Receiver(pager_port).start()
    try:
        now[0] = 1_003.0
        again, registry = delivery(spec, engine, now)
        assert again.observe([AlertChange(PAGE, "firing", 1_002.0, NOTES)]) == 0
        assert again.deliver().sent == 1
        assert [b["status"] for b in pager.bodies["/page"]] == ["firing"]
        (row,) = again.store.alerts()
        assert (row.notified_state, row.attempts, row.last_error) == ("firing", 0, None)
        assert again.deliver().sent == 0 and again.pending() == {}
    finally:
        pager.stop()


def test_a_resolved_alert_never_seen_firing_sends_nothing(
        sinks: tuple[Receiver, Mailbox, int, int], engine: Engine) -> None:
    chat, _, smtp_port, pager_port = sinks
    alerts, _ = delivery(make_spec(chat, smtp_port, pager_port), engine, [1_000.0])
    assert alerts.observe([AlertChange(PAGE, "resolved", 990.0)]) == 0
    assert alerts.deliver().sent == 0


def escalating_spec(pager_port: int, lead_port: int) -> KeelSpec:
    return parse_spec(f"""
service:
  name: churn
  owners: [ops@example.com]
  on_call:
    contact: "http://127.0.0.1:{pager_port}/page"
    escalation: "http://127.0.0.1:{lead_port}/lead"
    escalate_after: 10m
models: [{{name: m, runtime: python, artifact: 'x:y'}}]
""", env={})


def test_an_unacknowledged_page_is_escalated_once_and_its_end_follows_it(
        engine: Engine) -> None:
    """service.on_call.escalation: a page nobody acknowledged within escalate_after reaches the
    escalation contact once (a restarted delivery does not send it again), its resolution
    follows it there; a ticket is never escalated; an acknowledged page is not either."""
    from keelwork.adapters.stores.alert_store import AlertStore

    pager, lead = Receiver(free_port()).start(), Receiver(free_port()).start()
    try:
        now = [1_000.0]
        spec = escalating_spec(pager.port, lead.port)
        alerts, _ = delivery(spec, engine, now)
        alerts.observe([AlertChange(PAGE, "firing", 1_000.0, NOTES),
                        AlertChange(TICKET, "firing", 1_000.0, NOTES)])
        alerts.deliver()
        assert len(pager.bodies["/page"]) == 1 and "/lead" not in lead.bodies
        now[0] = 1_000.0 + 9 * 60  # not yet
        alerts.deliver()
        assert "/lead" not in lead.bodies
        now[0] = 1_000.0 + 10 * 60 + 1
        assert alerts.deliver().sent == 1
        (up,) = lead.bodies["/lead"]
        assert up["status"] == "firing" and up["receiver"] == "churn-escalation"
        assert up["alerts"][0]["labels"] == PAGE
        assert "within 10 min" in up["alerts"][0]["annotations"]["escalated"]
        again, _ = delivery(spec, engine, now)  # a restarted server
        now[0] += 600
        assert again.deliver().sent == 0 and len(lead.bodies["/lead"]) == 1
        again.observe([AlertChange(PAGE, "resolved", now[0], NOTES)])
        assert again.deliver().sent == 2  # the on-call contact and the escalation
        assert [b["status"] for b in lead.bodies["/lead"]] == ["firing", "resolved"]

        # the page fires again and is acknowledged in time: no escalation this time
        now[0] += 60
        again.observe([AlertChange(PAGE, "firing", now[0], NOTES)])
        again.deliver()
        fp = AlertChange(PAGE, "firing", now[0]).fingerprint
        assert AlertStore(engine).acknowledge(fp, "ana", now[0] + 30)
        assert not AlertStore(engine).acknowledge("0" * 16, "ana", now[0])  # unknown alert
        now[0] += 3600
        again.deliver()
        assert [b["status"] for b in lead.bodies["/lead"]] == ["firing", "resolved"]
    finally:
        pager.stop()
        lead.stop()


def test_keel_alerts_list_and_ack_as_a_user_types_them(tmp_path: Path) -> None:
    """The on-call person sees the firing page with `keel alerts list`, acknowledges it with
    `keel alerts ack`, and the delivery then does not escalate it."""
    import time

    from journey import keel

    pager, lead = Receiver(free_port()).start(), Receiver(free_port()).start()
    try:
        spec = escalating_spec(pager.port, lead.port)
        (tmp_path / "keel.yaml").write_text(
            f"service: {{name: churn, owners: [ops@example.com], on_call: {{contact: "
            f"'http://127.0.0.1:{pager.port}/page', escalation: "
            f"'http://127.0.0.1:{lead.port}/lead', escalate_after: 10m}}}}\n"
            "models: [{name: m, runtime: python, artifact: 'x:y'}]\n"
            f"storage: {{url: 'sqlite:///{tmp_path / 'keel.db'}'}}\n")
        keel(tmp_path, "spec", "validate", "keel.yaml")
        store = make_engine(f"sqlite:///{tmp_path / 'keel.db'}")
        started = time.time() - 60
        now = [time.time()]
        alerts, _ = delivery(spec, store, now)
        alerts.observe([AlertChange(PAGE, "firing", started, NOTES)])
        alerts.deliver()
        listed = [json.loads(line) for line in
                  keel(tmp_path, "alerts", "list", "--json").stdout.splitlines()]
        assert [(a["alertname"], a["severity"], a["acknowledged"]) for a in listed] == [
            ("ErrorBudgetBurn", "page", None)]
        fp = listed[0]["fingerprint"]
        said = keel(tmp_path, "alerts", "ack", fp).stdout
        assert f"acknowledged {fp} as journey" in said
        assert keel(tmp_path, "alerts", "ack", "feedfacefeedface", check=False).returncode == 1
        (again,) = [json.loads(line) for line in
                    keel(tmp_path, "alerts", "list", "--json").stdout.splitlines()]
        assert again["acknowledged"]["by"] == "journey"
        now[0] = started + 3600  # long past escalate_after: acknowledged, so not escalated
        alerts.deliver()
        assert "/lead" not in lead.bodies
        store.dispose()
    finally:
        pager.stop()
        lead.stop()

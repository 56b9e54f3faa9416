"""``alerts.receivers[]`` named by an owner or the on-call contact: an e-mail receiver's ``to``
addresses and a Slack receiver's ``channel`` are where the routing sends (delivered by
:mod:`keelwork.service.alerting`; the sinks are proved in tests/integration/
test_alert_delivery.py)."""

from __future__ import annotations

from keelwork.core.alerting.routing import routing
from keelwork.spec.loader import parse_spec

SPEC = """
service:
  name: churn
  owners: [{owner}]
  on_call: {{contact: {on_call}}}
models: [{{name: m, runtime: python, artifact: 'x:y'}}]
alerts:
  receivers:
    - {{name: team-mail, kind: email, to: [ana@example.com, bo@example.com]}}
    - {{name: team-chat, kind: slack, url: "https://hooks.example/T0/B0", channel: "#churn"}}
    - {{name: pager, kind: webhook, url: "https://pager.example/hook"}}
"""


def _targets(owner: str, on_call: str) -> dict[str, list[tuple[str, str | None, str | None]]]:
    spec = parse_spec(SPEC.format(owner=owner, on_call=on_call), env={})
    return {r.name: [(t.kind, t.to or t.url, t.channel) for t in r.targets]
            for r in routing(spec).receivers}


def test_an_email_receiver_sends_to_each_of_its_addresses() -> None:
    got = _targets("team-mail", "pager")
    assert got["churn-owners"] == [("email", "ana@example.com", None),
                                   ("email", "bo@example.com", None)]
    assert got["churn-on-call"] == [("webhook", "https://pager.example/hook", None)]


def test_a_slack_receiver_posts_to_its_channel() -> None:
    got = _targets("team-mail", "team-chat")
    assert got["churn-on-call"] == [("slack", "https://hooks.example/T0/B0", "#churn")]

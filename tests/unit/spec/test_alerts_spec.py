"""keel.yaml's contacts and ``alerts:`` section: every contact reaches someone, or
``keel spec validate`` says which does not, with its path and line."""

from __future__ import annotations

import pytest

from keelwork.errors import SpecError
from keelwork.spec.alerts import parse_contact
from keelwork.spec.loader import parse_spec
from keelwork.spec.model import KeelSpec

MODELS = "models: [{name: m, runtime: python, artifact: 'x:y'}]\n"


def problems(text: str, env: dict[str, str] | None = None) -> list[tuple[str, int | None, str]]:
    with pytest.raises(SpecError) as exc:
        parse_spec(text, env=env or {})
    return [(d.path, d.line, d.message) for d in exc.value.details]


def test_every_kind_of_contact_is_accepted() -> None:
    spec = parse_spec(
        "service:\n  name: s\n  owners: [ml@example.com, 'mailto:b@example.org',\n"
        "           'https://hooks.example/x', '#ml-alerts', team-mail]\n"
        "  on_call: {contact: pager}\n" + MODELS +
        "alerts:\n  receivers:\n"
        "    - {name: pager, kind: webhook, url: 'http://127.0.0.1:9/page'}\n"
        "    - {name: chat, kind: slack, url: 'https://hooks.example/slack'}\n"
        "    - {name: team-mail, kind: email, to: [a@example.com, b@example.com]}\n", env={})
    kinds = [parse_contact(o, spec.alerts) for o in spec.service.owners]
    assert [getattr(k, "kind", k) for k in kinds] == ["email", "email", "url", "slack",
                                                       "receiver"]


def test_an_owner_without_a_usable_contact_is_an_error_with_path_and_line() -> None:
    found = problems("service:\n  name: s\n  owners:\n    - ml@example.com\n    - ml-team\n"
                     + MODELS)
    assert len(found) == 1
    path, line, message = found[0]
    assert (path, line) == ("service.owners[1]", 5)
    assert "'ml-team' is not a contact an alert can reach" in message


def test_an_on_call_contact_is_enforced_now_and_checked() -> None:
    ok = parse_spec("service: {name: s, owners: [a@example.com], on_call: {contact: "
                    "'https://pager.example/hook'}}\n" + MODELS, env={})
    assert ok.service.on_call is not None
    found = problems("service:\n  name: s\n  owners: [a@example.com]\n  on_call:\n"
                     "    contact: bob\n" + MODELS)
    assert [(p, ln) for p, ln, _ in found] == [("service.on_call.contact", 5)]


def test_an_escalation_contact_must_reach_someone() -> None:
    parse_spec("service: {name: s, owners: [a@example.com], on_call: {contact: "
               "a@example.com, escalation: b@example.com}}\n" + MODELS, env={})
    found = problems("service: {name: s, owners: [a@example.com], on_call: {contact: "
                     "a@example.com, escalation: '@lead'}}\n" + MODELS)
    assert [p for p, _, _ in found] == ["service.on_call.escalation"]
    assert "needs exactly one slack receiver" in found[0][2]


def test_a_slack_handle_needs_exactly_one_slack_receiver() -> None:
    found = problems("service: {name: s, owners: ['@ana']}\n" + MODELS)
    assert "needs exactly one slack receiver" in found[0][2]


@pytest.mark.parametrize(("receiver", "rule"), [
    ("{name: x, kind: webhook}", "needs url"),
    ("{name: x, kind: slack, url: 'ftp://h/x'}", "needs url"),
    ("{name: x, kind: email, to: [nobody]}", "needs to"),
    ("{name: x, kind: email, to: [a@example.com], url: 'https://h/x'}", "has no url"),
    ("{name: x, kind: webhook, url: 'https://h/x', channel: '#c'}", "channel is for slack"),
    ("{name: 'bad name', kind: webhook, url: 'https://h/x'}", "a receiver name"),
])
def test_a_bad_receiver_is_refused_with_its_path(receiver: str, rule: str) -> None:
    found = problems("service: {name: s, owners: [a@example.com]}\n" + MODELS +
                     f"alerts:\n  receivers:\n    - {receiver}\n")
    assert [(p, ln) for p, ln, _ in found] == [("alerts.receivers[0]", 5)]
    assert rule in found[0][2]


def test_duplicate_receivers_and_a_bad_smarthost_are_refused() -> None:
    found = problems("service: {name: s, owners: [a@example.com]}\n" + MODELS +
                     "alerts:\n  receivers:\n"
                     "    - {name: x, kind: webhook, url: 'https://h/x'}\n"
                     "    - {name: x, kind: webhook, url: 'https://h/y'}\n")
    assert [(p, "appears twice" in m) for p, _, m in found] == [("alerts", True)]
    found = problems("service: {name: s, owners: [a@example.com]}\n" + MODELS +
                     "alerts:\n  smtp: {smarthost: nope}\n")
    assert [(p, ln, "host:port" in m) for p, ln, m in found] == [("alerts.smtp", 4, True)]


def test_secrets_from_the_environment_are_never_shown() -> None:
    secret = "https-not-a-url-token-12345"
    found = problems("service: {name: s, owners: [a@example.com]}\n" + MODELS +
                     "alerts:\n  receivers:\n    - {name: x, kind: slack, url: '${HOOK}'}\n",
                     env={"HOOK": secret})
    assert found and all(secret not in m for _, _, m in found)
    assert "${HOOK}" in found[0][2]


def test_the_smtp_section_defaults_to_the_local_mail_server() -> None:
    spec = KeelSpec.model_validate({"service": {"name": "s", "owners": ["a@example.com"]},
                                    "models": [{"name": "m", "runtime": "python"}]})
    assert (spec.alerts.smtp.smarthost, spec.alerts.smtp.sender) == ("localhost:25",
                                                                     "keelwork@localhost")

"""The Alertmanager configuration of a keel.yaml: the routing tree as keelwork evaluates it,
and the real ``amtool``: ``check-config`` passes, ``config routes test`` sends a page to the
on-call receiver and a ticket to the owners (skipped without amtool, failed under CI)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from keelwork.core.alerting.alertmanager import HIDDEN, alertmanager_config
from keelwork.core.alerting.routing import routing
from keelwork.service.alerting import alertmanager_yaml, write_alertmanager_config
from keelwork.spec.loader import parse_spec
from keelwork.spec.model import KeelSpec

SPEC = """
service:
  name: churn
  owners: [ml-team@example.com, "#ml-alerts"]
  on_call: {contact: pager}
models: [{name: m, runtime: python, artifact: 'x:y'}]
alerts:
  smtp: {smarthost: "smtp.example.com:587", from: keel@example.com, username: keel,
         password: "${SMTP_PASSWORD}", require_tls: true}
  receivers:
    - {name: pager, kind: webhook, url: "${PAGER_URL}"}
    - {name: chat, kind: slack, url: "${SLACK_URL}"}
"""
ENV = {"SMTP_PASSWORD": "pw-secret-1", "PAGER_URL": "https://pager.example/hook/secret-2",
       "SLACK_URL": "https://hooks.example/T0/B0/secret-3"}
SECRETS = tuple(ENV.values())


@pytest.fixture
def spec() -> KeelSpec:
    return parse_spec(SPEC, env=ENV)


def _amtool() -> str:
    found = shutil.which("amtool")
    if found is None:
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail("CI must install amtool (Debian package prometheus-alertmanager)",
                        pytrace=False)
        pytest.skip("amtool missing: apt-get install prometheus-alertmanager")
    return found


def test_pages_go_to_on_call_and_tickets_to_the_owners(spec: KeelSpec) -> None:
    tree = routing(spec)
    page = {"service": "churn", "severity": "page", "slo": "availability", "tier": "fast"}
    ticket = {"service": "churn", "severity": "ticket", "slo": "availability"}
    assert tree.receiver_for(page) == "churn-on-call"
    assert tree.receiver_for(ticket) == "churn-owners"
    assert tree.receiver_for({**ticket, "owner": "#ml-alerts"}) == "churn-owner-1"
    assert tree.receiver_for({"service": "other"}) == "churn-owners"  # nothing is dropped
    kinds = sorted(t.kind for t in tree.receiver("churn-owners").targets)
    assert kinds == ["email", "slack"]


def test_without_on_call_pages_go_to_the_owners() -> None:
    spec = parse_spec("service: {name: s, owners: [a@example.com]}\n"
                      "models: [{name: m, runtime: python}]\n", env={})
    tree = routing(spec)
    assert tree.receiver_for({"service": "s", "severity": "page"}) == "s-owners"
    assert [r.name for r in tree.receivers] == ["s-owners"]


def test_a_slower_tier_is_inhibited_while_a_faster_one_fires_for_the_same_model() -> None:
    spec = parse_spec(SPEC + "slos: {availability: 0.999}\n", env=ENV)
    rules = alertmanager_config(spec)["inhibit_rules"]
    pairs = [(r["source_matchers"][0], r["target_matchers"][0]) for r in rules]
    fast, slow, ticket = ('alertname="KeelworkAvailabilityBurnFast"',
                          'alertname="KeelworkAvailabilityBurnSlow"',
                          'alertname="KeelworkAvailabilityBurnTicket"')
    assert (fast, slow) in pairs and (fast, ticket) in pairs and (slow, ticket) in pairs
    assert (slow, fast) not in pairs and (ticket, fast) not in pairs
    # One model's incident does not silence another model's slower tiers.
    assert all(r["equal"] == ["service", "slo", "model"] for r in rules)


def test_group_timing_defaults_to_alertmanagers_and_is_checked(spec: KeelSpec) -> None:
    route = alertmanager_config(spec)["route"]
    assert (route["group_wait"], route["group_interval"]) == ("30s", "5m")
    route = alertmanager_config(spec, group_wait="1s", group_interval="500ms")["route"]
    assert (route["group_wait"], route["group_interval"]) == ("1s", "500ms")
    with pytest.raises(ValueError, match="group_interval must be a whole number"):
        alertmanager_config(spec, group_interval="5 minutes")


def test_without_slos_nothing_is_inhibited(spec: KeelSpec) -> None:
    assert alertmanager_config(spec)["inhibit_rules"] == []


def test_secrets_are_hidden_on_the_terminal_and_written_to_the_file(spec: KeelSpec,
                                                                      tmp_path: Path) -> None:
    shown = alertmanager_yaml(spec, hide_secrets=True)
    assert HIDDEN in shown and not any(s in shown for s in SECRETS)
    out = write_alertmanager_config(spec, tmp_path / "am.yml")
    text = out.path.read_text()
    assert all(s in text for s in SECRETS)
    assert out.path.stat().st_mode & 0o777 == 0o600
    assert alertmanager_config(spec)["global"]["smtp_require_tls"] is True


def test_amtool_checks_the_config_and_routes_pages_and_tickets(spec: KeelSpec,
                                                              tmp_path: Path) -> None:
    amtool = _amtool()
    path = write_alertmanager_config(spec, tmp_path / "alertmanager.yml").path
    check = subprocess.run([amtool, "check-config", str(path)], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS" in check.stdout

    def routes_to(*labels: str) -> str:
        done = subprocess.run([amtool, "config", "routes", "test", f"--config.file={path}",
                               *labels], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.strip()

    assert routes_to("service=churn", "severity=page", "slo=availability",
                     "tier=fast") == "churn-on-call"
    assert routes_to("service=churn", "severity=ticket", "slo=availability",
                     "tier=ticket") == "churn-owners"
    assert routes_to("service=churn", "severity=ticket", "owner=ml-team@example.com") == (
        "churn-owner-0")
    verify = subprocess.run([amtool, "config", "routes", "test", f"--config.file={path}",
                             "--verify.receivers=churn-on-call", "service=churn",
                             "severity=page"], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr

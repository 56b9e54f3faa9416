"""The routing tree of :mod:`keelwork.core.alerting.routing` as an Alertmanager configuration.

Pages go to the on-call contact, tickets to the owners, every receiver sends the resolved
notice too; alerts are grouped by ``alertname``, ``service`` and ``slo`` so one incident makes
one notification. The inhibit rules are the SLOs' own (``keelwork.core.slo.inhibit_rules``, also
written by ``keel slo rules``): a slower burn-rate tier stays quiet while a faster one fires for
the same SLO and model (pyrra #1883), and a ticket while a page does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from keelwork.core.alerting.routing import (
    LABEL_SERVICE,
    LABEL_SLO,
    Receiver,
    Route,
    routing,
)
from keelwork.core.slo import inhibit_rules as slo_inhibit_rules
from keelwork.spec.model import KeelSpec

#: What a value hidden from the terminal reads as (``keel alerts config`` without ``--out``).
HIDDEN = "<hidden: keel alerts config --out FILE writes it>"
#: Labels alerts are grouped by: one notification per SLO incident.
GROUP_BY = ("alertname", LABEL_SERVICE, LABEL_SLO)
#: How long Alertmanager waits to batch a new group's first notification, and then between
#: notifications of a group (a resolved notice waits for the next one): its own defaults.
GROUP_WAIT, GROUP_INTERVAL = "30s", "5m"
#: The durations ``group_wait`` and ``group_interval`` may be: a whole number and a unit.
DURATION_RE = re.compile(r"^[1-9]\d*(ms|s|m|h)$")
#: The text of each alert in a notification: what burns, how fast, the runbook.
_TEXT = ('{{ range .Alerts }}[{{ .Status }}] {{ .Annotations.summary }}'
         '{{ if .Annotations.runbook_url }} (runbook: {{ .Annotations.runbook_url }})'
         '{{ end }}\n{{ end }}')


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def matchers(pairs: Sequence[tuple[str, str]]) -> list[str]:
    """``[("severity", "page")]`` -> ``['severity="page"']`` (Alertmanager's matcher syntax)."""
    return [f"{k}={_quote(v)}" for k, v in pairs]


def _duration(seconds: int) -> str:
    return f"{seconds // 3600}h" if seconds % 3600 == 0 else f"{seconds // 60}m"


def _receiver(receiver: Receiver, hide: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": receiver.name}
    for t in receiver.targets:
        url = HIDDEN if hide and t.url is not None else t.url
        if t.kind == "email":
            out.setdefault("email_configs", []).append(
                {"to": t.to, "send_resolved": True,
                 "headers": {"Subject": '[{{ .Status | toUpper }}] {{ .GroupLabels.alertname }}'
                                        ' ({{ .GroupLabels.service }})'},
                 "text": _TEXT})
        elif t.kind == "webhook":
            out.setdefault("webhook_configs", []).append({"url": url, "send_resolved": True})
        else:
            conf: dict[str, Any] = {"api_url": url, "send_resolved": True,
                                    "title": '[{{ .Status | toUpper }}] '
                                             '{{ .GroupLabels.alertname }}',
                                    "text": _TEXT}
            if t.channel is not None:
                conf["channel"] = t.channel
            out.setdefault("slack_configs", []).append(conf)
    return out


def _route(route: Route) -> dict[str, Any]:
    return {"receiver": route.receiver, "matchers": matchers(route.matchers),
            "repeat_interval": _duration(route.repeat_s)}


def alertmanager_config(spec: KeelSpec, *, hide_secrets: bool = False,
                        group_wait: str = GROUP_WAIT,
                        group_interval: str = GROUP_INTERVAL) -> dict[str, Any]:
    """The Alertmanager configuration that delivers ``spec``'s alerts to its people.

    Args:
        spec: The keel.yaml.
        hide_secrets: Show receiver URLs and the SMTP password as :data:`HIDDEN` (for a
            terminal); the file Alertmanager reads needs them.
        group_wait: How long a new group waits for more alerts before its first notification
            (:data:`DURATION_RE`).
        group_interval: How long a group waits between notifications (a resolved notice
            included).

    Returns:
        The configuration as plain data (write it as YAML).

    Raises:
        SpecError: a contact reaches nobody.
        ValueError: ``group_wait`` or ``group_interval`` is no duration.
    """
    for name, value in (("group_wait", group_wait), ("group_interval", group_interval)):
        if not DURATION_RE.match(value):
            raise ValueError(f"{name} must be a whole number and ms, s, m or h (e.g. 30s); "
                             f"got {value!r}")
    tree = routing(spec)
    smtp = spec.alerts.smtp
    glob: dict[str, Any] = {"resolve_timeout": "5m", "smtp_smarthost": smtp.smarthost,
                            "smtp_from": smtp.sender, "smtp_require_tls": smtp.require_tls}
    if smtp.username is not None:
        glob["smtp_auth_username"] = smtp.username
    if smtp.password is not None:
        glob["smtp_auth_password"] = HIDDEN if hide_secrets else smtp.password
    return {
        "global": glob,
        "route": {"receiver": tree.default, "group_by": list(GROUP_BY), "group_wait": group_wait,
                  "group_interval": group_interval, "repeat_interval": "4h",
                  "routes": [_route(r) for r in tree.routes]},
        "receivers": [_receiver(r, hide_secrets) for r in tree.receivers],
        "inhibit_rules": slo_inhibit_rules(spec),
    }


__all__ = ["DURATION_RE", "GROUP_BY", "GROUP_INTERVAL", "GROUP_WAIT", "HIDDEN",
           "alertmanager_config", "matchers"]

"""The routing tree of :mod:`keelwork.core.alerting.routing` as an Alertmanager configuration.

Pages go to the on-call contact, tickets to the owners, every receiver sends the resolved
notice too; alerts are grouped by ``alertname``, ``service`` and ``slo`` so one incident makes
one notification. The inhibit rules (:func:`inhibit_rules`) keep a slower burn-rate tier quiet
while a faster one fires for the same SLO (pyrra #1883), and a ticket quiet while a page fires.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keelwork.core.alerting.routing import (
    LABEL_SERVICE,
    LABEL_SEVERITY,
    LABEL_SLO,
    LABEL_TIER,
    PAGE,
    TICKET,
    Receiver,
    Route,
    routing,
)
from keelwork.spec.model import KeelSpec

#: Burn-rate tiers, fastest first, as the ``tier`` label of keelwork's SLO alerts names them
#: (the workbook's 1h/5m and 6h/30m pages, 3d/6h ticket, scaled to ``slos.window``).
TIERS: tuple[str, ...] = ("fast", "slow", "ticket")
#: What a value hidden from the terminal reads as (``keel alerts config`` without ``--out``).
HIDDEN = "<hidden: keel alerts config --out FILE writes it>"
#: Labels alerts are grouped by: one notification per SLO incident.
GROUP_BY = ("alertname", LABEL_SERVICE, LABEL_SLO)
#: The text of each alert in a notification: what burns, how fast, the runbook.
_TEXT = ('{{ range .Alerts }}[{{ .Status }}] {{ .Annotations.summary }}'
         '{{ if .Annotations.runbook_url }} (runbook: {{ .Annotations.runbook_url }})'
         '{{ end }}\n{{ end }}')


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def matchers(pairs: Sequence[tuple[str, str]]) -> list[str]:
    """``[("severity", "page")]`` -> ``['severity="page"']`` (Alertmanager's matcher syntax)."""
    return [f"{k}={_quote(v)}" for k, v in pairs]


def inhibit_rules(tiers: Sequence[str] = TIERS) -> list[dict[str, Any]]:
    """Inhibit rules: a page silences the tickets, and each tier every slower one, of the same
    service and SLO.

    Args:
        tiers: The ``tier`` label's values, fastest first.

    Returns:
        Alertmanager ``inhibit_rules`` entries.
    """
    equal = [LABEL_SERVICE, LABEL_SLO]
    rules = [{"source_matchers": matchers([(LABEL_SEVERITY, PAGE)]),
              "target_matchers": matchers([(LABEL_SEVERITY, TICKET)]), "equal": list(equal)}]
    for i, fast in enumerate(tiers):
        for slow in tiers[i + 1:]:
            rules.append({"source_matchers": matchers([(LABEL_TIER, fast)]),
                          "target_matchers": matchers([(LABEL_TIER, slow)]),
                          "equal": list(equal)})
    return rules


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
                        tiers: Sequence[str] = TIERS) -> dict[str, Any]:
    """The Alertmanager configuration that delivers ``spec``'s alerts to its people.

    Args:
        spec: The keel.yaml.
        hide_secrets: Show receiver URLs and the SMTP password as :data:`HIDDEN` (for a
            terminal); the file Alertmanager reads needs them.
        tiers: The burn-rate tiers, fastest first (see :func:`inhibit_rules`).

    Returns:
        The configuration as plain data (write it as YAML).

    Raises:
        SpecError: a contact reaches nobody.
    """
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
        "route": {"receiver": tree.default, "group_by": list(GROUP_BY), "group_wait": "30s",
                  "group_interval": "5m", "repeat_interval": "4h",
                  "routes": [_route(r) for r in tree.routes]},
        "receivers": [_receiver(r, hide_secrets) for r in tree.receivers],
        "inhibit_rules": inhibit_rules(tiers),
    }


__all__ = ["GROUP_BY", "HIDDEN", "TIERS", "alertmanager_config", "inhibit_rules", "matchers"]

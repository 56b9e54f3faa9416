"""Who gets which alert: keel.yaml's contacts as receivers, and the routing tree.

The tree, first match wins (as Alertmanager walks it with ``continue: false``):

1. ``service=<name>, severity=page``  -> ``<name>-on-call`` (``service.on_call.contact``; the
   owners when there is no on-call rotation);
2. ``service=<name>, severity=ticket, owner=<an owner as written>`` -> that owner alone;
3. ``service=<name>, severity=ticket`` -> ``<name>-owners`` (every owner);
4. anything else -> ``<name>-owners`` (the root's receiver: nothing is dropped).

The same tree drives the generated Alertmanager configuration
(:mod:`keelwork.core.alerting.alertmanager`) and keelwork's own delivery
(``keelwork.service.alerting``), so both send an alert to the same people.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from keelwork.errors import ErrorDetail, SpecError
from keelwork.spec.alerts import Contact, parse_contact
from keelwork.spec.model import KeelSpec

SinkKind = Literal["webhook", "email", "slack"]

#: The labels alerts are routed by (keelwork's Prometheus rules put them on every alert).
LABEL_SERVICE, LABEL_SEVERITY, LABEL_OWNER, LABEL_SLO, LABEL_TIER = (
    "service", "severity", "owner", "slo", "tier")
PAGE, TICKET = "page", "ticket"


@dataclass(frozen=True, slots=True)
class Target:
    """One place a receiver sends to."""

    kind: SinkKind
    #: webhook and slack: the URL posted to.
    url: str | None = None
    #: email: the address.
    to: str | None = None
    #: slack: the channel or handle (None: the webhook's own).
    channel: str | None = None


@dataclass(frozen=True, slots=True)
class Receiver:
    """A named set of targets: what a route sends to."""

    name: str
    targets: tuple[Target, ...]


@dataclass(frozen=True, slots=True)
class Route:
    """Alerts whose labels equal ``matchers`` go to ``receiver``."""

    receiver: str
    matchers: tuple[tuple[str, str], ...]
    #: Seconds before an unresolved alert is sent again (Alertmanager's repeat_interval).
    repeat_s: int

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.matchers)


@dataclass(frozen=True, slots=True)
class Routing:
    """The receivers and the tree of one service."""

    service: str
    default: str
    receivers: tuple[Receiver, ...]
    routes: tuple[Route, ...]

    def receiver_for(self, labels: Mapping[str, str]) -> str:
        """The receiver an alert with ``labels`` goes to (first matching route, else the
        default)."""
        return next((r.receiver for r in self.routes if r.matches(labels)), self.default)

    def receiver(self, name: str) -> Receiver:
        return next(r for r in self.receivers if r.name == name)


#: How often a still-firing page / ticket is sent again.
PAGE_REPEAT_S = 3600
TICKET_REPEAT_S = 4 * 3600


def targets_of(contact: Contact, spec: KeelSpec) -> tuple[Target, ...]:
    """Where ``contact`` is reached."""
    if contact.kind == "email":
        return (Target("email", to=contact.value),)
    if contact.kind == "url":
        return (Target("webhook", url=contact.value),)
    if contact.kind == "slack":
        slack = spec.alerts.slack()[0]
        return (Target("slack", url=slack.url, channel=contact.value),)
    named = spec.alerts.receiver(contact.value)
    assert named is not None  # parse_contact found it
    if named.kind == "email":
        return tuple(Target("email", to=a) for a in named.to)
    return (Target(named.kind, url=named.url, channel=named.channel),)


def _resolve(text: str, spec: KeelSpec, path: str) -> tuple[Target, ...]:
    got = parse_contact(text, spec.alerts)
    if isinstance(got, str):
        raise SpecError(f"{path}: {got}", [ErrorDetail(path, "contact_unreachable", text, got)])
    return targets_of(got, spec)


def _dedupe(targets: Sequence[Target]) -> tuple[Target, ...]:
    return tuple(dict.fromkeys(targets))


def routing(spec: KeelSpec) -> Routing:
    """The receivers and routing tree of ``spec``'s service (see the module doc).

    Raises:
        SpecError: a contact reaches nobody (``keel spec validate`` reports it first).
    """
    name = spec.service.name
    per_owner = [(owner, _resolve(owner, spec, f"service.owners[{i}]"))
                 for i, owner in enumerate(spec.service.owners)]
    owners = Receiver(f"{name}-owners", _dedupe([t for _, ts in per_owner for t in ts]))
    receivers = [owners]
    page_to = owners.name
    if spec.service.on_call is not None:
        on_call = Receiver(f"{name}-on-call", _resolve(spec.service.on_call.contact, spec,
                                                       "service.on_call.contact"))
        receivers.append(on_call)
        page_to = on_call.name
    svc = (LABEL_SERVICE, name)
    routes = [Route(page_to, (svc, (LABEL_SEVERITY, PAGE)), PAGE_REPEAT_S)]
    if len(per_owner) > 1:
        for i, (owner, targets) in enumerate(per_owner):
            receivers.append(Receiver(f"{name}-owner-{i}", targets))
            routes.append(Route(f"{name}-owner-{i}",
                                (svc, (LABEL_SEVERITY, TICKET), (LABEL_OWNER, owner)),
                                TICKET_REPEAT_S))
    routes.append(Route(owners.name, (svc, (LABEL_SEVERITY, TICKET)), TICKET_REPEAT_S))
    return Routing(name, owners.name, tuple(receivers), tuple(routes))


def escalation(spec: KeelSpec) -> Receiver | None:
    """``service.on_call.escalation`` as the receiver ``<name>-escalation`` (None: none). It is
    not in the routing tree: keelwork's own delivery sends it a page nobody acknowledged
    within ``escalate_after`` (Alertmanager cannot escalate).

    Raises:
        SpecError: the contact reaches nobody.
    """
    on_call = spec.service.on_call
    if on_call is None or on_call.escalation is None:
        return None
    return Receiver(f"{spec.service.name}-escalation",
                    _resolve(on_call.escalation, spec, "service.on_call.escalation"))


__all__ = ["LABEL_OWNER", "LABEL_SERVICE", "LABEL_SEVERITY", "LABEL_SLO", "LABEL_TIER", "PAGE",
           "TICKET", "Receiver", "Route", "Routing", "Target", "escalation", "routing",
           "targets_of"]

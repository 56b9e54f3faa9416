"""keel.yaml's ``alerts:`` section and the one rule for a contact an alert can reach.

A contact (each of ``service.owners``, ``service.on_call.contact``) is one of:

- an e-mail address (``ml-team@example.com``, ``mailto:`` allowed): mailed through
  ``alerts.smtp``;
- an ``http(s)://`` URL: a webhook receives the alert as JSON;
- a Slack-style ``#channel`` or ``@handle``: posted through the one ``slack`` receiver of
  ``alerts.receivers`` (its webhook URL), to that channel;
- the name of an entry of ``alerts.receivers``: that receiver.

Anything else reaches nobody, and is refused at ``keel spec validate`` with its path and line
(:func:`contact_problems`, called by the loader). Secrets (a receiver's URL, the SMTP
password) come from ``${ENV}`` interpolation; the loader never shows an interpolated value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from keelwork.spec.section import Section, check_name

_EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_URL_RE = re.compile(r"^https?://[^\s/:?#]+(:\d+)?([/?#]\S*)?$")
_HANDLE_RE = re.compile(r"^[#@][A-Za-z0-9][A-Za-z0-9._\-]{0,79}$")
_SENDER_RE = re.compile(r"^[^@\s]+@[A-Za-z0-9.\-]+$")
_HOSTPORT_RE = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")

ContactKind = Literal["email", "url", "slack", "receiver"]


def is_email(text: str) -> bool:
    """Whether ``text`` is an e-mail address (``local@domain.tld``)."""
    return bool(_EMAIL_RE.match(text))


def is_url(text: str) -> bool:
    """Whether ``text`` is an absolute ``http://`` or ``https://`` URL."""
    return bool(_URL_RE.match(text))


class SmtpSection(Section):
    """How e-mail leaves: the SMTP server Alertmanager (and keelwork's own sinks) send through."""

    smarthost: str = Field(default="localhost:25", description="host:port of the SMTP server.")
    sender: str = Field(default="keelwork@localhost", alias="from",
                        description="The From address of alert mails.")
    username: str | None = Field(default=None, description="SMTP AUTH user name.")
    password: str | None = Field(default=None, description="SMTP AUTH password; write "
                                 "${ENV_VAR}, never the secret itself.")
    require_tls: bool = Field(default=False, description="Refuse to send without STARTTLS.")

    @model_validator(mode="after")
    def _check(self) -> SmtpSection:
        if not _HOSTPORT_RE.match(self.smarthost):
            raise PydanticCustomError("smtp_smarthost", "alerts.smtp.smarthost must be "
                                      "host:port; got {got}", {"got": repr(self.smarthost)})
        if not _SENDER_RE.match(self.sender):
            raise PydanticCustomError("smtp_from", "alerts.smtp.from must be an e-mail "
                                      "address; got {got}", {"got": repr(self.sender)})
        return self


class ReceiverSection(Section):
    """One named place alerts can go."""

    name: str = Field(description="What owners and on_call.contact may name.")
    kind: Literal["webhook", "email", "slack"]
    url: str | None = Field(default=None, description="webhook, slack: where to POST "
                            "(write ${ENV_VAR} for a secret URL).")
    to: list[str] = Field(default_factory=list, description="email: the addresses.")
    channel: str | None = Field(default=None, description="slack: the channel to post to "
                                "(default: the webhook's own).")

    @model_validator(mode="after")
    def _check(self) -> ReceiverSection:
        check_name(self.name, "a receiver name")
        if self.kind in ("webhook", "slack"):
            if self.url is None or not is_url(self.url):
                raise PydanticCustomError(
                    "receiver_url", "a {kind} receiver needs url: an http(s) URL; got {got}",
                    {"kind": self.kind, "got": repr(self.url)})
            if self.to:
                raise PydanticCustomError("receiver_to", "to is for email receivers; a {kind} "
                                          "receiver posts to its url", {"kind": self.kind})
        else:
            if self.url is not None:
                raise PydanticCustomError("receiver_url", "an email receiver has no url; it "
                                          "sends to the addresses in to", {})
            bad = [a for a in self.to if not is_email(a)]
            if not self.to or bad:
                raise PydanticCustomError(
                    "receiver_to", "an email receiver needs to: a list of e-mail addresses; "
                    "got {got}", {"got": repr(bad or self.to)})
        if self.channel is not None and (self.kind != "slack"
                                         or not _HANDLE_RE.match(self.channel)):
            raise PydanticCustomError("receiver_channel", "channel is for slack receivers, "
                                      "written #channel or @handle; got {got}",
                                      {"got": repr(self.channel)})
        return self


class AlertsSection(Section):
    """Where alerts go beyond plain e-mail addresses and URLs (``keel alerts config``)."""

    receivers: list[ReceiverSection] = Field(default_factory=list)
    smtp: SmtpSection = Field(default_factory=SmtpSection)

    @model_validator(mode="after")
    def _unique(self) -> AlertsSection:
        names = [r.name for r in self.receivers]
        for i, n in enumerate(names):
            if n in names[:i]:
                raise PydanticCustomError("duplicate_receiver", "receiver name {name} appears "
                                          "twice", {"name": repr(n)})
        return self

    def receiver(self, name: str) -> ReceiverSection | None:
        """The receiver called ``name``, if any."""
        return next((r for r in self.receivers if r.name == name), None)

    def slack(self) -> list[ReceiverSection]:
        """The slack receivers."""
        return [r for r in self.receivers if r.kind == "slack"]


@dataclass(frozen=True, slots=True)
class Contact:
    """A contact resolved: how an alert reaches it."""

    kind: ContactKind
    #: The address, URL, channel/handle or receiver name.
    value: str


def parse_contact(text: str, alerts: AlertsSection) -> Contact | str:
    """How ``text`` is reached, or why it cannot be.

    Returns:
        The :class:`Contact`, or the reason (a sentence) it reaches nobody.
    """
    value = text.strip()
    if alerts.receiver(value) is not None:
        return Contact("receiver", value)
    address = value.removeprefix("mailto:")
    if is_email(address):
        return Contact("email", address)
    if is_url(value):
        return Contact("url", value)
    if _HANDLE_RE.match(value):
        slack = alerts.slack()
        if len(slack) == 1:
            return Contact("slack", value)
        return (f"{value!r} is a Slack channel or handle, which needs exactly one slack "
                f"receiver in alerts.receivers (its webhook URL); found {len(slack)}")
    return (f"{value!r} is not a contact an alert can reach: write an e-mail address, an "
            "http(s) URL, a #channel or @handle (with a slack receiver in alerts.receivers), "
            "or the name of an alerts.receivers entry")


def contact_problems(owners: Sequence[str], on_call: str | None, alerts: AlertsSection,
                     escalation: str | None = None,
                     ) -> list[tuple[tuple[str | int, ...], str, str]]:
    """Every contact (``service.owners``, ``service.on_call.contact`` and ``.escalation``) no
    alert can reach.

    Returns:
        ``(path, got, why)`` per such contact, in file order.
    """
    found: list[tuple[tuple[str | int, ...], str, str]] = []
    for i, owner in enumerate(owners):
        why = parse_contact(owner, alerts)
        if isinstance(why, str):
            found.append((("service", "owners", i), owner, why))
    for key, value in (("contact", on_call), ("escalation", escalation)):
        if value is not None:
            why = parse_contact(value, alerts)
            if isinstance(why, str):
                found.append((("service", "on_call", key), value, why))
    return found


__all__ = ["AlertsSection", "Contact", "ReceiverSection", "SmtpSection", "contact_problems",
           "is_email", "is_url", "parse_contact"]

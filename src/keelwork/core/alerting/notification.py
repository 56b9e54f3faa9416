"""One alert's state change as one notification: its fingerprint, its words, its payloads.

An alert is known by its fingerprint (a hash of its labels, as Alertmanager keys alerts); a
notification is sent once per change of its state (firing -> resolved -> firing), never twice
for the same state. Payloads:

- webhook: Alertmanager's webhook JSON (``version: "4"``), one alert per message, so a
  receiver written for Alertmanager reads keelwork's own notifications too;
- slack: an incoming-webhook message (``text``, ``attachments``), the Slack-compatible JSON
  that Mattermost, Rocket.Chat and others accept;
- e-mail: a subject and a plain-text body.

Each says what fired or resolved, its summary (what burns and how fast), the runbook link and
the labels.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

AlertState = Literal["firing", "resolved"]
STATES: tuple[AlertState, ...] = ("firing", "resolved")

#: Back-off of a failed delivery: the first retry after BASE seconds, then FACTOR times longer
#: each time, never more than CAP.
BACKOFF_BASE_S = 1.0
BACKOFF_FACTOR = 2.0
BACKOFF_CAP_S = 300.0


def fingerprint(labels: Mapping[str, str]) -> str:
    """A stable key of an alert: the hash of its sorted labels (16 hex digits)."""
    h = hashlib.sha256()
    for k in sorted(labels):
        h.update(k.encode())
        h.update(b"\xff")
        h.update(str(labels[k]).encode())
        h.update(b"\xff")
    return h.hexdigest()[:16]


def backoff_s(attempts: int, *, base: float = BACKOFF_BASE_S, factor: float = BACKOFF_FACTOR,
              cap: float = BACKOFF_CAP_S) -> float:
    """Seconds to wait before the next try, after ``attempts`` failed ones (>= 1)."""
    return float(min(cap, base * factor ** max(0, attempts - 1)))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class AlertChange:
    """An alert that started firing or resolved, at ``at`` (seconds since the epoch)."""

    labels: Mapping[str, str]
    state: AlertState
    at: float
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)


@dataclass(frozen=True, slots=True)
class Notification:
    """What one receiver is told about one alert's current state."""

    receiver: str
    fingerprint: str
    state: AlertState
    #: When the alert entered this state.
    since: float
    labels: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "alert")

    @property
    def summary(self) -> str:
        return (self.annotations.get("summary") or self.annotations.get("description")
                or f"{self.name} {self.state}")

    @property
    def runbook_url(self) -> str | None:
        return self.annotations.get("runbook_url") or self.annotations.get("runbook")

    @property
    def title(self) -> str:
        service = self.labels.get("service")
        where = f" ({service})" if service else ""
        return f"[{self.state.upper()}] {self.name}{where}"

    def text(self) -> str:
        """The plain-text body: summary, runbook, labels, since."""
        lines = [self.title, "", self.summary]
        if self.runbook_url:
            lines.append(f"Runbook: {self.runbook_url}")
        lines.append(f"{'Firing' if self.state == 'firing' else 'Resolved'} since "
                     f"{_iso(self.since)}")
        lines.append("")
        lines.append("Labels:")
        lines.extend(f"  {k} = {v}" for k, v in sorted(self.labels.items()))
        return "\n".join(lines) + "\n"

    def webhook_payload(self) -> dict[str, Any]:
        """Alertmanager's webhook JSON (version 4) with this one alert."""
        alert = {"status": self.state, "labels": dict(self.labels),
                 "annotations": dict(self.annotations), "startsAt": _iso(self.since),
                 "endsAt": _iso(self.since) if self.state == "resolved"
                 else "0001-01-01T00:00:00Z",
                 "fingerprint": self.fingerprint, "generatorURL": ""}
        return {"version": "4", "groupKey": f"{self.receiver}:{self.fingerprint}",
                "truncatedAlerts": 0, "status": self.state, "receiver": self.receiver,
                "groupLabels": {"alertname": self.name}, "commonLabels": dict(self.labels),
                "commonAnnotations": dict(self.annotations), "externalURL": "",
                "alerts": [alert]}

    def slack_payload(self, channel: str | None = None) -> dict[str, Any]:
        """A Slack-compatible incoming-webhook message."""
        body = self.summary + (f"\nRunbook: {self.runbook_url}" if self.runbook_url else "")
        out: dict[str, Any] = {
            "text": f"{self.title}: {self.summary}",
            "attachments": [{
                "color": "danger" if self.state == "firing" else "good",
                "title": self.title, "text": body,
                "fields": [{"title": k, "value": v, "short": True}
                           for k, v in sorted(self.labels.items())],
                "footer": f"keelwork {self.fingerprint}", "ts": int(self.since)}]}
        if channel is not None:
            out["channel"] = channel
        return out

    def email_subject(self) -> str:
        return f"{self.title}: {self.summary}"[:200]


__all__ = ["STATES", "AlertChange", "AlertState", "Notification", "backoff_s", "fingerprint"]

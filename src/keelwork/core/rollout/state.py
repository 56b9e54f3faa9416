"""The rollout state machine: phases, allowed transitions, and the event each transition leaves.

A rollout moves a model's traffic from its champion version to a challenger version::

    pending -> progressing -> promoted -> rolled_back
                 |   ^  \\
           pause |   | resume   \\-> aborted -> progressing (retry, from the first step)
                 v   |
                 paused -> promoted | aborted

``progressing`` and ``paused`` (and ``pending``) are *active*: the gateway routes by them. An
aborted rollout can be retried (Argo Rollouts #841: there, a retry needed a spec change); it
starts again at the first step with its failure count reset. Every transition returns a
:class:`RolloutEvent` naming the actor, the phases, the traffic weight and, for automatic
decisions, the gate results with their observed values (Flagger #1810: the failing values were
not recorded with the decision). Nothing here does I/O: the store persists, the controller acts.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from keelwork.errors import SpecError, TransitionError
from keelwork.spec.durations import UNIT_SECONDS

Phase = Literal["pending", "progressing", "paused", "promoted", "aborted", "rolled_back"]
Strategy = Literal["canary", "shadow", "ab"]
ACTIVE: frozenset[str] = frozenset({"pending", "progressing", "paused"})

#: (from phase, action) -> to phase.
TRANSITIONS: dict[tuple[str, str], str] = {
    ("pending", "begin"): "progressing",
    ("pending", "abort"): "aborted",
    ("progressing", "advance"): "progressing",
    ("progressing", "hold"): "progressing",
    ("progressing", "pause"): "paused",
    ("progressing", "promote"): "promoted",
    ("progressing", "abort"): "aborted",
    ("paused", "resume"): "progressing",
    ("paused", "promote"): "promoted",
    ("paused", "abort"): "aborted",
    ("aborted", "retry"): "progressing",
    ("promoted", "rollback"): "rolled_back",
}

ROLLOUT_KIND = "rollout"
ROLLOUT_VERSION = 1

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")


def parse_interval(text: str) -> float:
    """``"5m"`` -> 300.0, ``"0.2s"`` -> 0.2, ``"250ms"`` -> 0.25.

    Raises:
        SpecError: the text is not a positive duration.
    """
    m = _DURATION.fullmatch(text.strip())
    seconds = float(m.group(1)) * UNIT_SECONDS[m.group(2)] if m else 0.0
    if seconds <= 0:
        raise SpecError(f"A rollout interval must be a positive duration like '5m', '30s' or "
                        f"'250ms'; got {text!r}.")
    return seconds


@dataclass(frozen=True, slots=True)
class RolloutEvent:
    """One transition, as stored and audited."""

    rollout_id: int
    model: str
    action: str
    from_phase: str
    to_phase: str
    weight: int
    actor: str
    at: float
    reason: str = ""
    decision: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"rollout_id": self.rollout_id, "model": self.model, "action": self.action,
                "from_phase": self.from_phase, "to_phase": self.to_phase,
                "weight": self.weight, "actor": self.actor, "at": self.at,
                "reason": self.reason, "decision": self.decision}


@dataclass(frozen=True, slots=True)
class Rollout:
    """One rollout of ``model`` from ``champion`` to ``challenger`` (immutable; see ``apply``).

    ``revision`` grows by one per stored change (optimistic concurrency between a server's
    controller and the CLI); ``id`` is 0 until stored.
    """

    model: str
    champion: int
    challenger: int
    strategy: Strategy = "canary"
    steps: tuple[int, ...] = (5, 25, 50, 100)
    interval_s: float = 300.0
    min_requests: int = 100
    max_failures: int = 2
    gates: dict[str, float | None] = field(default_factory=dict)
    sticky_header: str = "x-keel-user"
    phase: Phase = "pending"
    step: int = 0
    failures: int = 0
    id: int = 0
    revision: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    reason: str = ""

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE

    @property
    def weight(self) -> int:
        """Percent of the traffic the challenger answers now (shadow: 0, it never answers)."""
        if self.strategy == "shadow" or self.phase not in ("progressing", "paused"):
            return 0
        if self.strategy == "ab":
            return self.steps[0]
        return self.steps[min(self.step, len(self.steps) - 1)]

    def apply(self, action: str, *, actor: str, reason: str = "",
              decision: dict[str, Any] | None = None, now: float | None = None,
              champion: int | None = None) -> tuple[Rollout, RolloutEvent]:
        """The rollout after ``action`` and the event recording it.

        ``advance`` on the last step promotes; ``retry`` restarts at the first step, against
        ``champion`` when given (the champion alias may have moved since the abort).

        Raises:
            TransitionError: the phase does not allow the action, or a retry's ``champion``
                is its challenger.
        """
        if action == "advance" and self.step >= len(self.steps) - 1:
            action = "promote"
        to = TRANSITIONS.get((self.phase, action))
        if to is None:
            allowed = sorted(a for (p, a) in TRANSITIONS if p == self.phase)
            raise TransitionError(
                f"Rollout {self.id} of '{self.model}' is {self.phase}: it cannot {action}; "
                f"allowed: {', '.join(allowed) or 'nothing (it is final)'}.")
        if action == "retry" and champion == self.challenger:
            raise TransitionError(
                f"Rollout {self.id} of '{self.model}' cannot retry: its challenger, version "
                f"{self.challenger}, is the champion now; start a rollout of another version.")
        at = time.time() if now is None else now
        step, failures = self.step, self.failures
        if action == "advance":
            step, failures = step + 1, 0
        elif action in ("hold", "abort") and decision:
            # The failure that aborts counts too: status and the abort's event agree (2/2).
            if decision.get("outcome") == "fail":
                failures += 1
            elif isinstance(decision.get("failures"), int):
                failures = int(decision["failures"])  # e.g. failed loads of a version
        elif action in ("retry", "resume"):
            failures = 0
            step = 0 if action == "retry" else step
        new = replace(self, phase=to, step=step, failures=failures,  # type: ignore[arg-type]
                      updated_at=at, reason=reason or self.reason,
                      champion=self.champion if champion is None or action != "retry"
                      else champion)
        event = RolloutEvent(self.id, self.model, action, self.phase, to, new.weight, actor,
                             at, reason, decision)
        return new, event

    def as_dict(self) -> dict[str, Any]:
        """The stored form (with ``kind`` and ``version``)."""
        return {"kind": ROLLOUT_KIND, "version": ROLLOUT_VERSION, "id": self.id,
                "model": self.model, "champion": self.champion, "challenger": self.challenger,
                "strategy": self.strategy, "steps": list(self.steps),
                "interval_s": self.interval_s, "min_requests": self.min_requests,
                "max_failures": self.max_failures, "gates": dict(self.gates),
                "sticky_header": self.sticky_header, "phase": self.phase, "step": self.step,
                "failures": self.failures, "weight": self.weight, "revision": self.revision,
                "created_at": self.created_at, "updated_at": self.updated_at,
                "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Rollout:
        """Read a stored rollout (version 1).

        Raises:
            SpecError: the record is not a rollout of a known version.
        """
        if d.get("kind") != ROLLOUT_KIND or d.get("version") != ROLLOUT_VERSION:
            raise SpecError(f"A stored rollout must have kind 'rollout' and version 1; got "
                            f"{d.get('kind')!r} version {d.get('version')!r}.")
        return cls(model=d["model"], champion=int(d["champion"]),
                   challenger=int(d["challenger"]), strategy=d["strategy"],
                   steps=tuple(int(s) for s in d["steps"]), interval_s=float(d["interval_s"]),
                   min_requests=int(d["min_requests"]), max_failures=int(d["max_failures"]),
                   gates=dict(d.get("gates") or {}),
                   sticky_header=str(d.get("sticky_header") or "x-keel-user"),
                   phase=d["phase"], step=int(d["step"]), failures=int(d["failures"]),
                   id=int(d.get("id") or 0), revision=int(d.get("revision") or 0),
                   created_at=float(d.get("created_at") or 0.0),
                   updated_at=float(d.get("updated_at") or 0.0),
                   reason=str(d.get("reason") or ""))

"""When a component's store fails: one line as the outage starts, one as it ends.

A component that polls its store (the rollout controller, the flag reloader) fails on every
poll while the store is down, several times a second. :class:`Outage` turns that stream of
failures into two events worth a log line and keeps the state an operator wants to see
(``/v2/health/ready``, the ``keelwork_degraded`` metric): since when, how many failures, the
last error. Pure: the caller logs what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Outage:
    """The store state of one component, as its polls see it.

    Args:
        component: Named in the messages (``rollout controller``).
    """

    component: str
    since: float | None = None
    failures: int = 0
    last_error: str = ""

    @property
    def degraded(self) -> bool:
        """Whether the last poll failed."""
        return self.since is not None

    def failed(self, error: BaseException | str, now: float) -> str | None:
        """Record a failed poll; the message to log when this one starts an outage."""
        text = str(error).strip().splitlines()
        self.last_error = text[0][:300] if text else type(error).__name__
        self.failures += 1
        if self.since is not None:
            return None
        self.since = now
        return (f"{self.component}: {self.last_error} -- it keeps what it has and retries, "
                "quietly until it works again")

    def succeeded(self, now: float) -> str | None:
        """Record a poll that worked; the message to log when this one ends an outage."""
        if self.since is None:
            return None
        took, failures = now - self.since, self.failures
        self.since, self.failures = None, 0
        return (f"{self.component}: working again after {took:.1f} s "
                f"({failures} failed attempt{'s' if failures != 1 else ''})")

    def as_dict(self) -> dict[str, Any]:
        """``degraded``, ``since`` (unix seconds or None), ``failures`` and ``last_error``."""
        return {"degraded": self.degraded, "since": self.since, "failures": self.failures,
                "last_error": self.last_error if self.degraded else None}


__all__ = ["Outage"]

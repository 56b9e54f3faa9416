"""The review queue as a server serves it (``/review`` and ``/v1/review``).

:class:`ReviewDesk` wraps the use-cases of :mod:`keelwork.service.review` for the HTTP routes:
the next item of a reviewer (the prediction exactly as the log holds it, so inputs are redacted
when keel.yaml redacts PII: the page never shows more than the store holds), with the model's
confidence when it is known and why the item was queued; verdicts and skips through the same
:func:`~keelwork.service.review.verdict` and :func:`~keelwork.service.review.skip` as
``keel review label``/``skip``, so a verdict is the prediction's label when the call returns,
attributed to the reviewer and audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keelwork.adapters.stores.review_store import ReviewStore
from keelwork.core.review_formats import Choice, choices
from keelwork.service.review import next_item, skip, verdict

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from keelwork.adapters.stores.audit_store import AuditLog
    from keelwork.service.server_parts import ServerParts
    from keelwork.spec.model import ResolvedSpec
    from keelwork.spec.settings import Settings


def why_queued(reason: str) -> str:
    """A reviewer's sentence for an item's ``reason``."""
    if reason == "uncertain":
        return "the model was unsure of this answer (among the least confident of the day)"
    if reason == "random":
        return "a random sample (it keeps the error estimate unbiased)"
    if reason.startswith("guard:"):
        return f"the {reason.removeprefix('guard:')} guard flagged this prediction"
    return reason


@dataclass
class ReviewDesk:
    """The review queue of a running server.

    Args:
        resolved: The served keel.yaml (its ``review`` section and output contract).
        engine: The store.
        audit: The audit log verdicts are written to.
        default_reviewer: Who reviews when the server has no API keys (the ``user`` setting,
            else the OS user): then everyone who opens the page is that one reviewer.
    """

    resolved: ResolvedSpec
    engine: Engine
    audit: AuditLog
    default_reviewer: str

    @property
    def choices(self) -> list[Choice]:
        """The labels of the output contract's first output (empty: a free value)."""
        return choices(self.resolved.spec.contract.outputs)

    def next(self, reviewer: str) -> dict[str, Any] | None:
        """The next item of ``reviewer`` (None: nothing left for them), with ``confidence``
        (the model's top probability, when the item was queued as uncertain) and ``why``."""
        item = next_item(self.engine, reviewer)
        if item is None:
            return None
        queued = ReviewStore(self.engine).item(item["prediction_id"]) or {}
        confidence = (1.0 - float(queued["priority"])
                      if item["reason"] == "uncertain" and "priority" in queued else None)
        return {**item, "confidence": confidence, "why": why_queued(item["reason"])}

    def counts(self) -> dict[str, int]:
        """Items per state (open, done)."""
        store = ReviewStore(self.engine)
        store.ensure_schema()
        return store.counts()

    def label(self, reviewer: str, prediction_id: str, label: Any,
              via: str = "page") -> dict[str, Any]:
        """Record a verdict (see :func:`keelwork.service.review.verdict`)."""
        return verdict(self.resolved, self.engine, self.audit, prediction_id, reviewer, label,
                       via=via)

    def skip(self, reviewer: str, prediction_id: str) -> None:
        """Pass on an item (others still get it)."""
        skip(self.engine, prediction_id, reviewer)


def open_review_desk(parts: ServerParts, settings: Settings) -> ReviewDesk | None:
    """The review desk of a server; None when keel.yaml has no ``review`` section."""
    if parts.resolved.spec.review is None:
        return None
    from keelwork.service.projects import actor

    return ReviewDesk(parts.resolved, parts.engine, parts.audit, actor(None, settings))


__all__ = ["ReviewDesk", "open_review_desk", "why_queued"]

"""The human review queue's rules (pure): which predictions a person should look at, and how
much two reviewers agree.

Selection within a budget (``review.budget_per_day``):

- predictions a named guard flagged (``review.guards``) always enter, first;
- the rest of the budget goes to the **most uncertain** predictions (least confidence:
  ``1 - max(probability)``), except ``review.random_share`` of it, sampled uniformly from the
  others, so the reviewed set also gives an unbiased error estimate.

Uncertainty sampling concentrates reviews where the model is likely wrong; on real data it
catches several times the errors of random sampling for the same budget (measured in
tests/integration/test_review_adult.py).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Candidate:
    """A logged prediction that may enter the queue."""

    prediction_id: str
    uncertainty: float | None
    guard: str | None = None


@dataclass(frozen=True, slots=True)
class Pick:
    """A prediction chosen for review, why, and its priority (higher first)."""

    prediction_id: str
    reason: str
    priority: float


def uncertainty(proba: Sequence[float] | None) -> float | None:
    """Least confidence of a probability row: ``1 - max`` (None without probabilities)."""
    if proba is None or len(proba) == 0:
        return None
    return 1.0 - max(float(p) for p in proba)


def select(candidates: Sequence[Candidate], budget: int, *, random_share: float,
           guards: Sequence[str], seed: int = 0) -> list[Pick]:
    """At most ``budget`` picks: guard-flagged first, then uncertain, then random.

    Args:
        candidates: Predictions not queued yet.
        budget: Picks allowed.
        random_share: Share of the non-guard budget drawn uniformly at random.
        guards: Guards whose flagged predictions always enter (within the budget).
        seed: The random draw's seed (a run is reproducible).
    """
    if budget <= 0:
        return []
    flagged = [c for c in candidates if c.guard is not None and c.guard in guards]
    picks = [Pick(c.prediction_id, f"guard:{c.guard}", 2.0) for c in flagged[:budget]]
    left = budget - len(picks)
    taken = {p.prediction_id for p in picks}
    rest = [c for c in candidates if c.prediction_id not in taken]
    n_random = round(left * random_share)
    scored = sorted((c for c in rest if c.uncertainty is not None),
                    key=lambda c: (-(c.uncertainty or 0.0), c.prediction_id))
    for c in scored[:left - n_random]:
        picks.append(Pick(c.prediction_id, "uncertain", float(c.uncertainty or 0.0)))
        taken.add(c.prediction_id)
    pool = [c for c in rest if c.prediction_id not in taken]
    rng = random.Random(seed)
    room = budget - len(picks)
    for c in rng.sample(pool, min(room, len(pool))):
        picks.append(Pick(c.prediction_id, "random", 0.0))
    return picks


@dataclass(frozen=True, slots=True)
class Agreement:
    """How two reviewers agree on the items both labelled."""

    items: int
    agreed: int
    kappa: float | None

    @property
    def share(self) -> float | None:
        return None if self.items == 0 else self.agreed / self.items


def agreement(pairs: Sequence[tuple[str, str]]) -> Agreement:
    """Observed agreement and Cohen's kappa over ``(label by one, label by the other)``."""
    n = len(pairs)
    if n == 0:
        return Agreement(0, 0, None)
    agreed = sum(a == b for a, b in pairs)
    left: dict[str, int] = {}
    right: dict[str, int] = {}
    for a, b in pairs:
        left[a] = left.get(a, 0) + 1
        right[b] = right.get(b, 0) + 1
    expected = sum(left.get(k, 0) * right.get(k, 0) for k in set(left) | set(right)) / n ** 2
    observed = agreed / n
    kappa = None if expected >= 1.0 else (observed - expected) / (1.0 - expected)
    return Agreement(n, agreed, kappa)


__all__ = ["Agreement", "Candidate", "Pick", "agreement", "select", "uncertainty"]

"""Which arm answers a request: a weighted draw, sticky by a key when the request has one.

``bucket = sha256(salt + "\\0" + key) mod 10,000``; the challenger answers when
``bucket < weight * 100``. The salt is the rollout's id, so a user keeps their arm for the whole
rollout (and through a canary's growing weight: a user on the challenger at 5 % stays there at
25 %, because the buckets below 500 are also below 2,500), while a new rollout reshuffles.
Without a key the draw is ``random.random()``: no hashing cost on the hot path.
"""

from __future__ import annotations

import hashlib
import random

BUCKETS = 10_000


def bucket(salt: str, key: str) -> int:
    """The key's bucket in [0, 10,000) for this salt."""
    digest = hashlib.sha256(f"{salt}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def to_challenger(weight_pct: int, salt: str, key: str | None,
                  draw: float | None = None) -> bool:
    """Whether this request goes to the challenger at ``weight_pct`` percent.

    Args:
        weight_pct: The challenger's share, 0-100.
        salt: Keeps assignments of different rollouts independent (the rollout id).
        key: The sticky key (a user id), or None for a random draw.
        draw: A uniform draw in [0, 1) to use instead of ``random.random()`` (tests).
    """
    if weight_pct <= 0:
        return False
    if weight_pct >= 100:
        return True
    if key is None:
        return (random.random() if draw is None else draw) * 100.0 < weight_pct
    return bucket(salt, key) < weight_pct * (BUCKETS // 100)

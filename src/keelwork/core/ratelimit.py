"""Token buckets for ``guards.rate_limit``, and how servers share one limit (pure).

One bucket per caller identity (an API key, a tenant or an IP address, as keel.yaml's
``per`` says): it holds at most ``burst`` tokens, refills at ``rate`` tokens per second, and a
request takes one token or is refused with the seconds until the next token
(``Retry-After``).

Several servers on one store enforce one limit together: each server counts the requests it
sees per identity (its *demand*, refused ones included) and publishes that rate through the
store every sync interval; each then refills its own bucket at its share of the limit,
``rate x own demand / total demand`` (and scales ``burst`` the same way). Demand does not
depend on what was allowed, so the shares are stable (no oscillation); a server alone gets the
whole limit. Between two syncs the shares are stale, which bounds the error: over a period
of T seconds the servers together allow at most ``rate x T + burst`` plus about
``rate x sync interval`` per server whose demand changed in that interval.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(slots=True)
class Bucket:
    """One identity's tokens at ``at`` (seconds, monotonic) and its demand counter."""

    tokens: float
    at: float
    seen: int = 0


def take(bucket: Bucket, now: float, rate: float, burst: float) -> float | None:
    """Take one token; None when allowed, else the seconds until one is available.

    Args:
        bucket: The identity's bucket (updated in place).
        now: The present (monotonic seconds).
        rate: Tokens per second this server may grant (its share).
        burst: Most tokens this server may hold (its share).
    """
    bucket.seen += 1
    bucket.tokens = min(burst, bucket.tokens + max(0.0, now - bucket.at) * rate)
    bucket.at = now
    if bucket.tokens >= 1.0:
        bucket.tokens -= 1.0
        return None
    if rate <= 0:
        return 1.0
    return (1.0 - bucket.tokens) / rate


def share(own: float, others: float) -> float:
    """This server's share of a limit: its demand over the total (1 when alone or idle)."""
    total = own + others
    return 1.0 if total <= 0 or others <= 0 else own / total


class Buckets:
    """A bounded table of buckets: the least recently used identity goes past ``limit``
    (a client inventing identities cannot grow memory without bound).

    Args:
        limit: Most identities kept.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._items: OrderedDict[str, Bucket] = OrderedDict()

    def get(self, identity: str, now: float, burst: float) -> Bucket:
        found = self._items.get(identity)
        if found is None:
            found = Bucket(tokens=burst, at=now)
            self._items[identity] = found
            if len(self._items) > self.limit:
                self._items.popitem(last=False)
        else:
            self._items.move_to_end(identity)
        return found

    def demand(self) -> dict[str, int]:
        """Requests seen per identity since the last call (the counters restart)."""
        out = {k: b.seen for k, b in self._items.items() if b.seen}
        for b in self._items.values():
            b.seen = 0
        return out

    def __len__(self) -> int:
        return len(self._items)


__all__ = ["Bucket", "Buckets", "share", "take"]

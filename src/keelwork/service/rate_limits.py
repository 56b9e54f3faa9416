"""``guards.rate_limit``: requests per second per API key, tenant or IP address, one limit
for every server on a store.

:class:`RateLimiter` keeps a token bucket per caller identity (:mod:`keelwork.core.ratelimit`)
and answers each predict request at once, in memory. A sync loop (:func:`rate_limit_loop`,
every :data:`SYNC_S`) publishes this server's demand per identity through the store and sets
each bucket's share of the limit from the other servers' demand, so that servers on one store
grant the limit together, within the tolerance the core module states. Identities are kept as
hashes: neither the store nor the limiter's table holds a key or an address.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable

from keelwork.adapters.stores.rate_limit_store import RateLimitStore
from keelwork.core.ratelimit import Buckets, share, take
from keelwork.spec.guard_settings import RateLimit

log = logging.getLogger("keelwork.ratelimit")

#: Seconds between two exchanges of demand with the other servers.
SYNC_S = 0.5
#: Demand older than this many sync intervals is another server's no longer.
_FRESH_SYNCS = 4


def identity_hash(identity: str) -> str:
    """What the limiter and the store keep of an identity."""
    return hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class RateLimiter:
    """Token buckets per identity with a share of the limit per server.

    Args:
        limit: keel.yaml's ``guards.rate_limit``.
        store: Where servers exchange demand (None: this server alone).
        clock: Monotonic seconds (buckets).
        wall: Unix seconds (the store's rows).
        max_identities: Most identities kept in memory.
    """

    def __init__(self, limit: RateLimit, store: RateLimitStore | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, max_identities: int = 100_000) -> None:
        self.rate = float(limit.requests_per_second)
        self.burst = float(limit.burst)
        self.per = limit.per
        self.store = store
        self.server = uuid.uuid4().hex
        self.clock, self.wall = clock, wall
        self.buckets = Buckets(max_identities)
        self.shares: dict[str, float] = {}
        self.refused = 0
        self._lock = threading.Lock()
        self._last_sync = clock()

    def take(self, identity: str) -> float | None:
        """One request of ``identity``: None when allowed, else seconds to wait."""
        key = identity_hash(identity)
        part = self.shares.get(key, 1.0)
        burst = max(1.0, self.burst * part)
        with self._lock:
            now = self.clock()
            wait = take(self.buckets.get(key, now, burst), now, self.rate * part, burst)
        if wait is not None:
            self.refused += 1
        return wait

    def sync(self) -> None:
        """Exchange demand with the other servers and update this server's shares.

        Raises:
            StoreError: the store failed (the shares stay as they were).
        """
        if self.store is None:
            return
        with self._lock:
            seen = self.buckets.demand()
            now = self.clock()
            elapsed = max(1e-3, now - self._last_sync)
            self._last_sync = now
        rates = {k: n / elapsed for k, n in seen.items()}
        others = self.store.exchange(self.server, rates, self.wall(),
                                     fresh_s=SYNC_S * _FRESH_SYNCS)
        self.shares = {k: share(r, others.get(k, 0.0)) for k, r in rates.items()
                       if others.get(k, 0.0) > 0}


async def rate_limit_loop(limiter: RateLimiter, *, stop: asyncio.Event,
                          interval: float = SYNC_S) -> None:
    """Sync every ``interval`` seconds until ``stop`` is set; failures are logged, the
    limiter goes on with its last shares."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(limiter.sync)
        except Exception:
            log.exception("rate limit sync failed; this server keeps its last shares")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


def open_limiter(limit: RateLimit | None, store: RateLimitStore | None) -> RateLimiter | None:
    """The limiter of keel.yaml's ``guards.rate_limit`` (None: no limit)."""
    if limit is None:
        return None
    if store is not None:
        store.ensure_schema()
    return RateLimiter(limit, store)


__all__ = ["SYNC_S", "RateLimiter", "identity_hash", "open_limiter", "rate_limit_loop"]

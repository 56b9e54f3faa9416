"""The rollout controller: polls the store, routes traffic, analyses each interval, acts.

It runs as a task inside the server. Every ``poll_s`` (0.25 s) it reads one number, the rollout
store's revision; when it changed (a ``keel rollout`` command, an admin route, another server)
it reloads the active rollouts and re-installs the gateway's in-memory routes, so an operator's
abort reaches traffic within one poll. Every rollout's ``interval_s`` it swaps the gateway's
per-arm window (in-memory counters: the prediction log is the durable truth, but reading it
back every interval would put a query on a sub-second loop), runs
:func:`keelwork.core.rollout.analysis.decide` and applies the action.

An automatic abort removes the route *before* writing the store: the next request already goes
to the champion; the write only makes it durable (and tells other servers). Decisions are written
with the revision they were computed on, so an operator's change made meanwhile wins.

A/B rollouts also run a :class:`~keelwork.core.rollout.abtest.SequentialABTest` on the arms'
cumulative success rates (answers without error); its verdict, p-value and confidence go into
every decision, and a decided test pauses the rollout for a human to promote or abort.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from keelwork.adapters.gateway.gateway import Gateway, RolloutRoute, RolloutWindow
from keelwork.adapters.rollout.operations import RolloutOps
from keelwork.adapters.stores.rollout_store import live_accuracy
from keelwork.core.outage import Outage
from keelwork.core.rollout.abtest import SequentialABTest, ab_action
from keelwork.core.rollout.analysis import decide
from keelwork.core.rollout.state import Rollout, TransitionError
from keelwork.errors import KeelworkError

log = logging.getLogger("keelwork.rollout")
ACTOR = "keel-rollout-controller"


@dataclass
class _Tracked:
    rollout: Rollout
    last_analysis: float
    #: Wall-clock start of the current step: live accuracy counts the labels of its answers
    #: (labels arrive late, so they are read for the whole step, not one interval).
    step_since: float = field(default_factory=time.time)
    ab: SequentialABTest | None = None
    ab_counts: list[int] = field(default_factory=lambda: [0, 0, 0, 0])


class RolloutController:
    """Keeps the gateway's routes in step with the stored rollouts and analyses them.

    Args:
        gateway: The gateway whose traffic is split.
        ops: Rollout operations on the store and registry.
        poll_s: Seconds between reads of the store's revision.
        ab_alpha: Type-I error bound of the A/B test.
    """

    def __init__(self, gateway: Gateway, ops: RolloutOps, *, poll_s: float = 0.25,
                 ab_alpha: float = 0.05) -> None:
        self.gateway = gateway
        self.ops = ops
        self.poll_s = poll_s
        self.ab_alpha = ab_alpha
        self._seen = -1
        self._tracked: dict[str, _Tracked] = {}
        self._served = {m.name for m in gateway.spec.models}
        # The poll loop and the admin routes both sync: one at a time.
        self._lock = asyncio.Lock()
        #: Failing polls (a store outage): logged once as it starts and once as it ends.
        self.outage = Outage("rollout controller")

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Poll and analyse until ``stop`` is set (or cancelled); a store failure is never
        fatal, and logged once per outage (plus once when it ends), not once per poll.
        Stopping by the event lets a store read in flight finish before the store closes."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                await self.tick()
            except KeelworkError as exc:
                if (message := self.outage.failed(exc, time.time())) is not None:
                    log.warning(message)
            else:
                if (message := self.outage.succeeded(time.time())) is not None:
                    log.warning(message)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_s):
                    await stop.wait()

    async def tick(self, now: float | None = None) -> None:
        """One poll: re-sync on a store change, analyse every rollout whose interval ended."""
        async with self._lock:
            revision = await asyncio.to_thread(self.ops.store.revision)
            if revision != self._seen:
                await self._sync(revision)
            clock = time.monotonic() if now is None else now
            for name, tracked in list(self._tracked.items()):
                r = tracked.rollout
                if r.phase == "progressing" and clock - tracked.last_analysis >= r.interval_s:
                    tracked.last_analysis = clock
                    await self._analyse(name)

    async def sync(self) -> None:
        """Install the routes of the active rollouts; remove those that ended."""
        async with self._lock:
            await self._sync()

    async def analyse(self, name: str) -> None:
        """Analyse the interval of ``name``'s rollout that just ended and act on it."""
        async with self._lock:
            await self._analyse(name)

    async def _sync(self, revision: int | None = None) -> None:
        if revision is None:
            revision = await asyncio.to_thread(self.ops.store.revision)
        active = {r.model: r for r in await asyncio.to_thread(self.ops.store.active)
                  if r.model in self._served}
        for name in [n for n in self._tracked if n not in active]:
            ended = self._tracked.pop(name).rollout
            await self._end_route(name, ended)
        if self._seen >= 0:
            # Any change may have moved a champion alias (a promote, a rollback): re-resolve
            # the bare names of models without an active rollout.
            for name in self._served - set(active):
                with contextlib.suppress(KeelworkError):
                    await self.gateway.refresh_champion(name)
        for name, r in active.items():
            tracked = self._tracked.get(name)
            if tracked is None or tracked.rollout.id != r.id:
                tracked = _Tracked(r, time.monotonic())
                if r.strategy == "ab":
                    tracked.ab = SequentialABTest(alpha=self.ab_alpha,
                                                  min_samples=r.min_requests)
                self._tracked[name] = tracked
            elif tracked.rollout.phase != "progressing" and r.phase == "progressing":
                tracked.last_analysis = time.monotonic()  # a resumed rollout gets a full interval
            if tracked.rollout.step != r.step:
                tracked.step_since = time.time()
            tracked.rollout = r
            await self._install(name, r)
        self._seen = revision

    async def _install(self, name: str, r: Rollout) -> None:
        current = self.gateway.rollout_route(name)
        if current is not None and current.rollout_id == r.id and current.revision == r.revision:
            return
        champion = await self.gateway.host(name, str(r.champion))
        challenger = await self.gateway.host(name, str(r.challenger))
        window = current.window if current is not None and current.rollout_id == r.id \
            else RolloutWindow()
        self.gateway.set_rollout_route(name, RolloutRoute(
            r.id, r.revision, r.strategy, r.weight, champion, challenger, window))

    async def _end_route(self, name: str, ended: Rollout) -> None:
        """Traffic of a finished rollout: all to the champion the store names now."""
        self.gateway.set_rollout_route(name, None)
        log.info("rollout %d of %s ended: %s", ended.id, name, ended.phase)

    async def _analyse(self, name: str) -> None:
        tracked = self._tracked[name]
        r = tracked.rollout
        window = self.gateway.take_window(name) or RolloutWindow()
        if r.gates.get("min_accuracy") is not None:
            found = await asyncio.to_thread(live_accuracy, self.ops.store.engine, name,
                                            (r.champion, r.challenger), tracked.step_since)
            for stats, version in ((window.champion, r.champion),
                                   (window.challenger, r.challenger)):
                stats.labelled, stats.correct = found.get(version, (0, 0))
        decision = decide(r, window.champion, window.challenger)
        body = decision.as_dict()
        body["interval_s"] = r.interval_s
        if r.strategy == "shadow":
            body["shadow_dropped"] = window.shadow_dropped  # copies not sent: saturated
        action, reason = decision.action, decision.reason
        if tracked.ab is not None:
            c = tracked.ab_counts
            c[0] += window.champion.requests - window.champion.errors
            c[1] += window.champion.requests
            c[2] += window.challenger.requests - window.challenger.errors
            c[3] += window.challenger.requests
            ab = tracked.ab.look(c[0], c[1], c[2], c[3])
            body["ab_test"] = ab.as_dict()
            action, reason = ab_action(action, decision.outcome, reason, ab)
        if action == "abort":
            # Traffic first: the next request goes to the champion, then the store records it.
            self.gateway.set_rollout_route(name, None)
        try:
            new = await asyncio.to_thread(self.ops.act, name, action, actor=ACTOR,
                                          reason=reason, decision=body,
                                          expect_revision=r.revision)
        except TransitionError as exc:
            log.info("rollout %d of %s: decision not applied: %s", r.id, name, exc)
            await self._sync()
            return
        log.info("rollout %d of %s: %s -> %s (%s)", r.id, name, action, new.phase, reason)
        await self._sync()

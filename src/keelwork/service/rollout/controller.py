"""The rollout controller: polls the store, routes traffic, analyses each interval, acts.

It runs as a task inside the server. Every ``poll_s`` (0.25 s) it reads two numbers, the rollout
store's revision and the registry's alias revision. When the first changed (a ``keel rollout``
command, an admin route, another server) it reloads the active rollouts and re-installs the
gateway's in-memory routes, so an operator's abort reaches traffic within one poll; when the
second changed (``keel models alias``, a promote, a rollback, anywhere) it re-resolves the
champion and the aliases each served model routes to, loading a new version before switching
to it, so an alias move reaches every server within one poll too. Every rollout's
``interval_s`` it swaps the gateway's per-arm window (in-memory counters: the prediction log is
the durable truth, but reading it back every interval would put a query on a sub-second loop),
runs
:func:`keelwork.core.rollout.analysis.decide` and applies the action.

A rollout that ends hands its traffic straight to the champion the store names now (the
challenger after a promote): the new champion route and the removal of the split are one step.
A version that cannot be loaded for a rollout is retried with exponential backoff (not every
poll) and, after ``max_failures`` failed loads, the rollout is aborted (audited) and traffic stays
on the champion.

At the last step of a canary (100 %) the champion gets no traffic, so comparison gates would
have nothing to compare with (nor when a small split or a quiet interval leaves the champion
short of ``min_requests``): the champion's side of the analysis is then its latest answers in
the prediction log (and, for the label gates, its labelled answers since the rollout began),
and the decision says so (``champion_baseline``).

An automatic abort removes the route *before* writing the store: the next request already goes
to the champion; the write only makes it durable (and tells other servers). Decisions are written
with the revision they were computed on, so an operator's change made meanwhile wins.

Where several processes serve one store (``keel serve --workers N``, several servers), only the
holder of the server's lease (:mod:`keelwork.service.leases`) analyses and acts; every process
keeps routing and follows the store. In a fleet (``fleet``) the holder decides on every
worker's answers, read from the shared prediction log for the interval
(:func:`~keelwork.adapters.stores.rollout_answers.interval_answers`); the others discard their
windows at each interval's end.

A/B rollouts also run a :class:`~keelwork.core.rollout.abtest.SequentialABTest` on the arms'
cumulative success rates (answers without error); its verdict, p-value and confidence go into
every decision, and a decided test pauses the rollout for a human to promote or abort.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from keelwork.adapters.stores.rollout_answers import interval_answers, recent_answers
from keelwork.adapters.stores.rollout_store import live_quality
from keelwork.core.outage import Outage
from keelwork.core.rollout.abtest import SequentialABTest, ab_action
from keelwork.core.rollout.analysis import LABEL_GATES, decide
from keelwork.core.rollout.state import Rollout
from keelwork.errors import KeelworkError, TransitionError
from keelwork.service.gateway.gateway import Gateway
from keelwork.service.gateway.routes import RolloutRoute, RolloutWindow
from keelwork.service.monitoring.fairness import live_fairness
from keelwork.service.rollout.operations import RolloutOps

log = logging.getLogger("keelwork.rollout")
ACTOR = "keel-rollout-controller"
#: Seconds a fleet's decision lags behind the clock: answers logged by every worker's log
#: writer within that long are read, the rest by the next interval.
LOG_LAG_S = 1.0


@dataclass
class _Tracked:
    rollout: Rollout
    last_analysis: float
    #: Wall-clock start of the current step: live accuracy counts the labels of its answers
    #: (labels arrive late, so they are read for the whole step, not one interval).
    step_since: float = field(default_factory=time.time)
    ab: SequentialABTest | None = None
    ab_counts: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    #: Failed attempts to load the rollout's versions, and when the next may run (monotonic).
    load_failures: int = 0
    next_load: float = 0.0
    #: Where the last analysis read of the shared log ended (wall clock; a fleet's decider).
    read_until: float | None = None


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
        self._aliases_seen = -1
        #: Longest wait between two attempts to load a rollout's version.
        self.max_backoff_s = 30.0
        self._tracked: dict[str, _Tracked] = {}
        self._served = {m.name for m in gateway.spec.models}
        # The poll loop and the admin routes both sync: one at a time.
        self._lock = asyncio.Lock()
        #: Failing polls (a store outage): logged once as it starts and once as it ends.
        self.outage = Outage("rollout controller")
        #: Whether this process advances rollouts (the holder of the server's lease,
        #: :mod:`keelwork.service.leases`); the others keep routing and only follow the store.
        self.may_decide: Callable[[], bool] = lambda: True
        #: This process is one of a fleet (``keel serve --workers N``): it decides on every
        #: worker's answers read from the shared prediction log, not on its own live window.
        self.fleet = False

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
            aliases = await asyncio.to_thread(self.ops.registry.alias_revision)
            if revision != self._seen:
                await self._sync(revision)
            if aliases != self._aliases_seen:
                await self._refresh_aliases(initial=self._aliases_seen < 0)
                self._aliases_seen = aliases
            await self._retry_loads()
            clock = time.monotonic() if now is None else now
            for name, tracked in list(self._tracked.items()):
                r = tracked.rollout
                if r.phase == "progressing" and clock - tracked.last_analysis >= r.interval_s:
                    tracked.last_analysis = clock
                    if self.may_decide():
                        await self._analyse(name)
                    else:  # another process decides; this one's window starts afresh
                        self.gateway.take_window(name)

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
            await self._try_install(name, tracked)
        self._seen = revision

    async def _refresh_aliases(self, initial: bool) -> None:
        """Follow alias moves: re-resolve each served model's champion and routed aliases."""
        if initial:
            return  # the gateway resolved them at start-up, just now
        for name in sorted(self._served):
            try:
                for target in await self.gateway.refresh_aliases(name):
                    log.info("%s now routes to %s (alias moved)", name, target.label)
            except KeelworkError as exc:
                log.warning("%s: alias moved, but its new target is not served: %s", name, exc)

    async def _retry_loads(self) -> None:
        """Install the routes of rollouts whose versions failed to load, when their backoff
        has passed (aborting them after ``max_failures`` failed loads)."""
        for name, tracked in list(self._tracked.items()):
            if tracked.load_failures and time.monotonic() >= tracked.next_load:
                await self._try_install(name, tracked)

    async def _try_install(self, name: str, tracked: _Tracked) -> None:
        """Install the route; a version that cannot load is retried with backoff, then the
        rollout is aborted (traffic stays on the champion meanwhile)."""
        r = tracked.rollout
        if tracked.load_failures and time.monotonic() < tracked.next_load:
            return
        try:
            await self._install(name, r)
        except Exception as exc:  # any loader failure: never the controller's end
            tracked.load_failures += 1
            delay = min(self.max_backoff_s, self.poll_s * 2 ** tracked.load_failures)
            tracked.next_load = time.monotonic() + delay
            log.warning("rollout %d of %s: cannot route (load failure %d/%d, next try in "
                        "%.1f s): %s", r.id, name, tracked.load_failures, r.max_failures, delay,
                        exc)
            if tracked.load_failures >= r.max_failures and r.active:
                await self._abort_unloadable(name, tracked, exc)
            return
        tracked.load_failures = 0

    async def _abort_unloadable(self, name: str, tracked: _Tracked, exc: Exception) -> None:
        r = tracked.rollout
        self.gateway.set_rollout_route(name, None)
        error = exc.message if isinstance(exc, KeelworkError) else f"{type(exc).__name__}: {exc}"
        reason = (f"the versions of rollout {r.id} could not be loaded (failure "
                  f"{tracked.load_failures}/{r.max_failures}): {error}")
        try:
            await asyncio.to_thread(self.ops.act, name, "abort", actor=ACTOR, reason=reason,
                                    decision={"outcome": "load_failed", "action": "abort",
                                              "failures": tracked.load_failures,
                                              "error": error},
                                    expect_revision=r.revision)
        except TransitionError as err:
            log.info("rollout %d of %s: abort not applied: %s", r.id, name, err)
            return
        log.warning("rollout %d of %s aborted: %s", r.id, name, reason)

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
        """Traffic of a finished rollout: all to the champion the store names now.

        The champion is resolved and loaded first, then it and the removal of the split take
        effect together: after a promote no request goes back to the old champion between.
        """
        champion = None
        try:
            champion = await self.gateway.refresh_target(name)
        except KeelworkError as exc:
            log.warning("rollout %d of %s ended, but its champion did not resolve: %s",
                        ended.id, name, exc)
        self.gateway.set_rollout_route(name, None, champion=champion)
        log.info("rollout %d of %s ended: %s", ended.id, name, ended.phase)

    async def _analyse(self, name: str) -> None:
        tracked = self._tracked[name]
        r = tracked.rollout
        window = self.gateway.take_window(name) or RolloutWindow()
        if self.fleet:
            window = await self._fleet_window(tracked, window)
        baseline = False
        live_champion = window.champion  # the A/B test counts live answers only
        if window.champion.requests < r.min_requests:
            # The champion answered too little in this interval to compare with (at a canary's
            # 100 % step: nothing). Compare with its latest answers in the log instead.
            recent = await asyncio.to_thread(recent_answers, self.ops.store.engine, name,
                                             r.champion, time.time())
            if recent.requests > window.champion.requests:
                window.champion, baseline = recent, True
        if any(r.gates.get(g) is not None for g in LABEL_GATES):
            found = await asyncio.to_thread(live_quality, self.ops.store.engine, name,
                                            (r.champion, r.challenger), tracked.step_since)
            if baseline:  # nothing labelled of the champion this step: its rollout's labels
                earlier = await asyncio.to_thread(live_quality, self.ops.store.engine, name,
                                                  (r.champion,), r.created_at)
                found.update(earlier)
            for stats, version in ((window.champion, r.champion),
                                   (window.challenger, r.challenger)):
                q = found.get(version)
                if q is not None:
                    stats.labelled, stats.correct = q.labelled, q.correct
                    stats.regressed, stats.abs_error = q.regressed, q.abs_error
                    stats.squared_error, stats.continuous = q.squared_error, q.continuous
        limit = r.gates.get("max_fairness_difference")
        if limit is not None:
            fair = await asyncio.to_thread(live_fairness, self.ops.store.engine,
                                           self.gateway.spec, name, (r.champion, r.challenger),
                                           tracked.step_since, limit)
            window.champion.fairness = fair.get(r.champion)
            window.challenger.fairness = fair.get(r.challenger)
        decision = decide(r, window.champion, window.challenger)
        body = decision.as_dict()
        body["interval_s"] = r.interval_s
        if self.fleet:
            body["answers_from"] = "prediction log (every worker)"
        if baseline:
            body["champion_baseline"] = "prediction log (latest answers)"
        if r.strategy == "shadow":
            body["shadow_dropped"] = window.shadow_dropped  # copies not sent: saturated
        action, reason = decision.action, decision.reason
        if tracked.ab is not None:
            c = tracked.ab_counts
            c[0] += live_champion.requests - live_champion.errors
            c[1] += live_champion.requests
            c[2] += window.challenger.requests - window.challenger.errors
            c[3] += window.challenger.requests
            ab = tracked.ab.look(c[0], c[1], c[2], c[3])
            body["ab_test"] = ab.as_dict()
            action, reason = ab_action(action, decision.outcome, reason, ab)
        # When the controller decided (and, for an abort, moved the traffic back): the event's
        # own time is when the store recorded it, later when the log writer holds the lock.
        body["decided_at"] = time.time()
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

    async def _fleet_window(self, tracked: _Tracked, live: RolloutWindow) -> RolloutWindow:
        """Both arms' answers since the last analysis, read from the shared log: every
        worker's, each counted once (consecutive reads do not overlap)."""
        r = tracked.rollout
        until = time.time() - LOG_LAG_S
        since = (tracked.read_until if tracked.read_until is not None
                 else until - r.interval_s)
        engine = self.ops.store.engine
        champion = await asyncio.to_thread(interval_answers, engine, r.model, r.champion,
                                           since, until)
        challenger = await asyncio.to_thread(interval_answers, engine, r.model, r.challenger,
                                             since, until, shadow=r.strategy == "shadow")
        tracked.read_until = until
        return RolloutWindow(champion=champion, challenger=challenger,
                             shadow_dropped=live.shadow_dropped)


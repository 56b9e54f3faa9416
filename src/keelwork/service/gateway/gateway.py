"""The serving gateway: routing, guards, fallback and the prediction log, protocol-agnostic.

The HTTP layer (``keelwork.interfaces.http``) parses a protocol into a list of instances, calls
:meth:`Gateway.predict` and renders :class:`PredictResult` or the raised error. A request goes
through, in this order (step 1 here, steps 2 to 5 in :mod:`keelwork.service.gateway.dispatch`):

1. resolve ``name[@alias|:version]`` to a loaded :class:`ModelHost`; a bare name goes where a
   model flag sends this request (tenant / header / sticky percentage), else to the rollout's
   arm for this request, else to the champion;
2. check every instance against the contract (all violations, not the first) -> 422;
3. admission: the concurrency limit -> 503 with Retry-After when saturated;
4. the model call (micro-batched), bounded by the model's ``timeout_ms``; on failure or
   timeout the fallback model answers when one is configured, and the result says so;
5. one record per instance in the durable prediction log (waits for the commit when
   ``durability: sync``); refused requests are logged too, with the guard that fired.

Rollouts (:mod:`keelwork.core.rollout`): a request for a bare name (no alias, no version) of a
model with an active rollout is routed by the in-memory route
(:mod:`keelwork.service.gateway.routes`) the controller installs: canary and A/B draw the arm
(sticky by ``RequestContext.sticky_key`` or the subject), shadow answers from the champion and
sends a bounded, fire-and-forget copy to the challenger whose answers are logged with status
``shadow`` and never returned. Each arm's outcome goes into the route's current window, which
the controller swaps every interval. No store access happens per request; swapping or removing
a route is one dict assignment, so a rollback is visible to the very next request.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keelwork.adapters.metrics import GatewayMetrics
from keelwork.core.bounds import ref_allowed
from keelwork.core.features.online import OnlineFeatures
from keelwork.core.flags import FlagContext
from keelwork.core.redaction import Redactor
from keelwork.core.refs import check_ref
from keelwork.core.rollout.assignment import to_challenger
from keelwork.errors import (
    ArtifactError,
    ContractViolation,
    ErrorDetail,
    IsolateRequests,
    KeelworkError,
    ModelLoadError,
    ModelNotFoundError,
    Overloaded,
    RefNotAllowedError,
)
from keelwork.service.gateway.context import OUTPUT_GUARD, PredictResult, RequestContext
from keelwork.service.gateway.dispatch import Dispatcher
from keelwork.service.gateway.host import ModelHost, ModelTarget
from keelwork.service.gateway.routes import RolloutRoute, RolloutWindow
from keelwork.spec.model import KeelSpec, ModelSection
from keelwork.types import PredictionSink

if TYPE_CHECKING:
    from keelwork.core.contracts import RecordValidator
    from keelwork.service.flags.source import FlagSource
    from keelwork.service.injection import InjectionScreen
    from keelwork.service.ood import OodGuard

#: Loads a target into a runtime (production: keelwork.adapters.runtimes.load_runtime).
Loader = Callable[[ModelTarget], Any]
#: Resolves (model name, alias or version string or None) to a target (production: registry).
Resolver = Callable[[str, str | None], ModelTarget]


#: The optional method of a loader called once the models are loaded at start (a loader
#: that waits for a version's own deployment at start may serve the later loads in this
#: process while theirs start).
LOADER_STARTED_HOOK = "started"


class Gateway:
    """Serves the models of one keel.yaml.

    Args:
        spec: The validated spec.
        resolve: Maps a model name and an optional alias/version to a :class:`ModelTarget`.
        load: Loads a target into a runtime (blocking; called off the event loop).
        sink: The prediction log.
        metrics: Prometheus metrics (a fresh registry when omitted).
    """

    def __init__(self, spec: KeelSpec, resolve: Resolver, load: Loader, sink: PredictionSink,
                 metrics: GatewayMetrics | None = None,
                 features: OnlineFeatures | None = None,
                 redactor: Redactor | None = None) -> None:
        self.spec = spec
        self._resolve = resolve
        self._load = load
        self.metrics = metrics or GatewayMetrics()
        if spec.cost.priced:  # keelwork_cost_total and its idle share
            self.metrics.watch_cost(spec.cost)
        # Entity lookups + transforms of keel.yaml's `features`: the same code that builds
        # training sets (`keel features build`) runs here, after the contract check.
        self._dispatch = Dispatcher(
            spec, sink, self.metrics,
            features if features is not None and features.active else None,
            self.model_section, self.host, redactor)
        # Loaded versions, least recently used first (guards.max_loaded_versions bounds them).
        self._hosts: OrderedDict[tuple[str, int], ModelHost] = OrderedDict()
        self._max_loaded = spec.guards.max_loaded_versions
        self._routes: dict[tuple[str, str | None], ModelTarget] = {}
        #: What each model's bare name serves: never unloaded.
        self._champions: dict[str, tuple[str, int]] = {}
        self._version_refs = spec.guards.version_refs
        self._load_lock = asyncio.Lock()
        self._rollouts: dict[str, RolloutRoute] = {}
        self._shadow_tasks: set[asyncio.Task[None]] = set()
        #: Shadow copies in flight at most; more are dropped (and counted), never queued.
        self.max_shadow_in_flight = 32
        #: Model flags in force (``keelwork.service.flags.source``); None: no flags.
        self.flags: FlagSource | None = None
        self.ready = False
        #: Components whose state readiness reports (prediction log, rollout controller,
        #: flags): name -> a callable answering at least ``{"degraded": bool}``.
        self.components: dict[str, Callable[[], Mapping[str, Any]]] = {}
        #: The project directory (keel.yaml's); errors show server paths relative to it.
        self.project_dir: Path | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Load every model of the spec at its default alias (and its named aliases)."""
        for m in self.spec.models:
            await self.host(m.name, None)
        started = getattr(self._load, LOADER_STARTED_HOOK, None)
        if callable(started):
            started()
        self.ready = True

    async def close(self) -> None:
        self.ready = False
        self._rollouts.clear()
        for task in list(self._shadow_tasks):
            task.cancel()
        hosts = list(self._hosts.values())
        self._hosts.clear()
        self._routes.clear()
        self._champions.clear()
        for h in hosts:
            await h.close()

    def health(self) -> dict[str, dict[str, Any]]:
        """Each component's state (see :attr:`components`); one that fails to say is
        reported degraded, never raised."""
        out: dict[str, dict[str, Any]] = {}
        for name, read in self.components.items():
            try:
                out[name] = dict(read())
            except Exception as exc:  # a health read must never fail the probe
                out[name] = {"degraded": True, "last_error": f"{type(exc).__name__}: {exc}"}
        return out

    @property
    def input_validator(self) -> RecordValidator | None:
        """The compiled input contract the gateway checks instances against (None: keel.yaml
        declares no inputs); a request context whose ``checked_by`` is this object is not
        checked twice."""
        return self._dispatch.validator

    def use_ood(self, guard: OodGuard | None) -> None:
        """Put ``guards.out_of_distribution`` in force (its detectors fitted)."""
        self._dispatch.ood = guard

    def use_injection(self, screen: InjectionScreen | None) -> None:
        """Put ``guards.prompt_injection`` in force."""
        self._dispatch.injection = screen

    def model_section(self, name: str) -> ModelSection:
        try:
            return self.spec.model(name)
        except KeyError:
            known = ", ".join(m.name for m in self.spec.models)
            raise ModelNotFoundError(
                f"No model named {name!r} is served here; models: {known}.",
                [ErrorDetail("model", "unknown_model", name)]) from None

    def check_ref(self, name: str, ref: str | None, ctx: RequestContext | None = None) -> None:
        """Refuse a reference that ``guards.version_refs`` keeps from clients.

        Raises:
            RefNotAllowedError: ``ref`` is a version (or any reference) clients may not
                address, and ``ctx`` does not allow any reference (403).
        """
        if ctx is not None and ctx.any_ref:
            return
        if not ref_allowed(self._version_refs, ref):
            what = ("aliases only" if self._version_refs == "aliases"
                    else "no reference (routing decides)")
            raise RefNotAllowedError(
                f"Clients of this service may address {what} (guards.version_refs: "
                f"{self._version_refs}); got {name}@{ref}. An API key with the 'admin' "
                "scope may address any version.",
                [ErrorDetail("model_ref", "version_refs", ref)])

    async def host(self, name: str, ref: str | None) -> ModelHost:
        """The loaded host for ``name`` at ``ref`` (alias or version; None = champion).

        Loading a version past ``guards.max_loaded_versions`` unloads the least recently used
        one that no champion, active rollout or fallback needs (once its calls in flight end).

        Raises:
            ModelNotFoundError: unknown model, alias or version (404).
            ModelRefError: ``ref`` is neither an alias nor a version number (400).
        """
        target = self._routes.get((name, ref))
        if target is not None:
            key = (target.name, target.version)
            h = self._hosts.get(key)
            if h is not None:
                self._hosts.move_to_end(key)
                return h
        section = self.model_section(name)
        retired: list[ModelHost] = []
        checked = None if ref is None else check_ref(ref, name=name)
        async with self._load_lock:
            target = await asyncio.to_thread(self._resolve, name, checked)
            key = (target.name, target.version)
            h = self._hosts.get(key)
            if h is None:
                try:
                    runtime = await asyncio.to_thread(self._load, target)
                except KeelworkError as exc:
                    # which version failed to load, for the prediction log's record of it
                    exc.failed_target = target  # type: ignore[attr-defined]
                    raise
                h = ModelHost(target, runtime, section.batching, observer=self._observe_call,
                              cpu_observer=self._observe_cpu,
                              gpu_observer=self._observe_gpu)
                self._hosts[key] = h
                retired = self._evict(keep=key)
            else:
                self._hosts.move_to_end(key)
            if len(self._routes) >= _MAX_ROUTES:  # refs are client-chosen text ('1', '01'...)
                self._routes = {k: v for k, v in self._routes.items() if k[1] is None}
            self._routes[(name, ref)] = target
            if ref is None:
                self._champions[name] = key
        for old in retired:
            await old.retire()
        return h

    def _pinned(self) -> set[tuple[str, int]]:
        """Versions never unloaded: champions, active rollouts' arms, fallbacks."""
        pinned = set(self._champions.values())
        for route in self._rollouts.values():
            for h in (route.champion, route.challenger):
                pinned.add((h.target.name, h.target.version))
        for m in self.spec.models:
            if m.fallback is not None:
                fb_name, _, fb_alias = m.fallback.partition("@")
                t = self._routes.get((fb_name, fb_alias or None))
                if t is not None:
                    pinned.add((t.name, t.version))
        return pinned

    def _evict(self, keep: tuple[str, int]) -> list[ModelHost]:
        """Take the least recently used unpinned hosts out while more than the bound are
        loaded; returns them (for :meth:`ModelHost.retire`)."""
        if len(self._hosts) <= self._max_loaded:
            return []
        pinned = self._pinned() | {keep}
        out: list[ModelHost] = []
        for key in list(self._hosts):
            if len(self._hosts) <= self._max_loaded:
                break
            if key not in pinned:
                out.append(self._hosts.pop(key))
        gone = {(h.target.name, h.target.version) for h in out}
        if gone:
            self._routes = {k: t for k, t in self._routes.items()
                            if (t.name, t.version) not in gone}
        return out

    def loaded(self) -> list[ModelTarget]:
        return [h.target for h in self._hosts.values()]

    def invalidate_routes(self, name: str | None = None) -> None:
        """Forget alias -> version routes (after an alias change); hosts stay loaded."""
        if name is None:
            self._routes.clear()
            return
        for key in [k for k in self._routes if k[0] == name]:
            del self._routes[key]

    # ------------------------------------------------------------------ rollouts
    def rollout_route(self, name: str) -> RolloutRoute | None:
        return self._rollouts.get(name)

    def set_rollout_route(self, name: str, route: RolloutRoute | None,
                          champion: ModelTarget | None = None) -> None:
        """Install (or, with None, remove) the split of ``name``; takes effect at once.

        Args:
            champion: When given, bare-name requests go to this loaded version from now on
                (after a promote or a rollback moved the alias), without a registry lookup.
        """
        if champion is not None:
            self.invalidate_routes(name)
            if (champion.name, champion.version) in self._hosts:
                self._routes[(name, None)] = champion
                self._champions[name] = (champion.name, champion.version)
        if route is None:
            self._rollouts.pop(name, None)
        else:
            self._rollouts[name] = route

    async def refresh_champion(self, name: str) -> ModelTarget:
        """Re-resolve what a bare ``name`` serves (the alias moved) and switch to it at once.

        The new version is loaded before the switch, so no request waits on the registry.
        """
        target = await self.refresh_target(name)
        self._routes[(name, None)] = target
        return target

    async def refresh_target(self, name: str) -> ModelTarget:
        """What a bare ``name`` resolves to now, loaded; routes do not change (see
        :meth:`set_rollout_route`'s ``champion``)."""
        target = await asyncio.to_thread(self._resolve, name, None)
        # It is (about to be) the champion: pinned before the load, so that loading it
        # never unloads it.
        self._champions[name] = (target.name, target.version)
        await self.host(name, str(target.version))
        return target

    async def refresh_aliases(self, name: str) -> list[ModelTarget]:
        """Re-resolve the bare name and every alias of ``name`` routed so far (an alias moved).

        Each new target is loaded before its route switches, so requests never wait on the
        registry or a load; a removed alias loses its route (its next request is a 404, or a
        flag's counted fallback). Returns the targets that changed.

        Raises:
            KeelworkError: a target does not load (its route stays as it was; the other
                routes are refreshed all the same).
        """
        changed: list[ModelTarget] = []
        failed: KeelworkError | None = None
        refs = [ref for (n, ref) in list(self._routes) if n == name and not
                (ref is not None and ref.isdigit())]
        for ref in refs if None in refs else [None, *refs]:
            try:
                target = await asyncio.to_thread(self._resolve, name, ref)
            except ModelNotFoundError:
                if ref is None:
                    raise
                self._routes.pop((name, ref), None)
                continue
            old = self._routes.get((name, ref))
            if old is not None and (old.name, old.version) == (target.name, target.version):
                continue
            try:
                await self.host(name, str(target.version))
            except KeelworkError as exc:
                failed = failed or exc
                continue
            self._routes[(name, ref)] = target
            changed.append(target)
        if failed is not None:
            raise failed
        return changed

    def take_window(self, name: str) -> RolloutWindow | None:
        """The current interval's outcomes of ``name``'s rollout; a fresh window starts."""
        route = self._rollouts.get(name)
        if route is None:
            return None
        window, route.window = route.window, RolloutWindow()
        return window

    # ------------------------------------------------------------------ metrics hooks
    def _observe_call(self, target: ModelTarget, size: int, _requests: int,
                      seconds: float) -> None:
        v = str(target.version)
        self.metrics.child(self.metrics.batch_size, target.name, v).observe(size)
        self.metrics.child(self.metrics.model_latency, target.name, v).observe(seconds)

    def _observe_cpu(self, target: ModelTarget, seconds: float) -> None:
        # In the model's worker thread: prometheus-client's counters take their own lock.
        self.metrics.child(self.metrics.model_cpu, target.name, str(target.version)).inc(
            seconds)

    def _observe_gpu(self, target: ModelTarget, seconds: float) -> None:
        self.metrics.child(self.metrics.model_gpu, target.name, str(target.version)).inc(
            seconds)

    # ------------------------------------------------------------------ predict
    async def predict(self, name: str, ref: str | None, instances: list[Any],
                      ctx: RequestContext | None = None) -> PredictResult:
        """Run the whole request path for ``instances``; see the module docstring.

        Raises:
            ModelNotFoundError: unknown model, alias or version (404).
            ContractViolation: some instance breaks the contract (422, every field named).
            Overloaded: the concurrency limit is reached (503 + Retry-After).
            ModelTimeout: the model (and its fallback) did not answer in time (504).
            PredictionError: the model (and its fallback) raised (500, model named).
        """
        ctx = ctx or RequestContext()
        self.check_ref(name, ref, ctx)
        if ref is None and self.flags is not None and self.flags.current:
            host = await self._flagged_host(name, ctx)
            if host is not None:
                return await self._dispatch.predict(host, name, instances, ctx)
        route = self._rollouts.get(name) if ref is None else None
        if route is None:
            return await self._dispatch.predict(await self._request_host(name, ref, instances, ctx),
                                       name, instances, ctx)
        started = time.perf_counter()
        to_ch = route.strategy != "shadow" and to_challenger(
            route.weight, route.salt, ctx.sticky_key or ctx.subject_id)
        try:
            result = await self._dispatch.predict(
                route.challenger if to_ch else route.champion, name, instances, ctx)
        except ContractViolation:
            route.arm(to_ch).record("rejected", (time.perf_counter() - started) * 1000.0,
                                    guard="contract")
            raise
        except (Overloaded, IsolateRequests):
            raise  # refused before any model ran, or to be asked again: neither arm's doing
        except KeelworkError:
            route.arm(to_ch).record("error", (time.perf_counter() - started) * 1000.0)
            raise
        # The window current when the answer came (a slow answer counts where it is seen).
        route.arm(to_ch).record("fallback" if result.fallback_used else "ok",
                   (time.perf_counter() - started) * 1000.0, result.predictions,
                   guard=OUTPUT_GUARD if result.output_violations else None)
        if route.strategy == "shadow":
            self._shadow(route, name, instances, ctx, result.prediction_ids)
        return result

    async def overloaded(self, host: ModelHost, instances: list[Any],
                         ctx: RequestContext) -> Overloaded:
        """A request refused at ``guards.max_concurrency`` by an engine that counts requests
        itself (granian's batch queues), counted and logged as :meth:`predict` does; its
        error."""
        return await self._dispatch.overloaded(host.target, instances, ctx, time.perf_counter())

    async def _request_host(self, name: str, ref: str | None, instances: list[Any],
                            ctx: RequestContext) -> ModelHost:
        """:meth:`host`, recording a version that fails to load in the prediction log."""
        started = time.perf_counter()
        try:
            return await self.host(name, ref)
        except (ModelLoadError, ArtifactError) as exc:
            target = getattr(exc, "failed_target", None)
            if isinstance(target, ModelTarget):
                await self._dispatch.log_failed(target, instances, ctx, started, exc, guard="load")
            raise

    async def _flagged_host(self, name: str, ctx: RequestContext) -> ModelHost | None:
        """The host a model flag picks for this request, or None for the usual routing.

        A flag never fails a request: one that errs, or picks a version that does not
        resolve, is counted and the request takes the usual route (champion or rollout).
        """
        assert self.flags is not None
        flags = self.flags.current
        choice = flags.choose(name, FlagContext(ctx.tenant, ctx.headers))
        if choice is None or choice.ref is None:
            return None
        try:
            host = await self.host(name, choice.ref)
        except KeelworkError:
            flags.note_error(choice.flag)
            return None
        ctx.meta["flag"] = choice.flag
        return host

    def _shadow(self, route: RolloutRoute, name: str, instances: list[Any],
                ctx: RequestContext, champion_ids: list[str]) -> None:
        """Send a copy to the challenger without waiting (bounded; dropped when saturated)."""
        if len(self._shadow_tasks) >= self.max_shadow_in_flight:
            route.window.shadow_dropped += 1
            return
        host = route.challenger
        host.acquire()  # before the task starts: a rollout ending meanwhile cannot unload it
        task = asyncio.get_running_loop().create_task(
            self._dispatch.shadow(route, name, instances, ctx, champion_ids))
        self._shadow_tasks.add(task)
        task.add_done_callback(self._shadow_tasks.discard)
        task.add_done_callback(lambda _t: host.release())


#: Cached alias/version -> target routes kept at most (beyond it, all but champions go).
_MAX_ROUTES = 1024

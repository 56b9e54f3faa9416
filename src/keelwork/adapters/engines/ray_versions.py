"""One Ray Serve deployment per model version (``keel serve --engine ray``, the default).

Three parts, each in the process that owns it:

- :func:`version_class`: the version deployment. Its replica loads one version with the loader
  the gateway would use (keelwork's own safe loaders: a pickle only where keel.yaml allows it)
  and batches the calls made to it with Ray's ``@serve.batch`` (``max_batch_size`` and
  ``max_wait_ms`` of the model's ``batching:``, counted in instances). A batch whose model call
  raises is retried member by member (:func:`keelwork.core.batch_members.call_members`), so the
  request whose instances make the model raise fails alone and its neighbours are answered (ray
  #42593); the batched method never raises, so Ray never sets one exception on a whole batch.
  A caller that gives up is dropped from its batch by Ray before the call (or its answer
  discarded after). Calls arriving while the model runs wait until it is free and then enter
  Ray's queue together, one batch (Ray 2.60's batcher would form a batch of each as its window
  closed and run them in turn behind the busy one).
- :class:`VersionClient`: in each gateway replica, the gateway's loader. It records in the store
  that this replica uses the version (:class:`~keelwork.adapters.stores.version_uses.VersionUses`),
  waits for the version's application, and hands the gateway a :class:`VersionRuntime` whose
  ``predict_async`` calls the deployment through a handle. While the runtime is loaded its use
  is renewed every :data:`RENEW_S`; unloading it (``guards.max_loaded_versions`` evicting it)
  drops the use. Once the gateway has started (:meth:`VersionClient.started`), a version whose
  application does not answer at once is loaded in the replica's own process and served there
  until it does (:class:`~keelwork.adapters.engines.version_runtime.VersionRuntime`), so an
  alias or flag moved to it reaches requests within the 1 s bound, not after Ray's seconds.
- :class:`VersionKeeper`: in ``keel serve``'s own process, the one that declares Serve
  applications. Every tick it creates an application (``serve.run``, one per version, no route,
  with the gateway's count of replicas) for each version some replica uses, and deletes the
  applications no replica has used for :data:`IDLE_S` seconds; it logs Serve's status of each
  application once it runs (its running replicas). One process decides, so replicas never race
  to create or delete one.

Ray is imported only inside this module's functions.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from keelwork.adapters.engines.version_runtime import Served, VersionRuntime
from keelwork.core.batch_members import call_members
from keelwork.errors import EngineError

log = logging.getLogger("keelwork.ray")

#: Seconds between a replica's renewals of the versions it uses.
RENEW_S = 5.0
#: Seconds without a renewal after which a version's application is deleted.
IDLE_S = 30.0
#: Seconds a replica waits for a version's application to be created and answer.
READY_TIMEOUT_S = 120.0
#: The user of a version the keeper deploys as it is registered (before any replica needs it).
REGISTERED = "keel-serve:registered"
#: Seconds a replica with a fallback waits for a version's application before serving the
#: version in its own process meanwhile (a running application answers in milliseconds).
FIRST_LOOK_S = 0.05
#: Calls a version replica takes at once (they wait in its batch queue).
VERSION_MAX_ONGOING = 1024

Loader = Callable[[Any], Any]


#: The store's record of uses: a :class:`keelwork.adapters.stores.version_uses.VersionUses`
#: (``use``, ``renew``, ``drop``, ``needed``, ``forget_unused``), handed in by the service.
Uses = Any


def _module(name: str) -> Any:
    return importlib.import_module(name)


def app_name(service: str, model: str, version: int) -> str:
    """The Serve application of one version of ``model`` served by ``service``."""
    return f"{app_prefix(service)}{model}-v{version}"


def app_prefix(service: str) -> str:
    """What every version application of ``service`` is named with first."""
    return f"{service}--version--"


def _tag() -> str:
    """``<replica id>@<host>:<pid>`` (``local@...`` outside a Serve replica)."""
    try:
        unique = _module("ray.serve").get_replica_context().replica_id.unique_id
    except Exception:  # outside a replica (Ray's RayServeException)
        unique = "local"
    return f"{unique}@{socket.gethostname()}:{os.getpid()}"


def version_class(max_batch_size: int, wait_s: float) -> type:
    """The deployment class of a version batched at most ``max_batch_size`` instances a call,
    waiting ``wait_s`` seconds for a batch to fill."""
    ray_serve = _module("ray.serve")

    def instances(members: list[Any]) -> int:  # one request larger than the bound runs alone
        return sum(min(len(m), max_batch_size) for m in members)

    # Ray's decorator, typed here: Ray ships no stubs for it.
    batch: Callable[[Callable[..., Any]], Callable[..., Any]] = ray_serve.batch(
        max_batch_size=max_batch_size, batch_wait_timeout_s=wait_s, batch_size_fn=instances)

    class KeelVersion:
        def __init__(self, target: Any, load: Loader) -> None:
            self._runtime = load(target)
            self._label = f"{target.name}:{target.version}"
            self.tag = _tag()
            self._running = 0  # batches in the model now
            self._free = asyncio.Event()  # set as a batch ends; bound to the loop at first wait

        @batch
        async def batched(self, members: list[list[Any]]) -> list[Served]:
            self._running += 1
            self._free.clear()
            try:
                return await asyncio.to_thread(self._run, members)
            finally:
                self._running -= 1
                if not self._running:
                    self._free.set()

        def _run(self, members: list[list[Any]]) -> list[Served]:
            """Each member's outcome and its share (by instances) of the calls' CPU time and,
            for a runtime that measures it (``gpu_seconds()``), GPU time (one batch runs at a
            time here, so the growth of its total is this batch's)."""
            gpu = getattr(self._runtime, "gpu_seconds", None)
            gpu_before = float(gpu()) if callable(gpu) else 0.0
            started = time.thread_time()
            outcomes = call_members(self._runtime.predict, members)
            spent = time.thread_time() - started
            gpu_spent = max(0.0, float(gpu()) - gpu_before) if callable(gpu) else 0.0
            total = sum(len(m) for m in members) or 1
            return [(o, spent * len(m) / total, gpu_spent * len(m) / total)
                    for o, m in zip(outcomes, members, strict=True)]

        async def predict(self, instances: list[Any]) -> Served:
            # Held here while the model runs, then let into Ray's queue together: Ray's batcher
            # forms a batch as its window closes even while the last one runs (and queues it
            # behind that one), so without this a busy model got batches of one, in turn.
            while self._running:
                await self._free.wait()
            served: Served = await self.batched(instances)
            return served

        async def predict_proba(self, instances: list[Any]) -> Any:
            return await asyncio.to_thread(self._runtime.predict_proba, instances)

        def describe(self) -> tuple[Any, str, str]:
            return self._runtime.signature, str(self._runtime.kind), self.tag

        def __del__(self) -> None:
            try:
                self._runtime.unload()
            except Exception:  # unloading is best effort
                log.debug("unloading %s failed", self._label, exc_info=True)

    return KeelVersion


class VersionClient:
    """The gateway's loader in one gateway replica: a version's runtime is its deployment's
    handle (see the module's docstring).

    Args:
        service: The service's name (the applications' prefix).
        uses: The store's record of uses.
        replica: This replica's name in it (default ``<host>:<pid>``).
        fallback: Loads a version in this process (the gateway's own loader), to serve it
            while its deployment starts: an alias, flag or rollout that sends traffic to a
            version with no deployment yet reaches it at once, not after the deployment's
            start (seconds). None: wait for the deployment. The gateway's start (its
            champions) waits for the deployments either way (:meth:`started` marks its end),
            so the models do not all load in every gateway replica at once.
    """

    def __init__(self, service: str, uses: Uses, replica: str | None = None,
                 fallback: Loader | None = None) -> None:
        self._service = service
        self._fallback = fallback
        self._serving = threading.Event()
        self._uses = uses
        self.replica = replica or f"{socket.gethostname()}:{os.getpid()}"
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._handles: dict[str, Any] = {}  # one per application, kept: its router stays warm

    def __call__(self, target: Any) -> VersionRuntime:
        """Load ``target``: record the use, wait for its application, describe it. Once
        :meth:`started`, with a ``fallback`` loader, a version whose application does not
        answer at once is loaded in this process and served here until it answers.

        Raises:
            EngineError: the application did not answer within :data:`READY_TIMEOUT_S`
                (without a ``fallback``).
        """
        app = app_name(self._service, target.name, target.version)
        label = f"{target.name}:{target.version}"
        meanwhile = self._fallback is not None and self._serving.is_set()
        if meanwhile:  # the keeper learns of it a moment later; no request waits on the store
            threading.Thread(target=self._use, args=(app, describe_target(target)),
                             daemon=True, name="keel-version-use").start()
        else:
            self._uses.use(app, self.replica, describe_target(target))
        with self._lock:
            self._held.add(app)
        self._start_renewing()
        if meanwhile and self._fallback is not None:
            ready = self._look_at_once(app)
            if isinstance(ready, Exception):
                try:
                    local = self._fallback(target)
                except BaseException:
                    self._release(app)
                    raise
                runtime = VersionRuntime(
                    None, label, local.signature, str(getattr(local, "kind", target.runtime)),
                    f"in-process@{self.replica}", lambda: self._release(app), local=local)
                threading.Thread(target=self._switch, args=(app, runtime), daemon=True,
                                 name=f"keel-switch-{label}").start()
                return runtime
            handle, (signature, kind, tag) = ready
            return VersionRuntime(handle, label, signature, kind, tag,
                                  lambda: self._release(app))
        deadline = time.monotonic() + READY_TIMEOUT_S
        while isinstance(ready := self._look(app, 10.0), Exception):
            if time.monotonic() > deadline:
                self._release(app)
                raise EngineError(f"The deployment of {label} ({app}) did not start in "
                                  f"{READY_TIMEOUT_S:g} s: {type(ready).__name__}: "
                                  f"{ready}") from None
            time.sleep(0.2)
        handle, (signature, kind, tag) = ready
        return VersionRuntime(handle, label, signature, kind, tag, lambda: self._release(app))

    def _use(self, app: str, target: dict[str, Any]) -> None:
        try:
            self._uses.use(app, self.replica, target)
        except Exception:  # a version served in this process until a later load records it
            log.warning("could not record the use of %s", app, exc_info=True)

    def started(self) -> None:
        """The gateway's models are loaded (its start waited for their deployments): from now
        on a version whose deployment is not answering yet is served in this process
        meanwhile (with a ``fallback``)."""
        self._serving.set()

    def _look(self, app: str, timeout_s: float) -> tuple[Any, tuple[Any, str, str]] | Exception:
        """(the application's handle, its description), or why it did not answer within
        ``timeout_s`` (not created yet, or its replica still starting). The handle is kept
        for the next load of the same version (a rollback to it): Serve's ``get_app_handle``
        asks its controller, and a fresh handle's first call waits for its router."""
        try:
            with self._lock:
                handle = self._handles.get(app)
            if handle is None:
                handle = _module("ray.serve").get_app_handle(app)
            described = tuple(handle.describe.remote().result(timeout_s=timeout_s))
        except Exception as exc:  # Ray's own errors (RayServeException, TimeoutError...)
            return exc
        with self._lock:
            self._handles[app] = handle
        return handle, described

    def _look_at_once(self, app: str) -> tuple[Any, tuple[Any, str, str]] | Exception:
        """:meth:`_look`, bounded as a whole by twice :data:`FIRST_LOOK_S`: on a loaded
        machine Serve's controller can keep ``get_app_handle`` for a second, which would hold
        back the switch of an alias or a rollback to this version. The look left running
        ends on its own (its handle kept for the next one)."""
        found: list[tuple[Any, tuple[Any, str, str]] | Exception] = []
        looking = threading.Thread(target=lambda: found.append(self._look(app, FIRST_LOOK_S)),
                                   daemon=True, name=f"keel-look-{app}")
        looking.start()
        looking.join(2 * FIRST_LOOK_S)
        return found[0] if found else TimeoutError(
            f"{app} did not answer within {2 * FIRST_LOOK_S:g} s")

    def _switch(self, app: str, runtime: VersionRuntime) -> None:
        """Wait for ``app`` to answer, then hand ``runtime`` to it (while it is loaded)."""
        started = time.monotonic()
        warned = False
        while not (runtime.unloaded.is_set() or self._stop.is_set()):
            ready = self._look(app, 10.0)
            if not isinstance(ready, Exception):
                handle, (_signature, _kind, tag) = ready
                runtime.attach(handle, tag)
                log.info("%s: served by its deployment from now on", app)
                return
            if not warned and time.monotonic() - started > READY_TIMEOUT_S:
                warned = True
                log.warning("the deployment %s did not start in %g s (%s: %s); serving the "
                            "version in this process meanwhile", app, READY_TIMEOUT_S,
                            type(ready).__name__, ready)
            self._stop.wait(0.2)

    def _release(self, app: str) -> None:
        with self._lock:
            self._held.discard(app)
        try:
            self._uses.drop(app, self.replica)
        except Exception:  # the row goes stale and the keeper forgets it
            log.warning("could not drop the use of %s", app, exc_info=True)

    def _start_renewing(self) -> None:
        with self._lock:
            if self._renewer is not None:
                return
            self._renewer = threading.Thread(target=self._renew, daemon=True,
                                             name="keel-version-uses")
        self._renewer.start()

    def _renew(self) -> None:
        while not self._stop.wait(RENEW_S):
            with self._lock:
                apps = sorted(self._held)
            try:
                self._uses.renew(apps, self.replica)
            except Exception:  # the next renewal tries again, well within IDLE_S
                log.warning("could not renew version uses", exc_info=True)

    def close(self) -> None:
        """Stop renewing (the rows go stale; the keeper deletes what no one else uses)."""
        self._stop.set()


def describe_target(target: Any) -> dict[str, Any]:
    """A version's target as JSON (what the keeper deploys)."""
    return {"name": target.name, "version": target.version, "runtime": target.runtime,
            "artifact": str(target.artifact), "options": dict(target.options),
            "allow_unsafe_pickle": target.allow_unsafe_pickle}


class VersionKeeper:
    """In ``keel serve``'s process: creates and deletes the version applications from the
    store's record of uses (see the module's docstring).

    Args:
        service: The service's name.
        uses: The store's record of uses.
        deployment: Returns the bound application of one target (JSON, as recorded).
        idle_s: Seconds without a use after which a version's application goes.
    """

    def __init__(self, service: str, uses: Uses, deployment: Callable[[dict[str, Any]], Any],
                 idle_s: float = IDLE_S,
                 registered: Callable[[], dict[str, dict[str, Any]]] | None = None) -> None:
        self._prefix = app_prefix(service)
        self._uses = uses
        self._deployment = deployment
        self._idle_s = idle_s
        self._registered = registered
        self._warmed: set[str] = set()
        self.deployed: set[str] = set()
        self._starting: set[str] = set()

    def tick(self) -> None:
        """Create what is used and missing; delete what nobody used for ``idle_s``. A version
        ``registered`` names (registered in the last ``idle_s``) counts as used once, by
        :data:`REGISTERED`, as the keeper first sees it: its deployment is up before an alias
        or flag sends requests to it, and goes ``idle_s`` later if no replica takes it."""
        ray_serve = _module("ray.serve")
        try:
            for app, target in (self._registered() if self._registered else {}).items():
                if app not in self._warmed:
                    self._uses.use(app, REGISTERED, target)
                    self._warmed.add(app)
            for app in self._uses.forget_unused(self._prefix, self._idle_s):
                if app in self.deployed:
                    log.info("deleting %s: no replica used it for %g s", app, self._idle_s)
                    ray_serve.delete(app, _blocking=False)
                    self.deployed.discard(app)
            for app, target in self._uses.needed(self._prefix).items():
                if app not in self.deployed:
                    log.info("deploying %s", app)
                    ray_serve.run(self._deployment(target), name=app, route_prefix=None,
                                  blocking=False)
                    self.deployed.add(app)
                    self._starting.add(app)
            self._starting &= self.deployed
            if self._starting:
                self._report(ray_serve.status().applications)
        except Exception:  # the next tick tries again; replicas wait for their versions
            log.warning("the version deployments could not be kept", exc_info=True)

    def _report(self, applications: dict[str, Any]) -> None:
        """Log each started application as Serve's status has it running: its deployments'
        running replicas (what keel.yaml's ``server.replicas`` asked for)."""
        for app in sorted(self._starting):
            status: Any = applications.get(app)
            state = None if status is None else _state(status.status)
            if state == "DEPLOY_FAILED":
                log.warning("%s did not deploy: %s", app, status.message)
                self._starting.discard(app)
            elif state == "RUNNING":
                log.info("%s is running: %s", app, ", ".join(
                    f"{name} with {_running(d)} running replicas"
                    for name, d in sorted(status.deployments.items())))
                self._starting.discard(app)

    def close(self) -> None:
        """Delete every version application this keeper created."""
        ray_serve = _module("ray.serve")
        for app in sorted(self.deployed):
            try:
                ray_serve.delete(app, _blocking=False)
            except Exception:
                log.warning("could not delete %s", app, exc_info=True)
        self.deployed.clear()


def _state(value: Any) -> str:
    """A Serve status (a str enum, or its value) as text."""
    return str(getattr(value, "value", value))


def _running(deployment: Any) -> int:
    """The running replicas of a deployment's Serve status."""
    return sum(n for state, n in deployment.replica_states.items()
               if _state(state) == "RUNNING")


def version_options(name: str, count: dict[str, Any]) -> dict[str, Any]:
    """A version deployment: ``count`` replicas (``num_replicas``, or an
    ``autoscaling_config``: keel.yaml's ``server.replicas``, as the gateway's), reserving no
    CPU (on a machine shared with the gateway replicas; a cluster's operator sizes it), each
    taking every call the gateways make (they wait in its batch queue)."""
    return {"name": name, **count, "max_ongoing_requests": VERSION_MAX_ONGOING,
            "ray_actor_options": {"num_cpus": 0},
            "logging_config": {"enable_access_log": False, "log_level": "WARNING"}}


def bind_version(target: Any, load: Loader, max_batch_size: int, wait_s: float,
                 env: dict[str, str], count: dict[str, Any]) -> Any:
    """The bound application of one version with ``count`` replicas (``serve.run`` takes
    it)."""
    ray_serve = _module("ray.serve")
    options = version_options(f"{target.name}-v{target.version}", count)
    options["ray_actor_options"]["runtime_env"] = {"env_vars": dict(env)}
    return ray_serve.deployment(version_class(max_batch_size, wait_s), **options).bind(
        target, load)


__all__ = ["FIRST_LOOK_S", "IDLE_S", "REGISTERED", "RENEW_S", "VersionClient", "VersionKeeper",
           "VersionRuntime", "app_name", "app_prefix", "bind_version", "describe_target",
           "version_class", "version_options"]

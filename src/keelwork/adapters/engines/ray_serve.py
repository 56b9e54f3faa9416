"""``keel serve --engine ray``: the same app served by Ray Serve replicas.

One Serve application holds two deployments. The gateway deployment's replicas each build the
whole keelwork app (every guard, contract check, the durable prediction log, flags, rollouts and
metrics run in each replica) from a builder the caller hands in: a module-level function, so
Ray ships it by reference and each replica imports it; the app's start-up runs as the replica
starts (Serve awaits its async constructor), its shutdown as the replica stops (``__del__``).
In front of them, a thin ingress deployment (as many replicas) gets every request from Serve's
HTTP proxy (on the given host and port) and relays it to a gateway replica through a handle
(:mod:`keelwork.adapters.engines.replica_relay`): when that replica dies under the request
(Ray raises ``RayActorError``: ``ActorDiedError``, or ``ActorUnavailableError`` when it cannot
be reached), a read is sent again to a live replica and anything else is answered 503 with
``Retry-After``, where Serve's proxy alone would answer a bare 500.

Ray is started here on this machine (``address="local"``: never an older cluster found on the
machine, bounded CPUs, dashboard off, everything on loopback) unless an ``address`` names an
existing cluster. Each answer carries :data:`REPLICA_HEADER`, the replica that served it
(``<replica id>@<host>:<pid>``). Ray is imported only inside this module's functions: the base
install never needs it.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from keelwork.adapters.engines.replica_relay import (
    Lifespan,
    RelayRequest,
    RelayResponse,
    call_app,
    read_body,
    relay,
)
from keelwork.errors import EngineError, MissingExtraError

log = logging.getLogger("keelwork.ray")

#: The response header naming the replica that answered.
REPLICA_HEADER = "x-keel-replica"
#: Requests a replica takes at once before Serve's proxy queues the next (Ray's default, 5,
#: would starve the gateway's own adaptive batching); the app's guards bound the rest.
MAX_ONGOING_REQUESTS = 64
#: The niceness of the worker processes (the replicas) of a Ray started here. Ray's default, 15,
#: is for batch tasks that must yield to Ray's own daemons; a replica is the service, and at 15
#: any other process of the machine (a load generator, PostgreSQL, a build) takes its CPU
#: first: a rollback reached every request in 1.4-1.8 s beside the live tests' client threads,
#: within the 1 s bound at 0 (docs/scale-out.md).
WORKER_NICENESS = 0
#: Seconds a stopping replica is given to finish its requests and flush its prediction log.
GRACEFUL_SHUTDOWN_S = 30.0
#: The ingress deployment's name (the gateway deployment is named for the service).
INGRESS = "ingress"
#: Requests an ingress replica relays at once (it only waits on the gateway replicas).
INGRESS_MAX_ONGOING = 1024
#: The status the ingress gives a request whose client left before its body arrived (nginx's
#: "client closed request"; nobody reads it).
CLIENT_CLOSED = 499

AppBuilder = Callable[[], Any]

#: Serve's own logging: no access log line per request (keelwork writes its own, on
#: ``--access-log``), warnings and errors only.
_RAY_LOGGING = {"enable_access_log": False, "log_level": "WARNING"}


@dataclass(frozen=True)
class RayServeConfig:
    """How to run the replicas.

    Attributes:
        name: The Serve application's (and deployment's) name: the service's.
        replicas: How many replicas (with ``max_replicas`` above it: at the least).
        max_replicas: Replicas at the most; above ``replicas``, Serve's autoscaler decides.
        target_ongoing_requests: Requests in flight per replica the autoscaler aims at.
        host: The HTTP proxy's bind address.
        port: The HTTP proxy's port.
        address: An existing Ray cluster (``ray://...`` or ``host:port``); None: start one here.
        cpus: The CPUs a Ray started here may use (None: the machine's).
        env: Environment variables every replica starts with (the hand-off, the metrics folder).
        max_body_bytes: ``guards.max_body_bytes``, enforced by the ingress as it reads a body.
        body_read_timeout_s: ``guards.body_read_timeout_s``, likewise.
        worker_niceness: The niceness of a Ray started here's workers (the replicas); a
            cluster's own is its operator's.
    """

    name: str
    replicas: int
    host: str
    port: int
    address: str | None = None
    cpus: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    max_replicas: int | None = None
    target_ongoing_requests: float = 2.0
    max_body_bytes: int = 1_048_576
    body_read_timeout_s: float = 5.0
    worker_niceness: int = WORKER_NICENESS

    @property
    def most(self) -> int:
        """The replicas that may run at once."""
        return max(self.replicas, self.max_replicas or 0)


def require_ray() -> None:
    """Raises:
        MissingExtraError: ``ray[serve]`` is not installed (the ``ray`` extra)."""
    try:
        _module("ray.serve")
    except ImportError as exc:
        raise MissingExtraError("ray[serve]", "ray", "keel serve --engine ray") from exc


def _module(name: str) -> Any:
    """Ray's module ``name``, as Any: Ray ships no complete type stubs, so what is called on
    it is kept untyped here rather than leaking into the rest."""
    return importlib.import_module(name)


def serve(build: AppBuilder, config: RayServeConfig, *,
          stop: threading.Event | None = None,
          on_ready: Callable[[], None] | None = None,
          keep: Callable[[], None] | None = None,
          let_go: Callable[[], None] | None = None) -> None:
    """Run ``config.replicas`` replicas of ``build()``'s app until SIGINT/SIGTERM (or ``stop``).

    Args:
        build: A module-level function returning the ASGI app (each replica calls it).
        config: Where and how many.
        stop: Set to stop serving (default: a fresh event, set by SIGINT or SIGTERM).
        on_ready: Called once every replica answers.
        keep: Called every 0.5 s in a thread of its own from the moment Serve runs (the
            replicas' start-up may wait for it): the version deployments'
            :meth:`~keelwork.adapters.engines.ray_versions.VersionKeeper.tick`.
        let_go: Called before Serve stops on a cluster given by ``address`` (a Ray started
            here goes whole): :meth:`~keelwork.adapters.engines.ray_versions.VersionKeeper.close`.

    Raises:
        MissingExtraError: Ray Serve is not installed.
        EngineError: the cluster cannot be reached, cannot hold the replicas, or the
            application did not start (a replica failed to build its app).
    """
    require_ray()
    ray = _module("ray")
    local = config.address is None
    _connect(ray, config)
    kept = threading.Event()
    keeping: threading.Thread | None = None
    try:
        per_replica = _replica_cpus(ray, config)
        stop = stop if stop is not None else _stop_on_signals()
        _start(config)
        if keep is not None:  # from now on: the replicas' start-up waits for it
            keeping = threading.Thread(target=_keep, args=(keep, kept), daemon=True,
                                       name="keel-keeper")
            keeping.start()
        _deploy(build, config, per_replica)
        if on_ready is not None:
            on_ready()
        while not stop.wait(0.5):
            pass
        log.info("stopping %d replicas of %s", config.replicas, config.name)
    finally:
        kept.set()
        if keeping is not None:
            keeping.join(timeout=GRACEFUL_SHUTDOWN_S)
        if let_go is not None and not local:  # a Ray started here goes whole
            let_go()
        _stop(ray, config.name, local=local)


def _keep(keep: Callable[[], None], kept: threading.Event) -> None:
    """Call ``keep`` every 0.5 s until ``kept`` is set."""
    while True:
        keep()
        if kept.wait(0.5):
            return


def _connect(ray: Any, config: RayServeConfig) -> None:
    """Start Ray here (bounded, on loopback, no dashboard) or join ``config.address``."""
    try:
        if config.address is None:
            ray.init(address="local", num_cpus=config.cpus or os.cpu_count() or 1,
                     include_dashboard=False, _node_ip_address="127.0.0.1",
                     configure_logging=False, log_to_driver=True,
                     _system_config={"worker_niceness": config.worker_niceness})
        else:
            ray.init(address=config.address, configure_logging=False, log_to_driver=True)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        where = config.address or "this machine"
        raise EngineError(f"The Ray cluster at {where} cannot be reached or started: "
                          f"{type(exc).__name__}: {exc}") from None


def _replica_cpus(ray: Any, config: RayServeConfig) -> float:
    """The CPUs each replica reserves: a whole one on a cluster (refused when the cluster has
    fewer than the replicas), a share of this machine's when Ray runs here."""
    total = float(ray.cluster_resources().get("CPU", 0.0))
    if config.address is None:
        return min(1.0, total / config.most) if total > 0 else 0.0
    if total < config.most:
        ray.shutdown()
        raise EngineError(f"The Ray cluster at {config.address} has {total:g} CPUs; "
                          f"{config.most} replicas need one each.")
    return 1.0


def _count(config: RayServeConfig) -> dict[str, Any]:
    """A fixed count of replicas, or Serve's autoscaler between ``replicas`` and
    ``max_replicas``."""
    return replica_count(config.replicas, config.max_replicas, config.target_ongoing_requests)


def replica_count(replicas: int, max_replicas: int | None,
                  target_ongoing_requests: float) -> dict[str, Any]:
    """A deployment's count: ``num_replicas``, or with ``max_replicas`` above ``replicas`` an
    ``autoscaling_config`` between them aiming at ``target_ongoing_requests`` per replica (the
    gateway's and the ingress's; with ``--version-deployments``, each version's too)."""
    if max_replicas is not None and max_replicas > replicas:
        return {"autoscaling_config": {"min_replicas": replicas,
                                       "initial_replicas": replicas,
                                       "max_replicas": max_replicas,
                                       "target_ongoing_requests": target_ongoing_requests}}
    return {"num_replicas": replicas}


def deployment_options(config: RayServeConfig, per_replica: float) -> dict[str, Any]:
    """What the gateway deployment is declared with: a fixed count of replicas, or Serve's
    autoscaler between ``replicas`` and ``max_replicas`` (the replicas' CPU reservation fits
    the most that may run)."""
    return {"name": config.name, **_count(config), "max_ongoing_requests": MAX_ONGOING_REQUESTS,
            "graceful_shutdown_timeout_s": GRACEFUL_SHUTDOWN_S, "logging_config": _RAY_LOGGING,
            "ray_actor_options": {"num_cpus": per_replica,
                                  "runtime_env": {"env_vars": dict(config.env)}}}


def ingress_options(config: RayServeConfig) -> dict[str, Any]:
    """The ingress: as many replicas as the gateway (scaled alike: one relaying Python process
    would cap a cluster's throughput), reserving no CPU (they only relay), each taking every
    request the proxy has (the gateway replicas' own limits and guards bound the work)."""
    return {"name": INGRESS, **_count(config), "max_ongoing_requests": INGRESS_MAX_ONGOING,
            "graceful_shutdown_timeout_s": GRACEFUL_SHUTDOWN_S, "logging_config": _RAY_LOGGING,
            "ray_actor_options": {"num_cpus": 0}}


def _stop_on_signals() -> threading.Event:
    """An event SIGINT and SIGTERM set (the main thread's handlers, replacing Ray's)."""
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def _start(config: RayServeConfig) -> None:
    """Start Serve's proxy on host:port."""
    ray_serve = _module("ray.serve")
    try:
        ray_serve.start(http_options={"host": config.host, "port": config.port},
                        logging_config=_RAY_LOGGING)
    except Exception as exc:  # Serve's own error classes
        raise EngineError(f"Ray Serve did not start on {config.host}:{config.port}: "
                          f"{type(exc).__name__}: {exc}") from None


def _deploy(build: AppBuilder, config: RayServeConfig, per_replica: float) -> None:
    """Run the application (the ingress in front of the gateway replicas) until every
    replica is up."""
    ray_serve = _module("ray.serve")
    try:
        gateway = ray_serve.deployment(_gateway_class(),
                                       **deployment_options(config, per_replica))
        ingress = ray_serve.deployment(_ingress_class(), **ingress_options(config))
        ray_serve.run(ingress.bind(gateway.bind(build), config.max_body_bytes,
                                   config.body_read_timeout_s),
                      name=config.name, route_prefix="/", blocking=False)
    except Exception as exc:  # Serve's own error classes, a replica's failure among them
        raise EngineError(f"Ray Serve did not start the application {config.name!r}: "
                          f"{type(exc).__name__}: {exc}") from None


def _gateway_class() -> type:
    """The gateway replica: builds the app and starts it (its lifespan) as the replica starts,
    answers :class:`RelayRequest` s through it, each answer tagged with
    :data:`REPLICA_HEADER`, and stops it (the prediction log flushed) as the replica stops."""
    ray_serve = _module("ray.serve")

    class KeelReplica:
        # Serve awaits an async constructor (Replica.initialize_callable): the app's start-up
        # runs on the replica's event loop, the one its requests run on.
        async def __init__(self, build: AppBuilder) -> None:  # type: ignore[misc]
            context = ray_serve.get_replica_context()
            tag = f"{context.replica_id.unique_id}@{socket.gethostname()}:{os.getpid()}"
            self._lifespan = Lifespan(TagReplica(build(), tag))
            await self._lifespan.startup()

        async def handle(self, request: RelayRequest) -> RelayResponse:
            return await call_app(self._lifespan.app, request, self._lifespan.state)

        async def __del__(self) -> None:  # Serve awaits it as the replica stops
            await self._lifespan.shutdown()

    return KeelReplica


def _ingress_class() -> type:
    """The ingress Serve's proxy hands every HTTP request to: reads its body under keel.yaml's
    body guards (it buffers the body, so the app's own guard would come too late), relays it
    to a gateway replica and, when that replica dies under it, sends it again or answers 503
    (:func:`relay`)."""
    exceptions = _module("ray.exceptions")
    from starlette.requests import ClientDisconnect
    from starlette.responses import Response

    class KeelIngress:
        def __init__(self, gateway: Any, max_body_bytes: int,
                     body_read_timeout_s: float) -> None:
            self._gateway = gateway
            self._max_bytes = max_body_bytes
            self._timeout_s = body_read_timeout_s

        async def __call__(self, http: Any) -> Any:
            scope = http.scope
            headers = list(scope["headers"])
            try:
                body = await read_body(http.stream(), headers, max_bytes=self._max_bytes,
                                       timeout_s=self._timeout_s)
            except ClientDisconnect:  # gone mid-body: nothing reaches a replica, no one to
                # answer (499, nginx's "client closed request", for the access log)
                return Response(status_code=CLIENT_CLOSED)
            if isinstance(body, RelayResponse):
                answer = body
            else:
                request = RelayRequest(
                    method=scope["method"], path=scope["path"],
                    query=scope.get("query_string", b""), headers=headers, body=body,
                    client=_address(scope.get("client")),
                    server=_address(scope.get("server")), scheme=scope.get("scheme", "http"),
                    root_path=scope.get("root_path", ""))
                answer = await relay(lambda: self._gateway.handle.remote(request), request,
                                     lost=(exceptions.RayActorError,))
            response = Response(answer.body, status_code=answer.status)
            response.raw_headers = list(answer.headers)
            return response

    return KeelIngress


def _address(pair: Any) -> tuple[str, int] | None:
    """An ASGI ``client``/``server`` as a plain tuple (Serve may hand lists)."""
    return None if pair is None else (str(pair[0]), int(pair[1]))


class TagReplica:
    """Pure ASGI: adds :data:`REPLICA_HEADER` to every HTTP answer of ``app``; passes the rest
    (lifespan included) through, so the app's start-up and shutdown run as they would alone."""

    def __init__(self, app: Any, tag: str) -> None:
        self.app = app
        self._header = (REPLICA_HEADER.encode(), tag.encode())

    def __getattr__(self, name: str) -> Any:  # Serve asks its ingress for docs_url and such
        if name == "app":  # not set yet (a copy in the making): no endless recursion
            raise AttributeError(name)
        return getattr(self.app, name)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def tagged(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message,
                           "headers": [*message.get("headers", ()), self._header]}
            await send(message)

        await self.app(scope, receive, tagged)


def _stop(ray: Any, name: str, *, local: bool) -> None:
    """Stop the replicas (each finishes its requests and flushes its log), then Ray: the whole
    of a Ray started here; only this application on someone's cluster."""
    ray_serve = _module("ray.serve")
    try:
        if local:
            ray_serve.shutdown()
        else:
            ray_serve.delete(name)
    except Exception:  # stopping anyway; Ray's own message is already logged
        log.exception("Ray Serve did not stop cleanly")
    finally:
        ray.shutdown()


__all__ = ["GRACEFUL_SHUTDOWN_S", "MAX_ONGOING_REQUESTS", "REPLICA_HEADER", "RayServeConfig",
           "TagReplica", "deployment_options", "ingress_options", "replica_count",
           "require_ray", "serve"]

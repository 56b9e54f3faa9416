"""The Ray Serve adapter's parts that need no Ray: the replica tag on every HTTP answer (the
lifespan passed through untouched), the install hint, and what it asks of Ray (a stand-in
records it) before serving: a bounded local Ray, a cluster that cannot be reached or hold the
replicas refused with its reason."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from keelwork.adapters.engines.ray_serve import (
    REPLICA_HEADER,
    RayServeConfig,
    TagReplica,
    _connect,
    _replica_cpus,
    require_ray,
)
from keelwork.errors import EngineError, MissingExtraError


class _App:
    """An ASGI app recording the scopes it gets and answering HTTP with one header."""

    docs_url = "/docs"

    def __init__(self) -> None:
        self.scopes: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scopes.append(scope["type"])
        if scope["type"] == "lifespan":
            await send({"type": "lifespan.startup.complete"})
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})


def _run(app: Any, scope_type: str) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app({"type": scope_type}, receive, send))
    return sent


def test_every_http_answer_names_its_replica() -> None:
    inner = _App()
    tagged = TagReplica(inner, "r1@host:42")
    start, body = _run(tagged, "http")
    assert start["headers"] == [(b"content-type", b"text/plain"),
                                (REPLICA_HEADER.encode(), b"r1@host:42")]
    assert body == {"type": "http.response.body", "body": b"ok"}
    # The lifespan reaches the app as it is: its start-up runs in the replica.
    assert _run(tagged, "lifespan") == [{"type": "lifespan.startup.complete"}]
    assert inner.scopes == ["http", "lifespan"]
    assert tagged.docs_url == "/docs"  # what Serve asks its ingress for reaches the app


def test_without_ray_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray.serve", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'keelwork\[ray\]'") as caught:
        require_ray()
    assert caught.value.extra == "ray"


class _FakeRay:
    """What the adapter asks of the ``ray`` module, recorded."""

    def __init__(self, cpus: float, init_error: Exception | None = None) -> None:
        self.cpus = cpus
        self.init_error = init_error
        self.inits: list[dict[str, Any]] = []
        self.shutdowns = 0

    def init(self, **kwargs: Any) -> None:
        self.inits.append(kwargs)
        if self.init_error is not None:
            raise self.init_error

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": self.cpus}

    def shutdown(self) -> None:
        self.shutdowns += 1


def test_a_ray_started_here_is_bounded_and_on_loopback() -> None:
    ray = _FakeRay(2.0)
    config = RayServeConfig(name="s", replicas=4, host="127.0.0.1", port=8000, cpus=2)
    _connect(ray, config)
    assert ray.inits == [{"address": "local", "num_cpus": 2, "include_dashboard": False,
                          "_node_ip_address": "127.0.0.1", "configure_logging": False,
                          "log_to_driver": True,
                          "_system_config": {"worker_niceness": 0}}]
    assert _replica_cpus(ray, config) == 0.5  # four replicas share the two CPUs


def test_a_cluster_that_cannot_be_reached_or_hold_the_replicas() -> None:
    config = RayServeConfig(name="s", replicas=3, host="0.0.0.0", port=8000,
                            address="ray://head:10001")
    with pytest.raises(EngineError, match=r"ray://head:10001 cannot be reached.*refused"):
        _connect(_FakeRay(8.0, ConnectionError("refused")), config)
    small = _FakeRay(2.0)
    with pytest.raises(EngineError, match="has 2 CPUs; 3 replicas need one each"):
        _replica_cpus(small, config)
    assert small.shutdowns == 1  # disconnected before the error reaches the command
    assert _replica_cpus(_FakeRay(3.0), config) == 1.0


def test_a_fixed_count_or_the_autoscaler_from_keel_yaml() -> None:
    """``server.replicas.min`` alone: that many replicas; with ``server.replicas.max`` above
    it, Serve's autoscaler between them, aiming at
    ``server.replicas.target_ongoing_requests``; CPUs reserved for the most that may run."""
    from keelwork.adapters.engines.ray_serve import deployment_options

    fixed = deployment_options(RayServeConfig(name="s", replicas=2, host="h", port=1), 0.5)
    assert fixed["num_replicas"] == 2 and "autoscaling_config" not in fixed
    auto = RayServeConfig(name="s", replicas=1, host="h", port=1, max_replicas=4,
                          target_ongoing_requests=3.0, cpus=2)
    options = deployment_options(auto, 0.25)
    assert "num_replicas" not in options
    assert options["autoscaling_config"] == {"min_replicas": 1, "initial_replicas": 1,
                                             "max_replicas": 4, "target_ongoing_requests": 3.0}
    assert options["ray_actor_options"]["num_cpus"] == 0.25
    assert _replica_cpus(_FakeRay(2.0), auto) == 0.5  # four may run on the two CPUs
    same = RayServeConfig(name="s", replicas=3, host="h", port=1, max_replicas=3)
    assert deployment_options(same, 1.0)["num_replicas"] == 3


def test_the_ingress_relays_only() -> None:
    """Serve's proxy hands every request to the ingress replicas, as many as the gateway's
    and scaled alike, reserving no CPU and taking all the proxy has; the gateway replicas'
    limits bound the work."""
    from keelwork.adapters.engines.ray_serve import (
        INGRESS_MAX_ONGOING,
        deployment_options,
        ingress_options,
    )

    fixed = RayServeConfig(name="s", replicas=2, host="h", port=1)
    options = ingress_options(fixed)
    assert options["name"] == "ingress" and options["num_replicas"] == 2
    assert options["ray_actor_options"] == {"num_cpus": 0}
    assert options["max_ongoing_requests"] == INGRESS_MAX_ONGOING
    auto = RayServeConfig(name="s", replicas=1, host="h", port=1, max_replicas=4)
    assert ingress_options(auto)["autoscaling_config"] == \
        deployment_options(auto, 0.5)["autoscaling_config"]


class _Handle:
    """A Serve handle to the gateway: ``handle.remote(request)`` answers or raises."""

    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome
        self.requests: list[Any] = []
        self.handle = self

    def remote(self, request: Any) -> Any:
        self.requests.append(request)

        async def answer() -> Any:
            if isinstance(self.outcome, BaseException):
                raise self.outcome
            return self.outcome

        return answer()


def _http(body: bytes, headers: list[tuple[bytes, bytes]]) -> Any:
    from starlette.requests import Request

    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request({"type": "http", "method": "POST", "path": "/v1/models/m:predict",
                    "query_string": b"q=1", "headers": headers, "client": ["10.0.0.1", 5],
                    "server": ("127.0.0.1", 8000), "scheme": "http", "root_path": ""},
                   receive)


def test_the_ingress_relays_a_request_and_answers_a_lost_replica() -> None:
    """The ingress Serve runs (a plain class until Serve's decorator is applied): the request
    reaches the gateway whole, the gateway's answer comes back with every header; a replica
    that died under a prediction is a 503 with Retry-After; a body past the limit never
    reaches a replica."""
    pytest.importorskip("ray.serve", reason="ray[serve] is not installed")
    from ray.exceptions import ActorDiedError

    from keelwork.adapters.engines.ray_serve import _ingress_class
    from keelwork.adapters.engines.replica_relay import RelayResponse

    ingress_class = _ingress_class()
    json = [(b"content-type", b"application/json")]
    answer = RelayResponse(200, [(b"set-cookie", b"a"), (b"set-cookie", b"b")], b"{}")
    gateway = _Handle(answer)
    response = asyncio.run(ingress_class(gateway, 100, 5.0)(_http(b'{"x": 1}', json)))
    (request,) = gateway.requests
    assert (request.method, request.path, request.query, request.body) == \
        ("POST", "/v1/models/m:predict", b"q=1", b'{"x": 1}')
    assert request.client == ("10.0.0.1", 5) and request.headers == json
    assert response.status_code == 200 and response.body == b"{}"
    assert response.raw_headers == answer.headers  # both cookies, nothing added

    lost = asyncio.run(ingress_class(_Handle(ActorDiedError()), 100, 5.0)(_http(b"{}", json)))
    assert lost.status_code == 503 and lost.headers["retry-after"] == "1"

    far = _Handle(answer)
    big = asyncio.run(ingress_class(far, 4, 5.0)(_http(b'{"x": 1}', json)))
    assert big.status_code == 413 and far.requests == []


def test_a_client_gone_mid_body_reaches_no_replica_and_raises_nothing() -> None:
    """A client that leaves while the ingress reads its body (Starlette's ClientDisconnect)
    used to escape the ingress: Serve logged a traceback. Nobody is left to answer: the
    ingress ends the request quietly, and no replica sees it."""
    pytest.importorskip("ray.serve", reason="ray[serve] is not installed")
    from starlette.requests import Request

    from keelwork.adapters.engines.ray_serve import CLIENT_CLOSED, _ingress_class
    from keelwork.adapters.engines.replica_relay import RelayResponse

    messages = iter([{"type": "http.request", "body": b'{"instances": [', "more_body": True},
                     {"type": "http.disconnect"}])

    async def receive() -> dict[str, object]:
        return next(messages)

    http = Request({"type": "http", "method": "POST", "path": "/v1/models/m:predict",
                    "query_string": b"", "headers": [], "client": ["10.0.0.1", 5],
                    "server": ("127.0.0.1", 8000), "scheme": "http", "root_path": ""}, receive)
    gateway = _Handle(RelayResponse(200, [], b"{}"))
    gone = asyncio.run(_ingress_class()(gateway, 100, 5.0)(http))
    assert gone.status_code == CLIENT_CLOSED and gateway.requests == []

"""The hop between `keel serve --engine ray`'s ingress and its gateway replicas, without Ray:
the body read under keel.yaml's body guards (413, 408 as the app answers them);
a replica that dies under a read is retried, under a prediction answered 503 with Retry-After
in keelwork's error format (the same body the HTTP layer writes); one request runs through the
whole keelwork app in process, the app's lifespan runs as the replica starts and stops."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from keelwork.adapters.engines.replica_relay import (
    RETRIES,
    Lifespan,
    RelayRequest,
    RelayResponse,
    call_app,
    error_response,
    read_body,
    relay,
)
from keelwork.spec import load_spec
from live_server import ADDER_SPEC, FIXTURES


class _Died(Exception):
    """Stands in for Ray's RayActorError (the replica died under the request)."""


class _Replicas:
    """A handle's calls: the first ``deaths`` die, then one answers 200."""

    def __init__(self, deaths: int, other: Exception | None = None) -> None:
        self.deaths = deaths
        self.other = other
        self.calls = 0

    async def call(self) -> RelayResponse:
        self.calls += 1
        if self.other is not None:
            raise self.other
        if self.calls <= self.deaths:
            raise _Died("The actor died unexpectedly before finishing this task.")
        return RelayResponse(200, [], b"ok")


def _relay(method: str, replicas: _Replicas) -> RelayResponse:
    request = RelayRequest(method=method, path="/v1/models/adder:predict")
    return asyncio.run(relay(replicas.call, request, lost=(_Died,)))


def test_a_read_is_sent_again_to_a_live_replica() -> None:
    for method in ("GET", "HEAD", "OPTIONS"):
        replicas = _Replicas(deaths=RETRIES)
        assert _relay(method, replicas).status == 200
        assert replicas.calls == RETRIES + 1


def test_a_read_lost_every_time_is_a_503_that_says_so() -> None:
    replicas = _Replicas(deaths=RETRIES + 1)
    answer = _relay("GET", replicas)
    assert answer.status == 503 and replicas.calls == RETRIES + 1
    assert b"sent again and lost again" in answer.body


def test_a_prediction_lost_with_its_replica_is_a_503_never_resent() -> None:
    """A POST may have taken effect (its prediction logged) before the replica died: sent
    again it could be logged twice, so the client is told to retry, in keelwork's format."""
    replicas = _Replicas(deaths=1)
    answer = _relay("POST", replicas)
    assert replicas.calls == 1 and answer.status == 503
    headers = dict(answer.headers)
    assert headers[b"retry-after"] == b"1"
    assert headers[b"content-type"] == b"application/json"
    assert int(headers[b"content-length"]) == len(answer.body)
    body = orjson.loads(answer.body)
    assert body["details"] == [{"path": "", "rule": "replica_lost",
                                "got": "POST /v1/models/adder:predict"}]
    assert "stopped before it answered (_Died)" in body["error"]
    assert "Retry after 1 s" in body["error"]


def test_the_503_is_the_format_the_http_layer_writes() -> None:
    from keelwork.errors import ErrorDetail
    from keelwork.interfaces.http.errors import error_response as http_error

    ours = error_response(503, "m", "replica_lost", "GET /x")
    theirs = http_error(503, "m", [ErrorDetail("", "replica_lost", "GET /x")])
    assert orjson.loads(ours.body) == orjson.loads(theirs.body)


def test_a_hop_that_fails_otherwise_is_a_500_in_keelworks_format() -> None:
    replicas = _Replicas(deaths=0, other=RuntimeError("serialization failed"))
    answer = _relay("GET", replicas)
    assert replicas.calls == 1 and answer.status == 500  # not a death: never retried
    body = orjson.loads(answer.body)
    assert body["error"] == "The request did not reach a replica: RuntimeError: " \
        "serialization failed"
    assert body["details"][0]["rule"] == "relay_failed"


async def _echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app answering with what it got, in two body chunks."""
    got = await receive()
    await send({"type": "http.response.start", "status": 201,
                "headers": [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]})
    await send({"type": "http.response.body", "body": scope["method"].encode() + b" ",
                "more_body": True})
    await send({"type": "http.response.body",
                "body": scope["path"].encode() + b"?" + scope["query_string"] + b" "
                + got["body"] + b" " + str(scope["state"]).encode()})


def test_one_request_through_an_app_in_process() -> None:
    request = RelayRequest(method="PUT", path="/a", query=b"x=1", body=b"hello",
                           client=("127.0.0.1", 5))
    answer = asyncio.run(call_app(_echo, request, {"k": 1}))
    assert answer.status == 201
    assert answer.headers == [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]  # both kept
    assert answer.body == b"PUT /a?x=1 hello {'k': 1}"


def test_an_app_that_raises_before_answering_is_a_500() -> None:
    async def broken(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise ValueError("boom")

    answer = asyncio.run(call_app(broken, RelayRequest(method="GET", path="/")))
    assert answer.status == 500
    assert orjson.loads(answer.body)["details"][0]["rule"] == "internal"


def test_the_keelwork_app_starts_answers_and_stops(tmp_path: Path) -> None:
    """The whole app, as a gateway replica runs it: its start-up (models loaded, log writer
    started) before the first request, a prediction and a contract violation answered as one
    process answers them, its shutdown once however often it is asked for."""
    from keelwork.interfaces.http.server import build_server_app
    from keelwork.spec.settings import load_settings

    (tmp_path / "keel.yaml").write_text(ADDER_SPEC.format(fx=FIXTURES))
    app = build_server_app(load_spec(tmp_path / "keel.yaml"), settings=load_settings())

    def post(body: bytes) -> RelayRequest:
        return RelayRequest(method="POST", path="/v1/models/adder:predict", body=body,
                            headers=[(b"content-type", b"application/json")])

    async def run() -> tuple[RelayResponse, RelayResponse]:
        lifespan = Lifespan(app)
        await lifespan.startup()
        try:
            good = await call_app(app, post(b'{"instances": [{"a": 1, "b": 2}]}'),
                                  lifespan.state)
            bad = await call_app(app, post(b'{"instances": [{"a": -3, "b": 2}]}'),
                                 lifespan.state)
        finally:
            await lifespan.shutdown()
            await lifespan.shutdown()  # Serve may ask again: nothing happens
        return good, bad

    good, bad = asyncio.run(run())
    assert good.status == 200 and orjson.loads(good.body)["predictions"] == [3.0]
    assert bad.status == 422
    assert orjson.loads(bad.body)["details"][0]["path"] == "instances[0].a"


def test_an_app_that_fails_to_start_says_why() -> None:
    async def refuses(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no store"})

    async def crashes(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        raise OSError("disk gone")

    with pytest.raises(RuntimeError, match="The app did not start: no store"):
        asyncio.run(Lifespan(refuses).startup())
    with pytest.raises(RuntimeError, match="disk gone"):
        asyncio.run(Lifespan(crashes).startup())


async def _chunks(*parts: bytes, pause: float = 0.0) -> AsyncIterator[bytes]:
    for part in parts:
        if pause:
            await asyncio.sleep(pause)
        yield part


def _read(chunks: AsyncIterator[bytes], headers: list[tuple[bytes, bytes]] | None = None,
          timeout_s: float = 5.0) -> bytes | RelayResponse:
    return asyncio.run(read_body(chunks, headers or [], max_bytes=10, timeout_s=timeout_s))


def test_the_ingress_reads_a_body_under_keel_yamls_guards() -> None:
    """It buffers the body before any replica sees it, so it refuses as the app would: the
    same status, message, details and Connection: close as keelwork.interfaces.http.limits."""
    from keelwork.interfaces.http.errors import error_response as http_error
    from keelwork.interfaces.http.limits import too_large as app_too_large
    from keelwork.interfaces.http.limits import too_slow

    def same(ours: bytes | RelayResponse, theirs: Any) -> None:
        assert isinstance(ours, RelayResponse) and ours.status == theirs.status
        assert orjson.loads(ours.body) == orjson.loads(
            http_error(theirs.status, theirs.message, theirs.details).body)
        assert (b"connection", b"close") in ours.headers

    assert _read(_chunks(b"01234", b"56789")) == b"0123456789"  # at the limit: whole
    same(_read(_chunks(b"0123456", b"789ab")), app_too_large(10, ">10"))  # chunked, past it
    never_read = _chunks(b"x")
    same(_read(never_read, [(b"content-length", b"11")]), app_too_large(10, 11))
    same(_read(_chunks(b"01", b"23", pause=0.2), timeout_s=0.3), too_slow(0.3, 2))


def test_what_ray_raises_for_a_lost_replica_is_what_the_ingress_catches() -> None:
    """The ingress catches ``RayActorError``: Ray 2.60 raises its subclasses for a call whose
    replica died (``ActorDiedError``) or cannot be reached (``ActorUnavailableError``)."""
    exceptions = pytest.importorskip("ray.exceptions", reason="ray[serve] is not installed")
    assert issubclass(exceptions.ActorDiedError, exceptions.RayActorError)
    assert issubclass(exceptions.ActorUnavailableError, exceptions.RayActorError)
    died = exceptions.ActorDiedError()
    replicas = _Replicas(deaths=0, other=died)
    request = RelayRequest(method="POST", path="/v1/models/adder:predict")
    answer = asyncio.run(relay(replicas.call, request, lost=(exceptions.RayActorError,)))
    assert answer.status == 503 and b"(ActorDiedError)" in answer.body

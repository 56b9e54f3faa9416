"""The RSGI app of ``keel serve --engine granian``, driven as granian drives it: the V1 predict
route answered from a batch, a bad request refused alone with keelwork's error body, ``/``
alive, anything else 404 pointing to the admin port."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from keelwork.core.auth import Principal
from keelwork.errors import ErrorDetail, InvalidInputError
from keelwork.interfaces.http.rsgi_app import RsgiApp
from keelwork.service.batch_predict import BatchPredictor, BatchQueue, InFlight
from keelwork.service.gateway.gateway import Gateway
from keelwork.service.gateway.host import ModelTarget
from keelwork.spec.loader import parse_spec

SPEC = """\
service: {name: t, owners: [t@example.com]}
models:
  - {name: m, runtime: python, artifact: "x:y", batching: {enabled: false}}
contract:
  inputs:
    - {name: a, type: float, min: 0}
"""


class Signature:
    classes = None  # a regressor: no class probabilities
    inputs: tuple[Any, ...] = ()
    outputs: tuple[Any, ...] = ()


class Runtime:
    kind = "fake"
    signature = Signature()

    def predict(self, instances: Sequence[Any]) -> list[Any]:
        return [r["a"] * 2 for r in instances]

    def unload(self) -> None:
        return None


class Sink:
    async def write(self, records: Sequence[Any]) -> None:
        return None


@dataclass
class Scope:
    path: str
    method: str = "POST"
    proto: str = "http"
    headers: dict[str, str] = field(default_factory=dict)


class Keys:
    """An API-key store holding one key per scope set."""

    def cached(self, key: str) -> Principal | None:
        return {"kp": Principal("k1", "client", frozenset({"predict"})),
                "kr": Principal("k2", "reader", frozenset({"read"}))}.get(key)

    def verify(self, key: str) -> Principal | None:
        return None


@dataclass
class Proto:
    body: bytes = b""
    sent: list[tuple[int, bytes]] = field(default_factory=list)
    #: Seconds before each chunk arrives (a slow client); chunks of 16 bytes.
    delay_s: float = 0.0
    read: int = 0

    #: Whole-body reads (``await proto()``), as against chunks (``async for``).
    calls: int = 0
    #: The headers of each answer sent.
    answer_headers: list[list[tuple[str, str]]] = field(default_factory=list)

    async def __call__(self) -> bytes:
        self.calls += 1
        if self.delay_s:  # as slow as its chunks would be
            await asyncio.sleep(self.delay_s * -(-len(self.body) // 16))
        return self.body

    def __aiter__(self) -> Any:
        return self._chunks()

    async def _chunks(self) -> Any:
        for start in range(0, len(self.body), 16):
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            self.read += 16
            yield self.body[start:start + 16]

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        assert ("content-type", "application/json") in headers
        self.sent.append((status, body))
        self.answer_headers.append(headers)


def _app(runtime: type[Runtime] = Runtime) -> RsgiApp:
    gateway = Gateway(parse_spec(SPEC, env={}), lambda n, _r: ModelTarget(n, 1, "python", "x:y"),
                      lambda _t: runtime(), Sink())
    app = RsgiApp()
    app.queues = {"m": BatchQueue(BatchPredictor(gateway, "m"), 8)}
    app.contract_fields = ["a"]
    return app


def _call(app: RsgiApp, path: str, body: bytes = b"", method: str = "POST",
          headers: dict[str, str] | None = None) -> tuple[int, Any]:
    proto = Proto(body)
    asyncio.run(app.__rsgi__(Scope(path, method, headers=headers or {}), proto))
    ((status, raw),) = proto.sent
    return status, orjson.loads(raw)


def test_predict_refusals_and_other_routes() -> None:
    app = _app()
    status, out = _call(app, "/v1/models/m:predict", b'{"instances": [{"a": 2}, {"a": 3}]}')
    assert status == 200 and out["predictions"] == [4, 6] and len(out["prediction_ids"]) == 2
    status, out = _call(app, "/v1/models/m:predict", b'{"instances": [{"a": 2}, {"a": -1}]}')
    assert status == 422 and [d["path"] for d in out["details"]] == ["instances[1].a"]
    status, out = _call(app, "/v1/models/m:predict", b'{"instances": [')
    assert status == 400 and out["details"][0]["rule"] == "json"
    status, out = _call(app, "/v1/models/m:predict",
                        b'{"instances": [{"a": 1}], "parameters": {"probabilities": true}}')
    assert status == 400 and out["details"][0]["path"] == "parameters.probabilities"
    app.max_body_bytes = 40
    status, out = _call(app, "/v1/models/m:predict", b'{"instances": [' + b'{"a": 1},' * 9 + b']}')
    assert status == 413
    status, out = _call(app, "/", method="GET")
    assert status == 200
    for path in ("/v1/models/other:predict", "/metrics"):
        status, out = _call(app, path, method="GET" if path == "/metrics" else "POST")
        assert status == 404 and "admin port" in out["error"], out


def test_api_keys_are_checked_on_predict_when_keel_yaml_asks() -> None:
    app = _app()
    app.keys = Keys()  # type: ignore[assignment]
    one = b'{"instances": [{"a": 2}]}'
    status, out = _call(app, "/v1/models/m:predict", one)
    assert status == 401 and out["details"][0]["rule"] == "api_key_required"
    status, out = _call(app, "/v1/models/m:predict", one, headers={"x-api-key": "nope"})
    assert status == 401 and out["details"][0]["rule"] == "api_key_valid"
    status, out = _call(app, "/v1/models/m:predict", one, headers={"x-api-key": "kr"})
    assert status == 403 and out["details"][0]["rule"] == "scope"
    status, out = _call(app, "/v1/models/m:predict", one,
                        headers={"authorization": "Bearer kp"})
    assert status == 200 and out["predictions"] == [4]


def test_bodies_are_read_within_the_size_and_time_guards() -> None:
    """The fast port reads a body chunk by chunk: past guards.max_body_bytes it stops reading
    and answers 413 (by Content-Length before reading anything), and a body trickled past
    guards.body_read_timeout_s is answered 408, as the default engine answers them."""
    app = _app()
    app.max_body_bytes = 40
    big = b'{"instances": [' + b'{"a": 1},' * 20 + b']}'
    proto = Proto(big)
    asyncio.run(app.__rsgi__(Scope("/v1/models/m:predict"), proto))
    ((status, raw),) = proto.sent
    assert status == 413 and orjson.loads(raw)["details"][0]["rule"] == "max_bytes"
    assert proto.read <= 48  # stopped at the limit, the rest never read
    proto = Proto(big)
    asyncio.run(app.__rsgi__(Scope("/v1/models/m:predict",
                                   headers={"content-length": str(len(big))}), proto))
    assert proto.sent[0][0] == 413 and proto.read == 0
    app.max_body_bytes = 1_000
    app.body_read_timeout_s = 0.1
    proto = Proto(b'{"instances": [{"a": 2}]}', delay_s=0.06)
    asyncio.run(app.__rsgi__(Scope("/v1/models/m:predict"), proto))
    ((status, raw),) = proto.sent
    assert status == 408 and orjson.loads(raw)["details"][0]["rule"] == "read_timeout"
    proto = Proto(b'{"instances": [{"a": 2}]}', delay_s=0.01)  # slow, but in time
    asyncio.run(app.__rsgi__(Scope("/v1/models/m:predict"), proto))
    assert proto.sent[0][0] == 200


def test_a_body_of_declared_length_is_read_in_one_piece_within_the_time_guard() -> None:
    """A Content-Length within guards.max_body_bytes: the front reads exactly that many bytes,
    so the app takes the body in one read (one wake-up, not one per chunk and one more for
    the end); it is still cut at guards.body_read_timeout_s (408, saying it had not arrived
    whole), and a body without a length, or with Transfer-Encoding beside its length, is
    still read chunk by chunk and cut at the limit."""
    app = _app()
    app.max_body_bytes = 1_000
    app.body_read_timeout_s = 0.1
    body = b'{"instances": [{"a": 2}, {"a": 3}]}'
    declared = {"content-length": str(len(body))}
    proto = Proto(body)
    asyncio.run(app.__rsgi__(Scope("/v1/models/m:predict", headers=declared), proto))
    ((status, raw),) = proto.sent
    assert status == 200 and orjson.loads(raw)["predictions"] == [4, 6]
    assert proto.calls == 1 and proto.read == 0
    proto = Proto(body, delay_s=0.06)  # 3 chunks' time: past the deadline
    asyncio.run(app.__rsgi__(Scope("/v1/models/m:predict", headers=declared), proto))
    ((status, raw),) = proto.sent
    answer = orjson.loads(raw)
    assert status == 408 and answer["details"][0]["rule"] == "read_timeout"
    assert "had not arrived whole" in answer["error"]
    proto = Proto(body)  # no length (chunked): chunk by chunk
    asyncio.run(app.__rsgi__(Scope("/v1/models/m:predict"), proto))
    assert proto.sent[0][0] == 200 and proto.calls == 0 and proto.read == 48
    # a length beside Transfer-Encoding does not frame the body: chunk by chunk, bounded
    app.max_body_bytes = 40
    smuggled = Proto(b'{"instances": [' + b'{"a": 1},' * 20 + b']}')
    asyncio.run(app.__rsgi__(Scope("/v1/models/m:predict", headers={
        "content-length": "20", "transfer-encoding": "chunked"}), smuggled))
    assert smuggled.sent[0][0] == 413 and smuggled.calls == 0 and smuggled.read <= 48


def test_open_inference_protocol_on_the_fast_port() -> None:
    """V2 infer answered from a batch as the default engine answers it (a contract problem
    named by tensor path), and the V2 health and model routes the official clients call."""
    app = _app()
    body = orjson.dumps({"id": "r1", "inputs": [
        {"name": "a", "shape": [2], "datatype": "FP64", "data": [2.0, 3.0]}]})
    status, out = _call(app, "/v2/models/m/infer", body)
    assert status == 200, out
    assert out["id"] == "r1" and out["model_name"] == "m" and out["model_version"] == "1"
    assert out["outputs"][0]["data"] == [4.0, 6.0]
    assert len(out["parameters"]["prediction_ids"].split(",")) == 2
    bad = orjson.dumps({"inputs": [
        {"name": "a", "shape": [2], "datatype": "FP64", "data": [2.0, -1.0]}]})
    status, out = _call(app, "/v2/models/m/infer", bad)
    assert status == 422 and out["details"][0]["path"] == "inputs[0].data[1]", out
    status, out = _call(app, "/v2/models/m/infer", orjson.dumps({"inputs": [
        {"name": "a", "shape": [1], "datatype": "FP64", "data": [1.0]}],
        "outputs": [{"name": "nope"}]}))
    assert status == 400, out
    assert _call(app, "/v2/health/live", method="GET") == (200, {"live": True})
    assert _call(app, "/v2/health/ready", method="GET") == (200, {"ready": True})
    assert _call(app, "/v2/models/m/ready", method="GET") == (200, {"name": "m", "ready": True})
    status, meta = _call(app, "/v2/models/m", method="GET")
    assert status == 200 and meta["name"] == "m" and meta["versions"] == ["1"]
    assert [t["name"] for t in meta["inputs"]] == ["a"]
    status, out = _call(app, "/v2/models/other/ready", method="GET")
    assert status == 404 and "admin port" in out["error"]


def test_a_body_not_declared_json_is_refused_as_on_the_default_engine() -> None:
    """the fast port answered a text/plain or form-encoded body 200 where the
    default engine answers 415, and an empty body with another message."""
    app = _app()
    v2 = orjson.dumps({"inputs": [{"name": "a", "shape": [1], "datatype": "FP64",
                                   "data": [1.0]}]})
    for path, body in (("/v1/models/m:predict", b'{"instances": [{"a": 1}]}'),
                       ("/v2/models/m/infer", v2)):
        for ct in ("text/plain", "application/x-www-form-urlencoded; charset=utf-8"):
            status, out = _call(app, path, body, headers={"content-type": ct})
            assert status == 415, out
            assert out["details"][0]["path"] == "content-type"
            assert out["error"].startswith("The body must be JSON")
        for ct in ("application/json", "application/json; charset=utf-8",
                   "application/vnd.api+json"):
            assert _call(app, path, body, headers={"content-type": ct})[0] == 200
        status, out = _call(app, path, b"", headers={"content-type": "application/json"})
        assert status == 400
        assert out["error"] == "The request body is empty; send a JSON object."


class Refusing(Runtime):
    def predict(self, instances: Sequence[Any]) -> list[Any]:
        for i, r in enumerate(instances):
            if r["a"] == 13:
                raise InvalidInputError(f"'instances[{i}].a' is unlucky.",
                                        [ErrorDetail(f"instances[{i}].a", "unlucky", 13)])
        return super().predict(instances)


def test_the_runtime_s_refusal_of_a_v2_request_is_named_by_tensor_path() -> None:
    """a problem the runtime found was named by V1 path (``instances[0]``)."""
    status, out = _call(_app(Refusing), "/v2/models/m/infer", orjson.dumps({"inputs": [
        {"name": "a", "shape": [2], "datatype": "FP64", "data": [13.0, 1.0]}]}))
    assert status == 422, out
    assert [d["path"] for d in out["details"]] == ["inputs[0].data[0]"]
    assert "instances" not in orjson.dumps(out).decode()


def test_a_request_answered_without_its_body_has_it_read_so_its_connection_lives() -> None:
    """granian drops a kept-alive connection whose request body was left unread when the
    answer went out, without a word in the answer: the client's next request on it is reset.
    So a 404, 405 or 401 reads the body first (bounded as any body) and keeps the
    connection; a body past the guards stays unread and its answer says it closes."""
    app = _app()
    app.keys = Keys()  # type: ignore[assignment]
    app.max_body_bytes = 100
    body = b'{"instances": [{"a": 2}]}'
    declared = {"content-length": str(len(body))}
    cases = [("/v1/models/other:predict", "POST", declared, 404),
             ("/v1/models/m:predict", "PUT", declared, 405),
             ("/v1/models/m:predict", "POST", declared, 401),
             ("/v1/models/m:predict", "POST", {"transfer-encoding": "chunked"}, 401),
             ("/v2/models/m/infer", "POST", {**declared, "x-api-key": "kr"}, 403),
             ("/metrics", "POST", declared, 404)]
    for path, method, headers, expected in cases:
        proto = Proto(body)
        asyncio.run(app.__rsgi__(Scope(path, method, headers=headers), proto))
        assert proto.sent[0][0] == expected, (path, method, proto.sent)
        assert proto.calls + proto.read > 0, f"{method} {path}: the body was left unread"
        assert ("connection", "close") not in proto.answer_headers[0]
    # a GET without a body: nothing to read, and nothing waited for
    proto = Proto(b"")
    asyncio.run(app.__rsgi__(Scope("/nothing", "GET"), proto))
    assert proto.sent[0][0] == 404 and proto.calls == proto.read == 0
    # past the guards: unread, and the answer closes the connection
    big = b"x" * 500
    for path, expected in (("/v1/models/other:predict", 404), ("/v1/models/m:predict", 401)):
        proto = Proto(big)
        asyncio.run(app.__rsgi__(Scope(path, headers={"content-length": "500"}), proto))
        assert proto.sent[0][0] == expected and proto.calls == proto.read == 0
        assert ("connection", "close") in proto.answer_headers[0]
    proto = Proto(big)  # a key that passes, a body over the limit: 413, and it closes
    asyncio.run(app.__rsgi__(Scope("/v1/models/m:predict", headers={
        "content-length": "500", "x-api-key": "kp"}), proto))
    assert proto.sent[0][0] == 413 and ("connection", "close") in proto.answer_headers[0]
    app.body_read_timeout_s = 0.05  # too slow to arrive: 404 still, and it closes
    proto = Proto(body, delay_s=0.05)
    asyncio.run(app.__rsgi__(Scope("/v1/models/other:predict", headers=declared), proto))
    assert proto.sent[0][0] == 404 and ("connection", "close") in proto.answer_headers[0]


class SlowSink:
    """A prediction log that takes a while to commit, keeping requests in flight."""

    def __init__(self) -> None:
        self.records: list[Any] = []

    async def write(self, records: Sequence[Any]) -> None:
        self.records += records
        await asyncio.sleep(0.2)


def test_predict_requests_in_flight_are_bounded_by_max_concurrency() -> None:
    """granian's front bounds connections, not the requests on them: the app answers a
    predict request past guards.max_concurrency in flight 503 with Retry-After, counted and
    logged as refused (guard "concurrency"), as the default engine does; under the bound
    each is answered, and the bound frees as answers go out."""
    sink = SlowSink()
    gateway = Gateway(parse_spec(SPEC, env={}), lambda n, _r: ModelTarget(n, 1, "python", "x:y"),
                      lambda _t: Runtime(), sink)
    app = RsgiApp()
    flight = InFlight(most=2)  # (open_batch_server: guards.max_concurrency, every queue)
    app.queues = {"m": BatchQueue(BatchPredictor(gateway, "m"), 8, max_batches=1,
                                  in_flight=flight)}
    app.contract_fields = ["a"]

    async def burst() -> list[Proto]:
        protos = [Proto(b'{"instances": [{"a": %d}]}' % i) for i in range(3)]
        paths = ["/v1/models/m:predict", "/v1/models/m:predict", "/v2/models/m/infer"]
        v2 = b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [2]}]}'
        protos[2].body = v2
        await asyncio.gather(*(app.__rsgi__(Scope(path), proto)
                               for path, proto in zip(paths, protos, strict=True)))
        return protos

    protos = asyncio.run(burst())
    assert [p.sent[0][0] for p in protos] == [200, 200, 503], [p.sent for p in protos]
    assert ("retry-after", "1") in protos[2].answer_headers[0]
    assert "concurrency limit (2" in orjson.loads(protos[2].sent[0][1])["error"]
    refused = [r for r in sink.records if r.status == "rejected"]
    assert [r.guard for r in refused] == ["concurrency"] and flight.count == 0
    metric = gateway.metrics.rejected.labels("concurrency")._value.get()
    assert metric == 1
    # the bound freed: the next request is answered
    status, out = _call(app, "/v1/models/m:predict", b'{"instances": [{"a": 5}]}')
    assert status == 200 and out["predictions"] == [10]

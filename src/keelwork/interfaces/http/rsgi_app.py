"""The RSGI app of ``keel serve --engine granian`` (:mod:`keelwork.service.granian_serving`).

granian's worker process imports :data:`app` and calls ``__rsgi_init__`` with its event loop:
the app opens the process's server from what ``keel serve`` handed down, as
:func:`keelwork.interfaces.cli.serve_app.worker_app` does for ``--workers``. Then, per request:

- ``POST /v1/models/<model>:predict``: with ``guards.require_api_key``, the request's key
  checked first (401/403 as on the default engine); an alias or version named in the path
  (``<model>@<ref>``) or in ``x-keel-model-ref`` addressed as on the default engine, under
  ``guards.version_refs`` (403; a key with the ``admin`` scope may name any); the body read
  in one piece when its Content-Length is within the limit (the front reads exactly that many
  bytes), else chunk by chunk, a body over
  ``guards.max_body_bytes`` (by its Content-Length, or as it arrives) answered 413 and one not
  arrived within ``guards.body_read_timeout_s`` 408, as the default engine answers them,
  without holding more than the limit; the body parsed and the request checked alone (a
  malformed or contract-breaking request is answered its own 400/422, every problem named, its
  refusal counted and logged by the gateway), then its instances join the model's
  :class:`~keelwork.service.batch_predict.BatchQueue`, which predicts, logs and counts a batch at
  a time (past ``guards.max_concurrency`` requests in flight on the queues together, 503 with
  Retry-After, counted and logged as on the default engine: granian's front bounds the
  connections, ``guards.max_connections``, not the requests); the answer is the V1 route's
  (:func:`~keelwork.interfaces.http.batch_answers.render`).
- ``POST /v2/models/<model>/infer`` (Open Inference Protocol): the same, from the V2 body
  (its tensors as instances, a contract problem named by tensor path, the outputs asked for),
  answered as the default engine's V2 route; with the V2 server and model health
  (``GET /v2/health/live``, ``/v2/health/ready``, ``/v2/models/<model>/ready``) and model
  metadata (``GET /v2/models/<model>``; with ``guards.require_api_key``, a predict key), so the
  protocol's official clients work on the fast port as they are.
- ``GET /``: 200 (alive). Anything else: 404 naming the admin port, where keelwork's whole app
  serves the rest: the V2 ``/versions/N`` routes, ``/metrics`` and the admin routes.
- A request answered without its body (404, 405, 401/403) has its body read and dropped
  first, within the same guards, so that its kept-alive connection serves the client's next
  request (granian's front drops a connection whose request body was left unread); a body
  past the guards stays unread and the answer says ``connection: close``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from keelwork.core.refs import MODEL_REF_HEADER, request_ref
from keelwork.errors import ErrorDetail, KeelworkError
from keelwork.interfaces.http import jsonbody
from keelwork.interfaces.http.auth import authenticate
from keelwork.interfaces.http.batch_answers import no_probabilities, parse, render
from keelwork.interfaces.http.errors import HTTPProblem, error_response, response_for
from keelwork.interfaces.http.limits import too_large, too_slow
from keelwork.interfaces.http.model_routes import output_tensors, v2_metadata
from keelwork.interfaces.http.protocols import (
    PROBA_OUTPUT,
    V2Request,
    answer_headers,
    check_outputs,
    parse_v2_request,
    v2_answer,
    v2_error,
)
from keelwork.interfaces.http.read_deadlines import ReadDeadlines
from keelwork.service.batch_predict import Answer, Caller

if TYPE_CHECKING:
    from keelwork.service.batch_predict import BatchQueue
    from keelwork.types import ApiKeyStoreProtocol

log = logging.getLogger("keelwork.granian")
JSON = (("content-type", "application/json"),)
#: Answer headers: (name, value) pairs.
Headers = tuple[tuple[str, str], ...]
#: The headers of a refusal passed on as the default engine sends them.
_PASSED = frozenset({"retry-after", "www-authenticate"})
#: The header of an answer that leaves its request's body unread: the connection ends with it.
CLOSE = (("connection", "close"),)
_PREFIX, _SUFFIX = "/v1/models/", ":predict"
_V2 = "/v2/models/"
_REF_SEP = re.compile("[@:]")


class RsgiApp:
    """The predict routes of every model of keel.yaml, for granian's RSGI interface."""

    def __init__(self) -> None:
        self.queues: dict[str, BatchQueue] = {}
        self.project_dir: Path | None = None
        self.admin = "the admin port"
        #: ``guards.max_body_bytes``: a larger body is answered 413.
        self.max_body_bytes = 1_048_576
        #: The body reads in flight; a body slower than ``body_read_timeout_s`` gets 408.
        self.deadlines = ReadDeadlines(5.0)
        #: The API keys checked on predict (``guards.require_api_key``); None: no check.
        self.keys: ApiKeyStoreProtocol | None = None
        #: ``service.tenant_header``: the tenant each prediction is recorded with.
        self.tenant_header = "x-tenant-id"
        #: The contract's input and output names (V2 tensors by name).
        self.contract_fields: list[str] = []
        self.output_names: list[str] = []
        #: Closes the worker's server (its loops, log and stores) when granian stops.
        self.closing: Callable[[], Awaitable[None]] | None = None

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        from keelwork.interfaces.cli.output import configure_logging
        from keelwork.service.granian_serving import open_batch_server
        from keelwork.spec import load_spec
        from keelwork.spec.settings import load_settings, worker_handoff

        raw = worker_handoff()
        if not raw:
            raise RuntimeError("this app is for the worker `keel serve --engine granian` starts.")
        options = json.loads(raw)
        configure_logging(str(options["log_level"]), bool(options["access_log"]))
        resolved = load_spec(Path(options["spec"]))
        server = open_batch_server(resolved, load_settings(), loop)
        self.closing = server.parts.close
        self.queues = server.queues
        if resolved.spec.guards.require_api_key:
            self.keys = server.parts.keys
        self.project_dir = resolved.project_dir
        self.max_body_bytes = resolved.spec.guards.max_body_bytes
        self.body_read_timeout_s = resolved.spec.guards.body_read_timeout_s
        self.contract_fields = [f.name for f in resolved.spec.contract.inputs]
        self.tenant_header = resolved.spec.service.tenant_header.lower()
        self.output_names = [f.name for f in resolved.spec.contract.outputs]

    @property
    def body_read_timeout_s(self) -> float:
        """``guards.body_read_timeout_s``: a body slower than that is answered 408."""
        return self.deadlines.timeout

    @body_read_timeout_s.setter
    def body_read_timeout_s(self, seconds: float) -> None:
        self.deadlines.timeout = seconds

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        """granian's worker is stopping (its loop no longer runs): stop the server's loops and
        close its log and stores."""
        if self.closing is not None:
            try:
                loop.run_until_complete(self.closing())
            except Exception:
                log.exception("the granian worker's server did not close cleanly")

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":
            return
        path, method = scope.path, scope.method
        v1 = path.startswith(_PREFIX) and path.endswith(_SUFFIX)
        if v1 or (path.startswith(_V2) and path.endswith("/infer")):
            named = path[len(_PREFIX):-len(_SUFFIX)] if v1 else path[len(_V2):-len("/infer")]
            model = _REF_SEP.split(named, maxsplit=1)[0]  # `name@ref` / `name:3`: the model
            queue = self.queues.get(model)
            if queue is not None and method != "POST":  # as the default engine's router
                wrong = error_response(405, f"{method[:20]} is not allowed on {path[:200]}; "
                                            "use POST.",
                                       [ErrorDetail("method", "method_allowed", method[:20])])
                proto.response_bytes(405, [*JSON, ("allow", "POST"),
                                           *await self.unread(scope.headers, proto)],
                                     bytes(wrong.body))
                return
            if queue is not None:
                headers = scope.headers  # (granian builds the object at each access)
                try:
                    principal = None if self.keys is None else \
                        await authenticate(self.keys, headers, "predict")
                except (HTTPProblem, KeelworkError) as exc:
                    self.refuse(proto, exc, await self.unread(headers, proto))
                    return
                try:
                    raw = await self.body(headers, proto)
                except HTTPProblem as exc:  # past the guards: the rest is left unread
                    self.refuse(proto, exc, CLOSE)
                    return
                try:  # a body not declared JSON: 415, as on the default engine
                    jsonbody.check_media_type(headers.get("content-type"))
                    _, ref = request_ref(named, headers.get(MODEL_REF_HEADER))
                except (HTTPProblem, KeelworkError) as exc:
                    self.refuse(proto, exc)
                    return
                caller = Caller.of(headers, self.tenant_header, ref=ref,
                                   any_ref=principal is not None and principal.allows("admin"))
                status, body, answer = await (self.predict(queue, model, raw, caller) if v1
                                              else self.infer(queue, model, raw, caller))
                headers = list(answer) if isinstance(answer, tuple) else [
                    *JSON, *answer_headers(answer.prediction_ids, answer.version,
                                           answer.answered_by).items()]
                proto.response_bytes(status, headers, body)
                return
        close = await self.unread(scope.headers, proto)
        if method == "GET":
            found = await self.read_route(scope, path)
            if found is not None:
                status, body, headers = found
                proto.response_bytes(status, [*JSON, *headers, *close], body)
                return
        missing = error_response(404, f"No route {path[:200]} here: this port serves predict "
                                 "(V1 and V2) and the V2 health and model routes of the "
                                 f"champions; keelwork's app on {self.admin} serves the rest.",
                                 [ErrorDetail("path", "route", path[:200])])
        proto.response_bytes(404, [*JSON, *close], bytes(missing.body))

    def refuse(self, proto: Any, exc: HTTPProblem | KeelworkError,
               close: tuple[tuple[str, str], ...] = ()) -> None:
        """Answers a refusal with keelwork's error body and its headers (:meth:`refused`),
        plus ``close``."""
        status, body, headers = self.refused(exc)
        proto.response_bytes(status, [*headers, *close], body)

    def refused(self, exc: HTTPProblem | KeelworkError) -> tuple[int, bytes, Headers]:
        """A refusal's status, keelwork's error body (server paths hidden) and headers: JSON
        and those the default engine sends with it (``Retry-After``, ``WWW-Authenticate``)."""
        response = response_for(exc, self.project_dir)
        return response.status_code, bytes(response.body), (*JSON, *(
            (k, v) for k, v in response.headers.items() if k in _PASSED))

    async def unread(self, headers: Any, proto: Any) -> tuple[tuple[str, str], ...]:
        """Reads and drops the body of a request answered without it, within the same
        guards as a body that is used; the extra answer headers: none, or
        ``connection: close`` when the body is past the guards and stays unread.

        granian's front closes a connection whose request body was left unread when the
        answer went out, and says nothing of it in the answer: a client that sends its next
        request on that connection finds it reset. A body read (or an answer that says it
        closes) keeps every answer on a kept-alive connection whole, as on the default
        engine.
        """
        if headers.get("transfer-encoding") is None and \
                headers.get("content-length") in (None, "0"):
            return ()  # no body (a GET, an empty POST): nothing to read
        try:
            await self.body(headers, proto)
        except HTTPProblem:
            return CLOSE
        return ()

    async def read_route(self, scope: Any, path: str) -> tuple[int, bytes, list[Any]] | None:
        """``/`` and the V2 health and model metadata routes; None: not one of them."""
        if path == "/":
            return 200, b'{"status":"alive"}', []
        if path == "/v2/health/live":
            return 200, b'{"live":true}', []
        if path == "/v2/health/ready":  # every model was loaded as the worker started
            return 200, orjson.dumps({"ready": bool(self.queues)}), []
        if not path.startswith(_V2):
            return None
        name = path[len(_V2):]
        ready = name.endswith("/ready")
        queue = self.queues.get(name[:-len("/ready")] if ready else name)
        if queue is None:
            return None
        model = queue.predictor.model
        if ready:
            return 200, orjson.dumps({"name": model, "ready": True}), []
        try:  # describing a model follows predict's key rule, as on the default engine
            if self.keys is not None:
                await authenticate(self.keys, scope.headers, "predict")
            gateway = queue.predictor.gateway
            host = await gateway.host(model, None)
        except (KeelworkError, HTTPProblem) as exc:
            status, body, headers = self.refused(exc)
            return status, body, list(headers[len(JSON):])
        served = sorted({t.version for t in gateway.loaded() if t.name == model})
        return 200, orjson.dumps(v2_metadata(gateway.spec, model, host, served)), []

    async def infer(self, queue: BatchQueue, model: str, raw: bytes,
                    caller: Caller | None = None) -> tuple[int, bytes, Answer | Headers]:
        """One V2 inference request: checked alone (or refused, its problems named by tensor
        path), then answered from its batch as the default engine's V2 route answers; the
        answer gives the answer's headers (refused: the headers themselves)."""
        predictor = queue.predictor
        req: V2Request | None = None
        try:
            req = parse_v2_request(jsonbody.loads(raw), self.contract_fields)
            host = await predictor.host(caller)
            if req.outputs is not None:
                check_outputs(req.outputs, [str(t["name"]) for t in
                                            output_tensors(predictor.gateway.spec, host)])
            # a refusal raises, counted and logged
            admitted = await predictor.admit(req.instances, PROBA_OUTPUT in (req.outputs or ()),
                                             caller, "v2")
            answer = await queue.submit(admitted)
            out = orjson.dumps(v2_answer(
                model=answer.model, version=answer.version, predictions=answer.predictions,
                probabilities=answer.probabilities, classes=answer.classes,
                output_names=self.output_names, requested=req.outputs,
                prediction_ids=answer.prediction_ids, answered_by=answer.answered_by,
                violations=answer.warnings, request_id=req.id),
                option=orjson.OPT_SERIALIZE_NUMPY)
        except (KeelworkError, HTTPProblem) as exc:  # a V1 path named by tensor path
            return self.refused(v2_error(exc, req) if isinstance(exc, KeelworkError) else exc)
        return 200, out, answer

    async def body(self, headers: Any, proto: Any) -> bytes:
        """The request's body, read within the guards: in one read when its Content-Length
        is within ``max_body_bytes`` (the front reads exactly that many bytes), else chunk by
        chunk, stopped at the chunk that crosses the limit.

        Raises:
            HTTPProblem: 413 past ``max_body_bytes`` (its Content-Length says so, or the bytes
                so far), 408 when the whole body has not arrived in ``body_read_timeout_s``.
        """
        declared = headers.get("content-length")
        length = int(declared) if declared is not None and declared.isdigit() else None
        if length is not None and length > self.max_body_bytes:
            raise too_large(self.max_body_bytes, length)
        if headers.get("transfer-encoding") is not None:
            length = None  # framed by its chunks, whatever its Content-Length says: read so
        chunks: list[bytes] = []
        size = 0
        # one sweep for every read in flight, not a timer per request (read_deadlines)
        with self.deadlines.watch() as watch:
            try:
                if length is not None:
                    # A declared length within the limit: the front reads exactly that many
                    # bytes (HTTP framing), so the whole body is one read, one wake-up.
                    raw: bytes = await proto()
                    if len(raw) > self.max_body_bytes:  # never, by the framing; still bounded
                        raise too_large(self.max_body_bytes, len(raw))
                    return raw
                async for chunk in proto:
                    size += len(chunk)
                    if size > self.max_body_bytes:
                        raise too_large(self.max_body_bytes, f">{self.max_body_bytes}")
                    chunks.append(chunk)
            except asyncio.CancelledError:
                if watch.expired():  # (read in one piece: how much had come is not known)
                    raise too_slow(self.body_read_timeout_s,
                                   None if length is not None else size) from None
                raise
        return b"".join(chunks)

    async def predict(self, queue: BatchQueue, model: str, raw: bytes,
                      caller: Caller | None = None) -> tuple[int, bytes, Answer | Headers]:
        """One request: checked alone (or refused), then answered from its batch; the answer
        gives the answer's headers (refused: the headers themselves)."""
        predictor = queue.predictor
        try:
            if len(raw) > self.max_body_bytes:
                raise too_large(self.max_body_bytes, len(raw))
            instances, probabilities = parse(raw)
            if probabilities and await predictor.classes(caller) is None:
                raise no_probabilities(model)
            # a refusal raises, counted and logged
            answer = await queue.submit(await predictor.admit(instances, probabilities, caller))
        except (KeelworkError, HTTPProblem) as exc:
            return self.refused(exc)
        return 200, render(answer), answer


#: The app granian's worker imports (``keelwork.interfaces.http.rsgi_app:app``).
app = RsgiApp()

__all__ = ["RsgiApp", "app"]

"""The hop between ``keel serve --engine ray``'s ingress and its gateway replicas, without Ray.

Ray Serve's HTTP proxy answers a bare 500 for a request in flight on a replica that dies, so
the proxy talks to a thin ingress of ours instead, which hands each request to a gateway
replica through a Serve handle as a :class:`RelayRequest` and gets a :class:`RelayResponse`
back (plain, picklable values). What the ingress does when the replica dies under the request
(:func:`relay`): a request that cannot have changed anything (``GET``, ``HEAD``, ``OPTIONS``:
:data:`RETRY_SAFE_METHODS`) is sent again, to a live replica; any other (a prediction, which
the dead replica may have logged already) is answered 503 with ``Retry-After`` in keelwork's
error format, so no request is lost silently and no acknowledged prediction is doubled.

On the replica's side, :func:`call_app` runs one request through the whole keelwork ASGI app
in the replica's process, and :class:`Lifespan` runs the app's start-up and shutdown as the
replica starts and stops (as uvicorn would for one process).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

log = logging.getLogger("keelwork.ray")

#: Methods whose request is sent again when its replica dies before answering: they read only.
RETRY_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Times a retry-safe request is sent again (each to whichever live replica Serve picks).
RETRIES = 2
#: Seconds a client is told to wait after a 503 for a replica lost under its request.
RETRY_AFTER_S = 1
#: The rule in the 503's error details.
LOST_RULE = "replica_lost"

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class RelayRequest:
    """One HTTP request, as the ingress got it."""

    method: str
    path: str
    query: bytes = b""
    headers: Headers = field(default_factory=list)
    body: bytes = b""
    client: tuple[str, int] | None = None
    server: tuple[str, int] | None = None
    scheme: str = "http"
    root_path: str = ""


@dataclass(frozen=True)
class RelayResponse:
    """One whole HTTP answer (keelwork answers no streams)."""

    status: int
    headers: Headers
    body: bytes


def error_response(status: int, message: str, rule: str, got: str | int,
                   headers: Headers | None = None, *, path: str = "") -> RelayResponse:
    """An answer in keelwork's error format: ``{"error", "details": [{path, rule, got}]}`` (the
    format of :mod:`keelwork.interfaces.http.errors`, which this layer cannot import)."""
    body = orjson.dumps({"error": message,
                         "details": [{"path": path, "rule": rule, "got": got}]})
    return RelayResponse(status, [(b"content-type", b"application/json"),
                                  (b"content-length", str(len(body)).encode()),
                                  *(headers or [])], body)


def replica_lost(request: RelayRequest, exc: BaseException, *, tries: int) -> RelayResponse:
    """The 503 for ``request``, whose replica died (``exc``) under each of its ``tries``."""
    why = ("it was sent again and lost again" if tries > 1 else
           "it was not sent again, since it may have taken effect (a prediction logged)")
    return error_response(
        503, f"The replica serving this request stopped before it answered "
        f"({type(exc).__name__}); {why}. Retry after {RETRY_AFTER_S} s.",
        LOST_RULE, f"{request.method} {request.path}",
        [(b"retry-after", str(RETRY_AFTER_S).encode())])


async def read_body(chunks: AsyncIterator[bytes], headers: Headers, *, max_bytes: int,
                    timeout_s: float) -> bytes | RelayResponse:
    """The whole request body as the ingress reads it, under keel.yaml's body guards (the
    ingress buffers it before any replica sees it, so it enforces them as the app does, with
    the app's answers: :mod:`keelwork.interfaces.http.limits`).

    Args:
        chunks: The body as it arrives.
        headers: The request's headers (a Content-Length over the limit is refused unread).
        max_bytes: ``guards.max_body_bytes``.
        timeout_s: ``guards.body_read_timeout_s``, from the first read.

    Returns:
        The body, or the answer refusing it: 413 past ``max_bytes``, 408 past ``timeout_s``.
    """
    for key, value in headers:
        if key.lower() == b"content-length" and value.strip().isdigit() \
                and int(value) > max_bytes:
            return too_large(max_bytes, int(value))
    body = bytearray()
    deadline = time.monotonic() + timeout_s
    iterator = aiter(chunks)
    while True:
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                chunk = await anext(iterator)
        except StopAsyncIteration:
            return bytes(body)
        except TimeoutError:
            return error_response(
                408, f"The request body did not arrive within {timeout_s:g} s "
                f"(guards.body_read_timeout_s); got {len(body)} bytes by then.", "read_timeout",
                len(body), [(b"connection", b"close")], path="body")
        body += chunk
        if len(body) > max_bytes:
            return too_large(max_bytes, f">{max_bytes}")


def too_large(limit: int, got: int | str) -> RelayResponse:
    """The 413 of a body over ``guards.max_body_bytes``."""
    return error_response(413, f"The request body is larger than the limit of {limit} bytes "
                          "(guards.max_body_bytes); split the batch.", "max_bytes", got,
                          [(b"connection", b"close")], path="body")


async def relay(call: Callable[[], Awaitable[RelayResponse]], request: RelayRequest, *,
                lost: tuple[type[BaseException], ...],
                retries: int = RETRIES) -> RelayResponse:
    """``call()``'s answer to ``request``; when it raises one of ``lost`` (its replica died),
    the call again (a retry-safe request, up to ``retries`` times) or a 503 with Retry-After.

    Any other error of the call (not the app's: the app answers its own errors) is a 500 in
    keelwork's format, with the error's class and message.
    """
    tries = 0
    while True:
        tries += 1
        try:
            return await call()
        except lost as exc:
            again = request.method in RETRY_SAFE_METHODS and tries <= retries
            log.warning("%s %s: its replica stopped before answering (%s); %s",
                        request.method, request.path, type(exc).__name__,
                        "sending it again" if again else "answering 503")
            if not again:
                return replica_lost(request, exc, tries=tries)
        except Exception as exc:  # the hop failed: a 500 that says so, not Ray's bare one
            log.exception("%s %s: the hop to a replica failed", request.method, request.path)
            return error_response(500, f"The request did not reach a replica: "
                                  f"{type(exc).__name__}: {exc}"[:2000], "relay_failed",
                                  f"{request.method} {request.path}")


async def call_app(app: Any, request: RelayRequest,
                   state: dict[str, Any] | None = None) -> RelayResponse:
    """Run ``request`` through the ASGI ``app`` in this process and collect its whole answer.

    Args:
        app: The ASGI app (its lifespan started: see :class:`Lifespan`).
        request: The request.
        state: The lifespan's state (each request gets a shallow copy, as uvicorn gives it).

    Returns:
        The answer; a 500 in keelwork's format if the app raised before it answered.
    """
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
             "http_version": "1.1", "method": request.method, "scheme": request.scheme,
             "path": request.path, "raw_path": request.path.encode(),
             "root_path": request.root_path, "query_string": request.query,
             "headers": list(request.headers), "client": request.client,
             "server": request.server, "state": dict(state or {})}
    answered = asyncio.Event()
    read = False
    status: int | None = None
    headers: Headers = []
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        if not read:
            read = True
            return {"type": "http.request", "body": request.body, "more_body": False}
        await answered.wait()  # the client stays connected until its answer is complete
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = int(message["status"])
            headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", ())]
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                answered.set()

    try:
        await app(scope, receive, send)
    except Exception as exc:  # as uvicorn: the error logged, a 500 unless an answer began
        log.exception("%s %s: the app raised", request.method, request.path)
        if status is None:
            return error_response(500, f"The server failed: {type(exc).__name__}",
                                  "internal", f"{request.method} {request.path}")
    finally:
        answered.set()
    if status is None:
        return error_response(500, "The server sent no answer.", "internal",
                              f"{request.method} {request.path}")
    return RelayResponse(status, headers, b"".join(chunks))


class Lifespan:
    """Runs an ASGI app's lifespan protocol: :meth:`startup` as the replica starts,
    :meth:`shutdown` as it stops (at most once, whatever calls it)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    async def startup(self) -> None:
        """Start the app (stores opened, models loaded).

        Raises:
            RuntimeError: the app's start-up failed (its message).
        """
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"},
                 "state": self.state}
        self._task = asyncio.create_task(self.app(scope, self._inbox.get, self._outbox.put))
        await self._inbox.put({"type": "lifespan.startup"})
        answer = await self._answer()
        if answer["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"The app did not start: {answer.get('message', '')}")

    async def shutdown(self) -> None:
        """Stop the app (its prediction log flushed); once only, and only if it started."""
        if self._stopped or self._task is None or self._task.done():
            return
        self._stopped = True
        await self._inbox.put({"type": "lifespan.shutdown"})
        answer = await self._answer()
        if answer["type"] != "lifespan.shutdown.complete":
            log.error("the app did not stop cleanly: %s", answer.get("message", ""))

    async def _answer(self) -> dict[str, Any]:
        """The app's next lifespan message, or a failure if its lifespan task ended first."""
        assert self._task is not None
        getting = asyncio.ensure_future(self._outbox.get())
        await asyncio.wait({getting, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if getting.done():
            return getting.result()
        getting.cancel()
        exc = self._task.exception()
        return {"type": "lifespan.failed", "message": repr(exc)}


__all__ = ["LOST_RULE", "RETRIES", "RETRY_AFTER_S", "RETRY_SAFE_METHODS", "Lifespan",
           "RelayRequest", "RelayResponse", "call_app", "error_response", "read_body",
           "relay", "replica_lost", "too_large"]

"""Request body limits, for every route that reads a body: one pure ASGI middleware (no
BaseHTTPMiddleware, starlette #1678) plus the readers the handlers use.

:class:`BodyLimitMiddleware` enforces keel.yaml's two body guards whatever the framing:

- ``guards.max_body_bytes``: a Content-Length above it is answered 413 before any byte is
  read; a body without one (chunked) is counted as it arrives and answered 413 as soon as it
  grows past the limit. Same status, same message, same detail either way.
- ``guards.body_read_timeout_s``: the whole body must arrive within this many seconds of the
  first read; a client trickling bytes is answered 408 and its connection closed, so it cannot
  hold a connection (and a server slot) for as long as it likes.

The middleware wraps ``receive``: whichever handler reads the body (the predict fast path,
FastAPI's body parsing, ``request.json()``) gets the same refusal, and whatever that handler
makes of the exception, the client gets the middleware's answer (it replaces the handler's
response when the refusal came first).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keelwork.errors import ErrorDetail
from keelwork.interfaces.http.errors import HTTPProblem, error_response
from keelwork.interfaces.http.jsonbody import loads


def too_large(limit: int, got: int | str) -> HTTPProblem:
    """The 413 of a body over ``guards.max_body_bytes`` (``got``: its length or ``>limit``).

    The connection is closed after it: the rest of the body is never read.
    """
    return HTTPProblem(413, f"The request body is larger than the limit of {limit} bytes "
                            "(guards.max_body_bytes); split the batch.",
                       [ErrorDetail("body", "max_bytes", got)], {"Connection": "close"})


def too_slow(seconds: float, received: int | None) -> HTTPProblem:
    """The 408 of a body that did not arrive within ``guards.body_read_timeout_s``
    (``received``: the bytes read by then; None: read in one piece, so not counted)."""
    got = ("it had not arrived whole by then" if received is None
           else f"got {received} bytes by then")
    return HTTPProblem(408, f"The request body did not arrive within {seconds:g} s "
                            f"(guards.body_read_timeout_s); {got}.",
                       [ErrorDetail("body", "read_timeout", received)],
                       {"Connection": "close"})


class _BodyGuard:
    """The state of one request's body: bytes so far, the deadline, the refusal if any."""

    def __init__(self, receive: Receive, send: Send, max_bytes: int, timeout_s: float) -> None:
        self._receive = receive
        self._send = send
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.size = 0
        self.deadline: float | None = None
        self.done = False
        self.refusal: HTTPProblem | None = None
        self.started = False

    async def receive(self) -> Message:
        if self.refusal is not None:
            raise self.refusal
        if self.done:  # the body is in: what comes now is a disconnect, never bounded here
            return await self._receive()
        now = time.monotonic()
        if self.deadline is None:
            self.deadline = now + self.timeout_s
        try:
            async with asyncio.timeout(max(0.0, self.deadline - now)):
                message = await self._receive()
        except TimeoutError:
            self.refusal = too_slow(self.timeout_s, self.size)
            raise self.refusal from None
        if message["type"] == "http.request":
            self.size += len(message.get("body", b""))
            if self.size > self.max_bytes:
                self.refusal = too_large(self.max_bytes, f">{self.max_bytes}")
                raise self.refusal
            self.done = not message.get("more_body", False)
        else:
            self.done = True
        return message

    async def send(self, message: Message) -> None:
        if self.refusal is not None:
            return  # the handler's answer to the refusal: the middleware sends its own
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


class BodyLimitMiddleware:
    """Enforces ``guards.max_body_bytes`` and ``guards.body_read_timeout_s`` on every route.

    Args:
        app: The wrapped app.
        max_bytes: Largest body accepted (Content-Length or chunked), in bytes.
        read_timeout_s: Seconds the whole body may take to arrive, from the first read.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, read_timeout_s: float = 5.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    resp = error_response(400, "Content-Length is not a number.",
                                          [ErrorDetail("content-length", "type",
                                                       value.decode("latin-1")[:40])])
                    await resp(scope, receive, send)
                    return
                if length > self.max_bytes:
                    p = too_large(self.max_bytes, length)
                    await error_response(413, p.message, p.details, p.headers)(scope, receive,
                                                                             send)
                    return
                break
        guard = _BodyGuard(receive, send, self.max_bytes, self.read_timeout_s)
        try:
            await self.app(scope, guard.receive, guard.send)
        except Exception:
            # The refusal, or what a handler made of it (FastAPI turns a failed body read
            # into a 400): the client gets the refusal. Anything else is the app's own.
            if guard.refusal is None:
                raise
        if guard.refusal is not None and not guard.started:
            p = guard.refusal
            await error_response(p.status, p.message, p.details, p.headers)(scope, receive, send)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) as soon as it grows past ``limit`` bytes.

    Behind :class:`BodyLimitMiddleware` the middleware's limit fires first; this check keeps
    a handler safe where it is mounted without it.
    """
    if request.headers.get("content-length") is not None:
        return await request.body()  # the middleware checked the length before any read
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit, f">{limit}")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int, *, want_object: bool = False) -> Any:
    """The body parsed as JSON (orjson); 400 when it is not JSON or repeats a key in an
    object, 413 past ``limit``.

    Args:
        request: The request.
        limit: Largest body accepted, in bytes.
        want_object: Refuse (422) anything but a JSON object.
    """
    body = loads(await read_body(request, limit))
    if want_object and not isinstance(body, dict):
        raise HTTPProblem(422, "The body must be a JSON object.",
                          [ErrorDetail("", "type", type(body).__name__)])
    return body

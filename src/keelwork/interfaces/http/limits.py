"""Request body limits: a pure ASGI middleware (no BaseHTTPMiddleware, starlette #1678) plus a
streaming reader for bodies without Content-Length (chunked)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from keelwork.errors import ErrorDetail
from keelwork.interfaces.http.errors import HTTPProblem, error_response
from keelwork.interfaces.http.jsonbody import loads


def _too_large(limit: int, got: int | str) -> HTTPProblem:
    return HTTPProblem(413, f"The request body is larger than the limit of {limit} bytes "
                            "(guards.max_body_bytes); split the batch.",
                       [ErrorDetail("body", "max_bytes", got)])


class BodyLimitMiddleware:
    """Answers 413 before reading a body whose Content-Length exceeds ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
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
                        p = _too_large(self.max_bytes, length)
                        await error_response(413, p.message, p.details)(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) as soon as it grows past ``limit`` bytes."""
    if request.headers.get("content-length") is not None:
        return await request.body()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit, f">{limit}")
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

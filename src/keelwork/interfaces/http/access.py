"""The access log: one JSON line per HTTP request, whatever its outcome (pure ASGI).

Each line (logger ``keelwork.access``, INFO; ``keel serve --no-access-log`` turns it off)::

    {"event": "request", "method": "POST", "path": "/v1/models/credit:predict",
     "status": 504, "ms": 101.2, "model": "credit", "error": "The model credit:1 did not ..."}

A predict route adds what it served (``protocol``, ``model``, ``version``, ``answered_by``,
``instances``, the first ``prediction_ids``) through :func:`note`; an error response adds its
``error`` message. A client that goes away before its body is read is one line (status 499,
nginx's "client closed request"), not a server error with tracebacks.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("keelwork.access")
log = logging.getLogger("keelwork.http")

#: The scope key of the dict a request's handlers add access-log fields to.
ACCESS_KEY = "keelwork.access"
#: The status logged for a client that disconnected before it was answered.
CLIENT_CLOSED = 499
#: Bytes of an error body read for its ``error`` message; longest message logged.
_ERROR_BODY_BYTES = 4096
_MAX_ERROR_CHARS = 300
_MAX_PATH_CHARS = 500


def note(scope: Scope, **fields: Any) -> None:
    """Add ``fields`` to the access-log line of the request of ``scope`` (no-op without one)."""
    info = scope.get(ACCESS_KEY)
    if info is not None:
        info.update(fields)


class AccessLogMiddleware:
    """Logs every HTTP request once; turns a client disconnect into that one line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        info: dict[str, Any] = {}
        scope[ACCESS_KEY] = info
        status = 0
        error_body = bytearray()

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif (message["type"] == "http.response.body" and status >= 400
                  and len(error_body) < _ERROR_BODY_BYTES):
                error_body.extend(message.get("body", b"")[:_ERROR_BODY_BYTES - len(error_body)])
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        except ClientDisconnect:
            status = CLIENT_CLOSED
            info["error"] = "the client disconnected before its request was read"
            if not access_log.isEnabledFor(logging.INFO):
                log.info("%s %s: %s", scope["method"], scope["path"], info["error"])
        except BaseException:
            status = 500
            raise
        finally:
            if access_log.isEnabledFor(logging.INFO):
                if error_body and "error" not in info:
                    info["error"] = _error_of(bytes(error_body))
                access_log.info(orjson.dumps({
                    "event": "request", "method": scope["method"],
                    "path": scope["path"][:_MAX_PATH_CHARS],
                    "status": status, "ms": round((time.perf_counter() - started) * 1000, 3),
                    **info}, default=str).decode())


def _error_of(body: bytes) -> str | None:
    try:
        message = orjson.loads(body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return None if message is None else str(message)[:_MAX_ERROR_CHARS]

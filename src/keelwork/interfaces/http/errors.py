"""Mapping keelwork errors to HTTP responses: the only place that knows status codes.

Every error body is ``{"error": "...", "details": [{"path", "rule", "got"}]}``, with at least
one detail. What a body echoes back is bounded: a ``got`` string is cut to
:data:`MAX_ECHO_CHARS` characters and the message to :data:`MAX_MESSAGE_CHARS`, so a huge
value sent by a client never comes back whole.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from keelwork.errors import (
    ArtifactError,
    ErrorDetail,
    KeelworkError,
    ModelLoadError,
    ModelNotFoundError,
    ModelTimeout,
    Overloaded,
    PredictionError,
)
from keelwork.interfaces.error_statuses import status_of

#: Longest string a ``got`` echoes (longer ones are cut and end with ``...``).
MAX_ECHO_CHARS = 200
#: Longest error message (a message quoting many problems is cut).
MAX_MESSAGE_CHARS = 2000


class HTTPProblem(Exception):
    """An error raised by the HTTP layer itself (bad JSON, wrong content type, too large)."""

    def __init__(self, status: int, message: str, details: list[ErrorDetail] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or []
        self.headers = headers or {}


def json_response(body: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    """A JSON response built with orjson (numpy values included)."""
    return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                    media_type="application/json", headers=headers)


def clip(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """``text`` cut to ``limit`` characters, marked with ``...`` when cut."""
    return text if len(text) <= limit else text[:limit] + "..."


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -2**63 <= value < 2**64 else clip(str(value), 40)
    if isinstance(value, str):
        return clip(value)
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(
            value)
    if isinstance(value, list | tuple) and len(value) <= 20 and all(
            v is None or isinstance(v, str | int | float | bool) for v in value):
        return [_json_safe(v) for v in value]
    return clip(str(value))


def _rule_of(exc: BaseException) -> str:
    """``ModelNotFoundError`` -> ``model_not_found`` (the rule of an error without details)."""
    name = type(exc).__name__.removesuffix("Error")
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def error_response(status: int, message: str, details: list[ErrorDetail] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    details = details or [ErrorDetail("", "error", None)]
    body = {
        "error": clip(message, MAX_MESSAGE_CHARS),
        "details": [
            {"path": clip(d.path), "rule": d.rule, "got": _json_safe(d.got),
             **({"message": clip(d.message, MAX_MESSAGE_CHARS // 4)} if d.message else {})}
            for d in details[:1000]
        ],
    }
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers=headers)


def status_for(exc: BaseException) -> int:
    """The status an error is answered with: its own for an :class:`HTTPProblem`, else the
    one :data:`~keelwork.interfaces.error_statuses.STATUSES` gives its class."""
    if isinstance(exc, HTTPProblem):
        return exc.status
    return status_of(exc)


# An absolute POSIX path of two or more parts (not a URL's path: no scheme before it).
_ABS_PATH = re.compile(r"(?<![\w.:/~])/(?:[^\s'\"/:,;()]+/)+(?=[^\s'\"/:,;()]*)")


def relative_paths(text: str, root: Path | None) -> str:
    """``text`` with server paths hidden: relative to ``root`` inside it, else ``.../name``."""
    if root is not None:
        for r in {str(root), str(root.resolve())}:
            text = text.replace(r + "/", "").replace(r, ".")
    return _ABS_PATH.sub(".../", text)


def _hide_paths(exc: KeelworkError, root: Path | None) -> tuple[str, list[ErrorDetail]]:
    message = relative_paths(exc.message, root)
    details = [dataclasses.replace(
        d, got=relative_paths(d.got, root) if isinstance(d.got, str) else d.got,
        message=relative_paths(d.message, root)) for d in exc.details]
    return message, details


def response_for(exc: BaseException, root: Path | None = None) -> Response:
    """Render any error as the JSON error body with the right status.

    Args:
        exc: The error.
        root: The project directory: server paths in the message and details are shown
            relative to it (and as ``.../name`` outside it), never whole.
    """
    status = status_for(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, HTTPProblem):
        headers.update(exc.headers)
        return error_response(status, exc.message, exc.details, headers)
    if isinstance(exc, Overloaded):
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    if isinstance(exc, KeelworkError):
        message, details = _hide_paths(exc, root)
        details = details or [ErrorDetail(_path_of(exc), _rule_of(exc),
                                          getattr(exc, "model", None))]
        return error_response(status, message, details, headers)
    return error_response(500, f"Internal error: {type(exc).__name__}",
                          [ErrorDetail("", "internal", type(exc).__name__)])


def _path_of(exc: KeelworkError) -> str:
    if isinstance(exc, ModelNotFoundError | ModelTimeout | PredictionError | ModelLoadError
                  | ArtifactError):
        return "model"
    return ""


def router_error(request: Request, status: int, detail: Any,
                 headers: dict[str, str] | None = None) -> Response:
    """The router's own refusals (no such route 404, wrong method 405) in the error shape."""
    path = clip(request.url.path)
    if status == 404:
        return error_response(404, f"No route {path}; the routes are listed at /docs.",
                              [ErrorDetail("path", "route", path)], headers)
    if status == 405:
        allowed = (headers or {}).get("Allow") or (headers or {}).get("allow") or ""
        return error_response(405, f"{request.method} is not allowed on {path}"
                                   + (f"; use {allowed}." if allowed else "."),
                              [ErrorDetail("method", "method_allowed", request.method)], headers)
    message = detail if isinstance(detail, str) else "The request was refused."
    return error_response(status, message, [ErrorDetail("", "http", status)], headers)


def validation_error(errors: Any) -> Response:
    """FastAPI's request validation errors (path/query parameters) in the error shape."""
    details = [ErrorDetail(".".join(str(p) for p in e.get("loc", ())), str(e.get("type", "")),
                           e.get("input"), str(e.get("msg", "")))
               for e in list(errors)[:50]]
    shown = "; ".join(f"{d.path}: {d.message}" for d in details[:5])
    return error_response(422, f"The request is invalid: {shown}.", details)

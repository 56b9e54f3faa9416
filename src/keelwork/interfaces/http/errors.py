"""Mapping keelwork errors to HTTP responses: the only place that knows status codes.

Every error body is ``{"error": "...", "details": [{"path", "rule", "got"}]}``.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from keelwork.adapters.gateway.gateway import ModelTimeout, Overloaded
from keelwork.errors import (
    ArtifactError,
    ContractViolation,
    ErrorDetail,
    InvalidInputError,
    KeelworkError,
    ModelLoadError,
    ModelNotFoundError,
    PredictionError,
    RefNotAllowedError,
    StoreError,
)


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


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(
            value)
    return str(value)


def error_response(status: int, message: str, details: list[ErrorDetail] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    body = {
        "error": message,
        "details": [
            {"path": d.path, "rule": d.rule, "got": _json_safe(d.got),
             **({"message": d.message} if d.message else {})}
            for d in (details or [])
        ],
    }
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers=headers)


def status_for(exc: BaseException) -> int:
    if isinstance(exc, HTTPProblem):
        return exc.status
    if isinstance(exc, ModelNotFoundError):
        return 404
    if isinstance(exc, RefNotAllowedError):
        return 403
    if isinstance(exc, ContractViolation | InvalidInputError):
        return 422
    if isinstance(exc, Overloaded):
        return 503
    if isinstance(exc, ModelTimeout):
        return 504
    if isinstance(exc, StoreError):
        return 503
    if isinstance(exc, PredictionError | ModelLoadError | ArtifactError):
        return 500
    return 500


def response_for(exc: BaseException) -> Response:
    """Render any error as the JSON error body with the right status."""
    status = status_for(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, HTTPProblem):
        headers.update(exc.headers)
        return error_response(status, exc.message, exc.details, headers)
    if isinstance(exc, Overloaded):
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    if isinstance(exc, KeelworkError):
        return error_response(status, exc.message, exc.details, headers)
    return error_response(500, f"Internal error: {type(exc).__name__}", [])

"""Admin routes for a data subject's requests: access (``POST /v1/admin/subjects:export``)
and erasure (``POST /v1/admin/subjects:erase``).

The subject travels in the JSON body, never in the URL, so that access logs, traces and proxies
never see it. Both need the admin scope; the erasure is audited with the admin key as actor
(the audit entry names the subject's keyed digest only).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from keelwork.errors import ErrorDetail, KeelworkError
from keelwork.interfaces.http import openapi
from keelwork.interfaces.http.auth import actor_of
from keelwork.interfaces.http.context import ProvideContext, route_context
from keelwork.interfaces.http.errors import HTTPProblem, json_response, response_for
from keelwork.interfaces.http.limits import read_json
from keelwork.types import SubjectRequestsProtocol

_STATE_KEY = "keel_subjects"
#: Largest request body of these routes.
_MAX_BODY = 16_384


def subject_router(requests: SubjectRequestsProtocol, *,
                   dependencies: Sequence[Any] = ()) -> APIRouter:
    """The admin router for subject requests (``dependencies``: the admin key check)."""
    router = APIRouter(dependencies=[*dependencies,
                                     Depends(ProvideContext(_STATE_KEY, requests))],
                       tags=["Admin: data subjects"], responses=openapi.ADMIN_ERRORS)
    router.add_api_route("/v1/admin/subjects:export", export_subject, methods=["POST"])
    router.add_api_route("/v1/admin/subjects:erase", erase_subject, methods=["POST"])
    return router


def _requests(request: Request) -> SubjectRequestsProtocol:
    return route_context(request, _STATE_KEY, SubjectRequestsProtocol)  # type: ignore[type-abstract]


async def _fields(request: Request, *names: str) -> list[str] | Response:
    """The named non-empty string fields of the JSON body, or the 4xx response saying which
    is missing."""
    try:
        body = await read_json(request, _MAX_BODY, want_object=True)
    except (KeelworkError, HTTPProblem) as exc:
        return response_for(exc)
    out = []
    for name in names:
        value = body.get(name)
        if not isinstance(value, str) or not value.strip():
            return response_for(HTTPProblem(
                422, f"The body needs '{name}': a non-empty string.",
                [ErrorDetail(f"body.{name}", "required", None, "a non-empty string")]))
        out.append(value)
    return out


async def export_subject(request: Request) -> Response:
    """Everything held about one data subject (body: ``{"subject": ...}``)."""
    got = await _fields(request, "subject")
    if isinstance(got, Response):
        return got
    try:
        data = await run_in_threadpool(_requests(request).export, got[0])
    except KeelworkError as exc:
        return response_for(exc)
    return json_response(data)


async def erase_subject(request: Request) -> Response:
    """Erase one data subject (body: ``{"subject": ..., "reason": ...}``)."""
    got = await _fields(request, "subject", "reason")
    if isinstance(got, Response):
        return got
    subject, reason = got
    actor = actor_of(request)
    try:
        report = await run_in_threadpool(
            lambda: _requests(request).erase(subject, reason=reason, actor=actor))
    except KeelworkError as exc:
        return response_for(exc)
    return json_response(report)


__all__ = ["erase_subject", "export_subject", "subject_router"]

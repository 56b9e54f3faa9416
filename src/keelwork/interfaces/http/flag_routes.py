"""Admin routes for model flags: list, put, delete; effective at once, no restart.

``GET /v1/admin/flags`` shows the flags in force (keel.yaml's with the store's on top), the
broken ones and the failed evaluations per flag. ``PUT /v1/admin/flags/{name}`` validates the
body (422 naming every bad field), stores it, records it in the audit log and reloads the
server's flags before answering. ``DELETE`` removes a stored flag (keel.yaml's of the same name,
if any, applies again). Other servers on the same store pick a change up within their poll
interval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from keelwork.errors import ErrorDetail, KeelworkError
from keelwork.interfaces.http import openapi
from keelwork.interfaces.http.auth import actor_of
from keelwork.interfaces.http.context import ProvideContext, route_context
from keelwork.interfaces.http.errors import HTTPProblem, json_response, response_for
from keelwork.interfaces.http.limits import read_json
from keelwork.service.flags.source import FlagSource
from keelwork.spec.flags import FlagSpec
from keelwork.types import FlagStoreProtocol

_MAX_BODY = 256 * 1024
#: Where a flag router's :class:`FlagContext` is kept on the request's state.
_STATE_KEY = "keel_flags"


@dataclass(frozen=True, slots=True)
class FlagContext:
    """What the flag routes work with (see :func:`flag_router` for each field)."""

    source: FlagSource
    store: FlagStoreProtocol
    served: frozenset[str]
    check_refs: Callable[[FlagSpec], list[ErrorDetail]] | None


def _validation_problem(exc: ValidationError) -> HTTPProblem:
    details = [ErrorDetail(".".join(str(p) for p in e["loc"]), e["type"],
                           e.get("input") if isinstance(e.get("input"), str | int | float)
                           else None, e["msg"]) for e in exc.errors()]
    shown = "; ".join(f"{d.path or 'body'}: {d.message}" for d in details[:5])
    return HTTPProblem(422, f"The flag is invalid: {shown}", details)


def flag_router(source: FlagSource, store: FlagStoreProtocol, models: Sequence[str], *,
                dependencies: Sequence[Any] = (),
                check_refs: Callable[[FlagSpec], list[ErrorDetail]] | None = None,
                ) -> APIRouter:
    """The admin router for flags.

    Args:
        source: The server's flags in force (reloaded after every change).
        store: Where changed flags are kept.
        models: The served model names (a flag for another name is refused).
        dependencies: FastAPI dependencies run first (the admin API-key check).
        check_refs: The flag's references that name no version or alias of its model
            (:func:`keelwork.service.flags.source.unresolved_refs`); those are refused with
            422 like an unknown model.
    """
    ctx = FlagContext(source, store, frozenset(models), check_refs)
    router = APIRouter(prefix="/v1/admin/flags", tags=["Admin: flags"],
                       dependencies=[*dependencies, Depends(ProvideContext(_STATE_KEY, ctx))],
                       responses=openapi.ADMIN_ERRORS)
    router.add_api_route("", list_flags, methods=["GET"])
    router.add_api_route("/{name}", put_flag, methods=["PUT"])
    router.add_api_route("/{name}", delete_flag, methods=["DELETE"])
    return router


async def list_flags(request: Request) -> Response:
    """The flags in force, the broken ones and failed evaluations per flag."""
    source = route_context(request, _STATE_KEY, FlagContext).source
    flags = source.current
    return json_response({"revision": source.revision,
                          "flags": [f.model_dump(mode="json") for f in flags.flags],
                          "broken": [{"name": b.name, "model": b.model, "error": b.error}
                                     for b in flags.broken],
                          "errors": flags.errors()})


async def put_flag(name: str, request: Request) -> Response:
    """Create or replace a flag; effective on this server before the answer."""
    ctx = route_context(request, _STATE_KEY, FlagContext)
    try:
        body = await read_json(request, _MAX_BODY, want_object=True)
        if body.setdefault("name", name) != name:
            raise HTTPProblem(422, f"The body names flag {body['name']!r} but the path "
                                   f"names {name!r}.", [ErrorDetail("name", "path_match",
                                                                    body["name"])])
        try:
            flag = FlagSpec.model_validate(body)
        except ValidationError as exc:
            raise _validation_problem(exc) from None
        if flag.model not in ctx.served:
            raise HTTPProblem(422, f"The flag's model {flag.model!r} is not served here "
                                   f"(models: {', '.join(sorted(ctx.served))}).",
                              [ErrorDetail("model", "served_model", flag.model)])
        if ctx.check_refs is not None:
            bad = await run_in_threadpool(ctx.check_refs, flag)
            if bad:
                raise HTTPProblem(422, f"The flag serves what model {flag.model!r} does "
                                       f"not have: {bad[0].message}", bad)
        await run_in_threadpool(ctx.store.put, flag, actor=actor_of(request))
        await run_in_threadpool(ctx.source.reload)
    except (KeelworkError, HTTPProblem) as exc:
        return response_for(exc)
    return json_response(flag.model_dump(mode="json"))


async def delete_flag(name: str, request: Request) -> Response:
    """Remove a stored flag (keel.yaml's of that name, if any, applies again)."""
    ctx = route_context(request, _STATE_KEY, FlagContext)
    try:
        existed = await run_in_threadpool(ctx.store.delete, name, actor=actor_of(request))
        await run_in_threadpool(ctx.source.reload)
        if not existed:
            raise HTTPProblem(404, f"No stored flag is named {name!r}.",
                              [ErrorDetail("name", "exists", name)])
    except (KeelworkError, HTTPProblem) as exc:
        return response_for(exc)
    return Response(status_code=204)


__all__ = ["FlagContext", "delete_flag", "flag_router", "list_flags", "put_flag"]

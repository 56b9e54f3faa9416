"""Admin routes for rollouts: start, status, promote, pause, resume, abort, retry, rollback.

``POST /v1/admin/rollouts`` with ``{"model", "to", "strategy"?, "interval"?, "from"?}`` starts
one with keel.yaml's ``rollout`` settings; ``GET /v1/admin/rollouts/{name}`` shows the model's
latest rollout with every event (automatic decisions carry each gate's observed values and
threshold); ``POST /v1/admin/rollouts/{name}/{action}`` steers it; ``POST
/v1/admin/models/{name}/rollback`` serves the previous champion again. This server re-routes
before answering; other servers on the same store at their next poll. A transition the phase
does not allow is 409, and so is a rollback with nothing to roll back to, or a promote of a
version whose earlier rollout was aborted without ``?force=true`` (with it, the warning is
recorded in the promote's event and audit entry). A start whose versions do not load is 422
and stores nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from keelwork.errors import (
    ArtifactError,
    ErrorDetail,
    KeelworkError,
    ModelLoadError,
    SpecError,
    TransitionError,
)
from keelwork.interfaces.http import openapi
from keelwork.interfaces.http.auth import actor_of
from keelwork.interfaces.http.context import ProvideContext, route_context
from keelwork.interfaces.http.errors import HTTPProblem, json_response, response_for
from keelwork.interfaces.http.limits import read_json
from keelwork.service.assembly import Service

_MAX_BODY = 64 * 1024
ACTIONS = ("promote", "pause", "resume", "abort", "retry")
#: Where a rollout router's :class:`RolloutContext` is kept on the request's state.
_STATE_KEY = "keel_rollouts"


@dataclass(frozen=True, slots=True)
class RolloutContext:
    """What the rollout routes work with: the service and the model names it serves."""

    service: Service
    served: frozenset[str]

    async def resync(self) -> None:
        """Re-route this server now (others on the same store at their next poll)."""
        await self.service.rollout_controller.sync()

    def check_served(self, name: str) -> None:
        """Raises: HTTPProblem: 404, ``name`` is not a model this server serves."""
        if name not in self.served:
            raise HTTPProblem(404, f"No model named {name!r} is served here; models: "
                                   f"{', '.join(sorted(self.served))}.",
                              [ErrorDetail("model", "served_model", name)])

    async def loads(self, name: str, version: int, field: str) -> None:
        """Load the version as this server would serve it (and keep it loaded for the
        rollout); a version that cannot load is refused before anything is stored."""
        try:
            await self.service.gateway.host(name, str(version))
        except (ModelLoadError, ArtifactError) as exc:
            raise HTTPProblem(422, f"Version {version} of '{name}' cannot be rolled out: it "
                                   f"does not load: {exc.message}",
                              [ErrorDetail(field, "loads", version, exc.message)]) from None

    def status_body(self, name: str) -> dict[str, Any]:
        """The model's latest rollout and its events, as the routes answer them."""
        rollout, events = self.service.rollouts.status(name)
        return {"rollout": rollout.as_dict(), "events": [e.as_dict() for e in events]}


def _problem(exc: KeelworkError | HTTPProblem) -> Response:
    if isinstance(exc, TransitionError):
        return response_for(HTTPProblem(409, exc.message, exc.details))
    if isinstance(exc, SpecError):
        return response_for(HTTPProblem(422, exc.message, exc.details))
    return response_for(exc)


def rollout_router(service: Service, *, dependencies: Sequence[Any] = ()) -> APIRouter:
    """The admin router for rollouts.

    Args:
        service: The served gateway with its rollout operations and controller.
        dependencies: FastAPI dependencies run first (the admin API-key check).
    """
    ctx = RolloutContext(service, frozenset(m.name for m in service.gateway.spec.models))
    router = APIRouter(prefix="/v1/admin", tags=["Admin: rollouts"],
                       dependencies=[*dependencies, Depends(ProvideContext(_STATE_KEY, ctx))],
                       responses=openapi.ADMIN_ERRORS)
    router.add_api_route("/rollouts", start, methods=["POST"], status_code=201)
    router.add_api_route("/rollouts/{name}", status, methods=["GET"])
    router.add_api_route("/rollouts/{name}/{action}", act, methods=["POST"])
    router.add_api_route("/models/{name}/rollback", rollback, methods=["POST"])
    return router


def _flag(request: Request, name: str) -> bool:
    """A ``?name=true`` query switch (``force``, ``skip_tests``: both audited overrides)."""
    return request.query_params.get(name, "").lower() in ("1", "true", "yes")


def _context(request: Request) -> RolloutContext:
    return route_context(request, _STATE_KEY, RolloutContext)


#: The start body's fields: (name, type, in words, optional).
_START_FIELDS: tuple[tuple[str, type, str, bool], ...] = (
    ("model", str, "a string", False), ("to", int, "an integer", False),
    ("strategy", str, "a string (canary, shadow or ab)", True),
    ("interval", str, "a duration string like '5m' or '30s'", True),
    ("from", int, "an integer (the champion version)", True))


async def start(request: Request) -> Response:
    """Start a rollout: ``{"model", "to", "strategy"?, "interval"?, "from"?}``."""
    ctx = _context(request)
    try:
        body = await read_json(request, _MAX_BODY, want_object=True)
        for key, kind, word, optional in _START_FIELDS:
            value = body.get(key)
            if optional and value is None:
                continue
            if not isinstance(value, kind) or isinstance(value, bool):
                raise HTTPProblem(422, f"The field '{key}' must be {word}; got "
                                       f"{value!r:.80}.",
                                  [ErrorDetail(key, "type", repr(value)[:80])])
        ctx.check_served(body["model"])
        section = ctx.service.gateway.spec.rollout
        await ctx.loads(body["model"], body["to"], "to")
        if body.get("from") is not None:
            await ctx.loads(body["model"], body["from"], "from")
        rollout = await run_in_threadpool(
            ctx.service.rollouts.start, body["model"], body["to"], section,
            strategy=body.get("strategy"), interval=body.get("interval"),
            from_version=body.get("from"), actor=actor_of(request), verify=False,
            skip_tests=_flag(request, "skip_tests"))
        await ctx.resync()
        return json_response(await run_in_threadpool(ctx.status_body, rollout.model), 201)
    except (KeelworkError, HTTPProblem) as exc:
        return _problem(exc)


async def status(name: str, request: Request) -> Response:
    """The model's latest rollout and its events."""
    ctx = _context(request)
    try:
        return json_response(await run_in_threadpool(ctx.status_body, name))
    except (KeelworkError, HTTPProblem) as exc:
        return _problem(exc)


async def act(name: str, action: str, request: Request) -> Response:
    """promote, pause, resume, abort or retry the model's latest rollout.

    A promote of a version whose earlier rollout was aborted needs ``?force=true``; of one
    whose declared tests failed or were not run on it, ``?skip_tests=true`` (audited).
    """
    ctx = _context(request)
    try:
        if action not in ACTIONS:
            raise HTTPProblem(404, f"Unknown rollout action {action!r}; actions: "
                                   f"{', '.join(ACTIONS)}.",
                              [ErrorDetail("action", "one_of", action)])
        ctx.check_served(name)
        await run_in_threadpool(ctx.service.rollouts.act, name, action,
                                actor=actor_of(request),
                                reason=f"{action} via the admin API",
                                force=_flag(request, "force"),
                                skip_tests=_flag(request, "skip_tests"))
        await ctx.resync()
        return json_response(await run_in_threadpool(ctx.status_body, name))
    except (KeelworkError, HTTPProblem) as exc:
        return _problem(exc)


async def rollback(name: str, request: Request) -> Response:
    """Serve the previous champion again (aborts an active rollout)."""
    ctx = _context(request)
    try:
        ctx.check_served(name)
        version = await run_in_threadpool(ctx.service.rollouts.rollback, name,
                                          actor=actor_of(request))
        await ctx.resync()
        return json_response({"model": name, "champion": version})
    except (KeelworkError, HTTPProblem) as exc:
        return _problem(exc)


__all__ = ["ACTIONS", "RolloutContext", "act", "rollback", "rollout_router", "start", "status"]

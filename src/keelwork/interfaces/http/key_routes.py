"""Admin routes for API keys: list them and revoke one, effective at once on this server.

``GET /v1/admin/keys`` lists every key (never a secret or hash). ``DELETE
/v1/admin/keys/{key_id}`` revokes a key: the server that answers drops it from its cache before
answering, so the key is refused there from the next request on; other servers on the same
store refuse it once their cached verification expires (``ApiKeyStore.cache_seconds``, 5 s).
The revocation is recorded in the audit log with the admin key as the actor. Keys are created
with ``keel keys create`` only, so that a plaintext key never travels in an HTTP response.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from keelwork.errors import AuthError, ErrorDetail, KeelworkError
from keelwork.interfaces.http import openapi
from keelwork.interfaces.http.auth import actor_of
from keelwork.interfaces.http.context import ProvideContext, route_context
from keelwork.interfaces.http.errors import HTTPProblem, json_response, response_for
from keelwork.types import ApiKeyStoreProtocol

#: Where a key router's store is kept on the request's state.
_STATE_KEY = "keel_keys"


def key_router(keys: ApiKeyStoreProtocol, *, dependencies: Sequence[Any] = ()) -> APIRouter:
    """The admin router for API keys.

    Args:
        keys: The server's key store (the one its auth checks use, so that a revocation
            reaches its cache at once).
        dependencies: FastAPI dependencies run first (the admin API-key check).
    """
    router = APIRouter(dependencies=[*dependencies, Depends(ProvideContext(_STATE_KEY, keys))],
                       tags=["Admin: keys"], responses=openapi.ADMIN_ERRORS)
    router.add_api_route("/v1/admin/keys", list_keys, methods=["GET"])
    router.add_api_route("/v1/admin/keys/{key_id}", revoke_key, methods=["DELETE"])
    return router


def _keys(request: Request) -> ApiKeyStoreProtocol:
    return route_context(request, _STATE_KEY, ApiKeyStoreProtocol)  # type: ignore[type-abstract]


async def list_keys(request: Request) -> Response:
    """Every API key: id, name, scopes, who created it, last use, whether revoked."""
    keys = _keys(request)
    try:
        infos = await run_in_threadpool(keys.list)
    except KeelworkError as exc:
        return response_for(exc)
    return json_response([i.as_dict() for i in infos])


async def revoke_key(key_id: str, request: Request) -> Response:
    """Revoke a key: refused by this server at once, by others within the cache bound."""
    keys = _keys(request)
    actor = actor_of(request)
    try:
        info = await run_in_threadpool(lambda: keys.revoke(key_id, actor=actor))
    except AuthError as exc:
        return response_for(HTTPProblem(404, exc.message,
                                        [ErrorDetail("path:key_id", "key_exists", key_id)]))
    except KeelworkError as exc:
        return response_for(exc)
    return json_response(info.as_dict())


__all__ = ["key_router", "list_keys", "revoke_key"]

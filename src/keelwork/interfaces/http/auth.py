"""API-key checks for the HTTP routes: a FastAPI dependency and a guard for the predict fast path.

A key comes in ``Authorization: Bearer <key>`` or ``x-api-key: <key>``. No key, or a key that
is malformed, unknown or revoked, is answered 401 with ``WWW-Authenticate: Bearer`` (RFC 6750);
a valid key without the scope the route needs is answered 403 (``error="insufficient_scope"``).
Both use the project's JSON error body. A store that fails while checking is answered 503: the
key may be fine, so the client should retry rather than replace it. The key itself never
appears in a response or a log line; only its public id does, once verified.

The verified :class:`~keelwork.core.auth.Principal` is put on ``request.state.principal``,
where :func:`actor_of` reads who acts for the audit log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from keelwork.core.auth import SCOPES, Principal
from keelwork.errors import ErrorDetail, StoreError
from keelwork.interfaces.http.errors import HTTPProblem, response_for
from keelwork.types import ApiKeyStoreProtocol

#: The second header a key may come in (besides ``Authorization: Bearer``).
API_KEY_HEADER = "x-api-key"
_REALM = 'Bearer realm="keelwork"'


def key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The presented key: ``Authorization: Bearer <key>`` first, else ``x-api-key``."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    header = headers.get(API_KEY_HEADER)
    return header.strip() if header and header.strip() else None


async def authenticate(keys: ApiKeyStoreProtocol, headers: Mapping[str, str],
                       scope: str) -> Principal:
    """The principal of the request's key, which must grant ``scope``.

    Cached keys are checked on the event loop; a cache miss reads the store in a thread.

    Raises:
        HTTPProblem: 401 (no key / not a valid key), 403 (valid, lacks ``scope``), 503 (the
            store failed).
    """
    key = key_from_headers(headers)
    if key is None:
        raise HTTPProblem(
            401, f"This route needs an API key with the '{scope}' scope: send "
                 "'Authorization: Bearer <key>' or 'x-api-key: <key>' (create one with "
                 f"'keel keys create --scope {scope}').",
            [ErrorDetail("header:authorization", "api_key_required", None)],
            {"WWW-Authenticate": _REALM})
    principal = keys.cached(key)
    if principal is None:
        try:
            principal = await run_in_threadpool(keys.verify, key)
        except StoreError as exc:
            raise HTTPProblem(503, f"The API key could not be checked: {exc.message}",
                              [ErrorDetail("header:authorization", "key_store", None)],
                              {"Retry-After": "1"}) from None
    if principal is None:
        raise HTTPProblem(
            401, "The API key is not valid: it is malformed, unknown or revoked.",
            [ErrorDetail("header:authorization", "api_key_valid", None)],
            {"WWW-Authenticate": f'{_REALM}, error="invalid_token"'})
    if not principal.allows(scope):
        raise HTTPProblem(
            403, f"The API key {principal.key_id} ({principal.name}) has the scopes "
                 f"{', '.join(sorted(principal.scopes))}; this route needs '{scope}'.",
            [ErrorDetail("header:authorization", "scope", sorted(principal.scopes))],
            {"WWW-Authenticate": f'{_REALM}, error="insufficient_scope", scope="{scope}"'})
    return principal


def require_scope(scope: str, keys: ApiKeyStoreProtocol
                  ) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency that admits only keys granting ``scope``.

    Use it in ``dependencies=[Depends(require_scope("admin", keys))]`` of a router; the app
    must render :class:`HTTPProblem` (:func:`install_problem_handler`).

    Raises:
        ValueError: ``scope`` is not a known scope (a programming error, at start-up).
    """
    if scope not in SCOPES:
        raise ValueError(f"Unknown scope {scope!r}; use one of {', '.join(sorted(SCOPES))}.")

    async def dependency(request: Request) -> Principal:
        principal = await authenticate(keys, request.headers, scope)
        request.state.principal = principal
        return principal

    return dependency


def feedback_auth(keys: ApiKeyStoreProtocol, mode: str, *,
                  require_api_key: bool = False) -> Callable[[Request], Awaitable[None]]:
    """The dependency of ``POST /v1/feedback``: the ``feedback`` scope per the guards.

    ``required`` always asks for a key; ``open`` never; ``auto`` asks once the store holds any
    active key (or ``require_api_key`` is set), so that a project that has started to use
    keys does not leave its ground truth, and with it the ``min_accuracy`` gate, to anyone.

    Raises:
        ValueError: an unknown ``mode`` (a programming error, at start-up).
    """
    if mode not in ("auto", "required", "open"):
        raise ValueError(f"guards.feedback_auth must be auto, required or open; got {mode!r}.")

    async def dependency(request: Request) -> None:
        if mode == "open":
            return
        if mode == "auto" and not require_api_key:
            try:
                keyed = await run_in_threadpool(keys.has_active_keys)
            except StoreError as exc:
                raise HTTPProblem(503, f"The API keys could not be checked: {exc.message}",
                                  [ErrorDetail("header:authorization", "key_store", None)],
                                  {"Retry-After": "1"}) from None
            if not keyed:
                return
        request.state.principal = await authenticate(keys, request.headers, "feedback")

    return dependency


def predict_guard(keys: ApiKeyStoreProtocol) -> Callable[[Request], Awaitable[Response | None]]:
    """For the pure-ASGI predict handlers: an error response to send, or ``None`` to go on.

    On success the principal is put on ``request.state.principal``. A cached key costs one
    hash and a dict look-up; no FastAPI machinery is involved.
    """

    async def guard(request: Request) -> Response | None:
        try:
            request.state.principal = await authenticate(keys, request.headers, "predict")
        except HTTPProblem as exc:
            return response_for(exc)
        return None

    return guard


def actor_of(request: Request) -> str:
    """Who is acting: the API key's principal when auth ran, else ``admin-api``."""
    principal = getattr(request.state, "principal", None)
    if isinstance(principal, Principal):
        return principal.name or principal.key_id
    return "admin-api"


def install_problem_handler(app: FastAPI) -> None:
    """Render :class:`HTTPProblem` raised by dependencies as the JSON error body."""

    async def handler(_request: Request, exc: Exception) -> Response:
        return response_for(exc)

    app.add_exception_handler(HTTPProblem, handler)


__all__ = [
    "API_KEY_HEADER",
    "actor_of",
    "authenticate",
    "feedback_auth",
    "install_problem_handler",
    "key_from_headers",
    "predict_guard",
    "require_scope",
]

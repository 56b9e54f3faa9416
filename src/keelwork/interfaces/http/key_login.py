"""The key login of the browser pages (``/dashboard``, ``/review``): the key typed into the
page's form is checked for the page's scope and kept in an HttpOnly, SameSite=Strict cookie
whose path is the page's own, so it is sent nowhere else."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from keelwork.errors import ErrorDetail, StoreError
from keelwork.interfaces.http.auth import authenticate
from keelwork.interfaces.http.errors import HTTPProblem
from keelwork.types import ApiKeyStoreProtocol

#: How long a page's login cookie lasts (seconds).
COOKIE_MAX_AGE_S = 8 * 3600
#: Bytes of the login form read at most.
MAX_FORM = 4096


async def key_login(request: Request, keys: ApiKeyStoreProtocol | None, *, scope: str,
                    page: str, cookie: str,
                    refused: Callable[[HTTPProblem, Request], Response]) -> Response:
    """Check the posted key for ``scope``; on success keep it in ``cookie`` (path ``page``)
    and go to ``page`` (303), else ``refused``'s answer. Without keys: straight to ``page``."""
    body = await request.body()
    form = parse_qs(body[:MAX_FORM].decode("utf-8", "replace"), max_num_fields=4)
    key = (form.get("key") or [""])[0].strip()
    if keys is None:
        return RedirectResponse(page, status_code=303)
    try:
        await authenticate(keys, {"authorization": f"Bearer {key}"} if key else {}, scope)
    except HTTPProblem as exc:
        return refused(exc, request)
    response = RedirectResponse(page, status_code=303)
    response.set_cookie(cookie, key, max_age=COOKIE_MAX_AGE_S, path=page, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    return response


async def keys_on(keys: ApiKeyStoreProtocol | None, require_api_key: bool) -> bool:
    """Whether a page needs a key: keel.yaml requires keys, or the store holds an active one.

    Raises:
        HTTPProblem: 503, the key store failed.
    """
    if keys is None:
        return False
    if require_api_key:
        return True
    try:
        return bool(await run_in_threadpool(keys.has_active_keys))
    except StoreError as exc:
        raise HTTPProblem(503, f"The API keys could not be checked: {exc.message}",
                          [ErrorDetail("header:authorization", "key_store", None)],
                          {"Retry-After": "1"}) from None


__all__ = ["COOKIE_MAX_AGE_S", "MAX_FORM", "key_login", "keys_on"]

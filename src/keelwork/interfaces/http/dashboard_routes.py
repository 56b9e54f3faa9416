"""``/dashboard``: the read-only page a person looks at first (and its JSON).

- ``GET /dashboard``: the HTML page (:func:`keelwork.core.reports.dashboard.render_dashboard`
  of :meth:`keelwork.service.dashboard.Dashboard.snapshot`);
- ``GET /dashboard.json``: the same snapshot as JSON;
- ``POST /dashboard/login``, ``POST /dashboard/logout``: a browser's way in when keys are on.

Keys are on when keel.yaml sets ``guards.require_api_key`` or the store holds any active key
(as ``guards.feedback_auth: auto``): then the routes need a key with the ``read`` scope
(``keel keys create --scope read``; ``admin`` includes it). A client sends it as on every other
route (``Authorization: Bearer``, ``x-api-key``). A browser cannot, so the page answers 401
with a small form: the key typed there is POSTed (never put in a URL, where access logs,
history and ``Referer`` would keep it), checked, and kept in a cookie ``keel_dashboard``:
``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page sends it),
``Path=/dashboard`` (no other route gets it), ``Secure`` on HTTPS, for 8 hours. The key is
checked again on every view, so a revoked key stops working as on every other route: at once
when revoked through this server's admin API, within the key cache's 5 s otherwise. It is
never written into a page, a response or a log line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from keelwork.core.auth import READ, Principal
from keelwork.core.reports.charts import esc
from keelwork.core.reports.dashboard import render_dashboard
from keelwork.errors import KeelworkError
from keelwork.interfaces.http import openapi
from keelwork.interfaces.http.auth import authenticate, key_from_headers
from keelwork.interfaces.http.context import ProvideContext, route_context
from keelwork.interfaces.http.errors import HTTPProblem, json_response, response_for
from keelwork.interfaces.http.key_login import key_login, keys_on
from keelwork.service.dashboard import Dashboard
from keelwork.types import ApiKeyStoreProtocol

COOKIE = "keel_dashboard"
_STATE_KEY = "keel_dashboard"


class DashboardContext:
    """What the routes share: the dashboard, the key store and whether keys are required."""

    __slots__ = ("dashboard", "keys", "require_api_key")

    def __init__(self, dashboard: Dashboard, keys: ApiKeyStoreProtocol | None,
                 require_api_key: bool) -> None:
        self.dashboard = dashboard
        self.keys = keys
        self.require_api_key = require_api_key

    async def keys_on(self) -> bool:
        """Raises: HTTPProblem: 503, the key store failed."""
        return await keys_on(self.keys, self.require_api_key)

    async def check(self, request: Request) -> Principal | None:
        """The reader's principal (None when keys are off).

        Raises:
            HTTPProblem: 401, 403 or 503 (see :func:`authenticate`).
        """
        if not await self.keys_on():
            return None
        assert self.keys is not None
        headers: Mapping[str, str] = request.headers
        cookie = request.cookies.get(COOKIE)
        if key_from_headers(headers) is None and cookie:
            headers = {"authorization": f"Bearer {cookie}"}
        principal = await authenticate(self.keys, headers, READ)
        request.state.principal = principal
        return principal


def dashboard_router(dashboard: Dashboard, keys: ApiKeyStoreProtocol | None, *,
                     require_api_key: bool = False) -> APIRouter:
    """The dashboard routes (see the module docstring).

    Args:
        dashboard: What the page shows.
        keys: The server's key store; None: no keys at all (tests of the page alone).
        require_api_key: keel.yaml's ``guards.require_api_key``.
    """
    ctx = DashboardContext(dashboard, keys, require_api_key)
    router = APIRouter(dependencies=[Depends(ProvideContext(_STATE_KEY, ctx))],
                       tags=["Dashboard"])
    # The page and its form are for browsers (like /docs, out of the API document); the JSON
    # is API.
    router.add_api_route("/dashboard", dashboard_page, methods=["GET"],
                         response_class=HTMLResponse, include_in_schema=False)
    router.add_api_route("/dashboard.json", dashboard_json, methods=["GET"],
                         responses={**openapi.AUTH_ERRORS,
                                    503: openapi.ADMIN_ERRORS[503]})
    router.add_api_route("/dashboard/login", login, methods=["POST"],
                         response_class=HTMLResponse, include_in_schema=False)
    router.add_api_route("/dashboard/logout", logout, methods=["POST"],
                         include_in_schema=False)
    return router


def _ctx(request: Request) -> DashboardContext:
    return route_context(request, _STATE_KEY, DashboardContext)


async def dashboard_page(request: Request) -> Response:
    """The dashboard (HTML); without a valid key when keys are on, the key form (401)."""
    ctx = _ctx(request)
    try:
        await ctx.check(request)
    except HTTPProblem as exc:
        return _refused(exc, request)
    try:
        snap = await run_in_threadpool(ctx.dashboard.snapshot)
    except KeelworkError as exc:
        return HTMLResponse(_page("Dashboard unavailable", f"<p>{esc(exc.message)}</p>"),
                            status_code=503, headers={"Retry-After": "5"})
    html = await run_in_threadpool(render_dashboard, snap)
    return HTMLResponse(html, headers=_NO_STORE)


async def dashboard_json(request: Request) -> Response:
    """The dashboard's snapshot as JSON (same key rule as the page)."""
    ctx = _ctx(request)
    try:
        await ctx.check(request)
        snap = await run_in_threadpool(ctx.dashboard.snapshot)
    except (HTTPProblem, KeelworkError) as exc:
        return response_for(exc)
    response = json_response(snap)
    response.headers.update(_NO_STORE)
    return response


async def login(request: Request) -> Response:
    """Check the key typed in the form; keep it in the dashboard cookie and go to the page."""
    return await key_login(request, _ctx(request).keys, scope=READ, page="/dashboard",
                           cookie=COOKIE, refused=_refused)


async def logout(request: Request) -> Response:
    """Forget the dashboard cookie."""
    response = RedirectResponse("/dashboard", status_code=303)
    response.delete_cookie(COOKIE, path="/dashboard", httponly=True, samesite="strict")
    return response


_NO_STORE = {"Cache-Control": "no-store"}


def _refused(exc: HTTPProblem, request: Request) -> Response:
    """The key form, with why the last try was refused (never the key itself)."""
    if exc.status == 503:
        return HTMLResponse(_page("Dashboard unavailable", f"<p>{esc(exc.message)}</p>"),
                            status_code=503, headers=dict(exc.headers or {}))
    tried = request.method == "POST" or COOKIE in request.cookies or key_from_headers(
        request.headers) is not None
    why = ""
    if exc.status == 403:
        why = ("<p class=\"err\">That key is valid but lacks the <code>read</code> scope.</p>")
    elif tried:
        why = "<p class=\"err\">That key is not valid: malformed, unknown or revoked.</p>"
    form = (why + "<p>This server's API keys are on: the dashboard needs a key with the "
            "<code>read</code> scope (<code>keel keys create --scope read --name ...</code>; "
            "an <code>admin</code> key works too).</p>"
            '<form method="post" action="/dashboard/login">'
            '<input type="password" name="key" autocomplete="current-password" '
            'placeholder="kw_..." required autofocus aria-label="API key">'
            '<button type="submit">Open the dashboard</button></form>'
            '<p class="note">The key is kept in an HttpOnly, SameSite=Strict cookie for this '
            "page only, for 8 hours; it is checked again on every view.</p>")
    headers: dict[str, Any] = dict(exc.headers or {})
    return HTMLResponse(_page("Dashboard: API key needed", form), status_code=exc.status,
                        headers={k: str(v) for k, v in headers.items()})


def _page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>{esc(title)}</title><style>"
            "body{font:15px/1.5 system-ui,sans-serif;background:#f1f5f9;color:#0f172a;margin:0}"
            "main{max-width:520px;margin:12vh auto;background:#fff;border:1px solid #e2e8f0;"
            "border-radius:12px;padding:24px 28px}h1{font-size:20px;margin:0 0 12px}"
            "input{width:100%;padding:9px 10px;border:1px solid #cbd5e1;border-radius:8px;"
            "font:inherit;margin:6px 0 10px}button{padding:8px 16px;border:0;border-radius:8px;"
            "background:#2563eb;color:#fff;font:inherit;cursor:pointer}"
            ".err{color:#b91c1c}.note{color:#64748b;font-size:13px}</style></head><body><main>"
            f"<h1>{esc(title)}</h1>{body}</main></body></html>\n")


__all__ = ["COOKIE", "dashboard_router"]

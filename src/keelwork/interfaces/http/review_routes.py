"""``/review``: the human review page, and the review queue's JSON API.

- ``GET /review``: the next queued item of the reviewer, rendered by
  :func:`keelwork.core.reports.review_page.render_review_page` (keyboard-driven);
- ``POST /review/label``, ``POST /review/skip``: the page's script records a verdict or a skip
  (JSON ``{"prediction_id", "label"}``);
- ``POST /review/login``, ``POST /review/logout``: a browser's way in when keys are on;
- ``GET /v1/review/next``, ``POST /v1/review/label``, ``POST /v1/review/skip``: the same for
  programs (the key in ``Authorization: Bearer`` or ``x-api-key``; no cookie).

Keys are on as for the dashboard (``guards.require_api_key``, or any active key in the store);
then every route needs a key with the ``review`` scope (``keel keys create --scope review
--name ana``; ``admin`` includes it). The reviewer is the key's name (its id when unnamed),
never a value of the form or body, so a verdict is attributed to whoever holds the key. With
keys off, the reviewer is the server's user (the ``user`` setting, else the OS user).

A browser keeps the key in the cookie ``keel_review`` (``HttpOnly``, ``SameSite=Strict``,
``Path=/review``, ``Secure`` on HTTPS, 8 hours), checked again on every request. A verdict is a
write, so the page's POSTs also need ``Content-Type: application/json`` and the header
``x-keel-csrf`` holding the token written into the page (derived from the key: another site
can neither read it nor send a custom header without a CORS preflight this server never
grants). Verdicts go through :class:`keelwork.service.review_desk.ReviewDesk`, the use-case
behind ``keel review label``: the label is stored, attributed and audited before the answer.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from keelwork.core.auth import REVIEW
from keelwork.core.reports.charts import esc
from keelwork.core.reports.review_page import CSP, render_review_page
from keelwork.errors import ErrorDetail, KeelworkError
from keelwork.interfaces.http import openapi
from keelwork.interfaces.http.auth import authenticate, key_from_headers
from keelwork.interfaces.http.context import ProvideContext, route_context
from keelwork.interfaces.http.errors import HTTPProblem, json_response, response_for
from keelwork.interfaces.http.jsonbody import loads
from keelwork.interfaces.http.key_login import key_login, keys_on
from keelwork.interfaces.http.limits import read_body
from keelwork.service.review_desk import ReviewDesk
from keelwork.types import ApiKeyStoreProtocol

COOKIE = "keel_review"
CSRF_HEADER = "x-keel-csrf"
#: A verdict's body at most (a label is small).
MAX_BODY = 16_384
_STATE_KEY = "keel_review"
_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff"}
#: A refused verdict's status, by the rule the service names.
_STATUS = {"review_unknown": 404, "review_gone": 410, "review_twice": 409, "review_done": 409}


def csrf_token(key: str) -> str:
    """The page's token for the key it was opened with ("" when keys are off)."""
    return hashlib.sha256(b"keelwork.review.csrf\x00" + key.encode()).hexdigest()[:32]


class ReviewContext:
    """What the routes share: the desk (None: no ``review`` section) and the key rule."""

    __slots__ = ("desk", "keys", "require_api_key")

    def __init__(self, desk: ReviewDesk | None, keys: ApiKeyStoreProtocol | None,
                 require_api_key: bool) -> None:
        self.desk = desk
        self.keys = keys
        self.require_api_key = require_api_key

    def the_desk(self) -> ReviewDesk:
        """Raises: HTTPProblem: 404, keel.yaml has no ``review`` section."""
        if self.desk is None:
            raise HTTPProblem(404, "This server's keel.yaml has no 'review' section: there is "
                              "no review queue.", [ErrorDetail("review", "review_missing", None)])
        return self.desk

    async def keys_on(self) -> bool:
        """Raises: HTTPProblem: 503, the key store failed."""
        return await keys_on(self.keys, self.require_api_key)

    async def reviewer(self, request: Request, *, cookie: bool) -> tuple[str, str]:
        """``(reviewer, key)``: the key's name (and the key), or the server's user and "".

        Raises:
            HTTPProblem: 401, 403, 404 or 503.
        """
        desk = self.the_desk()
        if not await self.keys_on():
            return desk.default_reviewer, ""
        assert self.keys is not None
        headers: Mapping[str, str] = request.headers
        kept = request.cookies.get(COOKIE) if cookie else None
        if key_from_headers(headers) is None and kept:
            headers = {"authorization": f"Bearer {kept}"}
        principal = await authenticate(self.keys, headers, REVIEW)
        request.state.principal = principal
        return principal.name or principal.key_id, key_from_headers(headers) or ""


def review_router(desk: ReviewDesk | None, keys: ApiKeyStoreProtocol | None, *,
                  require_api_key: bool = False) -> APIRouter:
    """The review routes (see the module docstring).

    Args:
        desk: The review queue; None: keel.yaml has no ``review`` section (routes answer 404).
        keys: The server's key store; None: no keys at all (tests of the routes alone).
        require_api_key: keel.yaml's ``guards.require_api_key``.
    """
    ctx = ReviewContext(desk, keys, require_api_key)
    router = APIRouter(dependencies=[Depends(ProvideContext(_STATE_KEY, ctx))],
                       tags=["Review"])
    for path, handler, method in (("/review", review_page, "GET"),
                                  ("/review/login", login, "POST"),
                                  ("/review/logout", logout, "POST"),
                                  ("/review/label", page_label, "POST"),
                                  ("/review/skip", page_skip, "POST")):
        router.add_api_route(path, handler, methods=[method], include_in_schema=False)
    refused: dict[int | str, dict[str, Any]] = {
        404: {**openapi.ADMIN_ERRORS[404], "description": "Not in the review queue"},
        409: {**openapi.ADMIN_ERRORS[409], "description": "This reviewer judged it already, "
              "or it has the verdicts it wants"},
        410: {**openapi.ADMIN_ERRORS[404], "description": "Gone from the log (erased, expired)"}}
    router.add_api_route("/v1/review/next", api_next, methods=["GET"],
                         responses={**openapi.AUTH_ERRORS, 503: openapi.ADMIN_ERRORS[503],
                                    404: {**openapi.ADMIN_ERRORS[404], "description":
                                          "No review queue (keel.yaml has no review "
                                          "section)"}})
    router.add_api_route("/v1/review/label", api_label, methods=["POST"],
                         responses={**openapi.ADMIN_ERRORS, **refused})
    router.add_api_route("/v1/review/skip", api_skip, methods=["POST"],
                         responses={**openapi.ADMIN_ERRORS, **refused})
    return router


def _ctx(request: Request) -> ReviewContext:
    return route_context(request, _STATE_KEY, ReviewContext)


async def review_page(request: Request) -> Response:
    """The page (HTML); without a valid key when keys are on, the key form."""
    ctx = _ctx(request)
    try:
        reviewer, key = await ctx.reviewer(request, cookie=True)
    except HTTPProblem as exc:
        return _refused(exc, request)
    desk = ctx.the_desk()
    try:
        item = await run_in_threadpool(desk.next, reviewer)
        counts = await run_in_threadpool(desk.counts)
    except KeelworkError as exc:
        return HTMLResponse(_page("Review queue unavailable", f"<p>{esc(exc.message)}</p>"),
                            status_code=503, headers={"Retry-After": "5", **_HEADERS})
    html = render_review_page(item, reviewer=reviewer, choices=desk.choices, counts=counts,
                              csrf=csrf_token(key), keys_on=bool(key))
    return HTMLResponse(html, headers={**_HEADERS, "Content-Security-Policy": CSP})


async def _body(request: Request, *, label: bool) -> tuple[str, Any]:
    """``(prediction_id, label)`` of a JSON body.

    Raises:
        HTTPProblem: 400/413/415, the body is not such an object.
    """
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise HTTPProblem(415, "Send the verdict as JSON (Content-Type: application/json).",
                          [ErrorDetail("header:content-type", "json", None)])
    length = request.headers.get("content-length", "")
    too_large = HTTPProblem(413, f"A verdict's body is at most {MAX_BODY} bytes (a prediction "
                            "id and one label).", [ErrorDetail("body", "max_bytes", length
                                                               or f">{MAX_BODY}")],
                            {"Connection": "close"})
    if length.isdigit() and int(length) > MAX_BODY:
        raise too_large
    try:
        raw = await read_body(request, MAX_BODY)
    except HTTPProblem as exc:
        raise too_large if exc.status == 413 else exc from None
    body = loads(raw)
    if not isinstance(body, dict):
        raise HTTPProblem(400, "The body must be a JSON object.",
                          [ErrorDetail("", "type", type(body).__name__)])
    pid = body.get("prediction_id")
    if not isinstance(pid, str) or not 0 < len(pid) <= 64:
        raise HTTPProblem(400, "The 'prediction_id' field must be the id of a queued "
                          "prediction (1-64 characters).",
                          [ErrorDetail("prediction_id", "required", None)])
    if label and body.get("label") is None:
        raise HTTPProblem(400, "The 'label' field is required: the true label.",
                          [ErrorDetail("label", "required", None)])
    return pid, body.get("label")


def _refusal(exc: Exception) -> Response:
    if isinstance(exc, KeelworkError) and not isinstance(exc, HTTPProblem):
        status = next((_STATUS[d.rule] for d in exc.details if d.rule in _STATUS), None)
        if status is not None:
            response = response_for(exc)
            response.status_code = status
            return response
    return response_for(exc)


async def _act(request: Request, *, cookie: bool, label: bool) -> Response:
    ctx = _ctx(request)
    try:
        reviewer, key = await ctx.reviewer(request, cookie=cookie)
        if cookie:
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), csrf_token(key).encode()):
                raise HTTPProblem(403, f"A verdict from the page needs the page's "
                                  f"'{CSRF_HEADER}' header; reload /review.",
                                  [ErrorDetail(f"header:{CSRF_HEADER}", "csrf", None)])
        pid, value = await _body(request, label=label)
        desk = ctx.the_desk()
        via = "page" if cookie else "api"
        if label:
            done = await run_in_threadpool(desk.label, reviewer, pid, value, via)
            return json_response({**done, "reviewer": reviewer}, headers=_HEADERS)
        await run_in_threadpool(desk.skip, reviewer, pid)
        return json_response({"prediction_id": pid, "skipped": True, "reviewer": reviewer},
                             headers=_HEADERS)
    except (HTTPProblem, KeelworkError) as exc:
        return _refusal(exc)


async def page_label(request: Request) -> Response:
    """The page records a verdict (cookie or key header; the CSRF header)."""
    return await _act(request, cookie=True, label=True)


async def page_skip(request: Request) -> Response:
    """The page skips an item."""
    return await _act(request, cookie=True, label=False)


async def api_label(request: Request) -> Response:
    """Record a verdict ``{"prediction_id", "label"}``: it becomes the prediction's label."""
    return await _act(request, cookie=False, label=True)


async def api_skip(request: Request) -> Response:
    """Pass on an item ``{"prediction_id"}`` (other reviewers still get it)."""
    return await _act(request, cookie=False, label=False)


async def api_next(request: Request) -> Response:
    """The reviewer's next item (``{"item": null}`` when none is left)."""
    ctx = _ctx(request)
    try:
        reviewer, _ = await ctx.reviewer(request, cookie=False)
        item = await run_in_threadpool(ctx.the_desk().next, reviewer)
    except (HTTPProblem, KeelworkError) as exc:
        return _refusal(exc)
    return json_response({"reviewer": reviewer, "item": item}, headers=_HEADERS)


async def login(request: Request) -> Response:
    """Check the key typed in the form; keep it in the review cookie and go to the page."""
    return await key_login(request, _ctx(request).keys, scope=REVIEW, page="/review",
                           cookie=COOKIE, refused=_refused)


async def logout(request: Request) -> Response:
    """Forget the review cookie."""
    response = RedirectResponse("/review", status_code=303)
    response.delete_cookie(COOKIE, path="/review", httponly=True, samesite="strict")
    return response


def _refused(exc: HTTPProblem, request: Request) -> Response:
    """The key form, with why the last try was refused (never the key itself)."""
    if exc.status in (404, 503):
        return HTMLResponse(_page("Review queue unavailable", f"<p>{esc(exc.message)}</p>"),
                            status_code=exc.status, headers={**_HEADERS, **exc.headers})
    tried = request.method == "POST" or COOKIE in request.cookies or key_from_headers(
        request.headers) is not None
    why = ""
    if exc.status == 403:
        why = "<p class=\"err\">That key is valid but lacks the <code>review</code> scope.</p>"
    elif tried:
        why = "<p class=\"err\">That key is not valid: malformed, unknown or revoked.</p>"
    form = (why + "<p>This server's API keys are on: reviewing needs a key with the "
            "<code>review</code> scope, named for you (<code>keel keys create --scope review "
            "--name ana</code>): your verdicts are recorded under that name.</p>"
            '<form method="post" action="/review/login">'
            '<input type="password" name="key" autocomplete="current-password" '
            'placeholder="kw_..." required autofocus aria-label="API key">'
            '<button type="submit">Start reviewing</button></form>'
            '<p class="note">The key is kept in an HttpOnly, SameSite=Strict cookie for this '
            "page only, for 8 hours; it is checked again on every request.</p>")
    return HTMLResponse(_page("Review: API key needed", form), status_code=exc.status,
                        headers={**_HEADERS, **exc.headers})


def _page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title><style>"
            "body{font:15px/1.5 system-ui,sans-serif;background:#f1f5f9;margin:0}"
            "main{max-width:520px;margin:12vh auto;background:#fff;border-radius:12px;"
            "padding:24px 28px}input{width:100%;padding:8px;margin:6px 0 10px}"
            ".err{color:#b91c1c}.note{color:#64748b;font-size:13px}</style></head><body><main>"
            f"<h1>{esc(title)}</h1>{body}</main></body></html>\n")


__all__ = ["COOKIE", "CSRF_HEADER", "csrf_token", "review_router"]

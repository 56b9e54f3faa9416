"""``guards.rate_limit`` on the predict routes: who a caller is, and the 429 when its bucket is
empty.

The identity is the verified API key (``per: key``; a caller without one is limited by its IP
address, so an unverified header cannot mint fresh buckets), the tenant header (``per:
tenant``; the IP address when absent) or the client's IP address (``per: ip``, as the server
sees it: behind a proxy, that is the proxy's). The limiter itself is a service object
(:class:`keelwork.service.rate_limits.RateLimiter`): here it is only its ``take``.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from keelwork.core.auth import Principal
from keelwork.errors import ErrorDetail
from keelwork.interfaces.http.errors import HTTPProblem, response_for

Guard = Callable[[Request], Awaitable[Response | None]]


def identity_of(request: Request, per: str, tenant_header: str) -> str:
    """The caller identity a rate limit counts ``request`` under."""
    ip = request.client.host if request.client is not None else "unknown"
    if per == "key":
        principal = getattr(request.state, "principal", None)
        if isinstance(principal, Principal):
            return f"key:{principal.key_id}"
    elif per == "tenant":
        tenant = request.headers.get(tenant_header)
        if tenant:
            return f"tenant:{tenant}"
    return f"ip:{ip}"


def model_of(path: str) -> str:
    """The model a predict or info path names (``/v1/models/NAME:predict``,
    ``/v2/models/NAME[@REF]/infer``...), without its ``@reference``; "" when none."""
    _, found, rest = path.partition("/models/")
    if not found:
        return ""
    end = min((i for i in (rest.find(":"), rest.find("/")) if i >= 0), default=len(rest))
    return rest[:end].partition("@")[0]


def rate_guard(take: Callable[[str], float | None], per: str, tenant_header: str, *,
               then: Guard | None = None,
               refused: Callable[[str], None] | None = None) -> Guard:
    """A predict guard: ``then`` (the API-key check) first, then one token of the caller's
    bucket, or 429 with ``Retry-After``; ``refused`` is told the model of each 429 (see
    :func:`model_of`)."""

    async def guard(request: Request) -> Response | None:
        if then is not None and (denied := await then(request)) is not None:
            return denied
        wait = take(identity_of(request, per, tenant_header))
        if wait is None:
            return None
        if refused is not None:
            refused(model_of(request.url.path))
        seconds = max(1, math.ceil(wait))
        return response_for(HTTPProblem(
            429, f"Too many requests for this {per} (guards.rate_limit); retry in "
            f"{seconds} s.", [ErrorDetail("", "rate_limit", per)],
            {"Retry-After": str(seconds)}))

    return guard


__all__ = ["identity_of", "model_of", "rate_guard"]

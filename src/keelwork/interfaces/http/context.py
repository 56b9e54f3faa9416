"""What the serving handlers share: :class:`HttpContext`, kept on the app's state, and the
per-request steps the predict and model-info routes have in common (the gateway's
:class:`~keelwork.service.gateway.context.RequestContext` of a request, the model reference it
names, the host it may address).

``create_app`` builds one :class:`HttpContext` per app and puts it on ``app.state.http``; a
handler reads it with :func:`http_context`. No handler closes over the gateway.

The feedback and admin routers are mounted on apps their modules do not build (tests mount them
alone), so their context travels with the router instead: a :class:`ProvideContext` dependency
puts it on the request's state, where the handler reads it with :func:`route_context`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response

from keelwork.core.auth import Principal
from keelwork.core.refs import MODEL_REF_HEADER, request_ref
from keelwork.service.gateway.context import RequestContext
from keelwork.service.gateway.gateway import Gateway
from keelwork.service.gateway.host import ModelHost

#: Header keeping a user on one arm of a rollout (A/B, canary) and in one flag bucket.
STICKY_HEADER = "x-keel-user"

#: The API-key check of the predict and model-info routes: an error response, or None.
Guard = Callable[[Request], Awaitable[Response | None]]

_C = TypeVar("_C")


@dataclass(frozen=True, slots=True)
class HttpContext:
    """The gateway an app serves and what its handlers read of keel.yaml, computed once."""

    gateway: Gateway
    #: The ``predict``-scope key check (``guards.require_api_key``); None: no key needed.
    guard: Guard | None
    #: ``guards.max_body_bytes``.
    max_body_bytes: int
    #: The project directory: errors show server paths relative to it.
    project_dir: Path | None
    #: The contract's input field names, in order (V2 tensors are matched to them).
    contract_fields: list[str]
    #: The contract's output field names, in order (V2 output tensors).
    output_names: list[str]
    #: ``server.tracing``: predict results are annotated on the current span.
    tracing: bool


def http_context(request: Request) -> HttpContext:
    """The :class:`HttpContext` of the app serving ``request``."""
    ctx = request.app.state.http
    assert isinstance(ctx, HttpContext)
    return ctx


class ProvideContext:
    """A router dependency handing a route group's context to its handlers: it sets
    ``request.state.<key>`` to ``value`` (after the router's other dependencies, e.g. the key
    check). It takes only the request, so it adds nothing to the OpenAPI document."""

    __slots__ = ("key", "value")

    def __init__(self, key: str, value: object) -> None:
        self.key = key
        self.value = value

    async def __call__(self, request: Request) -> None:
        setattr(request.state, self.key, self.value)


def route_context(request: Request, key: str, kind: type[_C]) -> _C:
    """The context a :class:`ProvideContext` of the matched router put under ``key``."""
    ctx = getattr(request.state, key, None)
    if not isinstance(ctx, kind):
        raise RuntimeError(f"No {kind.__name__} on the request: its router has no "
                           f"ProvideContext({key!r}, ...) dependency.")
    return ctx


def request_context(request: Request, gateway: Gateway) -> RequestContext:
    """The gateway's view of a request: tenant, subject, sticky key, headers, caller rights."""
    h = request.headers
    principal = getattr(request.state, "principal", None)
    # What the log keeps of the client's own headers is clipped: one request of 2,000
    # instances with a 10 KB header would otherwise store it 2,000 times.
    return RequestContext(
        tenant=_clipped(h.get(gateway.spec.service.tenant_header)),
        subject_id=_clipped(h.get("x-subject-id")),
        sticky_key=h.get(STICKY_HEADER),
        headers=h,
        meta={k: h[k][:MAX_HEADER_KEPT] for k in ("x-request-id", "user-agent") if k in h},
        any_ref=isinstance(principal, Principal) and principal.allows("admin"),
    )


#: Characters of a client's header value kept (tenant, subject, request id, user agent).
MAX_HEADER_KEPT = 256


def _clipped(value: str | None) -> str | None:
    return value if value is None or len(value) <= MAX_HEADER_KEPT else value[:MAX_HEADER_KEPT]


def split_ref(name: str, request: Request, version: str | None = None
              ) -> tuple[str, str | None]:
    """``sentiment@challenger`` / ``sentiment:3`` / V2 version / header -> (name, ref).

    Raises:
        ModelRefError: a malformed reference (400), or two that disagree.
    """
    return request_ref(name, request.headers.get(MODEL_REF_HEADER), version)


async def client_host(ctx: HttpContext, request: Request, model: str,
                      ref: str | None) -> ModelHost:
    """The host a request names, loaded: only a reference the client may address
    (``guards.version_refs``), since naming a version loads it."""
    ctx.gateway.check_ref(model, ref, request_context(request, ctx.gateway))
    return await ctx.gateway.host(model, ref)


class Denied(Exception):
    """Control flow of an info route: the 401/403 answer of the key check."""

    def __init__(self, response: Response) -> None:
        self.response = response


async def info_host(ctx: HttpContext, request: Request, name: str,
                    version: str | None = None) -> tuple[str, ModelHost]:
    """(model, host) an info route describes: the key rule and the reference rule of
    predict apply (describing a version loads it).

    Raises:
        Denied: the key check's answer (401/403).
    """
    if ctx.guard is not None and (denied := await ctx.guard(request)) is not None:
        raise Denied(denied)
    model, ref = split_ref(name, request, version)
    return model, await client_host(ctx, request, model, ref)


__all__ = [
    "STICKY_HEADER",
    "Denied",
    "Guard",
    "HttpContext",
    "ProvideContext",
    "client_host",
    "http_context",
    "info_host",
    "request_context",
    "route_context",
    "split_ref",
]

"""The Ray Serve adapter's parts that need no Ray: the replica tag on every HTTP answer (the
lifespan passed through untouched) and the install hint."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from keelwork.adapters.engines.ray_serve import REPLICA_HEADER, TagReplica, require_ray
from keelwork.errors import MissingExtraError


class _App:
    """An ASGI app recording the scopes it gets and answering HTTP with one header."""

    docs_url = "/docs"

    def __init__(self) -> None:
        self.scopes: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scopes.append(scope["type"])
        if scope["type"] == "lifespan":
            await send({"type": "lifespan.startup.complete"})
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})


def _run(app: Any, scope_type: str) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app({"type": scope_type}, receive, send))
    return sent


def test_every_http_answer_names_its_replica() -> None:
    inner = _App()
    tagged = TagReplica(inner, "r1@host:42")
    start, body = _run(tagged, "http")
    assert start["headers"] == [(b"content-type", b"text/plain"),
                                (REPLICA_HEADER.encode(), b"r1@host:42")]
    assert body == {"type": "http.response.body", "body": b"ok"}
    # The lifespan reaches the app as it is: its start-up runs in the replica.
    assert _run(tagged, "lifespan") == [{"type": "lifespan.startup.complete"}]
    assert inner.scopes == ["http", "lifespan"]
    assert tagged.docs_url == "/docs"  # what Serve asks its ingress for reaches the app


def test_without_ray_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray.serve", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'keelwork\[ray\]'") as caught:
        require_ray()
    assert caught.value.extra == "ray"

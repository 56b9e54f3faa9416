"""The body guards: one limit and one message for both framings, a deadline for slow bodies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from keelwork.interfaces.http.errors import response_for
from keelwork.interfaces.http.limits import BodyLimitMiddleware, read_json

LIMIT = 1000


class Item(BaseModel):
    x: list[int]


def _app() -> Any:
    app = FastAPI()

    @app.post("/raw")  # reads the body itself (the feedback route's way)
    async def raw(request: Request) -> Response:
        try:
            body = await read_json(request, 8 * 1024 * 1024)  # a larger limit of its own
        except Exception as exc:
            return response_for(exc)
        return Response(orjson.dumps({"n": len(body)}), media_type="application/json")

    @app.post("/model")  # FastAPI parses the body (it turns read failures into a 400)
    async def model(item: Item) -> dict[str, int]:
        return {"n": len(item.x)}

    @app.get("/get")
    async def get() -> dict[str, bool]:
        return {"ok": True}

    return BodyLimitMiddleware(app, max_bytes=LIMIT, read_timeout_s=0.5)


async def _call(app: Any, path: str, chunks: Sequence[bytes], *, length: bool,
                delay: float = 0.0, method: str = "POST") -> tuple[int, dict[str, str], Any]:
    headers = [(b"content-type", b"application/json")]
    if length:
        headers.append((b"content-length", str(sum(map(len, chunks))).encode()))
    else:
        headers.append((b"transfer-encoding", b"chunked"))
    scope = {"type": "http", "method": method, "path": path, "headers": headers,
             "query_string": b"", "root_path": "", "scheme": "http", "http_version": "1.1",
             "server": ("t", 80), "client": ("c", 1)}
    queue = list(chunks)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if not queue:
            await asyncio.sleep(3600)  # a client that sends nothing more
        if delay:
            await asyncio.sleep(delay)
        body = queue.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(queue)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(app(scope, receive, send), 10)
    start = next(m for m in sent if m["type"] == "http.response.start")
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1  # one answer, never two
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    heads = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], heads, orjson.loads(body)


def _json(n: int) -> bytes:
    return orjson.dumps({"x": [1] * n})


@pytest.mark.parametrize("path", ["/raw", "/model"])
def test_one_limit_one_message_for_both_framings(path: str) -> None:
    big = _json(LIMIT)  # > LIMIT bytes
    chunks = [big[i:i + 100] for i in range(0, len(big), 100)]

    async def main() -> None:
        app = _app()
        with_length = await _call(app, path, [big], length=True)
        chunked = await _call(app, path, chunks, length=False)
        for status, _, body in (with_length, chunked):
            assert status == 413
            assert "guards.max_body_bytes" in body["error"] and str(LIMIT) in body["error"]
            assert body["details"][0]["path"] == "body"
            assert body["details"][0]["rule"] == "max_bytes"
        assert with_length[2]["error"] == chunked[2]["error"]
        small = _json(10)
        assert (await _call(app, path, [small[:5], small[5:]], length=False))[0] == 200
        assert (await _call(app, path, [small], length=True))[0] == 200

    asyncio.run(main())


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "chunked"])
def test_a_body_that_trickles_in_is_answered_408(length: bool) -> None:
    body = _json(20)
    trickle = [body[i:i + 1] for i in range(len(body))]  # 1 byte per 0.1 s: ~7 s in all

    async def main() -> None:
        app = _app()
        started = time.monotonic()
        status, headers, answer = await _call(app, "/raw", trickle, length=length, delay=0.1)
        took = time.monotonic() - started
        assert status == 408
        assert 0.4 <= took < 2.0
        assert headers["connection"] == "close"
        assert "guards.body_read_timeout_s" in answer["error"]
        assert answer["details"][0]["rule"] == "read_timeout"
        # a body that arrives in time, in pieces, is served
        quick = [body[:10], body[10:]]
        assert (await _call(app, "/model", quick, length=length, delay=0.05))[0] == 200

    asyncio.run(main())


def test_a_request_without_a_body_is_never_timed() -> None:
    async def main() -> None:
        app = _app()
        status, _, answer = await _call(app, "/get", [b""], length=True, method="GET")
        assert (status, answer) == (200, {"ok": True})

    asyncio.run(main())

"""uvicorn's protocols with ``guards.header_read_timeout_s``: a connection that sends no whole
request head in time (silent, trickling, or trickling its next head after an answer) is
closed; a request whose head arrives in time is answered, and its body is not cut by it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from keelwork.interfaces.http.head_deadline import (
    MAX_HEAD_BYTES,
    H11HeadDeadline,
    HeadDeadline,
    HttpToolsHeadDeadline,
    head_deadline_protocol,
    set_header_read_timeout,
    set_max_connections,
)

TIMEOUT_S = 0.6
#: Both of uvicorn's protocols, with the deadline and the bound.
PROTOCOLS = pytest.mark.parametrize("protocol", [
    H11HeadDeadline,
    pytest.param(HttpToolsHeadDeadline, marks=pytest.mark.skipif(
        HttpToolsHeadDeadline is None, reason="httptools is not installed"))])
HEAD = b"POST / HTTP/1.1\r\nHost: x\r\n"


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    answer = b"got %d" % len(body)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"%d" % len(answer))]})
    await send({"type": "http.response.body", "body": answer})


def _closed_after(port: int, first: bytes, then: bytes | None, wait_s: float) -> float | None:
    """Send ``first`` (a whole request: then the start of the next head once answered), then
    ``then`` every 0.1 s (None: nothing); seconds until the server closed the connection
    (from the opening or the answer; None: open after ``wait_s``)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(first)
    if first.endswith(b"\r\n\r\n"):  # a whole request: its answer first
        sock.settimeout(2)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.sendall(HEAD)
    sock.setblocking(False)
    started = time.monotonic()
    try:
        while time.monotonic() - started < wait_s:
            time.sleep(0.1)
            try:
                if then is not None:
                    sock.send(then)
                if sock.recv(65536) == b"":
                    return time.monotonic() - started
            except BlockingIOError:
                continue
            except OSError:
                return time.monotonic() - started
        return None
    finally:
        sock.close()


@contextlib.contextmanager
def _serving(app: Any, protocol: Any) -> Iterator[int]:
    """uvicorn serving ``app`` with ``protocol`` on a thread; yields its port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, http=protocol,
                                           log_level="error", lifespan="off"))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=lambda: loop.run_until_complete(server.serve()))
    thread.start()
    try:
        while not server.started:
            time.sleep(0.02)
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
        loop.close()


@PROTOCOLS
def test_heads_that_do_not_arrive_in_time_close_the_connection(protocol: Any) -> None:
    set_header_read_timeout(TIMEOUT_S)
    try:
        with _serving(_app, protocol) as port:
            _heads_in_time(port)
    finally:
        set_header_read_timeout(10.0)


def _heads_in_time(port: int) -> None:
    """Silent, trickling and late heads closed in time; a slow body after a timely head
    answered; a head past MAX_HEAD_BYTES refused."""
    for first, then in ((b"", None), (HEAD, b"x-slow: 1\r\n"),
                        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"x-slow: 1\r\n")):
        after = _closed_after(port, first, then, 3)
        assert after is not None and TIMEOUT_S - 0.2 < after < TIMEOUT_S + 1.5, (first, after)
    # a head in time, then a body slower than the head deadline: answered whole
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(HEAD + b"Content-Length: 10\r\n\r\n")
    for _ in range(10):
        time.sleep(TIMEOUT_S / 5)
        sock.sendall(b"a")
    sock.settimeout(2)
    answer = b""
    while not answer.endswith(b"got 10") and (part := sock.recv(65536)):
        answer += part
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"got 10"), answer
    sock.close()
    # a head within the bound is answered; one past it is refused and closed (431; h11
    # refuses with 400 once 16 KiB of a head are buffered incomplete)
    pad = b"x-pad: " + b"a" * 1000 + b"\r\n"
    for lines, fits in ((MAX_HEAD_BYTES // len(pad) - 2, True),
                        (4 * MAX_HEAD_BYTES // len(pad), False)):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.settimeout(2)
        with contextlib.suppress(OSError):  # closed while we were still sending: refused
            sock.sendall(HEAD + pad * lines + b"Content-Length: 0\r\n\r\n")
        answer = sock.recv(65536)
        sock.close()
        if fits:
            assert answer.startswith(b"HTTP/1.1 200"), answer[:100]
        else:
            assert answer.startswith((b"HTTP/1.1 431", b"HTTP/1.1 400")), answer[:100]
            assert b"connection: close" in answer.lower()


def test_the_protocol_is_the_one_uvicorn_would_pick() -> None:
    expected = H11HeadDeadline if HttpToolsHeadDeadline is None else HttpToolsHeadDeadline
    assert head_deadline_protocol() is expected
    assert issubclass(expected, HeadDeadline) and HeadDeadline.timeout_s == 10.0


def _ask(sock: socket.socket, path: str) -> bytes:
    """``GET path`` on ``sock``: the whole answer (empty: the connection closed)."""
    sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.settimeout(2)
    answer = b""
    with contextlib.suppress(OSError):
        while b"\r\n\r\n" not in answer or not answer.endswith((b"got 0", b"}]}")):
            part = sock.recv(65536)
            if not part:
                break
            answer += part
    return answer


@PROTOCOLS
def test_connections_past_the_bound_are_answered_503_and_closed(protocol: Any) -> None:
    """guards.max_connections: the connections open up to the bound are served, kept alive;
    one more is answered 503 (Retry-After, connection: close) and closed without its request
    reaching the app; once one closes, a new one is served."""
    calls: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        calls.append(scope["path"])
        await _app(scope, receive, send)

    set_max_connections(3)
    try:
        with _serving(app, protocol) as port:
            held = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
            for i, sock in enumerate(held):
                assert _ask(sock, f"/held{i}").startswith(b"HTTP/1.1 200"), i
            extra = socket.create_connection(("127.0.0.1", port))
            answer = _ask(extra, "/extra")
            assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
            head = answer.split(b"\r\n\r\n")[0].lower()
            assert b"retry-after: 1" in head and b"connection: close" in head
            assert b"guards.max_connections: 3" in answer
            extra.settimeout(2)
            with contextlib.suppress(OSError):
                assert extra.recv(65536) == b""  # closed by the server
            extra.close()
            assert "/extra" not in calls
            for i, sock in enumerate(held):  # the held ones are still served
                assert _ask(sock, f"/again{i}").startswith(b"HTTP/1.1 200"), i
            held.pop().close()
            time.sleep(0.2)
            fresh = socket.create_connection(("127.0.0.1", port))
            assert _ask(fresh, "/fresh").startswith(b"HTTP/1.1 200")
            for sock in [*held, fresh]:
                sock.close()
    finally:
        set_max_connections(1024)

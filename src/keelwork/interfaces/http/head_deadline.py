"""``guards.header_read_timeout_s`` on uvicorn: a connection must deliver a whole request head
(request line and headers) within that many seconds of opening, or of its previous answer when
it is kept alive; otherwise it is closed.

uvicorn has no such deadline. A connection that sends nothing, or sends its headers a byte at a
time (slowloris), is held for as long as the client likes: its keep-alive timer only runs
between requests, and any byte received stops it. Enough such connections use up the server's
file descriptors and shut real clients out. The protocols here are uvicorn's own (httptools
where installed, as uvicorn's ``auto`` picks it, else h11) with one timer per connection,
armed when the connection opens and after each answer that leaves it open, disarmed when a
head is complete, and a bound on a head's size (:data:`MAX_HEAD_BYTES`); a request's body has
its own deadline (``guards.body_read_timeout_s``,
:mod:`keelwork.interfaces.http.limits`).

The same protocols bound the connections a process holds open (``guards.max_connections``):
uvicorn takes every connection the kernel hands it. One opened past the bound is answered 503
(``Retry-After: 1``, ``connection: close``) and closed at once, without reading it, as nginx's
``limit_conn`` answers, so its file descriptor is freed and the connections already open are
served; the refusals are logged, at most once a minute.

granian's front has both built in (its ``header_read_timeout`` and its ``backpressure``, which
accepts no connection past the bound until one closes; set from the same fields by
:mod:`keelwork.adapters.engines.granian_front`).

Both are set once per process (:func:`apply_connection_guards`): ``keel serve`` sets them
before uvicorn starts, and each worker process of ``--workers N`` and of the fast engines'
admin app sets them from the keel.yaml it serves, as its app is built.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from keelwork.errors import ErrorDetail
from keelwork.interfaces.http.errors import error_response

if TYPE_CHECKING:
    from keelwork.spec.model import GuardsSection

log = logging.getLogger("keelwork.connections")

#: What uvicorn passes as ``http=``: the protocol class of every connection.
ProtocolClass = type[asyncio.Protocol]

#: The largest request head (request target and headers) taken, in bytes: past it, 431 and
#: the connection closed. uvicorn's httptools protocol has no bound of its own (a client could
#: send headers until the server runs out of memory); its h11 protocol refuses a head once
#: 16 KiB of it are buffered incomplete (``h11_max_incomplete_event_size``: a head that comes
#: whole in one read, at most 256 KiB, is taken), granian's front at its 400 KiB read buffer.
MAX_HEAD_BYTES = 65_536
_TOO_LARGE = (f"The request head is larger than {MAX_HEAD_BYTES} bytes.").encode()
TOO_LARGE_ANSWER = (b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                    b"content-type: text/plain; charset=utf-8\r\n"
                    b"content-length: " + str(len(_TOO_LARGE)).encode() + b"\r\n"
                    b"connection: close\r\n\r\n" + _TOO_LARGE)


def busy_answer(max_connections: int) -> bytes:
    """The 503 a connection opened past ``max_connections`` gets, in keelwork's error body."""
    body = bytes(error_response(
        503, f"The server holds its most connections (guards.max_connections: "
        f"{max_connections}); retry shortly.",
        [ErrorDetail("connection", "max_connections", max_connections)]).body)
    return (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
            b"retry-after: 1\r\ncontent-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + body)


class HeadDeadline(asyncio.BaseProtocol):
    """The per-connection timer, mixed into one of uvicorn's HTTP protocols (first in the
    bases: its ``connection_made`` and ``connection_lost`` wrap the protocol's)."""

    #: Seconds a connection has for a whole request head (:func:`apply_connection_guards`).
    timeout_s: float = 10.0
    #: Connections this process holds open at once; one more is answered 503 and closed.
    max_connections: int = 1024
    busy: bytes = busy_answer(1024)
    #: Connections refused since the last log line, and when that line was written.
    refused = 0
    refused_logged = 0.0
    connections: set[Any]
    _head_timer: asyncio.TimerHandle | None = None
    _head_bytes = 0
    #: The head went past :data:`MAX_HEAD_BYTES`: answered 431, closing, nothing more parsed.
    too_large = False
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # (uvicorn adds it to the server's connections)
        if len(self.connections) > self.max_connections:
            self.too_large = True  # nothing it sends is parsed
            transport.write(self.busy)
            transport.close()
            HeadDeadline.refused += 1
            now = time.monotonic()
            if now - HeadDeadline.refused_logged >= 60.0:
                log.warning("%d connection(s) refused with 503: this process holds its most "
                            "(guards.max_connections: %d)", HeadDeadline.refused,
                            self.max_connections)
                HeadDeadline.refused, HeadDeadline.refused_logged = 0, now
            return
        self.arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm()
        super().connection_lost(exc)

    def arm(self) -> None:
        """Start (or restart) the wait for the next request head."""
        self.disarm()
        self._head_timer = self.loop.call_later(self.timeout_s, self._too_slow)

    def disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def grew(self, size: int) -> bool:
        """Count ``size`` more bytes of the current head; past :data:`MAX_HEAD_BYTES`,
        answer 431 and close. False: the head is too large (drop what comes)."""
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES and not self.too_large:
            self.too_large = True
            self.disarm()
            self.transport.write(TOO_LARGE_ANSWER)
            self.transport.close()
        return not self.too_large

    def _too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()  # as nginx's client_header_timeout: closed, no answer


class H11HeadDeadline(HeadDeadline, H11Protocol):
    """uvicorn's h11 protocol with the head deadline."""

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state in (h11.SEND_BODY, h11.DONE):  # the head is in
            self.disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self.arm()  # kept alive, no request buffered behind it: wait for the next head


def _httptools_protocol() -> ProtocolClass | None:
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools is not installed: uvicorn would use h11
        return None

    class HttpToolsHeadDeadline(HeadDeadline, HttpToolsProtocol):
        """uvicorn's httptools protocol with the head deadline."""

        def on_message_begin(self) -> None:
            self._head_bytes = 0
            super().on_message_begin()

        def on_url(self, url: bytes) -> None:
            if self.grew(len(url)):
                super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            if self.grew(len(name) + len(value) + 4):  # (": " and CRLF)
                super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self.disarm()
            if not self.too_large:
                super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            if not self.too_large:
                super().on_body(body)

        def on_message_complete(self) -> None:
            if not self.too_large:
                super().on_message_complete()

        def data_received(self, data: bytes) -> None:
            if not self.too_large:  # closing: nothing more is parsed
                super().data_received(data)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and not self.pipeline:
                self.arm()  # kept alive, nothing pipelined behind it: wait for the next head

    HttpToolsHeadDeadline.__module__ = __name__
    HttpToolsHeadDeadline.__qualname__ = "HttpToolsHeadDeadline"
    return HttpToolsHeadDeadline


#: httptools' protocol where httptools is installed (uvicorn's own choice), else None.
HttpToolsHeadDeadline = _httptools_protocol()


def head_deadline_protocol() -> ProtocolClass:
    """The protocol to hand uvicorn as ``http=``: the one uvicorn's ``auto`` would pick, with
    the deadline."""
    return HttpToolsHeadDeadline if HttpToolsHeadDeadline is not None else H11HeadDeadline


def set_header_read_timeout(seconds: float) -> None:
    """Set this process's deadline for a request head (``guards.header_read_timeout_s``)."""
    HeadDeadline.timeout_s = float(seconds)


def set_max_connections(connections: int) -> None:
    """Set the connections this process holds open at once (``guards.max_connections``)."""
    HeadDeadline.max_connections = int(connections)
    HeadDeadline.busy = busy_answer(int(connections))


def apply_connection_guards(guards: GuardsSection) -> str | None:
    """Set this process's head deadline and connection bound from keel.yaml's guards, its
    open-file limit raised to hold the bound (:func:`~keelwork.service.serving.connection_bound`);
    a note when the hard limit leaves room for fewer connections than the default bound.

    Raises:
        SpecError: ``guards.max_connections`` is set past what the hard open-file limit holds.
    """
    from keelwork.service.serving import connection_bound

    connections, note = connection_bound(guards)
    set_header_read_timeout(guards.header_read_timeout_s)
    set_max_connections(connections)
    return note


__all__ = ["MAX_HEAD_BYTES", "H11HeadDeadline", "HeadDeadline", "HttpToolsHeadDeadline",
           "apply_connection_guards", "busy_answer", "head_deadline_protocol",
           "set_header_read_timeout", "set_max_connections"]

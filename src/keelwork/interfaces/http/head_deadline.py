"""``guards.header_read_timeout_s`` on uvicorn: a connection must deliver a whole request head
(request line and headers) within that many seconds of opening, or of its previous answer when
it is kept alive; otherwise it is closed.

uvicorn has no such deadline. A connection that sends nothing, or sends its headers a byte at a
time (slowloris), is held for as long as the client likes: its keep-alive timer only runs
between requests, and any byte received stops it. Enough such connections use up the server's
file descriptors and shut real clients out. The protocols here are uvicorn's own (httptools
where installed, as uvicorn's ``auto`` picks it, else h11) with one timer per connection,
armed when the connection opens and after each answer that leaves it open, disarmed when a
head is complete; a request's body has its own deadline (``guards.body_read_timeout_s``,
:mod:`keelwork.interfaces.http.limits`).

granian's front has the deadline built in (its ``header_read_timeout``, set from the same
field by :mod:`keelwork.adapters.engines.granian_front`).

The deadline is one number per process (:func:`set_header_read_timeout`): ``keel serve`` sets
it before uvicorn starts, and each worker process of ``--workers N`` and of the fast engines'
admin app sets it from the keel.yaml it serves, as its app is built.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

#: What uvicorn passes as ``http=``: the protocol class of every connection.
ProtocolClass = type[asyncio.Protocol]


class HeadDeadline:
    """The per-connection timer, mixed into one of uvicorn's HTTP protocols."""

    #: Seconds a connection has for a whole request head (:func:`set_header_read_timeout`).
    timeout_s: float = 10.0
    _head_timer: asyncio.TimerHandle | None = None
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport

    def arm(self) -> None:
        """Start (or restart) the wait for the next request head."""
        self.disarm()
        self._head_timer = self.loop.call_later(self.timeout_s, self._too_slow)

    def disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()  # as nginx's client_header_timeout: closed, no answer


class H11HeadDeadline(HeadDeadline, H11Protocol):
    """uvicorn's h11 protocol with the head deadline."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm()
        super().connection_lost(exc)

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

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self.arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self.disarm()
            super().connection_lost(exc)

        def on_headers_complete(self) -> None:
            self.disarm()
            super().on_headers_complete()

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


__all__ = ["H11HeadDeadline", "HeadDeadline", "HttpToolsHeadDeadline",
           "head_deadline_protocol", "set_header_read_timeout"]

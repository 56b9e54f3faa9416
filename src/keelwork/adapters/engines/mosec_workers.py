"""The two Mosec workers of ``keel serve --engine mosec``
(:mod:`keelwork.adapters.engines.mosec_front`).

Mosec starts each worker in a process of its own (``spawn``), imports this module there and
builds the class with no arguments; the worker builds its handler from what ``keel serve`` handed
down (:data:`HANDLER_VARIABLE`, the factory, and :data:`MODEL_VARIABLE`, the model).

Mosec answers a refused batch with one status and, for every request of it, the body
``f"{err.msg}: {err}"`` of the exception raised (its coordinator writes it so). keelwork's error
body is a JSON object whose first member is ``"error"``: :func:`refusal` splits the body after
that key, so that Mosec's ``": "`` lands between the key and its value and the client gets
keelwork's JSON body, byte for byte apart from that space.

Importing this module imports Mosec: only the engine's worker processes do.
"""

from __future__ import annotations

import importlib
from typing import Any

from mosec import ClientError, ServerError, ValidationError, Worker
from mosec.errors import MosecError

from keelwork.spec.settings import handed_down
from keelwork.types import BatchHandler

#: The environment variable naming the handler factory (``module:function``) in each worker.
HANDLER_VARIABLE = "_KEELWORK_MOSEC_HANDLER"
#: The environment variable naming the model a worker process serves.
MODEL_VARIABLE = "_KEELWORK_MOSEC_MODEL"

#: What keelwork's JSON error body starts with (``interfaces.http.errors.error_response``).
ERROR_KEY = b'{"error":'


def refusal(status: int, body: bytes) -> MosecError:
    """The Mosec exception that answers ``status`` with ``body`` (keelwork's error JSON).

    Mosec's own statuses: 400 (``ClientError``), 422 (``ValidationError``), else 500
    (``ServerError``): a 503 or 504 of keelwork's comes as 500, its body naming the cause.

    Raises:
        ValueError: ``body`` is not keelwork's error JSON (it does not start with ``"error"``).
    """
    if not body.startswith(ERROR_KEY):
        raise ValueError(f"not a keelwork error body: {body[:40]!r}")
    kind: type[MosecError] = (ClientError if status == 400 else
                              ValidationError if status == 422 else ServerError)
    exc = kind(body[len(ERROR_KEY):].decode())
    exc.msg = ERROR_KEY[:-1].decode()  # the instance's own, not the class's
    return exc


def mosec_body(exc: MosecError) -> bytes:
    """The body Mosec's coordinator answers ``exc`` with (what :func:`refusal` is built for)."""
    text = str(exc).replace("\n", " - ")
    return f"{exc.msg}: {text or exc.msg}".encode()


def _handler() -> BatchHandler:
    factory = handed_down(HANDLER_VARIABLE)
    model = handed_down(MODEL_VARIABLE)
    if not factory or not model:
        raise RuntimeError(f"{HANDLER_VARIABLE} and {MODEL_VARIABLE} are not set: these "
                           "workers are started by `keel serve --engine mosec`.")
    module, _, name = factory.partition(":")
    handler: BatchHandler = getattr(importlib.import_module(module), name)(model)
    return handler


# Without Mosec installed mypy sees Worker as Any (a subclass of Any); with it, Worker's
# __init__ is untyped: the ignores cover both.
class Admit(Worker):  # type: ignore[misc,unused-ignore]
    """Stage 1, one request at a time: parse and check it; refuse it alone or pass it on."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call,unused-ignore]
        self.handler = _handler()

    def deserialize(self, data: bytes) -> bytes:
        return data  # the handler parses: its errors are keelwork's

    def forward(self, data: bytes) -> Any:
        status, out = self.handler.admit(data)
        if status != 200:
            raise refusal(status, out)
        return out


class Answer(Worker):  # type: ignore[misc,unused-ignore]
    """Stage 2, a batch at a time: one gateway call, one body per request."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call,unused-ignore]
        self.handler = _handler()

    def forward(self, data: list[Any]) -> list[bytes]:
        status, bodies = self.handler.answer(data)
        if status != 200:
            raise refusal(status, bodies[0])
        return bodies

    def serialize(self, data: bytes) -> bytes:
        return data  # the handler rendered it


__all__ = ["ERROR_KEY", "HANDLER_VARIABLE", "MODEL_VARIABLE", "Admit", "Answer", "mosec_body",
           "refusal"]

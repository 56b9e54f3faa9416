"""The RSGI app of ``keel serve --engine granian`` (:mod:`keelwork.service.granian_serving`).

granian's worker process imports :data:`app` and calls ``__rsgi_init__`` with its event loop:
the app opens the process's server from what ``keel serve`` handed down, as
:func:`keelwork.interfaces.cli.serve_app.worker_app` does for ``--workers``. Then, per request:

- ``POST /v1/models/<model>:predict``: with ``guards.require_api_key``, the request's key
  checked first (401/403 as on the default engine); the body read chunk by chunk, a body over
  ``guards.max_body_bytes`` (by its Content-Length, or as it arrives) answered 413 and one not
  arrived within ``guards.body_read_timeout_s`` 408, as the default engine answers them,
  without holding more than the limit; the body parsed and the request checked alone (a
  malformed or contract-breaking request is answered its own 400/422, every problem named, its
  refusal counted and logged by the gateway), then its instances join the model's
  :class:`~keelwork.service.batch_predict.BatchQueue`, which predicts, logs and counts a batch at
  a time; the answer is the V1 route's (:func:`~keelwork.interfaces.http.batch_answers.render`).
- ``GET /``: 200 (alive). Anything else: 404 naming the admin port, where keelwork's whole app
  serves health, the Open Inference Protocol, ``/metrics`` and the admin routes.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keelwork.errors import ErrorDetail, KeelworkError
from keelwork.interfaces.http.auth import authenticate
from keelwork.interfaces.http.batch_answers import no_probabilities, parse, refusal, render
from keelwork.interfaces.http.errors import HTTPProblem, error_response
from keelwork.interfaces.http.limits import too_large, too_slow
from keelwork.service.batch_predict import Admitted

if TYPE_CHECKING:
    from keelwork.service.batch_predict import BatchQueue
    from keelwork.types import ApiKeyStoreProtocol

JSON = [("content-type", "application/json")]
_PREFIX, _SUFFIX = "/v1/models/", ":predict"


class RsgiApp:
    """The predict routes of every model of keel.yaml, for granian's RSGI interface."""

    def __init__(self) -> None:
        self.queues: dict[str, BatchQueue] = {}
        self.project_dir: Path | None = None
        self.admin = "the admin port"
        #: ``guards.max_body_bytes``: a larger body is answered 413.
        self.max_body_bytes = 1_048_576
        #: ``guards.body_read_timeout_s``: a body slower than that is answered 408.
        self.body_read_timeout_s = 5.0
        #: The API keys checked on predict (``guards.require_api_key``); None: no check.
        self.keys: ApiKeyStoreProtocol | None = None

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        from keelwork.interfaces.cli.output import configure_logging
        from keelwork.service.granian_serving import open_batch_server
        from keelwork.spec import load_spec
        from keelwork.spec.settings import load_settings, worker_handoff

        raw = worker_handoff()
        if not raw:
            raise RuntimeError("this app is for the worker `keel serve --engine granian` starts.")
        options = json.loads(raw)
        configure_logging(str(options["log_level"]), bool(options["access_log"]))
        resolved = load_spec(Path(options["spec"]))
        server = open_batch_server(resolved, load_settings(), loop)
        self.queues = server.queues
        if resolved.spec.guards.require_api_key:
            self.keys = server.parts.keys
        self.project_dir = resolved.project_dir
        self.max_body_bytes = resolved.spec.guards.max_body_bytes
        self.body_read_timeout_s = resolved.spec.guards.body_read_timeout_s

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":
            return
        path = scope.path
        if scope.method == "POST" and path.startswith(_PREFIX) and path.endswith(_SUFFIX):
            model = path[len(_PREFIX):-len(_SUFFIX)]
            queue = self.queues.get(model)
            if queue is not None:
                if self.keys is not None:
                    try:
                        await authenticate(self.keys, scope.headers, "predict")
                    except HTTPProblem as exc:
                        status, body = refusal(exc, self.project_dir)
                        proto.response_bytes(status, [*JSON, *exc.headers.items()], body)
                        return
                try:
                    raw = await self.body(scope.headers, proto)
                except HTTPProblem as exc:
                    status, body = refusal(exc, self.project_dir)
                    proto.response_bytes(status, [*JSON, *exc.headers.items()], body)
                    return
                status, body = await self.predict(queue, model, raw)
                proto.response_bytes(status, JSON, body)
                return
        if path == "/" and scope.method == "GET":
            proto.response_bytes(200, JSON, b'{"status":"alive"}')
            return
        missing = error_response(404, f"No route {path[:200]} here: this port serves the V1 "
                                 f"predict routes; keelwork's app on {self.admin} serves the "
                                 "rest.", [ErrorDetail("path", "route", path[:200])])
        proto.response_bytes(404, JSON, bytes(missing.body))

    async def body(self, headers: Any, proto: Any) -> bytes:
        """The request's body, read chunk by chunk within the guards.

        Raises:
            HTTPProblem: 413 past ``max_body_bytes`` (its Content-Length says so, or the bytes
                so far), 408 when the whole body has not arrived in ``body_read_timeout_s``.
        """
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise too_large(self.max_body_bytes, int(declared))
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_read_timeout_s):
                async for chunk in proto:
                    size += len(chunk)
                    if size > self.max_body_bytes:
                        raise too_large(self.max_body_bytes, f">{self.max_body_bytes}")
                    chunks.append(chunk)
        except TimeoutError:
            raise too_slow(self.body_read_timeout_s, size) from None
        return b"".join(chunks)

    async def predict(self, queue: BatchQueue, model: str, raw: bytes) -> tuple[int, bytes]:
        """One request: checked alone (or refused), then answered from its batch."""
        predictor = queue.predictor
        try:
            if len(raw) > self.max_body_bytes:
                raise too_large(self.max_body_bytes, len(raw))
            instances, probabilities = parse(raw)
            if probabilities and await predictor.classes() is None:
                raise no_probabilities(model)
            if predictor.breaks_contract(instances):
                await predictor.refuse(instances)  # raises, counted and logged
            return 200, render(await queue.submit(Admitted(instances, probabilities)))
        except (KeelworkError, HTTPProblem) as exc:
            return refusal(exc, self.project_dir)


#: The app granian's worker imports (``keelwork.interfaces.http.rsgi_app:app``).
app = RsgiApp()

__all__ = ["RsgiApp", "app"]

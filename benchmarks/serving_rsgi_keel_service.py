"""An experiment for issue 19: keelwork's batch path behind granian's RSGI interface.

Not an engine: it measures whether granian's Rust HTTP front with ONE lean Python handler per
request (parse, the contract check of that request alone, a 400/422 of its own) and the
gateway once per batch (``keelwork.service.batch_predict.BatchPredictor``: contract, model,
durable sync log, metrics) does better than ``keel serve --engine mosec``, whose per-request
stage is a second Mosec worker process. Unlike Mosec, RSGI hands the handler the request's
headers (API keys could be checked) and lets each request have its own status.

Batching: a request joins the queue; one task takes everything queued (up to 64 requests) the
moment the previous batch is answered (no wait: a lone request goes at once).

Run from a python with keelwork's dependencies and granian (``KEEL_BENCH_SPEC`` names the
keel.yaml; its micro-batching is turned off here)::

    KEEL_BENCH_SPEC=keel.yaml granian --interface rsgi --workers 1 --runtime-threads 1 \
        serving_rsgi_keel_service:app --port 8006
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import orjson

PREDICT_ROUTE = "/v1/models/bench:predict"
MAX_BATCH = 64
JSON = [("content-type", "application/json")]


class App:
    """The RSGI app: the predict route of model ``bench``; everything else 404."""

    def __init__(self) -> None:
        self.queue: list[tuple[Any, asyncio.Future[bytes]]] = []
        self.busy = False

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        from keelwork.interfaces.http.batch_answers import render
        from keelwork.service.batch_predict import BatchPredictor, unbatched
        from keelwork.service.server_parts import open_server
        from keelwork.spec import load_spec
        from keelwork.spec.settings import load_settings

        resolved = unbatched(load_spec(Path(os.environ["KEEL_BENCH_SPEC"])))
        self.project_dir = resolved.project_dir
        self.parts = open_server(resolved, load_settings(), monitor_interval_s=0)
        loop.run_until_complete(self.parts.start())
        gateway = self.parts.service.gateway
        loop.run_until_complete(gateway.start())
        self.predictor = BatchPredictor(gateway, "bench")
        self.render = render
        self.loop = loop

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        from keelwork.errors import KeelworkError
        from keelwork.interfaces.http import jsonbody
        from keelwork.interfaces.http.errors import HTTPProblem, response_for
        from keelwork.interfaces.http.protocols import parse_v1, parse_v1_parameters
        from keelwork.service.batch_predict import Admitted

        if scope.proto != "http":
            return
        if scope.path != PREDICT_ROUTE or scope.method != "POST":
            proto.response_bytes(404 if scope.path != "/" else 200, JSON, b"{}")
            return
        raw = await proto()
        try:
            body = jsonbody.loads(raw)
            instances = parse_v1(body)
            proba = parse_v1_parameters(body)
            if self.predictor.breaks_contract(instances):
                await self.predictor.refuse(instances)
        except (KeelworkError, HTTPProblem) as exc:
            r = response_for(exc, self.project_dir)
            proto.response_bytes(r.status_code, JSON, bytes(r.body))
            return
        fut: asyncio.Future[bytes] = self.loop.create_future()
        self.queue.append((Admitted(instances, proba), fut))
        if not self.busy:
            self.busy = True
            self.loop.create_task(self._drain())
        try:
            out = await fut
        except KeelworkError as exc:
            r = response_for(exc, self.project_dir)
            proto.response_bytes(r.status_code, JSON, bytes(r.body))
            return
        proto.response_bytes(200, JSON, out)

    async def _drain(self) -> None:
        try:
            while self.queue:
                batch, self.queue = self.queue[:MAX_BATCH], self.queue[MAX_BATCH:]
                try:
                    answers = await self.predictor.predict([a for a, _ in batch])
                except Exception as exc:  # every request of the batch fails alike
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for (_, fut), answer in zip(batch, answers, strict=True):
                    if not fut.done():
                        fut.set_result(self.render(answer))
        finally:
            self.busy = False


app = App()
_ = orjson  # the handler renders with keelwork's orjson

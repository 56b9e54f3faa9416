"""An experiment for issue 19: keelwork's guards run once per batch behind Mosec's Rust front.

Not a keelwork engine (yet): it measures the ceiling of ``keel serve --engine mosec``. Mosec
parses HTTP and forms dynamic batches (64, 2 ms) in Rust; this worker hands each whole batch to
keelwork's gateway in ONE ``Gateway.predict`` call, so the contract check, the durable
prediction log (``durability: sync``: the answers wait for the commit; one row per instance)
and the metrics run once per batch, not once per request. Only the valid path is served: a
batch holding an invalid instance fails whole with Mosec's 500 (a real engine must answer each
request its own 422, e.g. by checking each body in ``deserialize``).

It runs on keelwork's python with Mosec installed beside it, outside the shared venv::

    python -m pip install --target /work/bench-venvs/mosec-lib --no-deps "mosec==0.9.8"

Configured by environment variables (``benchmarks/serving.py`` sets them): ``KEEL_BENCH_SPEC``,
the keel.yaml (micro-batching off: Mosec batches); ``PYTHONPATH`` holding keelwork's ``src``
and the Mosec directory. Run:
``KEEL_BENCH_SPEC=keel.yaml python serving_mosec_keel_service.py --port 8005``.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from mosec import Server, Worker

PREDICT_ROUTE = "/v1/models/bench:predict"


class KeelBatch(Worker):
    """One keelwork gateway (models, contract, log, metrics) fed a whole batch per call."""

    def __init__(self) -> None:
        super().__init__()
        from keelwork.service.gateway.context import RequestContext
        from keelwork.service.server_parts import open_server
        from keelwork.spec import load_spec
        from keelwork.spec.settings import load_settings

        resolved = load_spec(Path(os.environ["KEEL_BENCH_SPEC"]))
        self.loop = asyncio.new_event_loop()
        self.parts = open_server(resolved, load_settings(), monitor_interval_s=0)
        self.loop.run_until_complete(self.parts.start())
        self.gateway = self.parts.service.gateway
        self.loop.run_until_complete(self.gateway.start())
        self.context = RequestContext

    def forward(self, data: list[dict[str, Any]]) -> list[dict[str, Any]]:
        sizes = [len(body["instances"]) for body in data]
        rows = [row for body in data for row in body["instances"]]
        result = self.loop.run_until_complete(
            self.gateway.predict("bench", None, rows, self.context()))
        out: list[dict[str, Any]] = []
        at = 0
        for n in sizes:
            out.append({"predictions": result.predictions[at:at + n],
                        "model_name": result.model, "model_version": result.version,
                        "prediction_ids": result.prediction_ids[at:at + n]})
            at += n
        return out

    def serialize(self, data: Any) -> bytes:
        import orjson

        return orjson.dumps(data)


if __name__ == "__main__":
    server = Server()
    server.append_worker(KeelBatch, num=1, max_batch_size=64, max_wait_time=2,
                         route=PREDICT_ROUTE)
    server.run()

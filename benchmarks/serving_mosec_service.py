"""Mosec serving the same model, for ``benchmarks/serving.py``.

Mosec is not a keelwork dependency: it runs from a venv of its own, e.g.::

    python3 -m venv /work/bench-venvs/mosec
    /work/bench-venvs/mosec/bin/pip install "mosec==0.9.*" scikit-learn skops numpy

Mosec's documented form: a :class:`mosec.Worker` whose ``forward`` takes the decoded JSON
bodies of a dynamic batch (``max_batch_size`` 64, ``max_wait_time`` 2 ms, as keelwork's
batching in the benchmark) and returns one answer per body. Mosec's HTTP front is Rust; the
worker is one Python process (Mosec spawns it), so the runner measures the CPU of the whole
process tree. The route is the KServe V1 path the other servers answer, and the body is
byte-for-byte the same ``{"instances": [[...]]}``. There is no input validation and no log:
a malformed instance fails the batch with Mosec's own 500.

Configured by environment variables (the runner sets them): ``KEEL_BENCH_MODEL``, the path of
the ``.skops`` file; ``KEEL_BENCH_BATCH`` (default 64), the largest batch. The port comes from
Mosec's own ``--port`` argument.

Run: ``KEEL_BENCH_MODEL=model.skops python serving_mosec_service.py --port 8003``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import skops.io as sio
from mosec import Server, Worker

PREDICT_ROUTE = "/v1/models/bench:predict"


class Predict(Worker):
    """LogisticRegression on 30 features, loaded from a skops file."""

    def __init__(self) -> None:
        super().__init__()
        path = os.environ["KEEL_BENCH_MODEL"]
        self.model = sio.load(path, trusted=sio.get_untrusted_types(file=path))

    def forward(self, data: list[dict[str, Any]]) -> list[dict[str, list[Any]]]:
        sizes = [len(body["instances"]) for body in data]
        rows = [row for body in data for row in body["instances"]]
        labels = self.model.predict(np.asarray(rows, dtype=float)).tolist()
        out: list[dict[str, list[Any]]] = []
        at = 0
        for n in sizes:
            out.append({"predictions": labels[at:at + n]})
            at += n
        return out


if __name__ == "__main__":
    server = Server()
    server.append_worker(Predict, num=1, max_batch_size=int(os.environ.get("KEEL_BENCH_BATCH",
                                                                           "64")),
                         max_wait_time=2, route=PREDICT_ROUTE)
    server.run()

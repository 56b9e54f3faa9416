"""LitServe serving the same model, for ``benchmarks/serving.py``.

LitServe is not a keelwork dependency: it runs from a venv of its own, e.g.::

    python3 -m venv /work/bench-venvs/litserve
    /work/bench-venvs/litserve/bin/pip install litserve scikit-learn skops numpy

LitServe's documented form: a :class:`litserve.LitAPI` with ``setup``, ``decode_request``,
``predict`` and ``encode_response``, on the KServe V1 path the other servers answer, taking the
byte-for-byte same ``{"instances": [[...]]}``. ``KEEL_BENCH_BATCH`` > 1 turns LitServe's
batching on (``max_batch_size`` that many, ``batch_timeout`` 2 ms, as keelwork's in the
benchmark); 1 turns it off. LitServe runs a uvicorn front process and one inference worker
process on the CPU; the runner measures the CPU of the whole process tree.

Configured by environment variables (the runner sets them): ``KEEL_BENCH_MODEL``, the path of
the ``.skops`` file; ``KEEL_BENCH_PORT``; ``KEEL_BENCH_BATCH`` (default 64).

Run: ``KEEL_BENCH_MODEL=model.skops KEEL_BENCH_PORT=8004 python serving_litserve_service.py``.
"""

from __future__ import annotations

import os
from typing import Any

import litserve as ls
import numpy as np
import skops.io as sio

PREDICT_ROUTE = "/v1/models/bench:predict"
BATCH = int(os.environ.get("KEEL_BENCH_BATCH", "64"))


class BenchAPI(ls.LitAPI):
    """LogisticRegression on 30 features, loaded from a skops file."""

    def setup(self, device: str) -> None:
        path = os.environ["KEEL_BENCH_MODEL"]
        self.model = sio.load(path, trusted=sio.get_untrusted_types(file=path))

    # no annotation on ``request``: LitServe reads it to choose how to parse the body, and a
    # plain ``dict`` annotation would make FastAPI look for a query parameter
    def decode_request(self, request):  # type: ignore[no-untyped-def]
        rows: list[list[float]] = request["instances"]
        return rows

    def batch(self, inputs: list[list[list[float]]]) -> list[list[list[float]]]:
        return inputs  # one list of bodies; predict flattens it

    def predict(self, x: Any) -> Any:
        if BATCH > 1:  # x: the bodies of a batch, each a list of rows
            sizes = [len(rows) for rows in x]
            labels = self.model.predict(
                np.asarray([r for rows in x for r in rows], dtype=float)).tolist()
            out, at = [], 0
            for n in sizes:
                out.append(labels[at:at + n])
                at += n
            return out
        return self.model.predict(np.asarray(x, dtype=float)).tolist()

    def unbatch(self, output: Any) -> Any:
        return output

    def encode_response(self, output: list[Any]) -> dict[str, list[Any]]:
        return {"predictions": output}


if __name__ == "__main__":
    kwargs: dict[str, Any] = {"api_path": PREDICT_ROUTE}
    if BATCH > 1:
        kwargs.update(max_batch_size=BATCH, batch_timeout=0.002)
    server = ls.LitServer(BenchAPI(**kwargs), accelerator="cpu", workers_per_device=1,
                          timeout=30)
    server.run(host="127.0.0.1", port=int(os.environ["KEEL_BENCH_PORT"]), log_level="warning",
               generate_client_file=False)

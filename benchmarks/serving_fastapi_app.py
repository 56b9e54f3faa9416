"""The bare baseline for ``benchmarks/serving.py``: FastAPI + uvicorn calling the same model.

Written the way a competent engineer would write it without keelwork: the skops model loaded
once at start-up, a pydantic body model for the KServe V1 body ``{"instances": [[...]]}``
(FastAPI's usual way to take JSON, and the only input check this server does) and
``model.predict`` on the batch as a numpy array. There is no contract, no prediction log and no
metrics.

Two endpoints, the same code: ``def`` (FastAPI runs it in its thread pool) and ``async def``
(runs on the event loop). ``serving.py`` measures both and takes the faster as the baseline.

Configured by environment variables (the runner sets them):

- ``KEEL_BENCH_MODEL``: path of the ``.skops`` file (required);
- ``KEEL_BENCH_ENDPOINT``: ``sync`` (default) or ``async``.

Run: ``KEEL_BENCH_MODEL=model.skops uvicorn benchmarks.serving_fastapi_app:app --port 8001``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import skops.io as sio
from fastapi import FastAPI
from pydantic import BaseModel


class V1Request(BaseModel):
    """KServe V1 predict body: one row of feature values per instance."""

    instances: list[list[float]]


def load_model(path: str) -> Any:
    """The estimator in ``path``, trusting the types skops lists (our own file)."""
    return sio.load(path, trusted=sio.get_untrusted_types(file=path))


MODEL = load_model(os.environ["KEEL_BENCH_MODEL"])
ENDPOINT = os.environ.get("KEEL_BENCH_ENDPOINT", "sync")
PREDICT_PATH = "/v1/models/bench:predict"

app = FastAPI(title="bare FastAPI baseline")


@app.get("/healthz")
def healthz() -> dict[str, bool]:
    return {"ok": True}


if ENDPOINT == "async":

    @app.post(PREDICT_PATH)
    async def predict_async(body: V1Request) -> dict[str, list[Any]]:
        return {"predictions": MODEL.predict(np.asarray(body.instances)).tolist()}

else:

    @app.post(PREDICT_PATH)
    def predict_sync(body: V1Request) -> dict[str, list[Any]]:
        return {"predictions": MODEL.predict(np.asarray(body.instances)).tolist()}

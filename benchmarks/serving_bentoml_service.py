"""BentoML serving the same model, for ``benchmarks/serving.py``.

BentoML is not a keelwork dependency: it runs from a venv of its own (its pins would otherwise
fight ours), e.g.::

    python3 -m venv /work/bench-venvs/bentoml
    /work/bench-venvs/bentoml/bin/pip install bentoml scikit-learn skops

The service is BentoML's documented 1.2+ form: a ``@bentoml.service`` class that loads the
model once, and a ``def`` API (BentoML runs it in its thread pool) taking the KServe V1 body
``{"instances": [[...]]}`` -- BentoML maps the JSON keys to the API's parameters, so the body
is byte-for-byte the one the other servers get. One worker process, like the others.

Configured by environment variables (the runner sets them): ``KEEL_BENCH_MODEL``, the path of
the ``.skops`` file; ``KEEL_BENCH_ACCESS_LOG=1`` keeps BentoML's per-request access log on (the
runner turns every server's access log off unless told otherwise).

Run: ``KEEL_BENCH_MODEL=model.skops bentoml serve serving_bentoml_service:BenchModel -p 8002``
from the ``benchmarks`` directory.
"""

from __future__ import annotations

import os
from typing import Any

import bentoml
import numpy as np
import skops.io as sio

PREDICT_ROUTE = "/v1/models/bench:predict"


ACCESS_LOG = os.environ.get("KEEL_BENCH_ACCESS_LOG", "0") == "1"


@bentoml.service(workers=1, traffic={"timeout": 30},
                 logging={"access": {"enabled": ACCESS_LOG}})
class BenchModel:
    """LogisticRegression on 30 features, loaded from a skops file."""

    def __init__(self) -> None:
        path = os.environ["KEEL_BENCH_MODEL"]
        self.model = sio.load(path, trusted=sio.get_untrusted_types(file=path))

    @bentoml.api(route=PREDICT_ROUTE)
    def predict(self, instances: list[list[float]]) -> dict[str, list[Any]]:
        return {"predictions": self.model.predict(np.asarray(instances)).tolist()}

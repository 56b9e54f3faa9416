"""A served project with a healthy champion and a registered challenger, for rollout tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from keelwork.errors import KeelworkError
from keelwork.service.assembly import Service, open_service
from keelwork.service.gateway.context import RequestContext
from keelwork.service.gateway.gateway import Gateway
from keelwork.service.registration import register_model
from keelwork.spec.loader import load_spec

FIXTURES = Path(__file__).resolve().parent / "fixtures"

SPEC = """\
service: {{name: rollouts, owners: [t@example.com]}}
models:
  - name: scorer
    runtime: python
    artifact: "faulty_models:good"
    options: {{path: "{fx}"}}
    batching: {{max_batch_size: 32, max_wait_ms: 1}}
    timeout_ms: 10000  # a timeout is no fault under test here (under CPU load a call can stall)
contract:
  inputs:
    - {{name: a, type: float}}
    - {{name: b, type: integer}}
storage: {{url: "{url}"}}
rollout:
  strategy: canary
  steps: [50, 100]
  interval: "{interval}"
  min_requests: {min_requests}
  max_failures: 2
  gates:
    max_error_rate: 0.05
    max_p99_latency_ms: 50
    max_contract_violation_rate: 0.05
    max_prediction_drift: 0.5
"""


def make_project(tmp: Path, url: str | None = None, *, interval: str = "0.2s",
                 min_requests: int = 5) -> Path:
    """keel.yaml in ``tmp`` (store at ``url``, default SQLite in ``tmp``)."""
    url = url or f"sqlite:///{tmp / 'keel.db'}"
    (tmp / "keel.yaml").write_text(SPEC.format(fx=FIXTURES, url=url, interval=interval,
                                               min_requests=min_requests))
    return tmp / "keel.yaml"


def open_project(path: Path, poll_s: float = 0.05) -> Service:
    return open_service(load_spec(path), rollout_poll_s=poll_s)


def register(service: Service, function: str) -> int:
    """Register ``faulty_models:<function>`` as the next version of ``scorer``."""
    mv = register_model(service.registry, "scorer", f"faulty_models:{function}", "python",
                                   options={"path": str(FIXTURES)})
    return mv.version


async def load(gateway: Gateway, seconds: float, workers: int = 32,
               key: Any = None, until: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Send requests for ``seconds``, or until ``until()`` (read in a thread every 0.05 s)
    answers True; count answers per version and failures."""
    by_version: dict[int, int] = {}
    failures: list[str] = []
    stop = time.monotonic() + seconds
    done = asyncio.Event()

    async def watch() -> None:
        while until is not None and time.monotonic() < stop and not done.is_set():
            if await asyncio.to_thread(until):
                done.set()
            else:
                await asyncio.sleep(0.05)

    async def worker(w: int) -> None:
        i = 0
        while time.monotonic() < stop and not done.is_set():
            i += 1
            ctx = RequestContext(sticky_key=None if key is None else f"{key}-{w}-{i}")
            try:
                r = await gateway.predict("scorer", None, [{"a": float(i % 7), "b": w}], ctx)
                by_version[r.version] = by_version.get(r.version, 0) + 1
            except KeelworkError as exc:
                failures.append(type(exc).__name__)
            await asyncio.sleep(0.002)

    await asyncio.gather(watch(), *(worker(w) for w in range(workers)))
    return {"by_version": by_version, "failures": failures}

"""Readiness during a store outage: still 200 (it serves), degraded components named,
``keelwork_degraded`` set, and one log line per component as the outage starts and ends."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from keelwork.adapters.stores.flag_store import FlagStore
from keelwork.adapters.stores.rollout_store import RolloutStore
from keelwork.errors import StoreError
from keelwork.interfaces.http.server import build_server_app
from keelwork.spec import load_spec

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"

SPEC = f"""\
service: {{name: outage, owners: [t@example.com]}}
models:
  - name: adder
    runtime: python
    artifact: "fakes:total"
    options: {{path: "{FIXTURES}"}}
"""


def _degraded(client: TestClient) -> dict[str, float]:
    text = client.get("/metrics").text
    return {s.labels["component"]: s.value for f in text_string_to_metric_families(text)
            if f.name == "keelwork_degraded" for s in f.samples}


def _wait(check: object, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_a_store_outage_is_visible_and_logged_once_per_component(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "keel.yaml").write_text(SPEC)
    app = build_server_app(load_spec(tmp_path / "keel.yaml"), freeze_gc=False,
                           monitor_interval_s=0)
    caplog.set_level(logging.INFO, logger="keelwork")
    with TestClient(app) as client:
        ready = client.get("/v2/health/ready")
        assert ready.status_code == 200
        assert ready.json()["degraded"] == []
        assert set(ready.json()["components"]) == {"prediction_log", "rollout_controller",
                                                   "flags"}
        assert set(_degraded(client).values()) == {0.0}

        def down(_self: object) -> int:
            raise StoreError("The store failed: connection refused")

        monkeypatch.setattr(RolloutStore, "revision", down)
        monkeypatch.setattr(FlagStore, "revision", down)
        _wait(lambda: client.get("/v2/health/ready").json()["degraded"]
              == ["flags", "rollout_controller"])
        time.sleep(2.5)  # ~10 controller polls and ~2 flag polls more
        ready = client.get("/v2/health/ready")
        assert ready.status_code == 200  # it still serves
        body = ready.json()
        assert body["components"]["rollout_controller"]["failures"] >= 8
        assert "connection refused" in body["components"]["flags"]["last_error"]
        assert _degraded(client) == {"flags": 1.0, "prediction_log": 0.0,
                                     "rollout_controller": 1.0}
        assert client.post("/v1/models/adder:predict",
                           json={"instances": [{"a": 1}]}).status_code == 200
        monkeypatch.undo()
        _wait(lambda: client.get("/v2/health/ready").json()["degraded"] == [])
        assert set(_degraded(client).values()) == {0.0}
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    for component in ("rollout controller", "flag reloader"):
        mine = [line for line in lines if line.startswith(f"{component}:")]
        assert len(mine) == 2, lines
        assert "connection refused" in mine[0] and "working again" in mine[1]

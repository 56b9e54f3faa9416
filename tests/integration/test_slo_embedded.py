"""The SLOs evaluated by a real `keel serve`, without Prometheus: a model that fails every
request burns the availability budget, and the server itself pages its owner's webhook on
loopback, once (the alert state lives in the store; further evaluations send nothing new).

And the scripted incident of tests/alert_scenario.py (errors, then slowness) with
``slos.evaluated_by: server``: the same notifications at the same sinks (webhook, Slack JSON,
e-mail) as Prometheus and Alertmanager send in tests/integration/test_slo_alertmanager_e2e.py,
checked by the same :func:`alert_scenario.check`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from alert_scenario import Faults, check, run_scenario, write_spec
from alert_sinks import Sinks
from live_server import FIXTURES, free_port, running_server

#: One page tier of 2m/1m: every request failing burns it at once; evaluated every second.
SPEC = """\
service: {{name: live-slo, owners: ["http://127.0.0.1:{port}/hook"]}}
models:
  - name: broken
    runtime: python
    artifact: "faulty_models:errors"
    options: {{path: "{fx}"}}
slos:
  availability: 0.99
  window: 1d
  min_events: 5
  evaluation_interval: 1s
  tiers:
    - {{name: fast, severity: page, long_window: 2m, short_window: 1m, burn_rate: 14.4}}
"""


class Hook:
    """A webhook receiver on loopback keeping every JSON body posted to it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                with hook.lock:
                    hook.bodies.append(body)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self) -> list[tuple[str, str]]:
        with self.lock:
            return [(a["labels"]["alertname"], a["status"])
                    for b in self.bodies for a in b["alerts"]]


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.server.shutdown()
    h.server.server_close()


@pytest.mark.slow
def test_the_server_pages_its_owner_itself(tmp_path: Path, hook: Hook) -> None:
    (tmp_path / "keel.yaml").write_text(SPEC.format(port=hook.port, fx=FIXTURES))
    with running_server(tmp_path) as base, httpx.Client(base_url=base, timeout=10) as client:
        for _ in range(10):
            r = client.post("/v1/models/broken:predict", json={"instances": [[1.0, 2.0]]})
            assert r.status_code == 500
        deadline = time.monotonic() + 40  # generous: a loaded 2-CPU machine
        while time.monotonic() < deadline and not hook.alerts():
            time.sleep(0.2)
        assert hook.alerts() == [("KeelworkAvailabilityBurnFast", "firing")]
        [body] = hook.bodies
        alert = body["alerts"][0]
        assert alert["labels"] == {"alertname": "KeelworkAvailabilityBurnFast",
                                   "model": "broken", "service": "live-slo",
                                   "severity": "page", "slo": "availability", "tier": "fast"}
        assert "error budget is already gone" in alert["annotations"]["description"]
        # more evaluations while it keeps firing tell nobody again
        time.sleep(3)
        assert hook.alerts() == [("KeelworkAvailabilityBurnFast", "firing")]
        metrics = client.get("/metrics").text
        assert 'keelwork_notifications_sent_total{receiver="live-slo-owners"} 1.0' in metrics


@pytest.fixture
def sinks() -> Iterator[Sinks]:
    made = Sinks()
    yield made
    made.close()


@pytest.mark.slow
def test_the_server_notifies_as_prometheus_and_alertmanager_do(
        tmp_path: Path, sinks: Sinks, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    write_spec(project, sinks, "server")
    faults = Faults(tmp_path / "fault")
    for name, value in Faults.env(faults.path).items():
        monkeypatch.setenv(name, value)
    with running_server(project) as base:
        outcome = run_scenario(base, faults, sinks)
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
    print(f"scenario took {outcome.seconds:.0f} s\n" + "\n".join(outcome.timeline))
    check(outcome, sinks)
    # six notices (3 alerts x firing, resolved) to each of the owners' three targets
    assert 'keelwork_notifications_sent_total{receiver="e2e-slo-owners"} 18.0' in metrics

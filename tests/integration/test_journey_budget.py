"""Journey: a fresh ``keel init`` project gets a monthly budget; ``keel serve`` itself tells its
owner's webhook when the budget is half spent and when it is gone, in plain words, once; a
restarted server does not tell again; ``keel cost report`` reads the month back.

keel init -> a budget with no price is refused (path and line) -> cost section with a
price, a budget and the owner's webhook -> keel spec validate -> keel serve -> traffic ->
webhook -> restart, more rounds -> nothing new -> keel cost report.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from journey import keel, set_section
from live_server import free_port, running_server

#: Each answer costs 0.1 EUR: five answers spend half the budget of 1 EUR.
COST = """\
cost:
  currency: EUR
  per_1k_predictions: 100
  monthly_budget: 1
  alert_at: [0.5, 1.0]
  evaluation_interval: 1s
"""


class Hook:
    """A webhook receiver on loopback keeping every JSON body posted to it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.alerts: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                with hook.lock:
                    hook.alerts.extend(body["alerts"])
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def seen(self) -> list[tuple[str, str]]:
        with self.lock:
            return sorted((a["labels"]["alertname"], a["status"]) for a in self.alerts)

    def wait_for(self, name: str, timeout: float = 40.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout  # generous: a loaded 2-CPU machine
        while time.monotonic() < deadline:
            with self.lock:
                found = [a for a in self.alerts if a["labels"]["alertname"] == name]
            if found:
                return found[0]
            time.sleep(0.2)
        raise AssertionError(f"{name} never reached the webhook; got {self.seen()}")


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.server.shutdown()
    h.server.server_close()


def _predict(base: str, n: int) -> None:
    with httpx.Client(base_url=base, timeout=10) as client:
        for i in range(n):
            r = client.post("/v1/models/sentiment:predict",
                            json={"instances": [{"review": f"great food, bought {i} times"}]})
            assert r.status_code == 200, r.text


@pytest.mark.slow
def test_a_budget_pages_its_owner_once_across_a_restart(tmp_path: Path, hook: Hook) -> None:
    keel(tmp_path, "init", "proj")
    project = tmp_path / "proj"
    spec = project / "keel.yaml"

    unpriced = set_section(spec.read_text(), "cost", "cost:\n  monthly_budget: 500\n")
    spec.with_name("bad.yaml").write_text(unpriced)
    refused = keel(project, "spec", "validate", "bad.yaml", check=False)
    said = " ".join(refused.stderr.split())
    assert refused.returncode == 2 and re.search(r"cost\.monthly_budget \(line \d+\): a "
                                                 r"budget needs a price", said), said

    text = spec.read_text().replace("owners: [ml-team@example.com]",
                                    f'owners: ["http://127.0.0.1:{hook.port}/hook"]')
    spec.write_text(set_section(text, "cost", COST))
    keel(project, "spec", "validate")

    with running_server(project) as base:
        _predict(base, 6)  # 0.6 EUR
        half = hook.wait_for("KeelworkCostBudgetSpent50")
        assert half["status"] == "firing"
        assert half["labels"] == {"alertname": "KeelworkCostBudgetSpent50",
                                  "service": "review-sentiment", "severity": "ticket",
                                  "slo": "cost_budget", "tier": "50%"}
        words = half["annotations"]["description"]
        assert "the monthly budget of 1 EUR (calendar month, UTC)" in words, words
        assert "60% already spent" in words and "is spent on " in words, words
        assert words.endswith("Runbook: runbooks/KeelworkCostBudgetSpent50.md")
        forecast = hook.wait_for("KeelworkCostBudgetForecast")
        assert forecast["status"] == "firing"

        _predict(base, 5)  # 1.1 EUR: gone
        gone = hook.wait_for("KeelworkCostBudgetSpent100")
        assert gone["labels"]["severity"] == "page"
        assert "is already spent; 110% spent" in gone["annotations"]["description"]
        time.sleep(3)  # more rounds tell nobody again
        told = hook.seen()
        metrics = httpx.get(f"{base}/metrics").text
        month = re.search(r'keelwork_cost_month_to_date\{currency="EUR",model="sentiment",'
                          r'version="1"\} (\S+)', metrics)
        assert month is not None and float(month.group(1)) == pytest.approx(1.1)

    with running_server(project):  # a restart: the alert state is in the store
        time.sleep(4)  # four rounds at least
    assert hook.seen() == told
    assert ("KeelworkCostBudgetForecast", "resolved") in told  # the 100% alert took over

    report = json.loads(keel(project, "cost", "report", "--json").stdout)
    assert report["spent"] == pytest.approx(1.1)
    assert report["share"] == pytest.approx(1.1)
    assert report["versions"][0]["predictions"] == 11

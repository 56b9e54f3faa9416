"""End to end on loopback with the real Prometheus and Alertmanager (Debian packages
``prometheus`` and ``prometheus-alertmanager``): a real ``keel serve`` answers traffic with
injected errors and then slowness (tests/alert_scenario.py); Prometheus scrapes its /metrics
every second and evaluates the rules of ``keel slo rules``; Alertmanager, configured by
``keel alerts config``, notifies a webhook receiver, a Slack-compatible endpoint and an SMTP
server (aiosmtpd), all local. Per SLO: one page when it burns (the slower tier inhibited), one
resolved notice when it stops, nothing during the healthy control; the server itself notifies
nobody (``slos.evaluated_by: prometheus``).

The embedded counterpart, the same scenario with ``slos.evaluated_by: server``, is in
tests/integration/test_slo_embedded.py. Skipped without the binaries, failed under ``$CI``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from alert_scenario import EXPECTED, Faults, check, run_scenario, write_spec
from alert_sinks import Sinks, free_port
from keelwork.interfaces.cli.main import app
from live_server import running_server
from prom import daemon, run, tool

PROMETHEUS_YML = """\
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: ["{rules}/*.rules.yml"]
scrape_configs:
  - job_name: keel
    static_configs: [{{targets: ["{server}"]}}]
alerting:
  alertmanagers:
    - static_configs: [{{targets: ["127.0.0.1:{alertmanager}"]}}]
"""


@pytest.fixture
def sinks() -> Iterator[Sinks]:
    made = Sinks()
    yield made
    made.close()


def _cli(*argv: str) -> str:
    result = CliRunner().invoke(app, list(argv))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
def test_prometheus_and_alertmanager_page_once_per_incident_and_resolve(
        tmp_path: Path, sinks: Sinks, monkeypatch: pytest.MonkeyPatch) -> None:
    prometheus = tool("prometheus")
    alertmanager = tool("alertmanager", "prometheus-alertmanager")
    amtool = tool("amtool")
    project = tmp_path / "project"
    write_spec(project, sinks, "prometheus")
    rules, am_yml = project / "rules", project / "alertmanager.yml"
    _cli("slo", "rules", "--project", str(project), "--out", str(rules))
    # the timing only: Alertmanager's defaults (30s, 5m) would hold a resolved notice 5 min
    _cli("alerts", "config", "--spec", str(project), "--out", str(am_yml),
         "--group-wait", "1s", "--group-interval", "2s")
    assert "SUCCESS" in run(amtool, "check-config", str(am_yml), cwd=tmp_path)

    faults = Faults(tmp_path / "fault")
    for name, value in Faults.env(faults.path).items():
        monkeypatch.setenv(name, value)
    am_port, prom_port = free_port(), free_port()
    with running_server(project) as base:
        server = base.removeprefix("http://")
        (tmp_path / "prometheus.yml").write_text(PROMETHEUS_YML.format(
            rules=rules, server=server, alertmanager=am_port))
        am_argv = [alertmanager, f"--config.file={am_yml}",
                   f"--storage.path={tmp_path / 'am-data'}",
                   f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="]
        prom_argv = [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                     f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                     f"--web.listen-address=127.0.0.1:{prom_port}"]
        with daemon(am_argv, f"http://127.0.0.1:{am_port}/-/ready", tmp_path / "am.log"), \
                daemon(prom_argv, f"http://127.0.0.1:{prom_port}/-/ready",
                       tmp_path / "prom.log"):
            _scraping(prom_port)
            outcome = run_scenario(base, faults, sinks)
            metrics = httpx.get(f"{base}/metrics", timeout=10).text
            firing, pending = (_ever(prom_port, state) for state in ("firing", "pending"))
    print(f"scenario took {outcome.seconds:.0f} s; Prometheus fired {sorted(firing)}, held "
          f"{sorted(pending - firing)}\n" + "\n".join(outcome.timeline))
    check(outcome, sinks)
    # Prometheus itself fired the fast tiers only: nothing was left to Alertmanager to mute
    assert firing == set(EXPECTED), firing
    assert "keelwork_notifications_sent_total{" not in metrics  # Alertmanager told them


def _ever(port: int, state: str) -> set[str]:
    """The alerts Prometheus had in ``state`` (firing, pending) over the last 10 minutes."""
    query = f'max by (alertname) (max_over_time(ALERTS{{alertstate="{state}"}}[10m]))'
    got = httpx.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": query},
                    timeout=10).json()
    assert got["status"] == "success", got
    return {r["metric"]["alertname"] for r in got["data"]["result"]}


def _scraping(port: int, timeout_s: float = 30.0) -> None:
    """Wait until Prometheus has scraped the server once and loaded every rule group."""
    deadline = time.monotonic() + timeout_s
    api = f"http://127.0.0.1:{port}/api/v1"
    while time.monotonic() < deadline:
        targets = httpx.get(f"{api}/targets", timeout=5).json()["data"]["activeTargets"]
        groups = httpx.get(f"{api}/rules", timeout=5).json()["data"]["groups"]
        if targets and targets[0]["health"] == "up" and len(groups) == 3:
            return
        time.sleep(0.5)
    raise AssertionError(f"Prometheus does not scrape the server: {targets}, "
                         f"{len(groups)} rule group(s)")

"""One scripted SLO incident against a real ``keel serve``, shared by the end-to-end test with
Prometheus and Alertmanager (tests/integration/test_slo_alertmanager_e2e.py) and the one where
the server evaluates its SLOs itself (tests/integration/test_slo_embedded.py): the same
keel.yaml (but for ``slos.evaluated_by``), traffic, faults and expected notifications.

The scenario, ~10 requests/s throughout:

1. ``control``: healthy; nobody is notified;
2. ``errors``: every request fails: the availability and error-rate SLOs burn;
3. ``slowness``: answers right but 200 ms late (the p99 objective is 100 ms): the latency SLO
   burns, the error budgets' short windows still hold the failures;
4. ``recovery``: healthy until every alert has resolved, and then until the slower tier's
   short window is clear too (whatever it would send after the fast tier resolved, it has).

Expected, at each sink (webhook, Slack-compatible JSON, e-mail): per SLO, one page from the
fast tier when it starts burning and one resolved notice when it stops, nothing from the slow
tier, nothing during the control. (The slow tier crosses its lower rate first, its long window
holding as little history as the fast one's: it holds for a minute, and the fast tier's burn
keeps it quiet, then and after the fast page resolved.) The owners are the three sinks and
there is no on-call contact, so the pages go to all three.

Each run takes about 2.5 minutes (145 s of scenario). The tiers are the SRE workbook's page
tiers scaled to ``slos.window: 1d`` (what ``keel slo rules`` makes of 1h/5m and 6h/30m: 2m/1m
at 14.4x, 12m/1m at 6x) without the ticket tier, whose 12-minute short window would outlast
the test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from alert_sinks import Sinks
from fixtures.faulty_models import FAULT_FILE_ENV
from live_server import FIXTURES

SERVICE = "e2e-slo"
MODEL = "scored"

SPEC = """\
service:
  name: {service}
  owners: ["oncall@example.com", "{webhook}", "#ml-alerts"]
models:
  - name: {model}
    runtime: python
    artifact: "faulty_models:switchable"
    options: {{path: "{fx}"}}
alerts:
  smtp: {{smarthost: "127.0.0.1:{smtp}", from: keel@example.com}}
  receivers:
    - {{name: chat, kind: slack, url: "{slack}"}}
slos:
  availability: 0.99
  error_rate: 0.01
  latency_p99_ms: 100
  window: 1d
  min_events: 10
  evaluated_by: {evaluated_by}{interval}
  tiers:
    - {{name: fast, severity: page, long_window: 2m, short_window: 1m, burn_rate: 14.4}}
    - {{name: slow, severity: page, long_window: 12m, short_window: 1m, burn_rate: 6}}
"""

#: Per SLO alert, what every sink is told over the scenario (the slow tier: nothing).
EXPECTED = {f"Keelwork{stem}BurnFast": ["firing", "resolved"]
            for stem in ("Availability", "ErrorRate", "LatencyP99")}
#: Which phase starts each alert's burn.
STARTED_BY = {"KeelworkAvailabilityBurnFast": "errors", "KeelworkErrorRateBurnFast": "errors",
              "KeelworkLatencyP99BurnFast": "slowness"}
#: Which phase ends it (its resolved notice comes after that phase started).
ENDED_BY = {"errors": "slowness", "slowness": "recovery"}
#: The phases before the recovery: (name, fault, seconds).
PHASES = (("control", "", 20.0), ("errors", "error", 20.0), ("slowness", "slow", 30.0))
#: Seconds of recovery at least: the 1-minute short windows have emptied, and a notice
#: Alertmanager batches (group_interval) has gone out.
QUIET_AFTER_S = 75.0
#: Seconds of recovery at most, waiting for the resolved notices (a loaded 2-CPU machine).
RECOVERY_MAX_S = 150.0
RATE_PER_S = 10.0


def write_spec(project: Path, sinks: Sinks, evaluated_by: str) -> Path:
    """The scenario's keel.yaml in ``project`` (created), contacts pointing at ``sinks``."""
    project.mkdir(parents=True, exist_ok=True)
    path = project / "keel.yaml"
    path.write_text(SPEC.format(
        service=SERVICE, model=MODEL, fx=FIXTURES, smtp=sinks.smtp.port,
        webhook=sinks.webhook.url(Sinks.WEBHOOK_PATH), slack=sinks.slack.url(Sinks.SLACK_PATH),
        evaluated_by=evaluated_by,
        # the server's own evaluation, every second (Prometheus evaluates at its own interval)
        interval="\n  evaluation_interval: 1s" if evaluated_by == "server" else ""))
    return path


class Faults:
    """The fault file the ``switchable`` model reads on every call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.set("")

    def set(self, fault: str) -> None:
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(fault)
        partial.replace(self.path)  # the model never reads half a word

    @staticmethod
    def env(path: Path) -> dict[str, str]:
        """The server's environment variable naming the file."""
        return {FAULT_FILE_ENV: str(path)}


@dataclass
class Traffic:
    """Requests at a steady pace from a thread, counted by status code."""

    base: str
    rate: float = RATE_PER_S
    codes: dict[int, int] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=10) as client:
            start, k = time.monotonic(), 0
            while not self.stop.is_set():
                try:
                    r = client.post(f"/v1/models/{MODEL}:predict",
                                    json={"instances": [[1.0, 2.0]]})
                    self.codes[r.status_code] = self.codes.get(r.status_code, 0) + 1
                except httpx.TransportError:
                    self.codes[0] = self.codes.get(0, 0) + 1
                k += 1
                wait = start + k / self.rate - time.monotonic()
                if wait > 0:
                    self.stop.wait(wait)

    @contextmanager
    def running(self) -> Iterator[Traffic]:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            thread.join(15)


@dataclass
class Outcome:
    """What the scenario did and what the sinks got."""

    #: Phase name -> when it started (time.time()).
    started: dict[str, float]
    #: Per sink, per alert, the states notified (in order).
    told: dict[str, dict[str, list[str]]]
    #: Requests by HTTP status (0: no answer).
    codes: dict[int, int]
    #: Every notice, as text relative to the control's start (for failure messages).
    timeline: list[str]
    #: Seconds from the control's start to the end of the recovery.
    seconds: float


def _resolved_everywhere(sinks: Sinks) -> bool:
    told = sinks.by_sink()
    return all(told[s].get(alert, [])[-1:] == ["resolved"]
               for s in told for alert in EXPECTED)


def run_scenario(base: str, faults: Faults, sinks: Sinks) -> Outcome:
    """Drive the scenario (see the module doc) against the server at ``base``.

    Raises:
        AssertionError: a sink was told something during the control.
    """
    httpx.post(f"{base}/v1/models/{MODEL}:predict", json={"instances": [[1.0, 2.0]]},
               timeout=10).raise_for_status()  # the model loaded before the clock starts
    started: dict[str, float] = {}
    with Traffic(base).running() as traffic:
        for name, fault, seconds in PHASES:
            faults.set(fault)
            started[name] = time.time()
            time.sleep(seconds)
            if name == "control":
                assert sinks.notices() == [], "notified during the healthy control"
        faults.set("")
        started["recovery"] = time.time()
        deadline = started["recovery"] + RECOVERY_MAX_S
        while time.time() < deadline and not _resolved_everywhere(sinks):
            time.sleep(0.5)
        quiet_until = max(time.time() + 5.0, started["recovery"] + QUIET_AFTER_S)
        time.sleep(max(0.0, quiet_until - time.time()))
    t0 = started["control"]
    timeline = [f"{n.at - t0:6.1f}s {n.sink:7} {n.alert} {n.state} ({n.to})"
                for n in sinks.notices()]
    timeline += [f"{at - t0:6.1f}s phase {name}" for name, at in started.items()]
    return Outcome(started, sinks.by_sink(), dict(traffic.codes), sorted(timeline),
                   time.time() - t0)


def check(outcome: Outcome, sinks: Sinks) -> None:
    """The scenario's expectations (module doc), with the timeline in every failure."""
    why = "\n".join(outcome.timeline)
    assert outcome.codes.get(500, 0) > 50 and outcome.codes.get(200, 0) > 300, outcome.codes
    for sink, told in outcome.told.items():
        assert told == EXPECTED, f"{sink} was told {told}; expected {EXPECTED}\n{why}"
    for n in sinks.notices():
        began = STARTED_BY[n.alert]
        after = began if n.state == "firing" else ENDED_BY[began]
        assert n.at >= outcome.started[after], f"{n} before {after} started\n{why}"
    to = {(n.sink, n.to) for n in sinks.notices()}
    assert to == {("webhook", Sinks.WEBHOOK_PATH), ("slack", "#ml-alerts"),
                  ("email", "oncall@example.com")}, to

"""service/slo_watch: a scripted error pattern in a real SQLite prediction log, evaluated on an
injected clock, notifies exactly as the rules say: the fast page once at the evaluation the
burn-rate formula gives, resolved when the errors stop; nothing for a healthy service; no
second page after a restart; a sink that is down is retried."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from keelwork.adapters.metrics import NotificationMetrics
from keelwork.adapters.stores.alert_store import AlertStore
from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.prediction_store import (
    PredictionReader,
    ensure_schema,
    insert_records,
)
from keelwork.core.alerting.notification import Notification
from keelwork.core.alerting.routing import routing
from keelwork.core.predictions import PredictionRecord, new_prediction_id
from keelwork.core.slo import slo_set
from keelwork.errors import NotificationError
from keelwork.service.alerting import AlertDelivery, Sink, target_key
from keelwork.service.slo_watch import SloWatch, evaluates_slos, open_watch
from keelwork.service.slos import slo_line
from keelwork.spec.loader import parse_spec
from keelwork.spec.model import KeelSpec

#: A 1-day window: the workbook's tiers scaled to fast 2m/1m at 14.4x, slow 12m/1m at 6x
#: (pages), ticket 144m/12m at 1x, of a 1% budget; min_events 10.
SPEC = """\
service: {name: churn, owners: ["http://127.0.0.1:9/hook"]}
models: [{name: m, runtime: python, artifact: 'a:b'}]
slos: {availability: 0.99, window: 1d, min_events: 10}
"""
T0 = 1_000_000.0


class Sent:
    """A sink that keeps what it is sent; ``down`` tries fail first."""

    def __init__(self, down: int = 0) -> None:
        self.notes: list[Notification] = []
        self.down = down
        self.tries = 0

    def send(self, note: Notification) -> None:
        self.tries += 1
        if self.tries <= self.down:
            raise NotificationError("connection refused")
        self.notes.append(note)

    def seen(self) -> list[tuple[str, str, float]]:
        return [(n.name, n.state, n.since) for n in self.notes]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = make_engine(f"sqlite:///{tmp_path / 'keel.db'}")
    ensure_schema(made)
    yield made
    made.dispose()


def write(engine: Engine, start: float, end: float, *, bad_every: int = 0,
          version: int = 1, step: float = 10.0, per_step: int = 10) -> None:
    """``per_step`` requests every ``step`` s in [start, end); with ``bad_every`` n, every
    n-th request of a step fails."""
    records = []
    ts = start
    while ts < end:
        for i in range(per_step):
            status = "error" if bad_every and i % bad_every == 0 else "ok"
            records.append(PredictionRecord(
                id=new_prediction_id(), ts=ts, model="m", version=version, inputs=None,
                outputs=None, latency_ms=5.0, status=status))
        ts += step
    with engine.begin() as conn:
        insert_records(conn, records)


def watch(spec: KeelSpec, engine: Engine, sink: Sent, registry: CollectorRegistry | None = None
          ) -> SloWatch:
    tree = routing(spec)
    sinks = {r.name: [Sink(r.name, target_key(r.name, t), sink) for t in r.targets]
             for r in tree.receivers}
    delivery = AlertDelivery(AlertStore(engine), tree, sinks,
                             NotificationMetrics(registry or CollectorRegistry()),
                             backoff=lambda attempts: 20.0)
    return SloWatch(slo_set(spec), PredictionReader(engine), delivery)


def run(w: SloWatch, start: float, end: float, every: float = 30.0) -> None:
    t = start
    while t <= end:
        w.evaluate(t)
        t += every


def test_a_burst_of_errors_pages_once_and_resolves(engine: Engine) -> None:
    spec = parse_spec(SPEC, env={})
    write(engine, T0 - 9000, T0)
    write(engine, T0, T0 + 300, bad_every=2)  # 50% failing for 5 minutes
    write(engine, T0 + 300, T0 + 3000)
    sink = Sent()
    w = watch(spec, engine, sink)
    run(w, T0, T0 + 30)
    assert sink.notes == []
    # fast: at T0+60 the last minute is 50% bad and the last 2 minutes 25%: both over 14.4%
    w.evaluate(T0 + 60)
    assert sink.seen() == [("KeelworkAvailabilityBurnFast", "firing", T0 + 60)]
    [page] = sink.notes
    assert page.labels == {"alertname": "KeelworkAvailabilityBurnFast", "model": "m",
                           "service": "churn", "severity": "page", "slo": "availability",
                           "tier": "fast"}
    assert "at this rate the 1-day error budget is gone in" in page.annotations["description"]
    assert page.runbook_url == "runbooks/KeelworkAvailabilityBurnFast.md"
    # the slow page and the ticket burn too, but the fast page inhibits them
    run(w, T0 + 90, T0 + 330)
    assert len(sink.notes) == 1
    # a minute after the errors stop the page resolves; the ticket (12m short window, 10%
    # of the budget burnt) is no longer inhibited and opens, then resolves in its turn
    run(w, T0 + 360, T0 + 1200)
    assert sorted(sink.seen(), key=lambda n: (n[2], n[0])) == [
        ("KeelworkAvailabilityBurnFast", "firing", T0 + 60),
        ("KeelworkAvailabilityBurnFast", "resolved", T0 + 360),
        ("KeelworkAvailabilityBurnTicket", "firing", T0 + 360),
        ("KeelworkAvailabilityBurnTicket", "resolved", T0 + 1020)]


def test_a_healthy_service_sends_nothing(engine: Engine) -> None:
    spec = parse_spec(SPEC, env={})
    write(engine, T0 - 9000, T0 + 1200)
    # a second version whose every request fails, once per 10 minutes: an average of the
    # versions' ratios would read 50% bad; event-weighted it is 1 in 601
    write(engine, T0 - 9000, T0 + 1200, bad_every=1, version=2, step=600.0, per_step=1)
    sink = Sent()
    run(watch(spec, engine, sink), T0, T0 + 1200)
    assert sink.notes == []


def test_a_restart_neither_pages_again_nor_forgets_to_resolve(engine: Engine) -> None:
    spec = parse_spec(SPEC, env={})
    write(engine, T0 - 9000, T0)
    write(engine, T0, T0 + 300, bad_every=2)
    write(engine, T0 + 300, T0 + 3000)
    first = Sent()
    run(watch(spec, engine, first), T0, T0 + 60)
    assert first.seen() == [("KeelworkAvailabilityBurnFast", "firing", T0 + 60)]
    again = Sent()  # a new server on the same store, while the burn goes on
    run(watch(spec, engine, again), T0 + 90, T0 + 300)
    assert again.notes == []
    later = Sent()  # and one that starts after the burn ended
    run(watch(spec, engine, later), T0 + 400, T0 + 400)
    assert ("KeelworkAvailabilityBurnFast", "resolved", T0 + 400) in later.seen()


def test_a_sink_that_is_down_is_retried(engine: Engine) -> None:
    spec = parse_spec(SPEC, env={})
    write(engine, T0 - 9000, T0)
    write(engine, T0, T0 + 300, bad_every=2)
    sink, registry = Sent(down=2), CollectorRegistry()
    w = watch(spec, engine, sink, registry)
    run(w, T0, T0 + 60)
    assert sink.notes == [] and sink.tries == 1
    run(w, T0 + 90, T0 + 150)  # back-off 20 s: retried at the next evaluations
    assert sink.seen() == [("KeelworkAvailabilityBurnFast", "firing", T0 + 60)]
    assert registry.get_sample_value("keelwork_notifications_failed_total",
                                     {"receiver": "churn-owners"}) == 2.0


def test_the_server_evaluates_only_with_slos_and_someone_to_tell(engine: Engine) -> None:
    spec = parse_spec(SPEC, env={})
    assert evaluates_slos(spec)
    assert open_watch(spec, engine, registry=CollectorRegistry()) is not None
    no_slos = parse_spec(SPEC.split("slos:")[0], env={})
    assert not evaluates_slos(no_slos) and open_watch(no_slos, engine) is None
    line = slo_line(spec, 30.0)
    assert line is not None and line.endswith(
        "evaluated by this server every 30 s; for Prometheus, `keel slo rules`")


def test_with_prometheus_evaluating_the_server_sends_nothing(engine: Engine) -> None:
    """``slos.evaluated_by: prometheus``: Alertmanager notifies; the server opens no watch, so
    nobody is told twice, and its start-up line says who evaluates."""
    from keelwork.errors import SpecError
    from keelwork.service.slos import announce_slos

    spec = parse_spec(SPEC.replace("min_events: 10}", "min_events: 10, evaluated_by: prometheus}"),
                      env={})
    assert not evaluates_slos(spec)
    assert open_watch(spec, engine, registry=CollectorRegistry()) is None
    line = announce_slos(spec)
    assert line is not None and line.endswith(
        "evaluated by Prometheus with the rules of `keel slo rules`")
    with pytest.raises(SpecError, match="evaluated_by"):
        parse_spec(SPEC.replace("min_events: 10}", "min_events: 10, evaluated_by: grafana}"),
                   env={})


def test_the_evaluation_interval_is_a_duration_of_at_least_a_second() -> None:
    from keelwork.errors import SpecError
    from keelwork.service.slo_watch import interval_s

    assert interval_s(parse_spec(SPEC, env={})) == 30.0
    fast = SPEC.replace("min_events: 10}", "min_events: 10, evaluation_interval: 2s}")
    assert interval_s(parse_spec(fast, env={})) == 2.0
    with pytest.raises(SpecError, match="evaluation_interval"):
        parse_spec(SPEC.replace("min_events: 10}", "min_events: 10, evaluation_interval: 0s}"),
                   env={})

"""The server's SLO watch over quality SLOs, on a real SQLite store and an injected clock:
labels that arrive late change the windows of their predictions (and page then), a quality
SLO without labelled answers gets its no-data ticket (never "good"), too few events never
page, and the watch opens for quality SLOs even when Prometheus evaluates the others."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from keelwork.adapters.metrics import NotificationMetrics
from keelwork.adapters.stores.alert_store import AlertStore
from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.label_store import LabelStore
from keelwork.adapters.stores.prediction_store import (
    PredictionReader,
    ensure_schema,
    insert_records,
)
from keelwork.adapters.stores.quality_counts import QualityCountReader
from keelwork.core.alerting.notification import Notification
from keelwork.core.alerting.routing import routing
from keelwork.core.predictions import PredictionRecord, new_prediction_id
from keelwork.service.alerting import AlertDelivery, Sink, target_key
from keelwork.service.slo_watch import SloWatch, evaluated_here, evaluates_slos, open_watch
from keelwork.service.slos import slo_line
from keelwork.spec.loader import parse_spec
from keelwork.spec.model import KeelSpec

#: Labels are due an hour after their prediction: the accuracy windows end an hour ago.
SPEC = """\
service: {name: bank, owners: ["http://127.0.0.1:9/hook"]}
models: [{name: credit, runtime: python, artifact: 'a:b'}]
contract:
  inputs: [{name: age, type: float}]
  outputs: [{name: label, type: category, categories: ['no', 'yes']}]
monitoring: {labels: {expected_delay: 1h}}
slos:
  window: 1d
  min_events: 20
  quality:
    - name: credit-accuracy
      metric: accuracy
      objective: 0.9
      tiers: [{name: fast, severity: page, long_window: 1h, short_window: 5m, burn_rate: 3}]
"""
T0 = 999_960.0  # a whole minute: windows end at one
HOUR = 3600.0


class Sent:
    """A sink that keeps what it is sent."""

    def __init__(self) -> None:
        self.notes: list[Notification] = []

    def send(self, note: Notification) -> None:
        self.notes.append(note)

    def seen(self) -> list[tuple[str, str]]:
        return [(n.name, n.state) for n in self.notes]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = make_engine(f"sqlite:///{tmp_path / 'keel.db'}")
    ensure_schema(made)
    LabelStore(made).ensure_schema()
    yield made
    made.dispose()


def _watch(spec: KeelSpec, engine: Engine, sink: Sent) -> SloWatch:
    tree = routing(spec)
    sinks = {r.name: [Sink(r.name, target_key(r.name, t), sink) for t in r.targets]
             for r in tree.receivers}
    delivery = AlertDelivery(AlertStore(engine), tree, sinks,
                             NotificationMetrics(CollectorRegistry()))
    return SloWatch(evaluated_here(spec), PredictionReader(engine), delivery,
                    quality=QualityCountReader(engine))


def _predict(engine: Engine, start: float, end: float, n: int) -> list[str]:
    """``n`` answers "yes", evenly over [start, end)."""
    step = (end - start) / n
    records = [PredictionRecord(id=new_prediction_id(), ts=start + i * step, model="credit",
                                version=1, inputs={"age": 40.0}, outputs="yes",
                                latency_ms=2.0) for i in range(n)]
    with engine.begin() as conn:
        insert_records(conn, records)
    return [r.id for r in records]


def _label(engine: Engine, ids: list[str], label: str) -> None:
    LabelStore(engine).submit([{"prediction_id": i, "label": label} for i in ids])


def test_a_late_label_changes_past_windows_and_pages_once(engine: Engine) -> None:
    spec = parse_spec(SPEC, env={})
    ids = _predict(engine, T0 - 2 * HOUR, T0 - HOUR, 120)
    _label(engine, ids[::2], "yes")  # half labelled so far, all right
    sink = Sent()
    w = _watch(spec, engine, sink)
    w.evaluate(T0)
    assert sink.notes == []  # 100% accurate over the window ending an hour ago
    # the other half arrives late, all wrong: the same past windows now read 50% accuracy
    _label(engine, ids[1::2], "no")
    w.evaluate(T0 + 30)
    assert sink.seen() == [("KeelworkQualityCreditAccuracyBurnFast", "firing")]
    [page] = sink.notes
    assert page.labels == {"alertname": "KeelworkQualityCreditAccuracyBurnFast",
                           "model": "credit", "service": "bank", "severity": "page",
                           "slo": "credit-accuracy", "tier": "fast"}
    text = page.annotations["description"]
    assert "up to 1h ago (labels are expected 1h after their prediction)" in text
    assert "the accuracy of model credit was under 70%" in text
    w.evaluate(T0 + 60)
    assert len(sink.notes) == 1  # still firing: told once
    # minutes later the short window (5 minutes ending an hour ago) holds no prediction:
    # nothing newer was logged, so it burns no more (no events: no share) and the page resolves
    w.evaluate(T0 + 400)
    assert sink.seen()[-1] == ("KeelworkQualityCreditAccuracyBurnFast", "resolved")


def test_no_labelled_answer_is_no_data_never_good(engine: Engine) -> None:
    spec = parse_spec(SPEC, env={})
    _predict(engine, T0 - 2 * HOUR, T0 - HOUR, 50)  # answered, but no label ever came
    sink = Sent()
    w = _watch(spec, engine, sink)
    w.evaluate(T0)
    assert sink.notes == []  # the no-data alert waits its 10 minutes
    w.evaluate(T0 + 600)
    assert sink.seen() == [("KeelworkQualityCreditAccuracyNoData", "firing")]
    assert sink.notes[0].labels["severity"] == "ticket"
    assert "has no labelled answers in the 1-day window up to 1h ago" in (
        sink.notes[0].annotations["description"])


def test_too_few_labelled_answers_never_page(engine: Engine) -> None:
    spec = parse_spec(SPEC, env={})
    ids = _predict(engine, T0 - HOUR - 3000, T0 - HOUR, 19)  # under min_events (20)
    _label(engine, ids, "no")  # every one wrong
    sink = Sent()
    w = _watch(spec, engine, sink)
    for t in (0, 60, 120):
        w.evaluate(T0 + t)
    assert sink.notes == []
    _label(engine, _predict(engine, T0 - HOUR - 60, T0 - HOUR - 59, 1), "no")  # the 20th
    w.evaluate(T0 + 180)
    assert sink.seen() == [("KeelworkQualityCreditAccuracyBurnFast", "firing")]


def test_quality_slos_are_the_servers_even_when_prometheus_evaluates(engine: Engine) -> None:
    text = SPEC.replace("  window: 1d\n", "  window: 1d\n  availability: 0.99\n"
                        "  evaluated_by: prometheus\n")
    spec = parse_spec(text, env={})
    assert evaluates_slos(spec)
    here = evaluated_here(spec)
    assert here.objectives == () and [o.key for o in here.quality] == ["credit-accuracy"]
    watch = open_watch(spec, engine)
    assert watch is not None and {a.objective.key for a in watch.slos.alerts()} == {
        "credit-accuracy"}
    line = slo_line(spec, 30.0)
    assert line is not None and "evaluated by Prometheus" in line
    assert "quality SLOs (credit-accuracy) evaluated by this server every 30 s" in line

"""service/cost_watch on a real SQLite store and an injected clock: a synthetic workload of
known cost stored and read back (month-to-date and forecast within 5% of the truth), the
budget alerts told once each, not again after a restart, resolved when the month turns; usage
kept across a failed store write."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from fixtures import models as fm
from fixtures.callables import BURN_CPU_S
from keelwork.adapters.metrics import GatewayMetrics, NotificationMetrics
from keelwork.adapters.runtimes import load_runtime
from keelwork.adapters.stores.alert_store import AlertStore
from keelwork.adapters.stores.cost_ledger import CostLedger
from keelwork.adapters.stores.engine import make_engine
from keelwork.core.alerting.notification import Notification
from keelwork.core.alerting.routing import routing
from keelwork.errors import StoreError
from keelwork.service.alerting import AlertDelivery, Sink, target_key
from keelwork.service.cost_watch import CostWatch, UsageMeter, cost_report, open_cost_watch
from keelwork.service.gateway.gateway import Gateway
from keelwork.service.gateway.host import ModelTarget
from keelwork.spec.loader import parse_spec
from keelwork.spec.model import KeelSpec

SPEC = """\
service: {{name: shop, owners: ["http://127.0.0.1:9/hook"]}}
models: [{{name: burner, runtime: python, artifact: "callables:burns_cpu",
           batching: {{enabled: false}}}}]
cost: {cost}
"""
#: The 10th of December 2026, 00:00 UTC: 22 days of the month left.
T0 = dt.datetime(2026, 12, 10, tzinfo=dt.UTC).timestamp()
MONTH_END = dt.datetime(2027, 1, 1, tzinfo=dt.UTC).timestamp()


class Sent:
    def __init__(self) -> None:
        self.notes: list[Notification] = []

    def send(self, note: Notification) -> None:
        self.notes.append(note)

    def seen(self) -> list[tuple[str, str]]:
        return [(n.name, n.state) for n in self.notes]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = make_engine(f"sqlite:///{tmp_path / 'keel.db'}")
    yield made
    made.dispose()


def _delivery(spec: KeelSpec, engine: Engine, sink: Sent) -> AlertDelivery:
    tree = routing(spec)
    sinks = {r.name: [Sink(r.name, target_key(r.name, t), sink) for t in r.targets]
             for r in tree.receivers}
    return AlertDelivery(AlertStore(engine), tree, sinks, NotificationMetrics(
        CollectorRegistry()))


def _watch(spec: KeelSpec, engine: Engine, sink: Sent,
           metrics: GatewayMetrics | None = None) -> tuple[CostWatch, GatewayMetrics]:
    m = metrics or GatewayMetrics()
    w = open_cost_watch(spec, engine, m, delivery=_delivery(spec, engine, sink))
    assert w is not None
    return w, m


def _answers(m: GatewayMetrics, n: int, version: str = "1") -> None:
    m.child(m.predictions, "burner", version).inc(n)


def test_the_ledger_adds_usage_per_bucket(engine: Engine) -> None:
    ledger = CostLedger(engine)
    ledger.ensure_schema()
    ledger.add(T0 + 10, {("m", 1): {"predictions": 3, "cpu_seconds": 0.5}})
    ledger.add(T0 + 20, {("m", 1): {"predictions": 2}, ("m", 2): {"input_tokens": 7}})
    ledger.add(T0 + 700, {("m", 1): {"predictions": 1}})  # the next 10-minute bucket
    rows = ledger.usage(T0, T0 + 3600)
    got = [(r.bucket - T0, r.model, r.version, r.predictions, r.cpu_seconds, r.input_tokens)
           for r in rows]
    assert got == [(0, "m", 1, 5, 0.5, 0), (0, "m", 2, 0, 0.0, 7), (600, "m", 1, 1, 0.0, 0)]
    assert ledger.usage(T0 + 600, T0 + 1200)[0].predictions == 1
    assert ledger.prune(T0 + 600) == 2  # bounded: old buckets go
    assert [r.bucket - T0 for r in ledger.usage(0, T0 + 3600)] == [600]


def test_the_watch_deletes_usage_older_than_400_days(engine: Engine) -> None:
    spec = parse_spec(SPEC.format(cost="{per_1k_predictions: 1}"), env={})
    watch, m = _watch(spec, engine, Sent())
    _answers(m, 4)
    watch.evaluate(T0 - 401 * 86_400)
    _answers(m, 1)
    watch.evaluate(T0)
    assert [r.predictions for r in watch.ledger.usage(0, T0 + 1)] == [1]


def test_a_known_workload_is_stored_and_forecast_within_5_percent(engine: Engine) -> None:
    """A real gateway serving a model that burns a known CPU time per call, 5 calls an hour
    for 8 hours, stored every hour: month-to-date and the forecast against the truth."""
    price = 36.0  # per CPU-hour
    spec = parse_spec(SPEC.format(cost=f"{{cpu_hour: {price}, monthly_budget: 1000}}"),
                      env={})
    gw = Gateway(spec, lambda name, _ref: ModelTarget(name, 1, "python", "callables:burns_cpu"),
                 lambda t: load_runtime("python", str(t.artifact),
                                        {"path": str(fm.FIXTURES_DIR)}), _NoSink())
    watch, _ = _watch(spec, engine, Sent(), gw.metrics)
    calls, hours = 5, 8

    async def serve() -> None:
        await gw.start()
        try:
            await gw.predict("burner", None, [0])  # imports: not part of the workload
            watch.flush(T0 - 7200)  # before the month's 10th: in the month, out of the window
            for h in range(hours):
                gc.collect()
                gc.disable()
                try:
                    for i in range(calls):
                        await gw.predict("burner", None, [i])
                finally:
                    gc.enable()
                watch.evaluate(T0 + h * 3600 + 3599)
        finally:
            await gw.close()
    asyncio.run(serve())
    report = watch.last
    assert report is not None
    per_hour = calls * BURN_CPU_S / 3600 * price
    truth_spent = hours * per_hour
    spent = report.budget.spent
    warmup = cost_report(spec, watch.ledger, T0 - 1).budget.spent
    assert truth_spent <= spent - warmup <= truth_spent * 1.05, (spent - warmup, truth_spent)
    now = T0 + (hours - 1) * 3600 + 3599
    truth_forecast = spent + per_hour * (MONTH_END - now) / 3600
    assert truth_forecast <= report.budget.forecast <= truth_forecast * 1.05
    assert [(v.model, v.version, v.predictions) for v in report.versions] == [
        ("burner", 1, 1 + calls * hours)]


class _NoSink:
    async def write(self, records: Any) -> None:
        return None


def test_budget_alerts_are_told_once_not_again_after_a_restart_and_resolve_next_month(
        engine: Engine) -> None:
    spec = parse_spec(SPEC.format(cost="{per_1k_predictions: 1, monthly_budget: 0.1}"),
                      env={})
    sink = Sent()
    watch, m = _watch(spec, engine, sink)
    _answers(m, 50)  # 0.05: half, and at this rate (0.05 in the 6h window) far over
    first = watch.evaluate(T0)
    assert first.fired == ("KeelworkCostBudgetForecast",)
    assert sink.notes[0].annotations["description"].startswith(
        "at this rate the monthly budget of 0.1 USD (calendar month, UTC) is spent on "
        "December 10; 50% already spent")
    _answers(m, 31)  # 0.081: 81%
    assert watch.evaluate(T0 + 60).fired == ("KeelworkCostBudgetSpent80",)
    assert "81% already spent" in sink.notes[1].annotations["description"]
    assert sink.notes[1].labels["severity"] == "ticket"
    _answers(m, 30)  # 0.111: spent; the forecast gives way to the 100% page
    spent = watch.evaluate(T0 + 120)
    assert (spent.fired, spent.resolved) == (("KeelworkCostBudgetSpent100",),
                                             ("KeelworkCostBudgetForecast",))
    [page] = [n for n in sink.notes if n.name == "KeelworkCostBudgetSpent100"]
    assert "is already spent; 111% spent" in page.annotations["description"]
    assert page.labels["severity"] == "page"
    assert watch.evaluate(T0 + 180).fired == ()

    # a restarted server: fresh counters, the same store; nothing told twice
    restarted, m2 = _watch(spec, engine, sink)
    _answers(m2, 5)
    again = restarted.evaluate(T0 + 240)
    assert (again.fired, again.resolved) == ((), ())
    assert again.report.budget.spent == pytest.approx(0.116)
    # the month turns: nothing spent in January yet; both resolve
    turn = restarted.evaluate(MONTH_END + 30)
    assert sorted(turn.resolved) == ["KeelworkCostBudgetSpent100", "KeelworkCostBudgetSpent80"]
    assert sorted(sink.seen()) == [("KeelworkCostBudgetForecast", "firing"),
                                   ("KeelworkCostBudgetForecast", "resolved"),
                                   ("KeelworkCostBudgetSpent100", "firing"),
                                   ("KeelworkCostBudgetSpent100", "resolved"),
                                   ("KeelworkCostBudgetSpent80", "firing"),
                                   ("KeelworkCostBudgetSpent80", "resolved")]
    text = m2.render()[0].decode()
    assert "keelwork_cost_month_to_date" in text  # the family, empty in a new month


def test_the_month_to_date_is_on_metrics(engine: Engine) -> None:
    spec = parse_spec(SPEC.format(cost="{currency: EUR, per_1k_predictions: 2}"), env={})
    watch, m = _watch(spec, engine, Sent())
    assert watch.delivery is None  # no budget: nothing to alert on
    _answers(m, 500, "3")
    watch.clock = lambda: T0 + 5
    watch.evaluate(T0)
    text = m.render()[0].decode()
    assert ('keelwork_cost_month_to_date{currency="EUR",model="burner",version="3"} 1.0'
            in text)


def test_usage_survives_a_failed_store_write(engine: Engine) -> None:
    spec = parse_spec(SPEC.format(cost="{per_1k_predictions: 1}"), env={})
    ledger = CostLedger(engine)
    ledger.ensure_schema()
    m = GatewayMetrics()
    failing = {"left": 1}
    real_add = ledger.add

    def add(at: float, usage: Any) -> int:
        if failing["left"]:
            failing["left"] -= 1
            raise StoreError("The cost ledger failed: database is locked")
        return real_add(at, usage)

    ledger.add = add  # type: ignore[method-assign]
    watch = CostWatch(spec, ledger, UsageMeter(m))
    _answers(m, 7)
    with pytest.raises(StoreError):
        watch.evaluate(T0)
    _answers(m, 3)
    assert watch.evaluate(T0 + 60).report.versions[0].predictions == 10
    assert watch.evaluate(T0 + 120).stored == 0  # nothing new: nothing counted twice
    assert cost_report(spec, ledger, T0 + 180).budget.spent == pytest.approx(0.01)


def test_who_watches_the_budget(engine: Engine) -> None:
    def spec(extra: str) -> KeelSpec:
        return parse_spec(SPEC.format(cost="{per_1k_predictions: 1, monthly_budget: 5"
                                      + extra + "}"), env={})

    # Prometheus evaluates: the server stores usage and exports the month, tells nobody
    by_prom = spec(", evaluated_by: prometheus")
    w = open_cost_watch(by_prom, engine, GatewayMetrics())
    assert w is not None and w.delivery is None
    # the server evaluates, sharing the delivery the SLO watch opened (one sender)
    shared = _delivery(spec(""), engine, Sent())
    w2 = open_cost_watch(spec(""), engine, GatewayMetrics(), delivery=shared)
    assert w2 is not None and w2.delivery is shared
    # no price: nothing to store
    assert open_cost_watch(parse_spec(SPEC.format(cost="{per_1k_predictions: null}")
                                      .replace("cost: {per_1k_predictions: null}\n", ""),
                                      env={}), engine, GatewayMetrics()) is None

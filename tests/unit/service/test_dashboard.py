"""The dashboard's snapshot over real stores (SQLite and PostgreSQL): counts equal the log's,
kept current incrementally without double counting, monitoring, rollouts and alerts read as
stored, and nothing measured reads as "no data"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keelwork.adapters.stores.alert_store import AlertStore
from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.monitor_store import MonitorStore
from keelwork.adapters.stores.prediction_store import PredictionReader
from keelwork.adapters.stores.registry_store import SqlRegistry, open_registry
from keelwork.adapters.stores.rollout_store import RolloutStore
from keelwork.core.alerting.notification import AlertChange
from keelwork.core.slo.objectives import slo_set
from keelwork.service.dashboard import Dashboard
from keelwork.spec.model import KeelSpec
from prediction_fill import fill, synthetic_rows

NOW = 1_800_000_000.0
SPEC = KeelSpec.model_validate({
    "service": {"name": "svc", "owners": ["ml@example.com"]},
    "models": [{"name": "m", "runtime": "python", "artifact": "a:b"}],
    "slos": {"availability": 0.99, "latency_p99_ms": 25, "window": "7d"}})


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Iterator[tuple[Any, SqlRegistry]]:
    """SQLite and PostgreSQL (the traffic query's minute is computed per dialect)."""
    registry = open_registry(tmp_path, store_url, audit=False)
    engine = make_engine(store_url)
    yield engine, registry
    registry.close()
    engine.dispose()


def _dashboard(engine: Any, registry: SqlRegistry, clock: Clock) -> Dashboard:
    rollouts = RolloutStore(registry.engine)
    rollouts.ensure_schema()
    return Dashboard(SPEC, engine, registry, rollouts, clock=clock)


def _requests(engine: Any, since: float, until: float, **where: str) -> int:
    """The log's rows in ``[since, until)`` that are requests (not shadow calls)."""
    from sqlalchemy import func, or_, select

    from keelwork.adapters.stores.prediction_store import predictions as p

    stmt = (select(func.count()).select_from(p)
            .where(p.c.ts >= since, p.c.ts < until,
                   or_(p.c.guard.is_(None), p.c.guard != "shadow"),
                   *(p.c[k] == v for k, v in where.items())))
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def test_without_a_log_every_number_is_no_data(store: tuple[Any, SqlRegistry]) -> None:
    engine, registry = store
    snap = _dashboard(engine, registry, Clock()).snapshot()
    m = snap["models"][0]
    assert m["log"] is False and m["versions"] == []
    assert all(s["budget_left"] is None and s["events"] is None for s in m["slos"])
    assert m["monitor"] is None and snap["alerts"] is None


def test_counts_equal_the_log_and_the_slo_evaluation(store: tuple[Any, SqlRegistry]) -> None:
    engine, registry = store
    fill(engine, synthetic_rows(6000, now=NOW - 30, span_s=2 * 86400,
                                models=[("m", 1, 0.7), ("m", 2, 0.3)], error_share=0.05))
    kinds = [("rejected", "contract"), ("rejected", "input"), ("rejected", "concurrency"),
             ("ok", "shadow"), ("error", "shadow"), ("fallback", "timeout"), ("odd", None)]

    def refused() -> Iterator[dict[str, Any]]:
        for i, row in enumerate(synthetic_rows(700, now=NOW - 30, span_s=86400,
                                               models=[("m", 1, 1.0)], seed=11)):
            row["status"], row["guard"] = kinds[i % len(kinds)]
            yield row

    fill(engine, refused())
    clock = Clock()
    snap = _dashboard(engine, registry, clock).snapshot()
    reader = PredictionReader(engine)
    versions = {v["version"]: v for v in snap["models"][0]["versions"]}
    day = sum(v["requests"] for v in versions.values())
    # The day is counted to the minute: the log's count over the minutes that start in it.
    first = -(-int(NOW - 86400) // 60) * 60  # the first minute that starts in it
    assert day == _requests(engine, first, NOW + 1)  # shadow calls are no requests
    assert sum(versions[1]["hourly_requests"]) + sum(versions[2]["hourly_requests"]) == \
        _requests(engine, (int(NOW) // 3600 - 23) * 3600, NOW + 1)
    assert versions[1]["invalid"] == _requests(engine, first, NOW + 1, status="rejected",
                                               guard="contract")
    slos = {s["key"]: s for s in snap["models"][0]["slos"]}
    whole = reader.slo_counts(NOW - 7 * 86400, NOW + 1, latency_ms=25.0)["m"]
    assert slos["availability"]["events"] == whole.total
    assert slos["availability"]["bad"] == whole.errors + whole.overloaded
    assert slos["latency_p99"]["bad"] == whole.answered - whole.fast
    o = slo_set(SPEC).objectives[0]
    assert slos["availability"]["budget_left"] == pytest.approx(1 - whole.ratio(o) / 0.01)
    for shown, tier in zip(slos["availability"]["tiers"], slo_set(SPEC).tiers, strict=True):
        for key, window in (("burn_short", tier.short_s), ("burn_long", tier.long_s)):
            c = reader.slo_counts(NOW - window, NOW + 1)["m"]
            assert shown[key] == pytest.approx(c.ratio(o) / 0.01), (tier.name, key)
    assert versions[1]["p50"] is not None and versions[1]["p50"] < versions[1]["p99"]


def test_new_rows_are_counted_once_as_the_cursor_moves(store: tuple[Any, SqlRegistry]) -> None:
    engine, registry = store
    fill(engine, synthetic_rows(500, now=NOW - 120, span_s=3600, models=[("m", 1, 1.0)]))
    clock = Clock()
    dash = _dashboard(engine, registry, clock)

    def total() -> int:
        return int(dash.snapshot()["models"][0]["versions"][0]["requests"])

    assert total() == 500
    fill(engine, synthetic_rows(40, now=NOW + 3, span_s=2, models=[("m", 1, 1.0)], seed=9))
    clock.now = NOW + 5  # the new rows are in the unsettled tail: read, not folded
    assert total() == 540
    clock.now = NOW + 600  # now folded for good
    assert total() == 540 and dash.traffic.cursor is not None and dash.traffic.cursor > NOW
    assert total() == 540


def test_monitoring_window_rollout_and_alerts(store: tuple[Any, SqlRegistry]) -> None:
    engine, registry = store
    fill(engine, synthetic_rows(10, now=NOW - 60, span_s=60, models=[("m", 1, 1.0)]))
    monitor = MonitorStore(engine)
    monitor.ensure_schema()
    monitor.put_window("m", "1h", NOW - 3600, NOW, 1, 10, {
        "drift": {"summary": {"share_drifted": 0.5}, "columns": [
            {"column": "age", "score": 0.01, "threshold": 0.1, "drift": False},
            {"column": "income", "score": 0.3, "threshold": 0.1, "drift": True}]},
        "quality": {"realised": {"accuracy": 0.8, "coverage": 0.4, "labelled": 4},
                    "estimated": {"method": "cbpe", "accuracy": 0.82}}})
    alerts = AlertStore(engine)
    alerts.ensure_schema()
    labels = {"alertname": "KeelworkAvailabilityBurnFast", "model": "m", "severity": "page"}
    alerts.record(AlertChange(labels, "firing", NOW - 100, {"summary": "burns"}), "owners")
    fp = AlertChange(labels, "firing", NOW).fingerprint
    alerts.failed(fp, "owners", "firing", "POST https://hooks.example.com/T0/SECRET failed",
                  NOW - 50, NOW + 10)
    snap = _dashboard(engine, registry, Clock()).snapshot()
    w = snap["models"][0]["monitor"]
    assert [c["column"] for c in w["columns"]] == ["income", "age"]  # drifted first
    assert w["realised"]["coverage"] == 0.4 and w["estimated"]["accuracy"] == 0.82
    assert snap["models"][0]["rollout"] is None
    (opened,) = snap["alerts"]["open"]
    assert opened["name"] == "KeelworkAvailabilityBurnFast" and opened["receivers"] == ["owners"]
    assert opened["acknowledged_by"] is None
    (failure,) = snap["alerts"]["failures"]
    assert failure["attempts"] == 1 and "SECRET" not in failure["error"]
    assert "<url>" in failure["error"]
    assert alerts.acknowledge(fp, "ana", NOW - 20)  # keel alerts ack, during this firing
    (opened,) = _dashboard(engine, registry, Clock()).snapshot()["alerts"]["open"]
    assert opened["acknowledged_by"] == "ana"


def test_a_rollout_holding_every_interval_shows_as_one_decision(
        store: tuple[Any, SqlRegistry]) -> None:
    from keelwork.core.rollout.state import Rollout

    engine, registry = store
    dash = _dashboard(engine, registry, Clock())
    made, _ = dash.rollouts.create(Rollout(model="m", champion=1, challenger=2), actor="ops")
    for _ in range(5):
        dash.rollouts.transition(made.id, "hold", actor="controller", reason="no data",
                                 decision={"outcome": "no_data"})
    r = dash.snapshot()["models"][0]["rollout"]
    assert r["active"] and (r["champion"], r["challenger"]) == (1, 2)
    actions = [(e["action"], e["times"]) for e in r["events"]]
    assert actions == [("begin", 1), ("hold", 5)]
    assert r["events"][1]["outcome"] == "no_data"
    assert len(dash.rollouts.events(made.id, last=2)) == 2
    assert [e.action for e in dash.rollouts.events(made.id, last=2)] == ["hold", "hold"]


def test_a_view_reads_only_what_was_logged_since_the_last_one(
        store: tuple[Any, SqlRegistry], monkeypatch: pytest.MonkeyPatch) -> None:
    """The log is read once over the horizon; later views read the range since the cursor
    (settled rows) and the unsettled tail, never the whole log again."""
    import keelwork.service.traffic as traffic

    engine, registry = store
    fill(engine, synthetic_rows(200, now=NOW - 60, span_s=3 * 86400, models=[("m", 1, 1.0)]))
    ranges: list[tuple[float, float]] = []
    real = traffic.traffic_rows

    def spy(engine: Any, since: float, until: float, edges: Any) -> Any:
        ranges.append((since, until))
        return real(engine, since, until, edges)

    monkeypatch.setattr(traffic, "traffic_rows", spy)
    clock = Clock()
    dash = _dashboard(engine, registry, clock)
    dash.snapshot()
    (warm, tail) = ranges
    assert warm[1] - warm[0] >= 7 * 86400 - 60  # the SLO window, once
    assert tail[1] - tail[0] <= 60 + 10  # the unsettled seconds, to the minute
    for step in range(1, 4):
        ranges.clear()
        clock.now = NOW + 120 * step
        dash.snapshot()
        assert all(until - since <= 180 for since, until in ranges), ranges


QUALITY_SPEC = KeelSpec.model_validate({
    "service": {"name": "svc", "owners": ["ml@example.com"]},
    "models": [{"name": "m", "runtime": "python", "artifact": "a:b"}],
    "contract": {"inputs": [{"name": "a", "type": "float"}]},
    "slos": {"window": "7d", "quality": [
        {"name": "refusals", "metric": "violation_rate", "objective": 0.02}]}})


def test_quality_slos_show_the_counts_the_slo_watch_reads(
        store: tuple[Any, SqlRegistry]) -> None:
    from keelwork.adapters.stores.quality_counts import QualityCountReader
    from keelwork.core.slo.evaluate import quality_windows

    engine, registry = store

    def rows() -> Iterator[dict[str, Any]]:
        for i, row in enumerate(synthetic_rows(900, now=NOW - 120, span_s=86400,
                                               models=[("m", 1, 1.0)], seed=5)):
            if i % 10 == 0:
                row["status"], row["guard"] = "rejected", "contract"
            yield row

    fill(engine, rows())
    rollouts = RolloutStore(registry.engine)
    rollouts.ensure_schema()
    clock = Clock()
    dash = Dashboard(QUALITY_SPEC, engine, registry, rollouts, clock=clock)
    (q,) = dash.snapshot()["models"][0]["quality_slos"]
    o = slo_set(QUALITY_SPEC).quality[0]
    assert o.indicator is not None
    expected = QualityCountReader(engine).counts(o.indicator, ["m"], NOW,
                                                 quality_windows(slo_set(QUALITY_SPEC), o))
    whole = expected[7 * 86400]["m"]
    assert (q["events"], q["bad"]) == (whole.events, whole.bad) and whole.bad == 90
    assert q["budget_left"] == pytest.approx(1 - whole.ratio / 0.02)  # 10% refused: spent
    assert q["as_of"] == NOW and q["tiers"]


def test_the_month_and_the_budget_come_from_the_usage_ledger(
        store: tuple[Any, SqlRegistry]) -> None:
    from keelwork.adapters.stores.cost_ledger import CostLedger
    from keelwork.service.cost_watch import cost_report

    engine, registry = store
    spec = KeelSpec.model_validate({
        "service": {"name": "svc", "owners": ["ml@example.com"]},
        "models": [{"name": "m", "runtime": "python", "artifact": "a:b"}],
        "cost": {"per_1k_predictions": 2.0, "monthly_budget": 10.0}})
    rollouts = RolloutStore(registry.engine)
    rollouts.ensure_schema()
    without = Dashboard(spec, engine, registry, rollouts, clock=Clock()).snapshot()
    assert without["month"] is None  # no ledger yet: no data, not 0
    ledger = CostLedger(engine)
    ledger.ensure_schema()
    ledger.add(NOW - 3600, {("m", 1): {"predictions": 2000}, ("m", 2): {"predictions": 500}})
    snap = Dashboard(spec, engine, registry, rollouts, clock=Clock()).snapshot()
    month = snap["month"]
    assert month["by_version"] == {"m:1": pytest.approx(4.0), "m:2": pytest.approx(1.0)}
    assert month["spent"] == pytest.approx(cost_report(spec, ledger, NOW).budget.spent)
    assert month["share"] == pytest.approx(0.5) and "monthly budget of 10 USD" in \
        month["sentence"]
    assert snap["budget"]["monthly"] == 10.0

"""adapters/stores/quality_counts: each quality metric's events counted from a real prediction
log and labels table (SQLite and PostgreSQL), every window in one reading."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.label_store import LabelStore
from keelwork.adapters.stores.prediction_store import ensure_schema, insert_records
from keelwork.adapters.stores.quality_counts import QualityCountReader
from keelwork.core.predictions import PredictionRecord, new_prediction_id
from keelwork.core.slo.quality import QualityCounts, QualityIndicator

END = 999_960.0  # a whole minute: windows end at one


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    made = make_engine(store_url)
    ensure_schema(made)
    yield made
    made.dispose()


def _log(engine: Engine, rows: list[dict[str, Any]]) -> list[str]:
    records = [PredictionRecord(
        id=new_prediction_id(), ts=r["ts"], model=r.get("model", "m"), version=1,
        inputs=r.get("inputs"), outputs=r.get("outputs"), latency_ms=1.0,
        status=r.get("status", "ok"), guard=r.get("guard")) for r in rows]
    with engine.begin() as conn:
        insert_records(conn, records)
    return [r.id for r in records]


def _label(engine: Engine, pairs: list[tuple[str, Any]]) -> None:
    store = LabelStore(engine)
    store.ensure_schema()
    store.submit([{"prediction_id": i, "label": v} for i, v in pairs])


def test_accuracy_counts_labelled_answers_only_in_each_window(engine: Engine) -> None:
    ids = _log(engine, [{"ts": END - 100, "outputs": "yes"}, {"ts": END - 200, "outputs": "no"},
                        {"ts": END - 2000, "outputs": "yes"},
                        {"ts": END - 50, "outputs": "yes"},  # never labelled
                        {"ts": END - 60, "outputs": "yes", "guard": "shadow"},
                        {"ts": END + 10, "outputs": "yes"}])  # after the end
    reader = QualityCountReader(engine, batch=2)  # several pages
    ind = QualityIndicator("accuracy", classes=("no", "yes"))
    assert reader.counts(ind, ["m"], END, [300, 3600]) == {}  # no labels table yet
    _label(engine, [(ids[0], "yes"), (ids[1], "yes"), (ids[2], "no"), (ids[4], "no"),
                    (ids[5], "no")])
    assert reader.counts(ind, ["m"], END, [300, 3600]) == {
        300: {"m": QualityCounts(2, 1)}, 3600: {"m": QualityCounts(3, 2)}}
    # a late label changes the windows of its prediction
    _label(engine, [(ids[3], "no")])
    assert reader.counts(ind, ["m"], END, [300])[300]["m"] == QualityCounts(3, 2)
    assert reader.counts(ind, ["other"], END, [300]) == {}


def test_violations_count_every_request_and_the_contracts_refusals(engine: Engine) -> None:
    _log(engine, [{"ts": END - 10, "status": "rejected", "guard": "contract"},
                  {"ts": END - 20, "status": "rejected", "guard": "concurrency"},
                  {"ts": END - 30, "status": "error"}, {"ts": END - 40},
                  {"ts": END - 50, "guard": "shadow"},
                  {"ts": END - 1000, "status": "rejected", "guard": "contract"}])
    got = QualityCountReader(engine).counts(QualityIndicator("violation_rate"), ["m"], END,
                                            [60, 3600])
    assert got == {60: {"m": QualityCounts(4, 1)}, 3600: {"m": QualityCounts(5, 2)}}


def test_null_rate_counts_the_values_of_the_counted_inputs(engine: Engine) -> None:
    _log(engine, [{"ts": END - 10, "inputs": {"age": None, "job": "x"}},
                  {"ts": END - 20, "inputs": [3.0, None]},
                  {"ts": END - 30, "inputs": {"job": "y"}},
                  {"ts": END - 40, "inputs": {"age": None}, "status": "rejected",
                   "guard": "contract"}])  # not answered: not counted
    ind = QualityIndicator("null_rate", features=("age",), input_names=("age", "job"))
    assert QualityCountReader(engine).counts(ind, ["m"], END, [60]) == {
        60: {"m": QualityCounts(3, 2)}}


def test_label_coverage_counts_answers_still_without_a_label(engine: Engine) -> None:
    ids = _log(engine, [{"ts": END - 10}, {"ts": END - 20}, {"ts": END - 30},
                        {"ts": END - 40, "status": "error"}])
    ind = QualityIndicator("label_coverage")
    reader = QualityCountReader(engine)
    assert reader.counts(ind, ["m"], END, [60]) == {60: {"m": QualityCounts(3, 3)}}
    _label(engine, [(ids[0], "yes"), (ids[3], "no")])
    assert reader.counts(ind, ["m"], END, [60]) == {60: {"m": QualityCounts(3, 2)}}


def test_kept_sums_equal_a_fresh_count_and_read_only_what_changed(engine: Engine) -> None:
    rng = random.Random(5)
    windows = [300, 3600, 86_400]
    ind = QualityIndicator("accuracy", classes=("no", "yes"))
    ids = _log(engine, [{"ts": END - rng.uniform(1, 86_000), "outputs": rng.choice(["no", "yes"]),
                         "model": rng.choice(["m", "n"])} for _ in range(400)])
    _label(engine, [(i, rng.choice(["no", "yes"])) for i in ids[:200]])
    kept = QualityCountReader(engine, batch=50)
    assert kept.counts(ind, ["m", "n"], END, windows) == QualityCountReader(engine).counts(
        ind, ["m", "n"], END, windows)
    assert kept.rows_read == 200  # every labelled answer, once
    kept.counts(ind, ["m", "n"], END, windows)
    assert kept.rows_read == 0  # nothing changed: nothing parsed
    changes = [
        lambda: _label(engine, [(ids[300], "yes")]),  # a late label, in some old minute
        lambda: _label(engine, [(ids[0], _flip(engine, ids[0]))]),  # a relabel
        lambda: _label(engine, [(i, "no") for i in _log(engine, [
            {"ts": END - 40_000.5, "outputs": "yes"}])]),  # a late write into an old minute
    ]
    for change in changes:
        change()
        got = kept.counts(ind, ["m", "n"], END, windows)
        assert got == QualityCountReader(engine).counts(ind, ["m", "n"], END, windows)
        assert kept.rows_read < 20  # the changed minutes only


def _flip(engine: Engine, prediction_id: str) -> str:
    stored = LabelStore(engine).get(prediction_id)
    assert stored is not None
    return "yes" if stored.label == "no" else "no"


def test_drift_counts_the_stored_monitoring_slices(engine: Engine) -> None:
    from keelwork.adapters.stores.monitor_store import MonitorStore

    ind = QualityIndicator("drift", features=("age",), threshold=0.2, slice="1h")
    assert QualityCountReader(engine).counts(ind, ["m"], END, [300, 3600]) == {}
    store = MonitorStore(engine)
    store.ensure_schema()

    def body(score: float) -> dict[str, Any]:
        return {"drift": {"columns": [{"column": "age", "score": score, "drift": False}]}}

    hour = END - END % 3600
    store.put_window("m", "1h", hour, hour + 3600, 1, 30, body(0.5))  # in progress, drifted
    store.put_window("m", "1h", hour - 3600, hour, 1, 70, body(0.1))
    store.put_window("m", "1h", hour - 7200, hour - 3600, 1, 50, body(0.9))  # before
    store.put_window("m", "1d", hour - 86_400, hour, 1, 500, body(0.9))  # another spec
    got = QualityCountReader(engine).counts(ind, ["m"], END, [300, 3600])
    assert got == {300: {"m": QualityCounts(30, 30)}, 3600: {"m": QualityCounts(100, 30)}}

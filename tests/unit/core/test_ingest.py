"""Pure ingestion rules: idempotency keys, deterministic ids, backoff, checkpoints, labels."""

from __future__ import annotations

import math
import random
import statistics
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keelwork.core.ingest import Checkpoint, DeadLetter, IngestCounts, RetryPolicy
from keelwork.core.ingest_values import (
    MAX_ID_LENGTH,
    canonical_json,
    deterministic_prediction_id,
    explicit_key,
    json_safe,
    parse_timestamp,
    row_key,
)
from keelwork.core.label_rows import LabelColumns, parse_label
from keelwork.core.predictions import prediction_id_time
from keelwork.errors import ErrorDetail

SHA = "ab" * 32


# --------------------------------------------------------------------------- keys
def test_row_key_names_content_and_row() -> None:
    assert row_key(SHA, 0) != row_key(SHA, 1)
    assert row_key(SHA, 3) != row_key("cd" * 32, 3)
    assert row_key(SHA, 3) == row_key(SHA, 3)


@pytest.mark.parametrize("value", [7, 7.0, "7", " 7 ", "7\n"])
def test_explicit_keys_of_the_same_id_are_equal(value: object) -> None:
    assert explicit_key(value) == explicit_key("7") == "id:7"


@pytest.mark.parametrize(("value", "needle"), [
    (None, "got None"), (True, "got True"), ("", "empty string"), ("   ", "empty string"),
    (1.5, "1.5 (float)"), ([1], "(list)"), ("x" * (MAX_ID_LENGTH + 1), "at most"),
    ("a\x00b", "NUL"),
])
def test_explicit_key_refuses_what_is_not_an_id(value: object, needle: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        explicit_key(value)
    assert needle in str(info.value)


def test_an_explicit_key_never_equals_a_row_key() -> None:
    assert explicit_key(f"{SHA}:3") != row_key(SHA, 3)


# --------------------------------------------------------------------------- prediction ids
def test_deterministic_ids_are_uuid7_with_the_job_time() -> None:
    epoch_ms = 1_700_000_000_123
    pid = deterministic_prediction_id("score:iris:1", row_key(SHA, 0), epoch_ms)
    parsed = uuid.UUID(pid)
    assert str(parsed) == pid and parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert prediction_id_time(pid) == pytest.approx(epoch_ms / 1000)


def test_deterministic_ids_depend_on_scope_key_and_time_only() -> None:
    base = deterministic_prediction_id("score:iris:1", "k", 1000)
    assert deterministic_prediction_id("score:iris:1", "k", 1000) == base
    assert deterministic_prediction_id("score:iris:2", "k", 1000) != base
    assert deterministic_prediction_id("score:iris:1", "k2", 1000) != base
    assert deterministic_prediction_id("score:iris:1", "k", 1001) != base


@given(st.text(max_size=40), st.integers(min_value=0, max_value=2**48 - 1))
def test_deterministic_ids_are_valid_and_stable(key: str, epoch_ms: int) -> None:
    pid = deterministic_prediction_id("s", key, epoch_ms)
    assert pid == deterministic_prediction_id("s", key, epoch_ms)
    parsed = uuid.UUID(pid)
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert round(prediction_id_time(pid) * 1000) == epoch_ms


def test_deterministic_ids_of_many_rows_do_not_collide() -> None:
    ids = {deterministic_prediction_id("s", row_key(SHA, i), 5) for i in range(50_000)}
    assert len(ids) == 50_000


# --------------------------------------------------------------------------- backoff
def test_a_seeded_schedule_is_reproducible_and_full_jitter() -> None:
    policy = RetryPolicy(attempts=6, base=0.5, cap=3.0)
    first = list(policy.delays(random.Random(42)))
    assert first == list(policy.delays(random.Random(42)))
    assert len(first) == 5
    assert [policy.ceiling(n) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    for n, delay in enumerate(first):
        assert 0.0 <= delay <= policy.ceiling(n)
    assert first != list(policy.delays(random.Random(43)))


def test_full_jitter_spreads_delays_over_the_whole_window() -> None:
    policy = RetryPolicy(attempts=2, base=2.0, cap=10.0)
    rng = random.Random(7)
    samples = [next(policy.delays(rng)) for _ in range(4000)]
    assert min(samples) < 0.05 and max(samples) > 1.95
    assert statistics.mean(samples) == pytest.approx(1.0, abs=0.05)


def test_one_attempt_means_no_retry_and_huge_retry_numbers_stay_capped() -> None:
    assert list(RetryPolicy(attempts=1).delays(random.Random(0))) == []
    assert RetryPolicy(base=0.1, cap=4.0).ceiling(10_000) == 4.0


@pytest.mark.parametrize("kwargs", [{"attempts": 0}, {"base": -1.0}, {"cap": -0.1}])
def test_invalid_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="retry policy"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize(("committed", "first", "n", "skip"), [
    (0, 0, 100, 0), (50, 0, 100, 50), (100, 0, 100, 100), (250, 100, 100, 100),
    (150, 100, 100, 50), (100, 100, 100, 0), (0, 100, 100, 0),
])
def test_skip_in_counts_the_committed_rows_of_a_batch(committed: int, first: int, n: int,
                                                     skip: int) -> None:
    assert Checkpoint(SHA, "labels", "", committed).skip_in(first, n) == skip


def test_advancing_a_checkpoint_returns_a_new_one() -> None:
    cp = Checkpoint(SHA, "labels", "", 10, 100, "running", 5)
    nxt = cp.advanced(7)
    assert (cp.committed_rows, nxt.committed_rows) == (10, 17)
    assert (nxt.file_sha, nxt.total_rows, nxt.epoch_ms, nxt.done) == (SHA, 100, 5, False)
    assert Checkpoint(SHA, "labels", "", status="done").done


def test_counts_add_up() -> None:
    total = IngestCounts()
    total.add(IngestCounts(read=3, ingested=2, dead_lettered=1))
    total.add(IngestCounts(read=2, duplicates=1, unknown=1, relabelled=0))
    assert total.as_dict() == {"read": 5, "ingested": 2, "duplicates": 1, "dead_lettered": 1,
                               "unknown": 1, "relabelled": 0}


# --------------------------------------------------------------------------- dead letters
def test_dead_letters_carry_line_reasons_and_a_json_safe_raw_row() -> None:
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    details = [ErrorDetail("age", "min", -3, "The 'age' field must be >= 0; got -3."),
               ErrorDetail("x", "finite", math.nan, "The 'x' field must be finite.")]
    letter = DeadLetter.of("data.csv", 4, 6, details,
                           {"age": -3, "x": math.nan, "when": when, "blob": b"\xff"})
    assert letter.to_dict() == {
        "source": "data.csv", "row": 4, "line": 6,
        "reasons": [{"path": "age", "rule": "min", "got": -3,
                     "message": "The 'age' field must be >= 0; got -3.", "line": 6},
                    {"path": "x", "rule": "finite", "got": "NaN",
                     "message": "The 'x' field must be finite.", "line": 6}],
        "raw": {"age": -3, "x": "NaN", "when": "2024-05-01T12:00:00+00:00",
                "blob": "\ufffd"}}
    assert DeadLetter.of("p.parquet", 4, None, details[:1], {}).reasons[0].get("line") is None


@pytest.mark.parametrize(("value", "expected"), [
    (Decimal("3"), 3), (Decimal("2.5"), 2.5), (math.inf, "Infinity"), (-math.inf, "-Infinity"),
    (timedelta(seconds=90), 90.0), (date(2024, 1, 2), "2024-01-02"), ((1, {2: None}),
                                                                        [1, {"2": None}]),
    (object, repr(object)),
])
def test_json_safe(value: object, expected: object) -> None:
    assert json_safe(value) == expected


def test_canonical_json_is_order_free_and_refuses_nan() -> None:
    assert canonical_json({"b": 1, "a": [1, "é"]}) == canonical_json({"a": [1, "é"], "b": 1}) \
        == '{"a":[1,"é"],"b":1}'
    with pytest.raises(ValueError, match="JSON"):
        canonical_json(math.nan)


# --------------------------------------------------------------------------- labels
def test_a_valid_label_row() -> None:
    row, problems = parse_label({"prediction_id": " p1 ", "label": {"b": 2, "a": 1}})
    assert problems == []
    assert row is not None
    assert (row.prediction_id, row.label, row.label_json, row.ts) == (
        "p1", {"b": 2, "a": 1}, '{"a":1,"b":2}', None)


def test_label_columns_are_configurable_and_ts_is_parsed() -> None:
    cols = LabelColumns(id="pid", label="truth", ts="observed")
    row, problems = parse_label({"pid": 17, "truth": "spam",
                                 "observed": "2024-05-01T00:00:00Z"}, cols)
    assert problems == [] and row is not None
    assert row.prediction_id == "17" and row.label == "spam"
    assert row.ts == datetime(2024, 5, 1, tzinfo=UTC).timestamp()
    row, _ = parse_label({"pid": "a", "truth": 0, "observed": None}, cols)
    assert row is not None and row.ts is None


@pytest.mark.parametrize(("record", "rules"), [
    ({"label": 1}, [("prediction_id", "required")]),
    ({"prediction_id": None, "label": 1}, [("prediction_id", "required")]),
    ({"prediction_id": "", "label": 1}, [("prediction_id", "min_length")]),
    ({"prediction_id": "x" * 300, "label": 1}, [("prediction_id", "max_length")]),
    ({"prediction_id": True, "label": 1}, [("prediction_id", "type")]),
    ({"prediction_id": "p"}, [("label", "required")]),
    ({"prediction_id": "p", "label": None}, [("label", "required")]),
    ({"prediction_id": "p", "label": " "}, [("label", "required")]),
    ({"prediction_id": "p", "label": math.nan}, [("label", "finite")]),
    ({"prediction_id": "p", "label": [1.0, math.inf]}, [("label", "finite")]),
    ({"prediction_id": "p", "label": 1, "ts": "yesterday"}, [("ts", "type")]),
    ({"prediction_id": "p", "label": 1, "ts": math.inf}, [("ts", "finite")]),
    ({"prediction_id": "p", "label": 1, "ts": 1e308}, [("ts", "range")]),
    ({"prediction_id": "p", "label": 1, "ts": -1e20}, [("ts", "range")]),
    ({"prediction_id": "p", "label": 1, "ts": "0001-01-01"}, [("ts", "range")]),
    ({"prediction_id": "", "label": None}, [("prediction_id", "min_length"),
                                            ("label", "required")]),
])
def test_invalid_label_rows_name_every_problem(record: dict[str, object],
                                               rules: list[tuple[str, str]]) -> None:
    row, problems = parse_label(record, LabelColumns(ts="ts"))
    assert row is None
    assert [(p.path, p.rule) for p in problems] == rules
    assert all(p.message.startswith(f"The '{p.path}' column") for p in problems)


@pytest.mark.parametrize(("value", "expected"), [
    (1_700_000_000, 1_700_000_000.0), (Decimal("1.5"), 1.5), (" 1.5 ", 1.5),
    ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC).timestamp()),
    ("2024-05-01T02:00:00+02:00", datetime(2024, 5, 1, tzinfo=UTC).timestamp()),
    (datetime(2024, 5, 1), datetime(2024, 5, 1, tzinfo=UTC).timestamp()),
    (datetime(2024, 5, 1, 1, tzinfo=timezone(timedelta(hours=1))),
     datetime(2024, 5, 1, tzinfo=UTC).timestamp()),
    (date(2024, 5, 1), datetime(2024, 5, 1, tzinfo=UTC).timestamp()),
])
def test_parse_timestamp(value: object, expected: float) -> None:
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize("value", [True, "soon", [1], math.nan, "nan", "-inf"])
def test_parse_timestamp_refuses_non_times(value: object) -> None:
    with pytest.raises(ValueError, match="must be"):
        parse_timestamp(value)

"""Values read from files: idempotency keys, deterministic ids, JSON-safe values, times."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keelwork.core.ingest_values import (
    MAX_ID_LENGTH,
    canonical_json,
    deterministic_prediction_id,
    explicit_key,
    json_safe,
    parse_timestamp,
    row_key,
)
from keelwork.core.predictions import prediction_id_time

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



# --------------------------------------------------------------------------- JSON values
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



# --------------------------------------------------------------------------- times
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

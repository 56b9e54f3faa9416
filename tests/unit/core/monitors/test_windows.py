"""Window specs and the flattening of logged payloads into monitoring columns."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from keelwork.core.monitors.windows import (
    LABEL_LABEL,
    LABEL_VALUE,
    PREDICTION_LABEL,
    PREDICTION_SCORE,
    PREDICTION_VALUE,
    OutputSchema,
    flatten_instance,
    flatten_label,
    flatten_output,
    parse_duration,
    parse_window,
)
from keelwork.errors import MonitorError

BINARY = OutputSchema(classes=("<=50K", ">50K"), feature_names=("age", "hours"))
REGRESSOR = OutputSchema(feature_names=("a", "b"))


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("text", "seconds", "count"), [
    ("15m", 900, None), ("1h", 3600, None), ("1d", 86400, None), ("30s", 30, None),
    (" 2h ", 7200, None), ("1000p", None, 1000), ("1000", None, 1000)])
def test_parse_window(text: str, seconds: int | None, count: int | None) -> None:
    spec = parse_window(text)
    assert (spec.seconds, spec.count) == (seconds, count)
    assert spec.is_time is (seconds is not None)


@pytest.mark.parametrize("text", ["", "0h", "1w", "h", "-1h", "1.5h", "abc", "0"])
def test_bad_window_names_the_rule(text: str) -> None:
    with pytest.raises(MonitorError, match="monitoring window must be"):
        parse_window(text)


def test_parse_duration() -> None:
    assert parse_duration("7d") == 7 * 86400
    with pytest.raises(MonitorError, match="unit"):
        parse_duration("100p")


def test_time_windows_are_utc_aligned_and_whole() -> None:
    spec = parse_window("1h")
    since, until = _ts("2024-03-01T10:20:00"), _ts("2024-03-01T12:05:00")
    windows = spec.time_windows(since, until)
    assert [w[0] for w in windows] == [_ts("2024-03-01T10:00:00"), _ts("2024-03-01T11:00:00"),
                                      _ts("2024-03-01T12:00:00")]
    assert all(b - a == 3600 for a, b in windows)
    day = parse_window("1d")
    assert day.start_of(_ts("2024-03-01T23:59:59")) == _ts("2024-03-01T00:00:00")
    quarter = parse_window("15m")
    assert quarter.start_of(_ts("2024-03-01T10:44:59")) == _ts("2024-03-01T10:30:00")


def test_count_window_has_no_time_boundaries() -> None:
    with pytest.raises(MonitorError, match="counts predictions"):
        parse_window("10p").time_windows(0, 10)


def test_flatten_inputs() -> None:
    record = {"age": 39, "workclass": "State-gov", "tags": ["a"], "missing": None}
    assert flatten_instance(record, BINARY) == {"age": 39, "workclass": "State-gov",
                                                "missing": None}
    assert flatten_instance([39, 40], BINARY) == {"age": 39, "hours": 40}
    assert flatten_instance([1, 2, 3], OutputSchema()) == {"f0": 1, "f1": 2, "f2": 3}
    text = OutputSchema(classes=("great", "other"), text_field="review")
    assert flatten_instance("lovely tea", text) == {"review": "lovely tea"}
    assert flatten_instance(None, text) == {}


def test_flatten_sklearn_outputs() -> None:
    assert flatten_output(">50K", BINARY) == {PREDICTION_LABEL: ">50K"}
    assert flatten_output(True, OutputSchema(classes=("false", "true"))) == {
        PREDICTION_LABEL: "true"}
    assert flatten_output(1.0, OutputSchema(classes=("0", "1"))) == {PREDICTION_LABEL: "1"}
    assert flatten_output(3.25, REGRESSOR) == {PREDICTION_VALUE: 3.25}
    # a probability row in class order: the positive (second) class is the score
    assert flatten_output([0.2, 0.8], BINARY) == {
        "prediction:proba:<=50K": 0.2, "prediction:proba:>50K": 0.8,
        PREDICTION_SCORE: 0.8, PREDICTION_LABEL: ">50K"}


def test_flatten_callable_outputs() -> None:
    out = flatten_output({"label": "great", "probabilities": {"great": 0.9, "other": 0.1}},
                         OutputSchema(classes=("great", "other"), positive="great"))
    assert out[PREDICTION_LABEL] == "great"
    assert out[PREDICTION_SCORE] == 0.9
    assert flatten_output({"score": 0.3}, BINARY) == {PREDICTION_SCORE: 0.3}
    assert flatten_output({"value": 2}, REGRESSOR) == {PREDICTION_VALUE: 2.0}
    assert flatten_output(None, BINARY) == {}
    assert flatten_output({"score": float("nan")}, BINARY) == {}


def test_flatten_labels() -> None:
    assert flatten_label(">50K", BINARY) == {LABEL_LABEL: ">50K"}
    assert flatten_label({"label": ">50K"}, BINARY) == {LABEL_LABEL: ">50K"}
    assert flatten_label(2.5, REGRESSOR) == {LABEL_VALUE: 2.5}
    assert flatten_label("n/a", REGRESSOR) == {}
    assert flatten_label(None, BINARY) == {}
    assert flatten_label({"other": 1}, BINARY) == {}


def test_schema_round_trip_and_positive() -> None:
    schema = OutputSchema(classes=("a", "b"), positive="a", feature_names=("x",),
                          text_field="t")
    assert OutputSchema.from_dict(schema.as_dict()) == schema
    assert schema.binary_positive == "a"
    assert OutputSchema(classes=("a", "b")).binary_positive == "b"
    assert OutputSchema(classes=("a", "b", "c")).binary_positive is None
    assert REGRESSOR.task == "regression" and BINARY.task == "classification"


def test_a_multi_output_regressor_answers_a_record_in_contract_order() -> None:
    """Two contract outputs: a list answer or label is the record of them, field by field."""
    from keelwork.core.monitors.windows import OutputSchema, flatten_label, flatten_output

    schema = OutputSchema.from_dict(OutputSchema(outputs=("progression", "bmi2")).as_dict())
    assert flatten_output([150.0, 27.5], schema) == {
        "prediction:value": 150.0, "prediction:value:progression": 150.0,
        "prediction:value:bmi2": 27.5}
    assert flatten_output({"progression": 1, "bmi2": 2}, schema)["prediction:value:bmi2"] == 2.0
    assert flatten_label(140.0, schema) == {"label:value": 140.0,
                                            "label:value:progression": 140.0}
    assert flatten_label({"bmi2": 30.0}, schema) == {"label:value:bmi2": 30.0}
    assert flatten_label([140.0, 30.0], schema)["label:value:bmi2"] == 30.0
    assert "outputs" not in OutputSchema().as_dict()  # one output: fingerprints unchanged

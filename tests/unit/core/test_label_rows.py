"""Label rows: a labels record becomes a label, or every problem is named."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from keelwork.core.label_rows import LabelColumns, parse_label

SHA = "ab" * 32


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



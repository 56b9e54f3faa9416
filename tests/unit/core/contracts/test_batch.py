"""keelwork.core.contracts.batch: the vectorised engine flags what the per-request one flags."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keelwork.core.contracts import compile_contract
from keelwork.core.contracts.batch import _Explainer, check_contract, validate_table
from keelwork.core.contracts.columns import (
    is_mixed,
    mixed_array,
    table_from_records,
    to_mixed,
)
from keelwork.errors import InvalidInputError, SpecError
from keelwork.spec.contract import ContractSection, FieldSpec

NAN, INF = float("nan"), float("inf")
NAMES = [f"f{i}" for i in range(6)]
TYPES = ["float", "integer", "boolean", "string", "category", "text", "tensor"]


def contract(*fields: dict[str, Any], extra: str = "reject") -> ContractSection:
    return ContractSection.model_validate({"inputs": list(fields), "extra_fields": extra})


def flagged(report: Any) -> set[tuple[int, str, str]]:
    return {(int(r), f.column, f.rule) for f in report.failures for r in f.rows}


def request_flags(section: ContractSection, rows: list[list[Any]]) -> set[tuple[int, str, str]]:
    """(row, field, rule) of the per-request validator on array records."""
    validator = compile_contract(section)
    out = set()
    for detail in validator.validate_batch(rows):
        m = re.fullmatch(r"instances\[(\d+)\]\.(.+)", detail.path)
        assert m, detail.path
        out.add((int(m.group(1)), m.group(2), detail.rule))
    return out


# --------------------------------------------------------------------------- properties
@st.composite
def field_specs(draw: st.DrawFn, name: str) -> FieldSpec:
    kind = draw(st.sampled_from(TYPES))
    spec: dict[str, Any] = {"name": name, "type": kind, "required": draw(st.booleans()),
                            "nullable": draw(st.booleans())}
    if kind in ("float", "integer", "tensor"):
        bounds = sorted(draw(st.lists(st.integers(-1000, 1000) | st.floats(-1e3, 1e3),
                                      min_size=2, max_size=2)))
        spec["min"] = draw(st.sampled_from([None, bounds[0]]))
        spec["max"] = draw(st.sampled_from([None, bounds[1]]))
        if kind == "integer" and spec["min"] is not None and spec["max"] is not None \
                and math.ceil(spec["min"]) > math.floor(spec["max"]):
            spec["max"] = None
    if kind in ("float", "tensor"):
        spec["allow_nan"] = draw(st.booleans())
    if kind in ("string", "text"):
        spec["min_length"] = draw(st.sampled_from([None, 0, 1, 3]))
        spec["max_length"] = draw(st.sampled_from([None, 3, 8]))
    if kind in ("category", "integer", "string") and (kind == "category" or draw(st.booleans())):
        pool = {"integer": st.integers(-3, 3), "string": st.text(max_size=3)}.get(
            kind, st.text(max_size=3) | st.integers(-3, 3) | st.booleans())
        spec["categories"] = draw(st.lists(pool, min_size=1, max_size=4,
                                           unique_by=lambda c: (type(c), c)))
    if kind == "tensor":
        spec["shape"] = draw(st.lists(st.sampled_from([-1, 2]), max_size=2))
        spec["dtype"] = draw(st.sampled_from([None, "float64", "int64"]))
    field = FieldSpec.model_validate(spec)
    if check_contract(ContractSection(inputs=[field])):
        return FieldSpec.model_validate({**spec, "categories": None}
                                        if kind != "category" else {**spec, "type": "string"})
    return field


def _values(spec: FieldSpec) -> st.SearchStrategy[Any]:
    near = [spec.min, spec.max, 0, 1, -1]
    numbers = (st.integers(-(2**63), 2**63 - 1) | st.integers(-1100, 1100)
               | st.floats(-2e3, 2e3) | st.floats(allow_nan=True)
               | st.sampled_from([b + d for b in near if b is not None for d in (-1, 0, 1)]
                                 or [0]).map(lambda x: x)
               | st.sampled_from([0.5, 3.0, -2.0, 1e19, -1e19, 2.0**63, NAN, INF, -INF]))
    text = st.text(max_size=10) | st.sampled_from(["1", "true", ""])
    out = st.none() | st.booleans() | numbers | text
    if spec.categories:
        out |= st.sampled_from(spec.categories)
    if spec.type == "tensor":
        leaf = st.integers(-5, 5) | st.floats(-5, 5) | st.just(NAN)
        out |= st.lists(leaf, max_size=3) | st.lists(st.lists(leaf, min_size=2, max_size=2),
                                                     max_size=2)
    return out


@st.composite
def tables(draw: st.DrawFn) -> tuple[ContractSection, list[list[Any]]]:
    n_fields = draw(st.integers(1, len(NAMES)))
    fields = [draw(field_specs(name)) for name in NAMES[:n_fields]]
    n_rows = draw(st.integers(1, 12))
    rows = [[draw(_values(f)) for f in fields] for _ in range(n_rows)]
    return ContractSection(inputs=fields), rows


def _integral(value: Any) -> Any:
    if type(value) is float and math.isfinite(value) and value.is_integer():
        return int(value)
    return [_integral(v) for v in value] if isinstance(value, list) else value


def _request_value(spec: FieldSpec, value: Any) -> Any:
    """The documented difference: an integral float counts as an integer in a table."""
    if spec.type in ("integer", "category") or (spec.type == "tensor"
                                                and spec.dtype in ("int32", "int64")):
        return _integral(value)
    return value


def _as_table(section: ContractSection, rows: list[list[Any]], how: str) -> pa.Table:
    names = [f.name for f in section.inputs]
    records = [dict(zip(names, row, strict=True)) for row in rows]
    if how == "sliced":  # a leading row sliced off: buffers with an offset
        table = table_from_records([dict.fromkeys(names, 0), *records]).slice(1)
    elif how == "chunked":
        half = len(records) // 2
        parts = [table_from_records(records[:half]), table_from_records(records[half:])]
        parts = [p for p in parts if p.num_rows]
        schema = parts[-1].schema
        if all(p.schema == schema for p in parts):
            table = pa.concat_tables(parts)
        else:
            table = table_from_records(records)
    elif how == "dictionary":
        table = table_from_records(records)
        for i, name in enumerate(table.column_names):
            if pa.types.is_string(table.schema.field(i).type):
                table = table.set_column(i, name, table.column(name).dictionary_encode())
    elif how == "mixed":
        table = table_from_records(records)
        for i, name in enumerate(table.column_names):
            table = table.set_column(i, name, to_mixed(table.column(name).combine_chunks()))
    else:
        table = table_from_records(records)
    return table


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=tables(), how=st.sampled_from(["plain", "sliced", "chunked", "dictionary", "mixed"]))
def test_property_both_engines_flag_the_same_rows_fields_and_rules(
        case: tuple[ContractSection, list[list[Any]]], how: str) -> None:
    section, rows = case
    table = _as_table(section, rows, how)
    report = validate_table(table, section)
    request_rows = [[_request_value(f, v) for f, v in zip(section.inputs, row, strict=True)]
                    for row in rows]
    assert flagged(report) == request_flags(section, request_rows)
    failing = {r for r, _, _ in flagged(report)}
    assert set(report.failing_rows().tolist()) == failing
    assert report.passed_rows + report.failed_rows == len(rows)
    reasons = report.reasons()
    assert len(reasons) == len(failing)
    assert reasons == _Explainer(table, section, fast=False).reasons(report)  # same text
    for row, reason in zip(report.failing_rows().tolist(), reasons, strict=True):
        names = {f for r, f, _ in flagged(report) if r == row}
        assert all(name in reason for name in names)


# --------------------------------------------------------------------------- the report
PEOPLE = contract(
    {"name": "age", "type": "integer", "min": 0, "max": 150},
    {"name": "income", "type": "float", "min": 0},
    {"name": "color", "type": "category", "categories": ["red", "green", "blue"]},
    {"name": "note", "type": "text", "max_length": 10, "required": False},
)


def people(n: int = 10_000) -> pa.Table:
    rng = np.random.default_rng(3)
    return pa.table({
        "age": pa.array(rng.integers(0, 100, n)),
        "income": pa.array(rng.uniform(0, 1e5, n)),
        "color": pa.array(np.asarray(["red", "green", "blue"], dtype=object)[
            rng.integers(0, 3, n)], pa.string()),
        "note": pa.array(["ok"] * n),
    })


def plant(table: pa.Table, column: str, rows: list[int], value: Any) -> pa.Table:
    values = table.column(column).to_pylist()
    for r in rows:
        values[r] = value
    return table.set_column(table.column_names.index(column), column,
                            pa.array(values, table.schema.field(column).type))


def test_valid_table_has_an_empty_report() -> None:
    report = validate_table(people(), PEOPLE)
    assert report.ok and report.failures == () and report.rows == 10_000
    assert report.failed_rows == 0 and report.passed_rows == 10_000
    assert report.reasons() == [] and not report.failed.any()


def test_counts_fractions_examples_and_reasons() -> None:
    table = plant(people(), "age", [5, 17, 9000], -3)
    table = plant(table, "age", [40], 200)
    table = plant(table, "income", [17, 33], NAN)
    table = plant(table, "color", [7, 8, 9, 10, 11, 12, 13], "pink")
    table = plant(table, "note", [2], "x" * 11)
    report = validate_table(table, PEOPLE, examples=3)
    summary = {(f.column, f.rule): (f.count, f.fraction, [e.row for e in f.examples])
               for f in report.failures}
    assert summary == {
        ("age", "min"): (3, 3 / 10_000, [5, 17, 9000]),
        ("age", "max"): (1, 1 / 10_000, [40]),
        ("income", "finite"): (2, 2 / 10_000, [17, 33]),
        ("color", "category"): (7, 7 / 10_000, [7, 8, 9]),
        ("note", "max_length"): (1, 1 / 10_000, [2]),
    }
    by_rule = {(f.column, f.rule): f for f in report.failures}
    assert by_rule[("age", "min")].message == "must be >= 0"
    assert [e.value for e in by_rule[("income", "finite")].examples] == ["NaN", "NaN"]
    assert report.failing_rows().tolist() == [2, 5, 7, 8, 9, 10, 11, 12, 13, 17, 33, 40, 9000]
    reasons = dict(zip(report.failing_rows().tolist(), report.reasons(), strict=True))
    assert reasons[17] == "age must be >= 0; got -3; income must be a finite number; got NaN"
    assert reasons[7] == "color must be one of 'red', 'green', 'blue'; got 'pink'"
    assert report.passed_rows + report.failed_rows == 10_000
    as_json = report.as_dict()
    assert as_json["failed_rows"] == 13
    assert as_json["failures"][0] == {"column": "age", "rule": "min", "count": 3,
                                      "fraction": 0.0003, "message": "must be >= 0",
                                      "examples": [{"row": 5, "value": -3},
                                                   {"row": 17, "value": -3},
                                                   {"row": 9000, "value": -3}]}


def test_fast_reasons_read_exactly_as_the_per_value_explainer() -> None:
    floats = [-0.5, -3.0, -1e-300, -1e16, -5e16, -1e300, -2.5e-7, 1e22, 3e21, 1e16 + 2.0,
              2.0**53 + 2.0, 1e21 + 1e6, 7.0, NAN, INF, -INF]
    section = contract({"name": "x", "type": "float", "min": 0, "max": 1e21},
                       {"name": "k", "type": "integer", "min": 0, "max": 9},
                       {"name": "c", "type": "category", "categories": ["a", "b"]})
    rng = np.random.default_rng(5)
    n = 5_000
    x = rng.uniform(0, 10, n)
    x[rng.choice(n, len(floats) * 20, replace=False)] = np.tile(floats, 20)
    x[rng.choice(n, 300, replace=False)] = -rng.exponential(1e3, 300)
    k = rng.integers(-5, 15, n)
    c = np.asarray(["a", "b", "zz", "é", ""], dtype=object)[rng.integers(0, 5, n)]
    for build in (pa.float64, pa.float32):
        table = pa.table({"x": pa.array(x, build()), "k": pa.array(k),
                          "c": pa.array(c, pa.string())})
        report = validate_table(table, section)
        assert {f.rule for f in report.failures} >= {"min", "max", "finite", "category"}
        slow = _Explainer(table, section, fast=False).reasons(report)
        assert report.reasons() == slow
        assert any("x must be >= 0; got -3.0" in r for r in slow)


def test_missing_column_nulls_and_extra_columns() -> None:
    table = people(100).drop_columns(["income"])
    table = plant(table, "age", [3], None)
    table = plant(table, "note", [4], None)  # optional: null is "absent", fine
    table = table.append_column("zip", pa.array([None] * 99 + ["75001"]))
    report = validate_table(table, PEOPLE)
    got = {(f.column, f.rule): f.rows.tolist() for f in report.failures}
    assert got == {("age", "nullable"): [3], ("income", "required"): list(range(100)),
                   ("zip", "extra_field"): [99]}
    assert report.failed_rows == 100
    keep = PEOPLE.model_copy(update={"extra_fields": "keep"})
    assert ("zip", "extra_field") not in {(f.column, f.rule)
                                          for f in validate_table(table, keep).failures}


def test_big_table_on_threads_matches_the_small_path(monkeypatch: pytest.MonkeyPatch) -> None:
    table = plant(people(), "color", [1, 2, 9999], "pink")
    table = plant(table, "note", [5], "x" * 20)
    threaded = flagged(validate_table(table, PEOPLE))
    monkeypatch.setattr("keelwork.core.contracts.table_check._THREADS_FROM_ROWS", 10**9)
    assert flagged(validate_table(table, PEOPLE)) == threaded
    assert threaded == {(1, "color", "category"), (2, "color", "category"),
                        (9999, "color", "category"), (5, "note", "max_length")}


def test_arrow_types_beyond_json() -> None:
    section = contract(
        {"name": "u", "type": "integer", "max": 10},
        {"name": "d", "type": "float", "max": 1},
        {"name": "t", "type": "float"},
        {"name": "f32", "type": "float", "max": 0.1},
        {"name": "cat", "type": "category", "categories": ["a", "b"]},
        {"name": "big", "type": "integer"},
    )
    import datetime
    import decimal

    table = pa.table({
        "u": pa.array([3, 11], pa.uint8()),
        "d": pa.array([decimal.Decimal("0.5"), decimal.Decimal("1.5")], pa.decimal128(5, 2)),
        "t": pa.array([datetime.datetime(2024, 1, 1), None], pa.timestamp("s")),
        "f32": pa.array([0.1, 0.2], pa.float32()),  # float32(0.1) > 0.1 as a float64
        "cat": pa.array(["a", "c"]).dictionary_encode(),
        "big": pa.array([2**63 - 1, 2**64 - 1], pa.uint64()),
    })
    report = validate_table(table, section)
    assert flagged(report) == {(1, "u", "max"), (1, "d", "max"), (0, "t", "type"),
                               (1, "t", "nullable"), (0, "f32", "max"), (1, "f32", "max"),
                               (1, "cat", "category"), (1, "big", "max")}
    reasons = dict(zip(report.failing_rows().tolist(), report.reasons(), strict=True))
    assert "t must be a number; got <datetime> (a datetime)" in reasons[0]
    assert "big must be <= 9223372036854775807 (the int64 maximum)" in reasons[1]


def test_mixed_json_column_is_judged_value_by_value() -> None:
    table = table_from_records([{"n": 1}, {"n": "2"}, {"n": 2.5}, {"n": 3.0}, {"n": None},
                                {"n": [1, 2]}, {"n": True}])
    assert is_mixed(table.schema.field("n").type)
    report = validate_table(table, contract({"name": "n", "type": "integer", "nullable": True}))
    assert {(r, rule) for r, _, rule in flagged(report)} == {(1, "type"), (2, "type"),
                                                            (5, "type"), (6, "type")}
    reasons = report.reasons()
    assert reasons[0] == "n must be an integer; got '2' (a string)"
    assert reasons[2] == "n must be an integer; got [1, 2] (an array)"


def test_integral_floats_count_as_integers_in_a_table() -> None:
    """The one documented difference from a request, where 3.0 breaks 'type'."""
    section = contract({"name": "n", "type": "integer", "max": 5})
    report = validate_table(pa.table({"n": [3.0, 7.0, 2.5, NAN, INF]}), section)
    assert {(r, rule) for r, _, rule in flagged(report)} == {(1, "max"), (2, "type"),
                                                            (3, "type"), (4, "type")}
    assert compile_contract(section).validate({"n": 3.0})[0].rule == "type"


def test_tensor_column_uses_the_request_rules() -> None:
    section = contract({"name": "v", "type": "tensor", "shape": [2], "dtype": "float32",
                        "max": 1})
    table = table_from_records([{"v": [0.5, 1.0]}, {"v": [0.5]}, {"v": [2.0, 0.0]},
                                {"v": "x"}])
    assert {(r, rule) for r, _, rule in flagged(validate_table(table, section))} == {
        (1, "shape"), (2, "max"), (3, "type")}


def test_contradictions_are_spec_errors() -> None:
    bad = contract({"name": "n", "type": "integer", "min": 0.2, "max": 0.8},
                   {"name": "k", "type": "integer", "categories": ["1", 7], "max": 5},
                   {"name": "s", "type": "string", "categories": ["long"], "max_length": 2})
    assert [d.path for d in check_contract(bad)] == ["inputs[0].min", "inputs[1].categories",
                                                     "inputs[2].categories"]
    with pytest.raises(SpecError, match="contradicts itself") as info:
        validate_table(pa.table({"n": [1]}), bad)
    assert len(info.value.details) == 3


def test_duplicate_column_names_are_refused() -> None:
    table = pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"])
    with pytest.raises(InvalidInputError, match="more than one column named 'a'"):
        validate_table(table, contract({"name": "a", "type": "integer"}))


def test_empty_table_and_record_batch() -> None:
    empty = pa.table({"age": pa.array([], pa.int64())})
    assert validate_table(empty, PEOPLE).ok
    batch = people(10).to_batches()[0]
    assert validate_table(batch, PEOPLE).ok


def test_mixed_array_round_trip() -> None:
    values = [None, True, 1, 2.5, "x", [1, {"a": 2}], 2**70]
    arr = mixed_array(values)
    assert arr.to_pylist()[:5] == values[:5]
    assert to_mixed(arr) is arr
    assert to_mixed(pa.array([1, None], pa.uint8())).to_pylist() == [1, None]

"""keelwork.core.contracts.record: every rule, every error reported, fast path == slow path."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keelwork.core.contracts import RULES, RecordValidator, compile_contract, summarise
from keelwork.core.contracts import record as record_mod
from keelwork.core.contracts.record import INT64_MAX, INT64_MIN, MISSING, compile_field
from keelwork.errors import ContractViolation, ErrorDetail
from keelwork.spec.contract import ContractSection, FieldSpec

NAN, INF = float("nan"), float("inf")


def make(*fields: dict[str, Any], extra: str = "reject") -> RecordValidator:
    return compile_contract(ContractSection.model_validate(
        {"inputs": list(fields), "extra_fields": extra}))


def one(validator: RecordValidator, record: Any) -> ErrorDetail:
    errors = validator.validate(record)
    assert len(errors) == 1, errors
    return errors[0]


def rules(errors: list[ErrorDetail]) -> list[tuple[str, str]]:
    return [(e.path, e.rule) for e in errors]


AGE = {"name": "age", "type": "integer", "min": 0, "max": 150}
INCOME = {"name": "income", "type": "float", "min": 0}
COLOR = {"name": "color", "type": "category", "categories": ["red", "green", "blue"]}
NOTE = {"name": "note", "type": "text", "max_length": 10, "required": False}
PEOPLE = make(AGE, INCOME, COLOR, NOTE)
GOOD = {"age": 30, "income": 1200.5, "color": "red", "note": "hi"}


# --------------------------------------------------------------------------- messages, paths
def test_valid_record_has_no_errors() -> None:
    assert PEOPLE.validate(GOOD) == []
    assert PEOPLE.validate_batch([GOOD, GOOD]) == []
    PEOPLE.check([GOOD])


def test_message_names_field_rule_and_got() -> None:
    err = one(PEOPLE, {**GOOD, "age": -3})
    assert (err.path, err.rule, err.got) == ("age", "min", -3)
    assert err.message == "The 'age' field must be >= 0; got -3."
    assert err.as_dict()["got"] == -3


def test_index_and_prefix_make_the_path() -> None:
    err = PEOPLE.validate({**GOOD, "age": 200}, 3)[0]
    assert err.path == "instances[3].age"
    assert err.message == "The 'instances[3].age' field must be <= 150; got 200."
    assert PEOPLE.validate({**GOOD, "age": 200}, 0, prefix="rows")[0].path == "rows[0].age"


def test_every_bad_field_is_reported_not_the_first() -> None:
    bad = {"age": "30", "income": NAN, "color": "purple", "note": "x" * 11, "zip": 1}
    assert rules(PEOPLE.validate(bad)) == [
        ("age", "type"), ("income", "finite"), ("color", "category"),
        ("note", "max_length"), ("zip", "extra_field")]


def test_batch_reports_every_row_with_its_index() -> None:
    rows = [GOOD, {**GOOD, "age": -1}, GOOD, {"income": 1.0, "color": "red"}]
    assert rules(PEOPLE.validate_batch(rows)) == [
        ("instances[1].age", "min"), ("instances[3].age", "required")]
    assert rules(PEOPLE.validate_batch(rows, prefix="inputs"))[0][0] == "inputs[1].age"


def test_check_raises_with_every_detail_and_a_summary() -> None:
    rows = [{**GOOD, "age": -3}, {**GOOD, "color": "x", "income": -1.5}]
    with pytest.raises(ContractViolation) as info:
        PEOPLE.check(rows)
    assert isinstance(info.value, ValueError)
    assert info.value.details == PEOPLE.validate_batch(rows)
    assert str(info.value) == (
        "3 fields violate the contract: instances[0].age must be >= 0; got -3; "
        "instances[1].income must be >= 0; got -1.5; "
        "instances[1].color must be one of 'red', 'green', 'blue'; got 'x'")


def test_summary_is_truncated_with_a_count() -> None:
    details = PEOPLE.validate_batch([{**GOOD, "age": -i - 1} for i in range(8)])
    text = summarise(details)
    assert text.startswith("8 fields violate the contract: instances[0].age must be >= 0; got -1")
    assert text.endswith("instances[4].age must be >= 0; got -5; and 3 more")
    assert summarise(details[:1]) == "1 field violates the contract: instances[0].age must be " \
        ">= 0; got -1"


def test_record_level_summary_uses_the_path() -> None:
    details = PEOPLE.validate_batch([[1, 2]])
    assert summarise(details).endswith(": instances[0] must hold 4 values, one per input field "
                                       "in contract order; got 2")


# --------------------------------------------------------------------------- presence
def test_required_missing() -> None:
    err = one(PEOPLE, {"income": 1.0, "color": "red"})
    assert (err.path, err.rule, err.got) == ("age", "required", None)
    assert err.message == "The 'age' field is required but was not given."


def test_optional_missing_is_fine_and_normalised_to_none() -> None:
    assert PEOPLE.validate({"age": 1, "income": 2.0, "color": "red"}) == []
    assert PEOPLE.normalise({"color": "red", "income": 2.0, "age": 1}) == {
        "age": 1, "income": 2.0, "color": "red", "note": None}


def test_null_needs_nullable() -> None:
    v = make({"name": "a", "type": "float"}, {"name": "b", "type": "float", "nullable": True},
             {"name": "c", "type": "float", "required": False})
    assert v.validate({"a": 1.0, "b": None}) == []
    err = one(v, {"a": None, "b": None})
    assert (err.rule, err.message) == ("nullable", "The 'a' field must not be null; got null.")
    # required: false lets a field be absent; an explicit null still needs nullable: true
    assert rules(v.validate({"a": 1.0, "b": 1.0, "c": None})) == [("c", "nullable")]


# --------------------------------------------------------------------------- numbers
def test_float_accepts_ints_rejects_strings_and_bools() -> None:
    v = make({"name": "x", "type": "float"})
    assert v.validate({"x": 3}) == []
    assert v.validate({"x": -0.0}) == []
    for bad, kind in (("3.5", "a string"), (True, "a boolean"), ([1.0], "an array")):
        err = one(v, {"x": bad})
        assert err.rule == "type"
        assert err.message.endswith(f"must be a number; got {record_mod._show(bad)} ({kind}).")


def test_integer_rejects_bools_floats_and_strings() -> None:
    v = make({"name": "n", "type": "integer"})
    assert v.validate({"n": -7}) == []
    err = one(v, {"n": True})
    assert (err.rule, err.got) == ("type", True)
    assert err.message == "The 'n' field must be an integer; got true (a boolean)."
    err = one(v, {"n": 3.0})
    assert err.rule == "type"
    assert "a float is not accepted even with an integral value, send 3" in err.message
    assert one(v, {"n": 2.5}).rule == "type"
    assert one(v, {"n": "3"}).rule == "type"


def test_integer_bounds_beyond_int64() -> None:
    v = make({"name": "n", "type": "integer"})
    assert v.validate({"n": INT64_MAX}) == []
    assert v.validate({"n": INT64_MIN}) == []
    err = one(v, {"n": INT64_MAX + 1})
    assert err.rule == "max"
    assert "(the int64 maximum)" in err.message
    assert err.got == "an integer of 19 digits"
    assert one(v, {"n": INT64_MIN - 1}).rule == "min"
    err = one(v, {"n": 10**400})
    assert (err.rule, err.got) == ("max", "an integer of 401 digits")
    json.dumps([e.as_dict() for e in v.validate({"n": -(10**400)})], allow_nan=False)


def test_declared_bounds_win_over_the_int64_limits() -> None:
    v = make({"name": "n", "type": "integer", "min": -5, "max": 5})
    assert one(v, {"n": 10**30}).message.startswith("The 'n' field must be <= 5; got an integer")
    assert one(v, {"n": -6}).message == "The 'n' field must be >= -5; got -6."


def test_float_bounds_beyond_float64_for_huge_ints() -> None:
    v = make({"name": "x", "type": "float"})
    assert v.validate({"x": 10**300}) == []
    err = one(v, {"x": 10**400})
    assert err.rule == "max"
    assert "float64 maximum" in err.message
    assert one(v, {"x": -(10**400)}).rule == "min"


def test_fractional_bounds_are_shown_as_declared() -> None:
    v = make({"name": "p", "type": "float", "min": 0.5, "max": 1e20})
    assert one(v, {"p": 0.25}).message == "The 'p' field must be >= 0.5; got 0.25."
    assert one(v, {"p": 1e21}).message == "The 'p' field must be <= 1e+20; got 1e+21."
    assert one(v, {"p": 0}).message == "The 'p' field must be >= 0.5; got 0."


@pytest.mark.parametrize(("value", "got"), [(NAN, "NaN"), (INF, "Infinity"),
                                            (-INF, "-Infinity")])
def test_nan_and_inf_are_rejected_with_json_safe_got(value: float, got: str) -> None:
    err = one(make({"name": "x", "type": "float"}), {"x": value})
    assert (err.rule, err.got) == ("finite", got)
    assert err.message == f"The 'x' field must be a finite number; got {got}."
    json.dumps(err.as_dict(), allow_nan=False)


def test_allow_nan_admits_nan_and_inf_but_keeps_the_range() -> None:
    v = make({"name": "x", "type": "float", "allow_nan": True})
    for value in (NAN, INF, -INF, 1.0):
        assert v.validate({"x": value}) == []
    bounded = make({"name": "x", "type": "float", "allow_nan": True, "max": 10})
    assert bounded.validate({"x": NAN}) == []
    assert one(bounded, {"x": INF}).rule == "max"


def test_numpy_scalars_pass_through_the_slow_path() -> None:
    np = pytest.importorskip("numpy")
    v = make({"name": "x", "type": "float", "max": 1}, {"name": "n", "type": "integer"},
             {"name": "b", "type": "boolean"})
    assert v.validate({"x": np.float32(0.5), "n": np.int64(4), "b": True}) == []
    assert rules(v.validate({"x": np.float64(2.0), "n": np.float64(4.0), "b": np.bool_(True)})) \
        == [("x", "max"), ("n", "type"), ("b", "type")]


def test_boolean() -> None:
    v = make({"name": "b", "type": "boolean"})
    assert v.validate({"b": False}) == []
    err = one(v, {"b": 1})
    assert err.message == "The 'b' field must be a boolean; got 1 (an integer)."
    assert one(v, {"b": "true"}).rule == "type"


# --------------------------------------------------------------------------- categories, text
def test_category_membership_and_type() -> None:
    err = one(PEOPLE, {**GOOD, "color": "Red"})
    assert err.message == "The 'color' field must be one of 'red', 'green', 'blue'; got 'Red'."
    err = one(PEOPLE, {**GOOD, "color": 1})
    assert err.rule == "type"
    assert err.message == ("The 'color' field must be one of 'red', 'green', 'blue'; got 1 "
                           "(an integer).")
    assert one(PEOPLE, {**GOOD, "color": ["red"]}).rule == "type"


def test_category_compares_type_and_value() -> None:
    v = make({"name": "c", "type": "category", "categories": [1, 2, True, "3"]})
    for ok in (1, 2, True, "3"):
        assert v.validate({"c": ok}) == [], ok
    assert one(v, {"c": False}).rule == "category"  # False == 0, but neither is listed
    assert one(v, {"c": 3}).rule == "category"
    assert one(v, {"c": 1.0}).rule == "type"
    ints = make({"name": "c", "type": "category", "categories": [0, 1]})
    assert one(ints, {"c": False}).rule == "type"  # False == 0, but a boolean is not an int


def test_many_categories_are_truncated_in_messages() -> None:
    v = make({"name": "c", "type": "category", "categories": [f"k{i}" for i in range(40)]})
    assert one(v, {"c": "zz"}).message == (
        "The 'c' field must be one of 'k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7', 'k8', "
        "'k9', ... (40 categories); got 'zz'.")


def test_categories_also_bind_string_and_integer_fields() -> None:
    v = make({"name": "s", "type": "string", "categories": ["a", "b"]},
             {"name": "n", "type": "integer", "categories": [1, 2]})
    assert v.validate({"s": "a", "n": 2}) == []
    assert rules(v.validate({"s": "c", "n": 3})) == [("s", "category"), ("n", "category")]


def test_text_lengths_count_code_points() -> None:
    v = make({"name": "t", "type": "text", "min_length": 1, "max_length": 1})
    assert v.validate({"t": "😀"}) == []  # one code point, four UTF-8 bytes
    assert v.validate({"t": "é"}) == []  # precomposed U+00E9
    err = one(v, {"t": "e\u0301"})  # e + combining acute: renders as one, len is 2
    assert (err.rule, err.message) == (
        "max_length", "The 't' field must be at most 1 characters long; got 2 characters.")
    assert one(v, {"t": "👨‍👩‍👧"}).message.endswith("got 5 characters.")  # 3 people + 2 ZWJ
    err = one(v, {"t": ""})
    assert (err.rule, err.got) == ("min_length", "")
    assert one(v, {"t": b"x"}).rule == "type"


def test_string_min_and_max_length_together() -> None:
    v = make({"name": "s", "type": "string", "min_length": 2, "max_length": 3})
    assert v.validate({"s": "abc"}) == []
    assert one(v, {"s": "a"}).rule == "min_length"
    assert one(v, {"s": "abcd"}).rule == "max_length"


def test_got_is_short_and_json_safe() -> None:
    v = make({"name": "t", "type": "text", "max_length": 5}, {"name": "x", "type": "float"},
             {"name": "o", "type": "float"})
    errors = v.validate({"t": "y" * 10_000, "x": list(range(1000)), "o": {"a": 1, "b": 2}})
    assert [e.got for e in errors] == [
        "y" * 80 + "... (10000 characters)", "<array of 1000 items>", "<object with 2 keys>"]
    assert one(v, {"t": "abc", "x": [1, NAN], "o": 1.0}).got == [1, "NaN"]
    assert one(v, {"t": "abc", "x": object(), "o": 1.0}).got == "<object>"
    json.dumps([e.as_dict() for e in errors], allow_nan=False)


# --------------------------------------------------------------------------- tensors
IMAGE = {"name": "img", "type": "tensor", "shape": [-1, 2], "dtype": "float32"}


def test_tensor_shape_with_any_dimension() -> None:
    v = make(IMAGE)
    for ok in ([[1.0, 2.0]], [[1, 2], [3.5, 4]] * 50, ((1.0, 2.0),), []):
        assert v.validate({"img": ok}) == [], ok
    err = one(v, {"img": [[1.0, 2.0, 3.0]]})
    assert (err.rule, err.got) == ("shape", [1, 3])
    assert err.message == "The 'img' field must have shape [-1, 2]; got shape [1, 3]."
    err = one(v, {"img": [1.0, 2.0]})
    assert err.message == ("The 'img' field must have shape [-1, 2] (2 dimensions); "
                           "got shape [2] (1 dimension).")


def test_ragged_tensor_is_one_shape_error() -> None:
    v = make(IMAGE)
    err = one(v, {"img": [[1.0, 2.0], [3.0]]})
    assert (err.rule, err.got) == ("shape", "ragged")
    assert "rows of 1 and 2 values at depth 1" in err.message
    err = one(v, {"img": [[1.0, 2.0], 3.0]})
    assert (err.rule, err.got) == ("shape", "ragged")
    assert "arrays mixed with scalars at depth 1" in err.message
    deep = make({"name": "t", "type": "tensor"})
    assert one(deep, {"t": [[[1], [2, 3]]]}).message.endswith("rows of 1 and 2 values at depth 2.")


def test_tensor_elements_one_error_per_rule_with_location() -> None:
    v = make(IMAGE)
    errors = v.validate({"img": [[1.0, NAN], [1e39, "a"], [INF, 2e39]]})
    assert [(e.rule, e.got) for e in errors] == [("finite", "NaN"), ("dtype", 1e39)]
    assert errors[0].message == "The 'img' field must hold finite numbers; got NaN at [0][1]."
    assert errors[1].message.endswith("got 1e+39 at [1][0].")


@pytest.mark.parametrize(("dtype", "ok", "bad"), [
    ("int64", [1, -2, INT64_MAX], [1, 1.5]),
    ("int64", [0], [True]),
    ("int32", [2**31 - 1], [2**31]),
    ("float64", [1e300, 2], [10**400]),
    ("bool", [True, False], [1]),
])
def test_tensor_dtypes(dtype: str, ok: list[Any], bad: list[Any]) -> None:
    v = make({"name": "t", "type": "tensor", "shape": [-1], "dtype": dtype})
    assert v.validate({"t": ok}) == []
    assert one(v, {"t": bad}).rule == "dtype"


def test_tensor_without_dtype_takes_numbers_and_bools() -> None:
    v = make({"name": "t", "type": "tensor"})
    assert v.validate({"t": [[[1, 2.5, True]]]}) == []
    assert v.validate({"t": 3.5}) == []  # rank 0
    err = one(v, {"t": [1, "2"]})
    assert (err.rule, err.message) == ("type", "The 't' field must hold numbers; got '2' "
                                               "(a string) at [1].")
    assert one(v, {"t": "1, 2"}).rule == "type"
    assert one(v, {"t": {"a": 1}}).rule == "type"
    assert one(v, {"t": [10**400]}).rule == "max"


def test_tensor_range_nan_and_outer_length() -> None:
    v = make({"name": "t", "type": "tensor", "min": 0, "max": 1, "allow_nan": True,
              "max_length": 2, "min_length": 1})
    assert v.validate({"t": [[0, NAN], [1, 0.5]]}) == []
    assert rules(v.validate({"t": [-1, 2, INF]})) == [("t", "max_length"), ("t", "min"),
                                                       ("t", "max")]
    assert one(v, {"t": []}).rule == "min_length"


def test_tensor_empty_outer_dimension_matches_any_inner_shape() -> None:
    v = make({"name": "t", "type": "tensor", "shape": [-1, 3, 4]})
    assert v.validate({"t": []}) == []
    assert one(v, {"t": [[]]}).rule == "shape"  # the 3 is fixed: 0 rows of it is wrong


def test_numpy_array_tensor() -> None:
    np = pytest.importorskip("numpy")
    v = make(IMAGE)
    assert v.validate({"img": np.zeros((3, 2), dtype=np.float32)}) == []
    assert one(v, {"img": np.zeros((3, 3))}).got == [3, 3]
    arr = np.ones((2, 2))
    arr[1, 0] = np.nan
    assert one(v, {"img": arr}).message.endswith("got NaN at [1][0].")


# --------------------------------------------------------------------------- record shapes
def test_positional_records_in_contract_order() -> None:
    assert PEOPLE.validate([30, 1.5, "red", "hi"]) == []
    assert PEOPLE.validate((30, 1.5, "red", None)) == []  # null = absent for optional fields
    assert rules(PEOPLE.validate([-1, 1.5, "pink", None], 2)) == [
        ("instances[2].age", "min"), ("instances[2].color", "category")]
    assert PEOPLE.normalise([30, 1.5, "red", None]) == {
        "age": 30, "income": 1.5, "color": "red", "note": None}


def test_positional_null_for_required_field_is_nullable_error() -> None:
    assert rules(PEOPLE.validate([None, 1.5, "red", None])) == [("age", "nullable")]


def test_positional_wrong_length_is_one_arity_error() -> None:
    for bad in ([30, 1.5, "red"], [30, 1.5, "red", None, 7], []):
        err = one(PEOPLE, bad)
        assert (err.path, err.rule) == ("", "arity")
    err = PEOPLE.validate([1], 4)[0]
    assert (err.path, err.got) == ("instances[4]", "<array of 1 items>")
    assert err.message == ("The 'instances[4]' record must hold 4 values, one per input field "
                           "in contract order; got 1.")


@pytest.mark.parametrize("bad", ["age=3", 42, None, 1.5, {1, 2}])
def test_record_that_is_neither_object_nor_array(bad: Any) -> None:
    err = PEOPLE.validate(bad, 0)
    assert [(e.path, e.rule) for e in err] == [("instances[0]", "record_type")]
    assert err[0].message.startswith("The 'instances[0]' record must be an object or an array")


def test_batch_that_is_not_an_array() -> None:
    for bad in ("abc", {"age": 3}):
        err = PEOPLE.validate_batch(bad)  # type: ignore[arg-type]
        assert rules(err) == [("instances", "record_type")]


def test_other_mappings_are_records() -> None:
    assert PEOPLE.validate(MappingProxyType(GOOD)) == []
    assert rules(PEOPLE.validate(MappingProxyType({**GOOD, "age": -1, "x": 2}))) == [
        ("age", "min"), ("x", "extra_field")]


# --------------------------------------------------------------------------- extra fields
def test_extra_fields_reject() -> None:
    errors = PEOPLE.validate({**GOOD, "zip": "12345", 7: "seven"}, 1)
    assert [(e.path, e.rule, e.got) for e in errors] == [
        ("instances[1].zip", "extra_field", "12345"), ("instances[1].7", "extra_field", "seven")]
    assert errors[0].message == ("The 'instances[1].zip' field is not in the contract "
                                 "(extra_fields: reject); got '12345'.")


def test_extra_fields_ignore_and_keep() -> None:
    record = {**GOOD, "zip": "12345"}
    ignore = make(AGE, INCOME, COLOR, NOTE, extra="ignore")
    keep = make(AGE, INCOME, COLOR, NOTE, extra="keep")
    assert ignore.validate(record) == keep.validate(record) == []
    assert ignore.normalise(record) == GOOD
    kept = keep.normalise(record)
    assert kept == record
    assert list(kept) == ["age", "income", "color", "note", "zip"]


def test_normalise_validates_unless_checked() -> None:
    with pytest.raises(ContractViolation, match=r"^1 field violates the contract: age must "):
        PEOPLE.normalise({**GOOD, "age": -1})
    assert PEOPLE.normalise({**GOOD, "age": -1}, checked=True)["age"] == -1
    assert PEOPLE.normalise_batch([GOOD, [1, 2.0, "blue", None]]) == [
        GOOD, {"age": 1, "income": 2.0, "color": "blue", "note": None}]
    with pytest.raises(ContractViolation) as info:
        PEOPLE.normalise_batch([GOOD, {}])
    assert [e.path for e in info.value.details] == [
        "instances[1].age", "instances[1].income", "instances[1].color"]


# --------------------------------------------------------------------------- API hygiene
def test_every_rule_is_documented() -> None:
    doc = record_mod.__doc__ or ""
    assert set(RULES) == {"required", "nullable", "type", "min", "max", "finite", "category",
                          "min_length", "max_length", "shape", "dtype", "extra_field",
                          "record_type", "arity"}
    for rule in RULES:
        assert f"\n{rule} " in doc or f"\n{rule}," in doc, rule


def test_record_path_does_not_import_numpy() -> None:
    code = (
        "import sys\n"
        "from keelwork.core.contracts import compile_contract\n"
        "from keelwork.spec.contract import ContractSection\n"
        "v = compile_contract(ContractSection(inputs=[{'name': 'x', 'type': 'float'},"
        " {'name': 't', 'type': 'tensor', 'shape': [-1, 2]}]))\n"
        "assert v.validate({'x': 1.0, 't': [[1, 2]]}) == []\n"
        "assert len(v.validate({'x': 'a', 't': [[1, float('nan')]]})) == 2\n"
        "print('numpy' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- properties
NAMES = [f"f{i}" for i in range(8)]
TYPES = ["float", "integer", "boolean", "string", "category", "text", "tensor"]


@st.composite
def field_specs(draw: st.DrawFn, name: str) -> FieldSpec:
    kind = draw(st.sampled_from(TYPES))
    spec: dict[str, Any] = {"name": name, "type": kind, "required": draw(st.booleans()),
                            "nullable": draw(st.booleans())}
    if kind in ("float", "integer", "tensor"):
        bounds = sorted(draw(st.lists(st.integers(-1000, 1000), min_size=2, max_size=2)))
        spec["min"] = draw(st.sampled_from([None, bounds[0]]))
        spec["max"] = draw(st.sampled_from([None, bounds[1]]))
    if kind in ("float", "tensor"):
        spec["allow_nan"] = draw(st.booleans())
    if kind in ("string", "text"):
        spec["min_length"] = draw(st.sampled_from([None, 0, 1, 3]))
        spec["max_length"] = draw(st.sampled_from([None, 3, 8]))
    if kind == "category":
        spec["categories"] = draw(st.lists(
            st.text(max_size=4) | st.integers(-3, 3) | st.booleans(), min_size=1, max_size=5,
            unique_by=lambda c: (type(c), c)))
    if kind == "tensor":
        spec["shape"] = draw(st.lists(st.sampled_from([-1, 1, 2, 3]), max_size=3))
        spec["dtype"] = draw(st.sampled_from([None, "float32", "float64", "int32", "int64"]))
    return FieldSpec.model_validate(spec)


def _number(spec: FieldSpec, integer: bool) -> st.SearchStrategy[Any]:
    lo = -(10**6) if spec.min is None else math.ceil(spec.min)
    hi = 10**6 if spec.max is None else math.floor(spec.max)
    ints = st.integers(lo, hi)
    if integer:
        return ints
    floats = st.floats(float(lo), float(hi), allow_nan=False, allow_infinity=False)
    return ints | floats | (st.just(NAN) if spec.allow_nan else st.nothing())


def values(spec: FieldSpec, leaves: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[Any]:
    """Valid values of ``spec``; for tensors, ``leaves`` replaces the valid elements."""
    if spec.type in ("float", "integer"):
        return _number(spec, spec.type == "integer")
    if spec.type == "boolean":
        return st.booleans()
    if spec.type in ("string", "text"):
        return st.text(min_size=spec.min_length or 0, max_size=spec.max_length)
    if spec.type == "category":
        return st.sampled_from(spec.categories or [])
    assert spec.shape is not None
    leaf = leaves if leaves is not None else _number(spec, spec.dtype in ("int32", "int64"))
    dims = st.tuples(*(st.integers(1, 3) if d == -1 else st.just(d) for d in spec.shape))
    return dims.flatmap(lambda ds: _nested(leaf, list(ds)))


def _nested(leaf: st.SearchStrategy[Any], dims: list[int]) -> st.SearchStrategy[Any]:
    if not dims:
        return leaf
    return st.lists(_nested(leaf, dims[1:]), min_size=dims[0], max_size=dims[0])


@st.composite
def contracts_and_records(draw: st.DrawFn) -> tuple[list[FieldSpec], dict[str, Any]]:
    n = draw(st.integers(1, len(NAMES)))
    fields = [draw(field_specs(name)) for name in NAMES[:n]]
    record: dict[str, Any] = {}
    for f in fields:
        if not f.required and draw(st.booleans()):
            continue
        record[f.name] = None if f.nullable and draw(st.booleans()) else draw(values(f))
    return fields, record


def _compile(fields: list[FieldSpec]) -> RecordValidator:
    return compile_contract(ContractSection(inputs=fields))


def mutations(spec: FieldSpec) -> list[tuple[str, Any]]:
    """(rule, bad value) pairs that break ``spec`` in exactly one way; MISSING = drop it."""
    wrong_type = {"category": 1.5, "string": 3, "text": 3}.get(spec.type, "not-a-value")
    out: list[tuple[str, Any]] = [("type", wrong_type)]
    if spec.required:
        out.append(("required", MISSING))
    if not spec.nullable:
        out.append(("nullable", None))
    if spec.type in ("float", "integer") and spec.max is not None:
        out.append(("max", int(spec.max) + 1))
    if spec.type == "float" and not spec.allow_nan:
        out.append(("finite", INF if spec.max is None else NAN))
    if spec.type == "tensor":
        out.append(("shape", [[1], [1, 2]]))  # ragged: one error, elements are not checked
    if spec.type in ("string", "text") and spec.max_length is not None:
        out.append(("max_length", "x" * (spec.max_length + 1)))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=contracts_and_records(), data=st.data())
def test_property_valid_records_pass_and_one_mutation_is_one_error(
        case: tuple[list[FieldSpec], dict[str, Any]], data: st.DataObject) -> None:
    fields, record = case
    validator = _compile(fields)
    assert validator.validate(record) == []
    positional = [record.get(f.name) for f in fields]
    assert validator.validate(positional) == []

    target = data.draw(st.sampled_from(fields))
    rule, bad = data.draw(st.sampled_from(mutations(target)))
    mutated = {k: v for k, v in record.items() if k != target.name}
    if bad is not MISSING:
        mutated[target.name] = bad
    errors = validator.validate(mutated, 7)
    assert [(e.path, e.rule) for e in errors] == [(f"instances[7].{target.name}", rule)]
    json.dumps([e.as_dict() for e in errors], allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(case=contracts_and_records(), key=st.text(min_size=1, max_size=5))
def test_property_an_extra_key_is_one_error(
        case: tuple[list[FieldSpec], dict[str, Any]], key: str) -> None:
    fields, record = case
    if key in NAMES:
        key += "_extra"
    errors = _compile(fields).validate({**record, key: 1})
    assert [(e.path, e.rule) for e in errors] == [(key, "extra_field")]


SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(-(2**70), 2**70)
           | st.floats() | st.text(max_size=10))
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_property_fast_path_never_accepts_what_the_slow_path_refuses(data: st.DataObject) -> None:
    spec = data.draw(field_specs("f"))
    ok, explain = compile_field(spec)
    anything = values(spec, SCALARS) if spec.type == "tensor" else st.nothing()
    value = data.draw(JSONISH | values(spec) | anything | st.just(MISSING))
    problems = explain(value)
    if ok(value):
        assert problems == []
    if spec.type != "tensor":  # plain values: the fast path also accepts all that is valid
        assert ok(value) == (problems == [])
    for rule, got, _ in problems:
        assert rule in RULES
        json.dumps(got, allow_nan=False)

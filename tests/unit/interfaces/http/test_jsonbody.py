"""Request bodies: orjson, with duplicate keys refused wherever they are."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keelwork.interfaces.http.errors import HTTPProblem
from keelwork.interfaces.http.jsonbody import loads


@pytest.mark.parametrize("raw", [
    b'{"a": 1, "a": 2}',
    b'{"a": {"b": [1, {"c": 1, "c": 1}]}}',
    b'[{"x": "1:2"}, {"y": 1, "y": 1}]',
    b'{"a:b": 1, "a\\u003ab": 2}',  # the same key, once with an escaped colon
    b'{"k": "\\u003a", "k": 1}',
])
def test_duplicate_keys_are_400_naming_the_key(raw: bytes) -> None:
    with pytest.raises(HTTPProblem) as info:
        loads(raw)
    assert info.value.status == 400
    assert info.value.details[0].rule == "duplicate_key"
    assert repr(info.value.details[0].path) in info.value.message


@pytest.mark.parametrize("raw", [
    b'{"a": "x:y", "b": {"c": "::"}}', b'{"t": "\\u003a", "u": 1}', b"[1, 2]", b'"a:b"',
    b"{}", b'{"a": [{"b": 1}, {"b": 1}]}',
])
def test_bodies_without_duplicates_parse(raw: bytes) -> None:
    assert loads(raw) == json.loads(raw)


def test_deep_nesting_is_not_a_server_error() -> None:
    raw = b'{"a":' * 300 + b"1" + b"}" * 300
    assert loads(raw) == json.loads(raw)


def test_invalid_json_is_400() -> None:
    with pytest.raises(HTTPProblem) as info:
        loads(b"{nope")
    assert info.value.status == 400 and info.value.details[0].rule == "json"


@given(value=st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=4), children, max_size=4), max_leaves=20))
def test_any_json_without_duplicates_round_trips(value: object) -> None:
    assert loads(json.dumps(value).encode()) == value
    assert loads(json.dumps(value, ensure_ascii=True, indent=1).encode()) == value

"""Model references as requests write them (path, V2 version segment, header)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keelwork.core.refs import (
    HEADER,
    PATH,
    VERSION_PATH,
    accepted_forms,
    check_ref,
    request_ref,
    split_ref,
)
from keelwork.errors import ModelRefError


@pytest.mark.parametrize(("path", "header", "version", "expected"), [
    ("credit", None, None, ("credit", None)),
    ("credit@champion", None, None, ("credit", "champion")),
    ("credit@2", None, None, ("credit", "2")),
    ("credit:2", None, None, ("credit", "2")),
    ("credit", "champion", None, ("credit", "champion")),
    ("credit", "2", None, ("credit", "2")),
    ("credit", " 2 ", None, ("credit", "2")),
    ("credit", "credit@champion", None, ("credit", "champion")),
    ("credit", "credit:2", None, ("credit", "2")),
    ("credit", "", None, ("credit", None)),
    ("credit", None, "3", ("credit", "3")),
    ("credit", None, "champion", ("credit", "champion")),
    ("credit@3", "3", None, ("credit", "3")),
    ("credit", "003", None, ("credit", "3")),
])
def test_accepted_forms(path: str, header: str | None, version: str | None,
                        expected: tuple[str, str | None]) -> None:
    assert request_ref(path, header, version) == expected


@pytest.mark.parametrize(("path", "header", "version", "where", "fragment"), [
    ("credit", "credit@champion@x", None, HEADER, "'@' may appear once"),
    ("credit", "other@champion", None, HEADER, "names the model 'other'"),
    ("credit", "@champion", None, HEADER, "model name ''"),
    ("credit@bad alias", None, None, PATH, "'credit@bad alias'"),
    ("credit@", None, None, PATH, "empty"),
    ("credit@..", None, None, PATH, "the alias '..' is not valid"),
    ("credit@-1", None, None, PATH, "the alias '-1' is not valid"),
    ("credit@0", None, None, PATH, "a version is an integer from 1"),
    ("credit@\x00", None, None, PATH, "is not valid"),
    ("credit@ ", None, None, PATH, "is not valid"),
    ("credit@a@b", None, None, PATH, "'@' may appear once"),
    ("credit@99999999999999999999999", None, None, PATH, "from 1 to 9223372036854775807"),
    ("credit:2@x", None, None, PATH, "both an alias"),
    ("credit:x", None, None, PATH, "after ':' comes a version"),
    ("credit", None, "1 ", VERSION_PATH, "'1 '"),
    ("credit", None, "0", VERSION_PATH, "from 1"),
    ("credit@champion\n", None, None, PATH, "is not valid"),
    ("credit@2", "3", None, HEADER, "two model references"),
    ("credit", "2", "3", HEADER, "two model references"),
])
def test_malformed_references_name_the_reference_and_the_forms(
        path: str, header: str | None, version: str | None, where: str,
        fragment: str) -> None:
    with pytest.raises(ModelRefError) as info:
        request_ref(path, header, version)
    message = info.value.message
    assert fragment in message
    assert info.value.details and info.value.details[0].path == where
    if "two model references" not in message:
        assert "'credit@champion'" in message and "'credit:1'" in message  # the forms


def test_the_forms_the_message_offers_parse() -> None:
    text = accepted_forms("credit")
    for form in ("credit", "credit@champion", "credit@1", "credit:1"):
        assert f"'{form}'" in text
        assert split_ref(form)[0] == "credit"
    for header in ("champion", "1"):
        assert f"'{header}'" in text
        assert request_ref("credit", header)[1] == header


def test_a_huge_reference_is_not_echoed_whole() -> None:
    with pytest.raises(ModelRefError) as info:
        check_ref("x" * 100_000 + "!")
    assert len(info.value.message) < 1000
    assert len(str(info.value.details[0].got)) <= 210


@given(text=st.text(max_size=40))
def test_any_text_parses_or_is_a_model_ref_error(text: str) -> None:
    for args in ((text, None, None), ("credit", text, None), ("credit", None, text)):
        try:
            name, ref = request_ref(*args)
        except ModelRefError as exc:
            assert exc.details
        else:
            assert ref is None or ref == check_ref(ref)
            assert name

"""keel.yaml's PII policy on instances, answers and error details (keelwork.core.redaction)."""

from __future__ import annotations

import re

import numpy as np

from keelwork.core.redaction import WHOLE, Mode, Redactor, no_scan, token
from keelwork.errors import ErrorDetail

KEY = b"k" * 32
EMAIL = re.compile(r"[\w.]+@[\w.]+")


def _scan(text: str, mode: Mode) -> str:
    return EMAIL.sub(lambda m: "<EMAIL_ADDRESS>" if mode == "redact"
                     else f"<EMAIL_ADDRESS:{token(KEY, m.group())[4:]}>", text)


def _redactor(**kw: object) -> Redactor:
    args: dict[str, object] = {"inputs": {"email": "pseudonymise", "phone": "drop",
                                          "age": "redact"},
                               "outputs": {}, "text_fields": frozenset({"note"}),
                               "text_default": "redact", "scan": _scan, "key": KEY}
    args.update(kw)
    return Redactor(**args)  # type: ignore[arg-type]


def test_each_mode_does_what_it_says() -> None:
    r = _redactor()
    got = r.instance({"email": "a@b.org", "phone": "+1 555", "age": 41, "x": 1.5,
                      "note": "mail a@b.org now"})
    assert got == {"email": token(KEY, "a@b.org"), "age": WHOLE, "x": 1.5,
                   "note": "mail <EMAIL_ADDRESS> now"}
    # Pseudonyms are stable for one key and differ across keys: joins work, guesses don't.
    assert r.instance({"email": "a@b.org"}) == r.instance({"email": "a@b.org"})
    other = _redactor(key=b"x" * 32)
    assert other.instance({"email": "a@b.org"}) != r.instance({"email": "a@b.org"})


def test_a_bare_text_instance_is_a_text_field() -> None:
    assert _redactor().instance("write to a@b.org") == "write to <EMAIL_ADDRESS>"
    assert _redactor(text_default=None, inputs={}).active is False


def test_a_failing_scanner_fails_closed() -> None:
    r = _redactor(scan=no_scan)
    assert r.instance({"note": "write to a@b.org"}) == {"note": WHOLE}
    assert r.failures == 1


def test_error_details_of_personal_fields_hide_the_value() -> None:
    r = _redactor()
    d = r.detail(ErrorDetail("instances[0].age", "max", 141,
                             "The 'instances[0].age' field must be <= 120; got 141."))
    assert d.got == WHOLE and "141" not in d.message
    kept = ErrorDetail("instances[0].x", "max", 99, "got 99")
    assert r.detail(kept) == kept
    e = r.detail(ErrorDetail("email", "type", "a@b.org", "got 'a@b.org'"))
    assert e.got == token(KEY, "a@b.org") and "a@b.org" not in e.message


ORDER = ("email", "phone", "age", "note", "x")


def test_an_array_instance_gets_each_position_its_fields_mode() -> None:
    r = _redactor(input_order=ORDER)
    got = r.instance(["a@b.org", "+1 555", 41, "mail a@b.org now", 1.5])
    # The dropped field's position holds null (an array record reads it as absent).
    assert got == [token(KEY, "a@b.org"), None, WHOLE, "mail <EMAIL_ADDRESS> now", 1.5]
    # Positions past the contract's fields are no field's: their text is scanned.
    assert r.instance(["a@b.org", None, 1, "n", 2.0, "c@d.org"])[5] == "<EMAIL_ADDRESS>"
    # The model sees the same shape when keel.yaml gives it the redacted instance.
    assert len(r.instances([["a@b.org", "+1 555", 41, "x", 1.5]])[0]) == len(ORDER)


def test_what_the_contract_does_not_name_is_scanned_when_redaction_is_on() -> None:
    r = _redactor(input_order=ORDER)
    got = r.instance({"x": 2.5, "contact": "write to a@b.org", "more": {"k": ["c@d.org", 3]}})
    assert got == {"x": 2.5, "contact": "write to <EMAIL_ADDRESS>",
                   "more": {"k": ["<EMAIL_ADDRESS>", 3]}}
    # Numbers stay numbers, numpy ones included.
    assert r.loose([np.int64(3), np.float32(0.5), True]) == [3, 0.5, True]
    # Without redaction on, fields nobody marked are kept as sent.
    off = _redactor(text_default=None, input_order=ORDER)
    assert off.instance({"contact": "a@b.org", "email": "a@b.org"}) == {
        "contact": "a@b.org", "email": token(KEY, "a@b.org")}


def test_problems_at_paths_no_field_names_hide_the_text_they_quote() -> None:
    r = _redactor(input_order=ORDER)
    bare = ErrorDetail("instances[0]", "record_type", "write to a@b.org",
                       "The 'instances[0]' record must be an object or an array; got "
                       "'write to a@b.org' (a string).")
    d = r.detail(bare)
    assert d.got == "write to <EMAIL_ADDRESS>" and "a@b.org" not in d.message
    extra = r.detail(ErrorDetail("instances[0].ssn", "extra_field", ["a@b.org"],
                                 "is not in the contract; got ['a@b.org']"))
    assert extra.got == ["<EMAIL_ADDRESS>"] and "a@b.org" not in extra.message
    kept = ErrorDetail("instances[0].x", "max", 99, "got 99")
    assert r.detail(kept) == kept


def test_a_models_error_message_loses_the_values_of_personal_fields() -> None:
    r = _redactor(input_order=ORDER)
    inst = {"email": "cust-778812", "phone": "Quillon 5", "x": 3}
    said = f"cannot score {inst!r}"
    out = r.message(said, [inst])
    assert "cust-778812" not in out and "Quillon" not in out
    assert token(KEY, "cust-778812") in out and "'x': 3" in out
    row = r.message("bad row ['cust-778812', 'Quillon 5']", [["cust-778812", "Quillon 5"]])
    assert "cust-778812" not in row and "Quillon" not in row


def test_stored_explanations_keep_only_the_words_the_stored_instance_holds() -> None:
    r = _redactor(input_order=ORDER)
    inst = {"note": "great, ask at zeb@q.org", "x": 1.0, "email": "a@b.org"}
    occlusion = {"method": "occlusion", "spans": [[0, 5]], "attributions": {
        "great@0": 0.5, "ask@7": 0.1, "at@11": 0.0, "zeb@14": -0.2, "q@18": 0.05,
        "org@20": 0.0}}
    kept = r.explanation(occlusion, inst)
    assert kept["attributions"] == {"great@0": 0.5, "ask@7": 0.1, "at@11": 0.0,
                                    f"{WHOLE}@14": -0.2, f"{WHOLE}@18": 0.05,
                                    f"{WHOLE}@20": 0.0}
    assert kept["spans"] == [[0, 5]]
    # Terms of a linear text model: the redacted ones are summed into one (still additive).
    terms = r.explanation({"attributions": {"great": 0.5, "zeb": -0.25, "org": 0.5,
                                            "ask zeb": 0.25}}, inst)["attributions"]
    assert terms == {"great": 0.5, WHOLE: 0.5}
    # Contract fields keep their names (tabular attributions).
    assert r.explanation({"attributions": {"x": 0.3, "email": 0.1}}, inst)[
        "attributions"] == {"x": 0.3, "email": 0.1}

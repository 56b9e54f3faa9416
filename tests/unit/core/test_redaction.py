"""keel.yaml's PII policy on instances, answers and error details (keelwork.core.redaction)."""

from __future__ import annotations

import re

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

"""The engine: overlap resolution, the three modes, pseudonyms, failing closed, counters."""

from __future__ import annotations

import itertools
import time

import pytest

from keelwork.core.pii import (
    UNSCANNED,
    PiiAnalyzer,
    Span,
    analyze,
    pseudonym,
    redact,
    resolve_overlaps,
    scrub,
)
from keelwork.core.pii import registry as pii_registry
from keelwork.errors import PiiConfigError

KEY = b"k" * 32
TEXT = "Mail jane.doe@example.com or call +44 20 7946 0958, card 4111 1111 1111 1111."


def test_overlaps_keep_the_highest_score_then_the_longest() -> None:
    spans = [Span(0, 10, "A", 0.5), Span(5, 15, "B", 0.9), Span(14, 20, "C", 0.9),
             Span(20, 30, "D", 0.6), Span(22, 25, "E", 0.6), Span(40, 41, "F", 0.1)]
    assert resolve_overlaps(spans) == [Span(5, 15, "B", 0.9), Span(20, 30, "D", 0.6),
                                       Span(40, 41, "F", 0.1)]


def test_resolved_spans_never_overlap_on_many_random_spans() -> None:
    import random

    rng = random.Random(3)
    spans = []
    for _ in range(2000):
        s = rng.randrange(0, 500)
        spans.append(Span(s, s + rng.randrange(1, 30), "X", rng.random()))
    kept = resolve_overlaps(spans)
    assert all(a.end <= b.start for a, b in itertools.pairwise(kept))
    # every dropped span overlaps a kept one that ranks at least as high
    for s in spans:
        if s not in kept:
            assert any(s.overlaps(k) and k.score >= s.score for k in kept)


def test_redact_replaces_each_finding_with_its_entity() -> None:
    assert scrub(PiiAnalyzer(), TEXT) == (
        "Mail <EMAIL_ADDRESS> or call <PHONE_NUMBER>, card <CREDIT_CARD>.")


def test_drop_removes_the_findings() -> None:
    assert redact(TEXT, analyze(TEXT), "drop") == "Mail  or call , card ."


def test_pseudonyms_are_stable_keyed_and_join_across_spellings() -> None:
    out1 = scrub(PiiAnalyzer(), TEXT, "pseudonymise", KEY)
    out2 = scrub(PiiAnalyzer(), TEXT, "pseudonymise", KEY)
    assert out1 == out2 and "jane" not in out1 and "4111" not in out1
    assert out1 != scrub(PiiAnalyzer(), TEXT, "pseudonymise", b"x" * 32)
    assert pseudonym("4111 1111 1111 1111", KEY, "CREDIT_CARD") == pseudonym(
        "4111-1111-1111-1111", KEY, "CREDIT_CARD")
    assert pseudonym("Jane.Doe@Example.com", KEY, "EMAIL_ADDRESS") == pseudonym(
        "jane.doe@example.com", KEY, "EMAIL_ADDRESS")
    assert pseudonym("a@b.io", KEY, "EMAIL_ADDRESS") != pseudonym("a@b.io", KEY, "URL")
    assert pseudonym("a@b.io", KEY, "EMAIL_ADDRESS").startswith("<EMAIL_ADDRESS:")


def test_modes_and_keys_are_checked() -> None:
    with pytest.raises(PiiConfigError, match="one of redact, pseudonymise, drop; got 'mask'"):
        redact(TEXT, [], "mask")  # type: ignore[arg-type]
    with pytest.raises(PiiConfigError, match="needs a key"):
        redact(TEXT, [], "pseudonymise")
    with pytest.raises(PiiConfigError, match="at least 16 bytes; got 3"):
        pseudonym("x", b"abc")


def test_overlapping_spans_given_to_redact_leave_nothing_uncovered() -> None:
    text = "abcdefghij"
    assert redact(text, [Span(0, 5, "A", 1), Span(3, 8, "B", 1)]) == "<A>ij"


def test_unknown_entity_is_a_clear_error() -> None:
    with pytest.raises(PiiConfigError) as err:
        PiiAnalyzer(["EMAIL_ADDRESS", "EMAIL"])
    assert err.value.entity == "EMAIL"
    assert "Unknown PII entity 'EMAIL'; valid entities: EMAIL_ADDRESS, " in str(err.value)
    assert "keelwork.pii_recognisers" in str(err.value)


def test_only_the_asked_entities_are_reported() -> None:
    assert {s.entity for s in PiiAnalyzer(["CREDIT_CARD"]).analyze(TEXT)} == {"CREDIT_CARD"}


def test_a_text_over_the_size_budget_is_redacted_whole_and_counted() -> None:
    analyzer = PiiAnalyzer(max_chars=1000)
    digits = "1" * 1_000_000
    started = time.perf_counter()
    assert analyzer.analyze(digits) == [Span(0, 1_000_000, UNSCANNED, 1.0)]
    assert time.perf_counter() - started < 0.5
    assert redact(digits, analyzer.analyze(digits)) == "<UNSCANNED>"
    assert analyzer.counters.snapshot()["failed"] == {"too_long": 2, "timeout": 0,
                                                      "recogniser_error": 0}


class _Boom:
    entities = ("BOOM",)

    def find(self, text: str) -> list[Span]:
        raise ValueError(f"cannot parse {text!r}")  # quotes the text, as careless code does


class _Slow:
    entities = ("SLOW",)

    def find(self, text: str) -> list[Span]:
        time.sleep(0.05)
        return []


def _with(monkeypatch: pytest.MonkeyPatch, recogniser: object, **kw: float) -> PiiAnalyzer:
    analyzer = PiiAnalyzer(["EMAIL_ADDRESS"], **kw)  # type: ignore[arg-type]
    monkeypatch.setattr(analyzer, "_recognisers", [*analyzer._recognisers, recogniser])
    monkeypatch.setattr(analyzer, "_wanted", frozenset({"EMAIL_ADDRESS", *recogniser.entities}))  # type: ignore[attr-defined]
    return analyzer


def test_a_recogniser_that_raises_fails_closed_without_the_text(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    analyzer = _with(monkeypatch, _Boom())
    secret = "jane.doe@example.com SECRET-TOKEN"
    assert analyzer.analyze(secret) == [Span(0, len(secret), UNSCANNED, 1.0)]
    assert analyzer.counters.snapshot()["failed"]["recogniser_error"] == 1  # type: ignore[index]
    assert "SECRET" not in caplog.text


def test_a_scan_over_the_time_budget_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    analyzer = _with(monkeypatch, _Slow(), time_budget_s=0.01)
    assert analyzer.analyze("hello") == [Span(0, 5, UNSCANNED, 1.0)]
    assert analyzer.counters.snapshot()["failed"]["timeout"] == 1  # type: ignore[index]


def test_counters_count_scans_and_findings() -> None:
    analyzer = PiiAnalyzer()
    analyzer.analyze(TEXT)
    analyzer.analyze("nothing here")
    snap = analyzer.counters.snapshot()
    assert snap["scanned"] == 2
    assert snap["found"] == {"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1, "CREDIT_CARD": 1}


def test_empty_text_has_no_findings() -> None:
    assert analyze("") == []


def test_builtin_entities_resolve_without_plugins() -> None:
    assert pii_registry.check_entities(["URL", "URL", "PERSON"]) == ("URL", "PERSON")


def test_the_gateway_scanner_rewrites_or_raises_without_the_text() -> None:
    from keelwork.core.pii import scanner
    from keelwork.errors import PiiScanFailed

    scan = scanner(KEY, max_chars=100)
    assert scan("mail jane.doe@example.com", "redact") == "mail <EMAIL_ADDRESS>"
    assert scan("mail jane.doe@example.com", "pseudonymise") == (
        "mail " + pseudonym("jane.doe@example.com", KEY, "EMAIL_ADDRESS"))
    secret = "jane.doe@example.com " * 10
    with pytest.raises(PiiScanFailed) as err:
        scan(secret, "redact")
    assert err.value.reason == "too_long" and "jane" not in str(err.value)
    assert scan.analyzer.counters.snapshot()["failed"]["too_long"] == 1  # type: ignore[index]
    with pytest.raises(PiiConfigError, match="at least 16 bytes"):
        scanner(b"short")


def test_the_scanner_behind_the_gateway_redactor_fails_closed() -> None:
    from keelwork.core.pii import scanner
    from keelwork.core.redaction import WHOLE, Redactor

    redactor = Redactor(inputs={}, outputs={}, text_fields=frozenset({"note"}),
                        text_default="redact", scan=scanner(KEY, max_chars=200), key=KEY)
    assert redactor.instance({"note": "call +1-202-555-0143 now", "n": 3}) == {
        "note": "call <PHONE_NUMBER> now", "n": 3}
    assert redactor.instance({"note": "1" * 1_000_000}) == {"note": WHOLE}
    assert redactor.failures == 1


def test_building_an_analyzer_reads_the_lists_so_the_first_scan_does_not() -> None:
    from keelwork.core.pii import names, phones

    for cached in (names._lines, names._place_index, names._lone_skip, phones.calling_codes):
        cached.cache_clear()
    PiiAnalyzer(["PERSON", "LOCATION", "PHONE_NUMBER"])
    assert names._lines.cache_info().currsize >= 2  # given names and surnames
    assert names._place_index.cache_info().currsize == 1
    assert phones.calling_codes.cache_info().currsize == 1

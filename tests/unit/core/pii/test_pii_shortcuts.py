"""Each shortcut the recognisers take for speed gives the answer of its plain definition.

The plain definitions (a regex search over the whole text or a window) are written out here;
the recognisers skip or narrow them (a search from a hint, ``str.find`` instead of a
case-insensitive pattern, one pass for two shapes). Random texts made of the pieces that
matter (digits, separators, ``@``, phone words, capitalised words) must give the same
matches both ways.
"""

from __future__ import annotations

import random
import re

import pytest

from keelwork.core.pii import dates, names, phones, structured

PIECES = ["a@b.co", "x.y@ex-ample.com", "@", "@@", "..", "a.", "-", "+", " ", "  ", ", ",
          ". ", ":", "::", "1", "12", "123", "1234", "0958", "2004", "1985", "19", "20", "21",
          "/", ".", "(", ")", "(0)", "+44", "192.168", "1.1", "fe80::1", "Mary", "Smith",
          "The", "Mr", "Inc", "USD", "call", "CALL", "Phone", "number", "order number", "tel",
          "hotel", "(mobile)", "ssn", "March", "12th", "of", "July", "09,", "1973-11-15",
          "11/03/2004", "07.09.76", "a" * 70, "b" * 63, "%", "_", "\u0130", "\u212a", "\u00c9",
          "555", "-0132", "\n", "10.0.0.1", "255.255", "::ffff:1.2.3.4", "a:b", "Desk: 12",
          "2001:db8::1", "1.2.3.4.5", "12/3/", "3-4-"]


def texts(seed: int, n: int = 3000) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(PIECES) + rng.choice(("", " ")) for _ in range(rng.randint(1, 50)))
            for _ in range(n)]


def test_email_candidates_are_the_regex_search() -> None:
    plain = re.compile(r"[\w.%+\-](?<![\w.%+\-].)[\w.%+\-]{0,63}@[A-Za-z0-9.\-]{1,253}",
                       re.ASCII)
    rec = structured.EmailRecogniser()
    checked = 0
    for text in texts(1):
        want = [(m.start(), m.start() + m.group().index("@"), m.end())
                for m in plain.finditer(text)]
        assert rec.candidates(text) == want, text
        checked += bool(want)
    assert checked > 300  # the pieces do make candidates


def test_phone_words_are_the_regex_search_of_each_window() -> None:
    plain = re.compile(r"\b(?:" + "|".join(phones.CONTEXT) + ")", re.ASCII | re.IGNORECASE)

    def near(text: str, start: int, end: int) -> bool:
        lo, hi = max(0, start - phones.WINDOW_BEFORE), end + phones.WINDOW_AFTER
        for m in plain.finditer(text, lo, hi):
            if start <= m.start() < end:
                continue
            if m.group().lower() != "number" or not phones._NOT_PHONE.search(
                    text, max(0, m.start() - 24), m.end()):
                return True
        return False

    rng = random.Random(2)
    answers = set()
    for text in texts(2):
        words = phones._PhoneWords(text)
        for _ in range(5):
            start = rng.randrange(len(text) + 1)
            end = min(len(text), start + rng.randint(1, 20))
            got = words.near(start, end)
            assert got == near(text, start, end), (text, start, end)
            answers.add(got)
    assert answers == {True, False}


@pytest.mark.parametrize(("pattern", "hint", "back"), [
    (dates._NUMERIC, dates._NUMERIC_HINT, 4),
    (structured.IpRecogniser._V4, structured.IpRecogniser._V4_HINT, 3),
    (structured.IpRecogniser._V6, structured.IpRecogniser._V6_HINT, 4),
])
def test_a_search_from_its_hint_finds_every_match(pattern: re.Pattern[str],
                                                  hint: re.Pattern[str], back: int) -> None:
    found = 0
    for text in texts(3):
        want = [m.span() for m in pattern.finditer(text)]
        first = hint.search(text)
        got = [] if first is None else [m.span() for m in pattern.finditer(
            text, max(0, first.start() - back))]
        assert got == want, text
        found += len(want)
    assert found > 100


def test_without_a_year_after_a_space_no_month_date_is_valid() -> None:
    years = 0
    for text in texts(4):
        if dates._year_after_space(text):
            years += 1
            continue
        for pattern, group in ((dates._DAY_FIRST, 3), (dates._MONTH_FIRST, 2)):
            for m in pattern.finditer(text):
                assert not 1900 <= int(m.group(group)) <= 2100, text
    assert years > 100


def test_ssn_one_pass_is_both_shapes() -> None:
    grouped = re.compile(r"(\d(?<![\w\-]\d)\d{2})([\- ])(\d{2})\2(\d{4})(?![\w\-])", re.ASCII)
    plain = re.compile(r"\d(?<![\w\-]\d)\d{8}(?![\w\-])", re.ASCII)
    rng = random.Random(5)
    pieces = ["123", "45", "6789", "123456789", " ", "-", "1", "a", "12", "--"]
    found = 0
    for _ in range(5000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        want = sorted([m.span() for m in grouped.finditer(text)]
                      + [m.span() for m in plain.finditer(text)])
        got = [m.span() for m in structured.SsnRecogniser._CANDIDATE.finditer(text)]
        assert got == want, text
        found += len(want)
    assert found > 100


@pytest.mark.parametrize("word", sorted(names._lone_skip() | {"USD", "FPO"}))
def test_a_skipped_lone_word_finds_nothing_by_the_full_rules(word: str) -> None:
    rec = names.NameRecogniser()
    for before in ("", "Dear ", "my name is ", "moved to ", "Hi, ", "in ", "The "):
        text = f"{before}{word}. More"
        start = len(before)
        tok = names._Tok(start, start + len(word), word, True)
        assert rec._run(text, [tok], names.given_names(), names.surnames(),
                        names._place_index()) == [], text


def test_firms_are_searched_from_the_first_joint() -> None:
    rng = random.Random(6)
    pieces = ["Smith", "Jones", "Brown", "Ann", "a", "B" * 31, "C" * 33, ", ", " and ", " & ",
              "Sons", " ", ",", "and", "x"]
    found = 0
    for _ in range(5000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 14)))
        want = [m.span() for m in names._FIRM.finditer(text)]
        joint = names._first_joint(text)
        got = [] if joint < 0 else [m.span() for m in names._FIRM.finditer(
            text, max(0, joint - 65))]
        assert got == want, text
        found += len(want)
    assert found > 50


def test_a_lone_word_gets_what_the_full_rules_give_it() -> None:
    rec = names.NameRecogniser()
    first, last, places = names.given_names(), names.surnames(), names._place_index()
    rng = random.Random(7)
    words = (rng.sample(sorted(first), 150) + rng.sample(sorted(last), 150)
             + rng.sample(sorted(places), 150) + sorted(names.AMBIGUOUS)
             + sorted(names.FUNCTION_WORDS & set(places)) + sorted(names.PLACE_HEADS)
             + ["Unfortunately", "Cautionary", "Marcusshire", "Pittsburgh", "O'Neil", "Don't",
                "Anaïs", "Graeme", "Desk", "Cool", "St", "Brandon", "Chad", "Aurora"])
    skip = names._lone_skip()
    found = set()
    for word in words:
        if word in skip or (len(word) > 1 and word.isupper()):
            continue
        for before, after in (("", ""), ("Dear ", ""), ("my name is ", "."), ("moved to ", ""),
                              ("He said. ", " 42"), ("Box ", " 12"), ("221 ", ""),
                              ("lives in ", ", then"), ("Trevor's ", ""), ("from ", " York"),
                              ("Hi, ", "!"), ("escalated to ", ".")):
            text = f"{before}{word}{after}"
            tok = names._Tok(len(before), len(before) + len(word), word, False)
            want = rec._run(text, [tok], first, last, places)
            assert rec._lone(text, tok, first, last, places) == want, text
            found.update(s.entity for s in want)
    assert found == {"PERSON", "LOCATION"}

"""Phone numbers: international (``+CC`` or ``00CC``) and national formats, with extensions.

A candidate is a run of digits and the separators phone numbers are written with (space,
dash, dot, slash, parentheses). It is refused when it reads as something else: a date, a year
range, an IP address, an SSN-shaped ``3-2-4`` group, a decimal number. A run of bare digits
counts only after a word such as "phone" or "call", because order numbers look the same.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from functools import cache
from importlib import resources

from keelwork.core.pii.spans import Span

_CANDIDATE = re.compile(r"[+(\d](?<![\w+.\-/].)[+(]?[\d ().\-/]{4,26}\d\)?", re.ASCII)
_EXTENSION = re.compile(r" ?(?:x|ext\.?|extension|#) ?\d{1,6}(?!\w)", re.ASCII | re.IGNORECASE)
_DATE = re.compile(r"\d{1,4}([./\-])\d{1,2}\1\d{1,4}", re.ASCII)
_YEAR_RANGE = re.compile(r"(?:1[89]|20)\d{2} ?[\-/] ?(?:\d{2}|(?:1[89]|20)\d{2})", re.ASCII)
_SSN_SHAPE = re.compile(r"\d{3}([\- ])\d{2}\1\d{4}", re.ASCII)
_GROUPS = re.compile(r"\d{1,15}", re.ASCII)
#: A candidate's separators (it holds only ASCII digits and these): deleted, digits remain.
_SEPARATORS = b" ().-/+"

#: Words (as word starts: "calling", "messages", "phones") that say a number is a phone's.
CONTEXT = ("phone", "call", "mobile", "cell", "tel", "fax", "contact", "reach", "text", "sms",
           "whatsapp", "dial", "number", "landline", "office", "desk", "hotline", "helpline",
           "voicemail", "registered", "ring", "messag", "answer")
#: "order number", "social security number": a number that is not a phone's. Checked on the
#: words around a candidate whose only phone word is "number".
_NOT_PHONE = re.compile(r"\b(?:order|reference|ref|invoice|ticket|case|tracking|account|"
                        r"policy|booking|confirmation|serial|social security|ssn|passport|"
                        r"licen[cs]e|id|customer|member|routing|card)\b\W{0,3}(?:no\b|number|#)",
                        re.ASCII | re.IGNORECASE)
_SSN_WORDS = re.compile(r"\b(?:ssn|social security)", re.ASCII | re.IGNORECASE)
#: How far before and after a candidate a phone word counts (a label may follow the number:
#: ``555 0134 (mobile)``, ``0432 903 403-Office``).
WINDOW_BEFORE, WINDOW_AFTER = 40, 32


@cache
def calling_codes() -> frozenset[str]:
    """Country calling codes (GeoNames, via the vendored list), read on first use."""
    data = resources.files("keelwork.core.pii").joinpath("data/calling_codes.txt").read_text()
    return frozenset(line for line in data.splitlines() if line and not line.startswith("#"))


class PhoneRecogniser:
    """Phone numbers of 7 to 15 digits (E.164's limit), written as people write them."""

    entity = "PHONE_NUMBER"
    entities = ("PHONE_NUMBER",)

    def __init__(self) -> None:
        calling_codes()  # read when the analyzer is built, not in the first scan's budget

    def find(self, text: str) -> list[Span]:
        out = []
        words = _PhoneWords(text)
        for m in _CANDIDATE.finditer(text):
            start, balanced = m.start(), self._balance(m.group())
            if balanced is None:
                continue
            cand = balanced
            score = self._score(text, start, cand, words)
            if score <= 0:
                continue
            end = start + len(cand)
            ext = _EXTENSION.match(text, end)
            if ext is not None:
                end = ext.end()
            out.append(Span(start, end, self.entity, score))
        return out

    @staticmethod
    def _balance(cand: str) -> str | None:
        """Trim a separator or an unmatched parenthesis at the end; None if unbalanced."""
        cand = cand.rstrip(" .-/")
        if "+" in cand[2:] or not (cand[:1].isdigit() or cand[1:2].isdigit()
                                   or (cand[:2] in ("+(", "(+") and cand[2:3].isdigit())):
            return None  # a "+" only leads; a digit by the second character
        if cand.endswith(")") and cand.count(")") > cand.count("("):
            cand = cand[:-1].rstrip(" .-/")
        if cand.count("(") != cand.count(")") or not cand[-1:].isdigit():
            return None
        return cand

    def _score(self, text: str, start: int, cand: str, words: _PhoneWords) -> float:
        if not 7 <= len(cand.encode().translate(None, _SEPARATORS)) - cand.count("(0)") <= 15:
            return 0.0  # E.164's length, counted in C first: cards and short numbers go here
        if _DATE.match(cand) or _YEAR_RANGE.fullmatch(cand) or _SSN_SHAPE.fullmatch(cand):
            return 0.0  # the cheap refusals first: dense text is full of dates and SSNs
        groups = _GROUPS.findall(cand)
        digits = "".join(groups)
        international = cand.startswith(("+", "(+")) or (
            cand.startswith("00") and cand[2:3] not in ("", "0", " ") and len(groups) > 1)
        if international:
            cc_digits = digits[2:] if cand.startswith("00") else digits
            codes = calling_codes()
            if not (cc_digits[:1] in codes or cc_digits[:2] in codes or cc_digits[:3] in codes):
                if not cand.startswith("00"):
                    return 0.0
                international = False  # "00288 199721": read as a national number
        trunk = cand.count("(0)")
        n = len(digits) - trunk
        if not 7 <= n <= 15 or len(set(digits)) < 3:
            return 0.0
        if not international and len(groups[0]) == 8 and self._ymd(digits):
            return 0.0
        decimal = self._decimal(cand)
        if international and not decimal:
            return 0.95 if n >= 8 else 0.7  # needs no phone word: skip looking for one
        context = words.near(start, start + len(cand))
        if decimal and not (context and min(map(len, groups)) >= 3):
            return 0.0  # "6044.7319" is a phone only where a phone word says so
        if len(groups) == 1 and not international:
            # bare digits: an order number reads the same; only with a phone word around
            if n == 9 and _SSN_WORDS.search(text, max(0, start - WINDOW_BEFORE),
                                           start + len(cand) + WINDOW_AFTER):
                return 0.0  # nine digits beside "social security": an SSN
            return 0.6 if context and 8 <= n <= 12 else 0.0
        if international:
            return 0.95 if n >= 8 else 0.7
        if n >= 10:
            return 0.85 if context else 0.75
        return 0.7 if context else 0.4

    @staticmethod
    def _ymd(digits: str) -> bool:
        """``20231105...``: a reference that opens with a date, not a phone number."""
        return (len(digits) >= 8 and digits[:2] in ("19", "20") and "01" <= digits[4:6] <= "12"
                and "01" <= digits[6:8] <= "31")

    @staticmethod
    def _decimal(cand: str) -> bool:
        """``3.14159`` or ``1.5 2.5``: dots that separate fewer than three groups."""
        if "." not in cand:
            return False
        if any(c in cand for c in " -/()"):
            return False
        return cand.count(".") < 2


_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_CONTEXT_BYTES = tuple(w.encode() for w in CONTEXT)


class _PhoneWords:
    """The phone words of one text (:data:`CONTEXT`, case-insensitive, each at a word
    start), found once on first use and then looked up by position for every candidate.

    The same answer as searching each candidate's window with a ``\\b(?:phone|call|...)``
    pattern, without that search: a case-insensitive pattern opening with ``\\b`` is tried
    at every position of every window, and dense text has a candidate every few words.
    """

    __slots__ = ("_found", "_starts", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._found: list[tuple[int, int, bool]] | None = None  # start, end, is "number"
        self._starts: list[int] = []

    def _find_all(self) -> list[tuple[int, int, bool]]:
        text = self.text
        # one byte per character (others become "?"), ASCII letters lower-cased: as the
        # pattern's ASCII-only IGNORECASE, with positions kept
        low = text.encode("ascii", "replace").lower()
        found = []
        for word in _CONTEXT_BYTES:  # no word is a prefix of another: one word per start
            i = low.find(word)
            while i >= 0:
                if i == 0 or text[i - 1] not in _WORD_CHARS:
                    found.append((i, i + len(word), word == b"number"))
                i = low.find(word, i + 1)
        found.sort()
        self._starts = [f[0] for f in found]
        return found

    def near(self, start: int, end: int) -> bool:
        """Whether a phone word is within reach of ``text[start:end]`` (before or after, whole
        inside the window), not counting "number" where it is an order's, an account's, a
        social security number."""
        found = self._found
        if found is None:
            found = self._found = self._find_all()
        lo, hi = max(0, start - WINDOW_BEFORE), end + WINDOW_AFTER
        i = bisect_left(self._starts, lo)
        while i < len(found) and found[i][0] < hi:
            w_start, w_end, number = found[i]
            i += 1
            if w_end > hi or start <= w_start < end:
                continue
            if not number or not _NOT_PHONE.search(self.text, max(0, w_start - 24), w_end):
                return True
        return False

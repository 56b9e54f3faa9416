"""Phone numbers: international (``+CC`` or ``00CC``) and national formats, with extensions.

A candidate is a run of digits and the separators phone numbers are written with (space,
dash, dot, slash, parentheses). It is refused when it reads as something else: a date, a year
range, an IP address, an SSN-shaped ``3-2-4`` group, a decimal number. A run of bare digits
counts only after a word such as "phone" or "call", because order numbers look the same.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from keelwork.core.pii.spans import Span
from keelwork.core.pii.structured import context_before

_CANDIDATE = re.compile(r"[+(\d](?<![\w+.\-/].)[+(]?[\d ().\-/]{4,26}\d\)?", re.ASCII)
_EXTENSION = re.compile(r" ?(?:x|ext\.?|extension|#) ?\d{1,6}(?!\w)", re.ASCII | re.IGNORECASE)
_DATE = re.compile(r"\d{1,4}([./\-])\d{1,2}\1\d{1,4}", re.ASCII)
_YEAR_RANGE = re.compile(r"(?:1[89]|20)\d{2} ?[\-/] ?(?:\d{2}|(?:1[89]|20)\d{2})", re.ASCII)
_SSN_SHAPE = re.compile(r"\d{3}([\- ])\d{2}\1\d{4}", re.ASCII)
_GROUPS = re.compile(r"\d{1,15}", re.ASCII)

CONTEXT = ("phone", "call", "mobile", "cell", "tel", "fax", "contact", "reach", "text me",
           "sms", "whatsapp", "dial", "number")


@cache
def calling_codes() -> frozenset[str]:
    """Country calling codes (GeoNames, via the vendored list), read on first use."""
    data = resources.files("keelwork.core.pii").joinpath("data/calling_codes.txt").read_text()
    return frozenset(line for line in data.splitlines() if line and not line.startswith("#"))


class PhoneRecogniser:
    """Phone numbers of 7 to 15 digits (E.164's limit), written as people write them."""

    entity = "PHONE_NUMBER"
    entities = ("PHONE_NUMBER",)

    def find(self, text: str) -> list[Span]:
        out = []
        for m in _CANDIDATE.finditer(text):
            start, balanced = m.start(), self._balance(m.group())
            if balanced is None:
                continue
            cand = balanced
            score = self._score(text, start, cand)
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

    def _score(self, text: str, start: int, cand: str) -> float:
        groups = _GROUPS.findall(cand)
        digits = "".join(groups)
        international = cand.startswith(("+", "(+")) or (
            cand.startswith("00") and cand[2:3] not in ("", "0", " ") and len(groups) > 1)
        if international:
            cc_digits = digits[2:] if cand.startswith("00") else digits
            if not any(cc_digits[:k] in calling_codes() for k in (1, 2, 3)):
                return 0.0
        trunk = cand.count("(0)")
        n = len(digits) - trunk
        if not 7 <= n <= 15 or len(set(digits)) < 3:
            return 0.0
        if (_DATE.match(cand) or _YEAR_RANGE.fullmatch(cand) or _SSN_SHAPE.fullmatch(cand)
                or self._decimal(cand)):
            return 0.0
        context = context_before(text, start, CONTEXT, 40)
        if len(groups) == 1 and not international:
            # bare digits: an order number reads the same; only with a phone word around
            after = text[start + len(cand):start + len(cand) + 40].lower()
            near = context or any(w in after for w in CONTEXT)
            return 0.6 if near and 8 <= n <= 12 else 0.0
        if international:
            return 0.95 if n >= 8 else 0.7
        if n >= 10:
            return 0.85 if context else 0.75
        return 0.7 if context else 0.4

    @staticmethod
    def _decimal(cand: str) -> bool:
        """``3.14159`` or ``1.5 2.5``: dots that separate fewer than three groups."""
        if "." not in cand:
            return False
        if any(c in cand for c in " -/()"):
            return False
        return cand.count(".") < 2

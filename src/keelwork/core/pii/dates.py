"""Dates of birth: calendar dates, scored by what surrounds them.

A free text rarely says that a date is a birth date, so every full calendar date is reported:
score 0.85 after a birth word ("born", "date of birth", "DOB"), 0.55 with nothing around it
(kept at the engine's default ``min_score`` of 0.5: redacting a date too many is the safe side),
0.4 after a word that introduces a document's or an event's date ("Date:", "dated", "on",
"until", "due", "shipped" ...: dropped by default), and not at all when a time of day follows
(a timestamp). Numeric dates (``1985-03-12``, ``12/03/1985``, ``12.03.85``) and dates with a
month name (``12 March 1985``, ``March 12th, 1985``, ``Mar 12 1985``) are read; each must be a
real calendar day (day-month and month-day orders are both tried).
"""

from __future__ import annotations

import re

from keelwork.core.pii.spans import Span
from keelwork.core.pii.structured import context_before
from keelwork.core.pii.validators import date_ok

_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9,
    "oct": 10, "nov": 11, "dec": 12,
}
_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
          r"|sep(?:t|tember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_NUMERIC = re.compile(r"(\d(?<![\w/.\-]\d)\d{0,3})([./\-])(\d{1,2})\2(\d{2,4})(?![\w/\-]|\.\d)",
                      re.ASCII)
_DAY_FIRST = re.compile(r"(\d(?<!\w\d)\d?)(?:st|nd|rd|th)? (?:of )?(" + _MONTH + r"),? (\d{4})"
                        r"(?!\w)", re.ASCII | re.IGNORECASE)
#: "March 12th, 1985": found from its digits, then the month name just before them is read.
_MONTH_FIRST = re.compile(r"(\d(?<![\w,]\d)\d?)(?:st|nd|rd|th)?,? (\d{4})(?!\w)", re.ASCII)
_MONTH_BEFORE = re.compile(r"(?<!\w)(" + _MONTH + r") $", re.ASCII | re.IGNORECASE)

#: What every numeric date holds from its first separator on: the first match of this (it
#: stops only at ``.``, ``/`` and ``-``, rare beside digits) is at most four characters after
#: the first numeric date's start, so :data:`_NUMERIC` is searched from there, or not at all.
_NUMERIC_HINT = re.compile(r"[./\-]\d{1,2}[./\-]\d\d", re.ASCII)


def _year_after_space(text: str) -> bool:
    """Whether a year of 1900-2100 stands after a space somewhere (`` 19dd``, `` 20dd``,
    `` 21dd``, no word character after it). A date with a month name ends in such a year
    (:func:`date_ok` takes no other): without one, the month-name patterns find nothing."""
    for lead in (" 19", " 20", " 21"):
        i = text.find(lead)
        while i >= 0:
            if text[i + 3:i + 5].isdigit() and len(text[i + 3:i + 5]) == 2 and (
                    text[i + 5:i + 6] not in _ASCII_WORD or i + 5 == len(text)):
                return True
            i = text.find(lead, i + 3)
    return False


_ASCII_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


CONTEXT = ("born", "birth", "dob", "d.o.b", "bday", "b-day")
#: Words that introduce the date of a document or an event, not of a birth.
_EVENT_WORDS = tuple(" " + w for w in (
    "date", "dated", "on", "until", "till", "by", "due", "expires", "expiry", "expired",
    "valid", "deadline", "before", "after", "from", "at", "scheduled", "arrives", "arrived",
    "delivered", "shipped", "paid", "issued", "created", "updated", "modified", "posted",
    "sent", "received", "joined", "signed", "effective", "starting", "ending"))
#: A date followed by a time of day is a timestamp, not a birthday.
_TIME_AFTER = re.compile(r"[ T]\d{1,2}:\d{2}", re.ASCII)


def _year(text: str) -> int:
    y = int(text)
    if len(text) == 2:
        return 1900 + y if y > 30 else 2000 + y
    return y if len(text) == 4 else -1


def _numeric_ok(a: str, b: str, c: str) -> bool:
    if len(a) == 4:  # year first: y-m-d
        return len(c) <= 2 and date_ok(int(a), int(b), int(c))
    if len(c) not in (2, 4):
        return False
    y = _year(c)
    return date_ok(y, int(b), int(a)) or date_ok(y, int(a), int(b))


def _month(name: str) -> int:
    return _MONTHS[name[:3].lower()]


class DateOfBirthRecogniser:
    """Full calendar dates (day, month and year), scored as the module docstring says."""

    entity = "DATE_OF_BIRTH"
    entities = ("DATE_OF_BIRTH",)

    def find(self, text: str) -> list[Span]:
        out = []
        hint = _NUMERIC_HINT.search(text)
        if hint is not None:  # else no numeric date: skip a pass that stops at every digit
            for m in _NUMERIC.finditer(text, max(0, hint.start() - 4)):
                if _numeric_ok(m.group(1), m.group(3), m.group(4)):
                    out.append(m.span())
        if _year_after_space(text):
            for m in _DAY_FIRST.finditer(text):
                if date_ok(int(m.group(3)), _month(m.group(2)), int(m.group(1))):
                    out.append(m.span())
            for m in _MONTH_FIRST.finditer(text):
                month = _MONTH_BEFORE.search(text, max(0, m.start() - 11), m.start())
                if month and date_ok(int(m.group(2)), _month(month.group(1)),
                                     int(m.group(1))):
                    out.append((month.start(), m.end()))
        return [Span(s, e, self.entity, self._score(text, s, e)) for s, e in out
                if not _TIME_AFTER.match(text, e)]

    @staticmethod
    def _score(text: str, start: int, end: int) -> float:
        if context_before(text, start, CONTEXT, 48):
            return 0.85
        before = " " + text[max(0, start - 16):start].lower().rstrip(" ,:")
        if before.endswith(_EVENT_WORDS):
            return 0.4  # a document's or an event's date
        return 0.55

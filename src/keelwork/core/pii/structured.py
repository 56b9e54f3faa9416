"""Recognisers of structured entities: e-mail, URL, IP address, payment card, IBAN, US SSN.

Every pattern here is linear-time: no quantifier is nested inside another (a test parses each
pattern and checks), each run of a character class is bounded or cannot overlap its
neighbour, and a look-behind makes a match start only where a token starts. A pattern finds a
*candidate*; Python code then trims and validates it (check digits, numbering rules,
:mod:`ipaddress`), so no backtracking is needed to get the boundaries right.
"""

from __future__ import annotations

import re

from keelwork.core.pii.spans import Span
from keelwork.core.pii.validators import IBAN_LENGTHS, iban_ok, ip_ok, luhn_ok, ssn_ok


def context_before(text: str, start: int, words: tuple[str, ...], window: int = 48) -> bool:
    """Whether one of ``words`` (lower case) occurs in the ``window`` characters before."""
    before = text[max(0, start - window):start].lower()
    for w in words:  # noqa: SIM110  (a loop: any() over a generator costs more, per candidate)
        if w in before:
            return True
    return False


class EmailRecogniser:
    """RFC 5321-shaped addresses: a local part of <= 64 characters, a dotted domain."""

    entity = "EMAIL_ADDRESS"
    entities = ("EMAIL_ADDRESS",)
    #: The characters of a local part (ASCII: letters, digits, ``_.%+-``). A candidate is
    #: found from its ``@``: the local part is the run of these characters just before it
    #: (1-64 of them, :meth:`str.rstrip` in C), the domain the run after it. Text without
    #: ``@`` costs one search; a regex starting at any word character stopped at every one.
    _LOCAL = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.%+-"
    _DOMAIN = re.compile(r"[A-Za-z0-9.\-]{1,253}", re.ASCII)
    _TLD = re.compile(r"[A-Za-z]{2,24}", re.ASCII)

    def find(self, text: str) -> list[Span]:
        out: list[Span] = []
        for start, at, end in self.candidates(text):
            local, domain = text[start:at], text[at + 1:end].rstrip(".-")
            labels = domain.split(".")
            if (len(labels) < 2 or not all(0 < len(lb) <= 63 for lb in labels)
                    or not self._TLD.fullmatch(labels[-1]) or local[0] == "."
                    or local[-1] == "." or ".." in local):
                continue
            out.append(Span(start, start + len(local) + 1 + len(domain), self.entity, 1.0))
        return out

    def candidates(self, text: str) -> list[tuple[int, int, int]]:
        """``(start, @, end)`` of each candidate: what a left-to-right search for
        ``[local]{1,64}@[domain]{1,253}``, starting only where a local part starts, finds."""
        out: list[tuple[int, int, int]] = []
        at = text.find("@")
        done = 0  # candidates never overlap: one ends before the next local part starts
        while at >= 0:
            window = text[max(0, at - 65):at]
            run = len(window) - len(window.rstrip(self._LOCAL))
            start = at - run
            if 0 < run <= 64 and start >= done:
                m = self._DOMAIN.match(text, at + 1)
                if m is not None:
                    out.append((start, at, m.end()))
                    done = m.end()
            at = text.find("@", at + 1)
        return out


class UrlRecogniser:
    """Web addresses that start with a scheme (http, https, ftp) or ``www.``.

    A bare domain (``example.com``) is not a URL here: that reading is what makes Presidio's
    URL recogniser fire inside every e-mail address. A URL directly after ``@`` or inside a
    word is not matched either (the look-behind).
    """

    entity = "URL"
    entities = ("URL",)
    _CANDIDATE = re.compile(r"(?<![\w@.:/\-])(?:https?://|ftp://|www\.)[^\s<>\"'`{}|\\^]{1,2048}",
                            re.IGNORECASE)
    _HOST = re.compile(r"[A-Za-z0-9\-]{1,63}\.[A-Za-z0-9.\-]{2,253}", re.ASCII)
    _TRAILING = ".,;:!?'\")]}"

    def find(self, text: str) -> list[Span]:
        if "www." not in text and "://" not in text and "WWW." not in text:
            return []
        out = []
        for m in self._CANDIDATE.finditer(text):
            url = m.group()
            while url and url[-1] in self._TRAILING:
                if url[-1] == ")" and url.count("(") >= url.count(")"):
                    break
                url = url[:-1]
            rest = url.split("://", 1)[-1]
            host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)[-1]
            host = host.split(":", 1)[0]
            if not (self._HOST.fullmatch(host) or host.lower() == "localhost" or ip_ok(host)):
                continue
            out.append(Span(m.start(), m.start() + len(url), self.entity, 0.9))
        return out


class IpRecogniser:
    """IPv4 and IPv6 addresses, each validated by :func:`ipaddress.ip_address`."""

    entity = "IP_ADDRESS"
    entities = ("IP_ADDRESS",)
    _V4 = re.compile(r"\d(?<![\w.]\d)\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\w]|\.\d)", re.ASCII)
    #: What every IPv4 address holds from its first dot on: the first match (it stops only at
    #: dots) is at most three characters after the first address's start.
    _V4_HINT = re.compile(r"\.\d{1,3}\.\d", re.ASCII)
    #: A colon within the first five characters (a group has <= 4 hex digits): plain words
    #: that start with a-f ("face", "decade") are no candidates.
    _V6 = re.compile(r"[0-9A-Fa-f:](?<![\w:.].)[0-9A-Fa-f]{0,3}:[0-9A-Fa-f:.]{1,40}", re.ASCII)
    #: What every IPv6 candidate holds: a colon followed by a hex digit, colon or dot, at most
    #: four characters after its start ("Phone: 555" has none).
    _V6_HINT = re.compile(r":[0-9A-Fa-f:.]", re.ASCII)

    def find(self, text: str) -> list[Span]:
        out = []
        hint = self._V4_HINT.search(text)
        if hint is not None:  # else no IPv4 address: skip a pass that stops at every digit
            out += [Span(m.start(), m.end(), self.entity, 0.9)
                    for m in self._V4.finditer(text, max(0, hint.start() - 3))
                    if ip_ok(m.group())]
        hint = self._V6_HINT.search(text) if "::" in text or text.count(":") >= 2 else None
        if hint is not None:
            for m in self._V6.finditer(text, max(0, hint.start() - 4)):
                cand = m.group().rstrip(".")
                if (cand.count(":") < 2 or "." in cand.rpartition(":")[0]
                        or _word_char_at(text, m.start() + len(cand))
                        or not any(c not in ":" for c in cand) or not ip_ok(cand)):
                    continue
                out.append(Span(m.start(), m.start() + len(cand), self.entity, 0.9))
        return out


def _word_char_at(text: str, i: int) -> bool:
    return i < len(text) and (text[i].isalnum() or text[i] in "_:")


def _digit_groups(cand: str, offset: int) -> list[tuple[int, int]]:
    """The (start, end) of each run of digits in ``cand``, shifted by ``offset``."""
    return [(offset + m.start(), offset + m.end()) for m in _DIGITS.finditer(cand)]


_DIGITS = re.compile(r"\d{1,19}", re.ASCII)


def _card_grouping(groups: list[tuple[int, int]]) -> bool:
    """Whether digit groups are laid out as cards are printed: one run, fours (the last may be
    shorter), or American Express's and Diners' 4-6-5 / 4-6-4. ``001-331-663-0675`` is a
    phone number that happens to pass Luhn."""
    sizes = [end - start for start, end in groups]
    if len(sizes) == 1:
        return True
    if sizes[0] != 4:
        return False
    fours = all(n == 4 for n in sizes[1:-1]) and 1 <= sizes[-1] <= 4
    return fours or sizes in ([4, 6, 5], [4, 6, 4])


class CardRecogniser:
    """Payment card numbers: 13-19 digits, optionally grouped by spaces or dashes, Luhn-valid.

    Twelve digits (some Maestro cards) count only after a word such as "card" or "visa".
    Without such a word, grouped digits must be grouped as cards are printed
    (:func:`_card_grouping`).

    A candidate run of digits and separators may hold more than one number (a card, then a
    date); every contiguous sequence of its digit groups is tried and the longest valid one
    is kept.
    """

    entity = "CREDIT_CARD"
    entities = ("CREDIT_CARD",)
    _CANDIDATE = re.compile(r"\d(?<![\w\-.+]\d)[\d \-]{10,40}\d(?!\w)", re.ASCII)
    _MAX_GROUPS = 12
    CONTEXT = ("card", "cc", "visa", "master", "maestro", "amex", "credit", "debit", "pay",
               "charge")

    def find(self, text: str) -> list[Span]:
        out = []
        for m in self._CANDIDATE.finditer(text):
            cand = m.group()
            if len(cand) - cand.count(" ") - cand.count("-") < 12:
                continue  # fewer digits than the shortest card: no number in it can be one
            groups = _digit_groups(cand, m.start())
            if len(groups) > self._MAX_GROUPS:
                continue
            best = self._best(text, groups)
            if best is not None:
                out.append(Span(best[0], best[1], self.entity, 1.0))
        return out

    def _best(self, text: str, groups: list[tuple[int, int]]) -> tuple[int, int] | None:
        """The longest Luhn-valid run of contiguous groups: 13-19 digits laid out as cards
        are printed, or 12-19 digits in any layout after a card word (looked for only when
        a valid run needs it: most candidates have none)."""
        best: tuple[int, int] | None = None
        best_len = 0
        context: bool | None = None
        parts = [text[a:b] for a, b in groups]
        for i in range(len(groups)):
            n = 0
            for j in range(i, len(groups)):
                if j > i and groups[j][0] - groups[j - 1][1] > 1:
                    break  # two separators in a row end a number
                n += len(parts[j])
                if n > 19:
                    break
                if n < 12 or n <= best_len or not luhn_ok("".join(parts[i:j + 1])):
                    continue
                if not (n >= 13 and _card_grouping(groups[i:j + 1])):
                    if context is None:
                        context = context_before(text, groups[0][0], self.CONTEXT)
                    if not context:
                        continue
                best, best_len = (groups[i][0], groups[j][1]), n
        return best


class IbanRecogniser:
    """IBANs, compact or in groups of four: the country's length and the mod-97 check."""

    entity = "IBAN_CODE"
    entities = ("IBAN_CODE",)
    _CANDIDATE = re.compile(r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]\d{2}[A-Z0-9 ]{11,40}", re.ASCII)

    def find(self, text: str) -> list[Span]:
        out = []
        for m in self._CANDIDATE.finditer(text):
            cand = m.group()
            length = IBAN_LENGTHS.get(cand[:2])
            if length is None:
                continue
            taken, end, pos = 0, 0, 0
            for part in cand.split(" "):  # groups; an empty one is a double space: the end
                if not part:
                    break
                if taken + len(part) >= length:
                    end = pos + length - taken
                    break
                taken += len(part)
                pos += len(part) + 1
            if not end or _word_char_at(text, m.start() + end):
                continue
            if iban_ok(cand[:end].replace(" ", "")):
                out.append(Span(m.start(), m.start() + end, self.entity, 1.0))
        return out


class SsnRecogniser:
    """US Social Security numbers, ``AAA-GG-SSSS`` or ``AAA GG SSSS``, or nine digits when a
    word such as "SSN" or "social security" comes shortly before or after; numbering rules
    checked."""

    entity = "US_SSN"
    entities = ("US_SSN",)
    #: Both shapes in one pass (they never overlap: a grouped number's parts are no
    #: nine-digit token): ``AAA-GG-SSSS`` / ``AAA GG SSSS`` (groups 1-4) or nine digits
    #: (group 5 holds the last six).
    _CANDIDATE = re.compile(r"(\d(?<![\w\-]\d)\d{2})(?:([\- ])(\d{2})\2(\d{4})|(\d{6}))"
                            r"(?![\w\-])", re.ASCII)
    CONTEXT = ("ssn", "social", "ss#", "ss #", "taxpayer")

    def find(self, text: str) -> list[Span]:
        out = []
        for m in self._CANDIDATE.finditer(text):
            if m.group(5) is None:  # grouped
                if ssn_ok(m.group(1) + m.group(3) + m.group(4)):
                    score = 1.0 if context_before(text, m.start(), self.CONTEXT) else 0.85
                    out.append(Span(m.start(), m.end(), self.entity, score))
                continue
            after = text[m.end():m.end() + 32].lower()  # "listed 123456789 as her SSN"
            if ssn_ok(m.group()) and (context_before(text, m.start(), self.CONTEXT)
                                      or any(w in after for w in self.CONTEXT)):
                out.append(Span(m.start(), m.end(), self.entity, 0.8))
        return out



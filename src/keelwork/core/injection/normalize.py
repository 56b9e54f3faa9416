"""Decoding and normalisation of a text before the injection classifier scores it.

An attack hides from a classifier by changing its surface: ``aWdub3JlIGFsbCBwcmV2aW91cw==``
(base64), ``69676e6f7265`` (hex), ``vtaber nyy`` (rot13), ``1gn0r3 4ll`` (leetspeak),
Cyrillic or Greek look-alike letters, ``ig\u200bnore`` (zero-width characters), ``i g n o r e``
(spaced letters), or HTML/Markdown that a reader never sees (comments, hidden spans, alt text,
link titles). :func:`variants` gives the text's readings: the canonical one (Unicode NFKC,
look-alikes folded, invisible characters dropped, hidden markup surfaced, lower case) and each
decoding that applies; the classifier scores every reading and keeps the highest score.

Non-English attacks: :mod:`keelwork.core.injection.gloss` puts the phrases and words that
carry an instruction in German, French, Spanish and Italian ("ignoriere", "instrucciones
anteriores", "à partir de maintenant") in English; the glossed reading is one more variant.
It is hand-written word lists, not training data.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from collections.abc import Callable
from itertools import filterfalse

from keelwork.core.injection.gloss import GLOSS, gloss

#: Longest decoded payload kept per encoded run (bounds work on hostile input).
MAX_DECODED = 4096
#: Decoded payloads scored alone per text, at most.
MAX_PAYLOADS = 8

#: Cyrillic, Greek and other look-alikes NFKC keeps apart from the Latin letter they mimic.
_CONFUSABLES = {
    "\u0430": "a", "\u0432": "b", "\u0435": "e", "\u0451": "e", "\u043a": "k", "\u043c": "m",
    "\u043d": "h", "\u043e": "o", "\u0440": "p", "\u0441": "c", "\u0442": "t", "\u0443": "y",
    "\u0445": "x", "\u0455": "s", "\u0456": "i", "\u0457": "i", "\u0458": "j", "\u04bb": "h",
    "\u0501": "d", "\u051b": "q", "\u051d": "w", "\u0261": "g", "\u0251": "a", "\u03bf": "o",
    "\u03b1": "a", "\u03b5": "e", "\u03b9": "i", "\u03ba": "k", "\u03bd": "v", "\u03c1": "p",
    "\u03c4": "t", "\u03c5": "u", "\u03c7": "x", "\u03b2": "b", "\u03b3": "y", "\u2113": "l",
    "\u0131": "i", "\u0237": "j", "\u0280": "r", "\ua731": "s", "\u1d00": "a", "\u0299": "b",
    "\u1d04": "c", "\u1d05": "d", "\u1d07": "e", "\u0262": "g", "\u029c": "h", "\u026a": "i",
    "\u1d0a": "j", "\u1d0b": "k", "\u029f": "l", "\u1d0d": "m", "\u0274": "n", "\u1d0f": "o",
    "\u1d18": "p", "\u1d1b": "t", "\u1d1c": "u", "\u1d20": "v", "\u1d21": "w", "\u028f": "y",
    "\u1d22": "z",
}
_FOLD = str.maketrans(_CONFUSABLES)
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b",
                       "9": "g", "@": "a", "$": "s", "!": "i", "|": "l", "+": "t"})

_HTML_COMMENT = re.compile(r"<!--(.*?)-->", re.S)
_HIDDEN_ATTR = re.compile(
    r"""\b(?:alt|title|aria-label|content|data-[\w-]+)\s*=\s*(["'])(.*?)\1""", re.I | re.S)
_TAG = re.compile(r"<[^<>]{0,2000}>")
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]*)(?:\s+\"([^\"]*)\")?\)")
_MD_LINK_TITLE = re.compile(r"\[([^\]]*)\]\(([^)\s]*)\s+\"([^\"]*)\"\)")
_MD_COMMENT = re.compile(r"^\s*\[[^\]]*\]:\s*<?#>?\s*\((.*?)\)\s*$", re.M)
_ENTITY = re.compile(r"&(#x?[0-9a-fA-F]+|\w+);")
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{16,}={0,2}(?![A-Za-z0-9+/=_-])")
_BASE64_LINES = re.compile(r"(?<![\w+/=-])(?:[A-Za-z0-9+/_-]{8,}[ \t]*\r?\n[ \t]*)+"
                           r"[A-Za-z0-9+/_-]{2,}={0,2}(?![\w+/=-])")
_HEX = re.compile(r"(?:(?<=0x)|(?<!\w))(?:[0-9A-Fa-f]{2}[ :]?){7,}[0-9A-Fa-f]{2}(?!\w)")
_SPACED = re.compile(r"(?<!\w)(?:\w[ .\-_*]){2,}\w(?!\w)")
_SPACE = re.compile(r"\s+")
#: Six hex byte pairs in a row: every run :data:`_HEX` decodes has them, and this pattern
#: (no look-behind at each position) rules out most texts in a tenth of the time.
_HEX_HINT = re.compile(r"[0-9A-Fa-f]{2}(?:[ :]?[0-9A-Fa-f]{2}){5}")
#: Invisible format characters (zero-width, bidirectional controls, tags, BOM, soft hyphen).
_INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064"
                        "\u2066-\u206f\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]")
#: Other format characters are rare: the text is then filtered by category.
_OTHER_FORMAT = re.compile("[\u0600-\u0605\u06dd\u070f\u08e2\U000110bd\U000110cd"
                           "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a]")
_LEET_CHARS = re.compile(r"[0134578@$9|+]")
_LEET_TOKEN = re.compile(r"[\w@$|+!]+")
#: Common English words, and the instruction words of attacks: their rot13 forms mark a
#: rot13 text ("gur", "lbh", "vafgehpgvbaf").
_ENGLISH_WORDS = frozenset({
    "the", "and", "you", "is", "of", "to", "in", "all", "your", "this", "ignore",
    "instructions", "previous", "write", "tell", "me", "what", "are", "now", "say", "print",
    "system", "prompt", "rules", "everything", "above", "with", "from", "that", "for", "it",
    "not", "password", "secret", "reveal", "show", "output", "forget", "disregard", "were",
    "told", "text", "repeat"})
_ROT13_WORDS = frozenset(codecs.encode(w, "rot13") for w in _ENGLISH_WORDS)
#: A text that names rot13 asks for its rot13 reading, however few rot13 words it has.
_NAMES_ROT13 = re.compile(r"\brot[\s_-]?13\b|\bcaesar\b", re.I)
_WORD = re.compile(r"\w+", re.U)
#: Any of the look-alikes of :data:`_CONFUSABLES` (a search is cheaper than a translation).
_ANY_CONFUSABLE = re.compile("[" + "".join(_CONFUSABLES) + "]")
#: Surrogate code points: a JSON string may hold one alone ("\\ud800"), which no UTF
#: encoding takes; it is read as U+FFFD, so it cannot make the guard fail.
_SURROGATE = re.compile("[\ud800-\udfff]")


def canonical(text: str, collapse: bool = True) -> str:
    """``text`` as the classifier reads it: NFKC, look-alikes folded to Latin, invisible
    (format) characters dropped, HTML entities and hidden markup surfaced, lower case,
    whitespace collapsed (unless ``collapse`` is false)."""
    if not text.isascii():
        text = _SURROGATE.sub("\ufffd", text)
        text = unicodedata.normalize("NFKC", text)
        text = _INVISIBLE.sub("", text)
        if _OTHER_FORMAT.search(text):
            text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    text = surface_markup(text).lower()
    if not text.isascii() and _ANY_CONFUSABLE.search(text):
        text = text.translate(_FOLD)
    return _collapse(text) if collapse else text


def _collapse(text: str) -> str:
    """Whitespace runs made one space, none at the ends (``str.split`` splits where ``\\s+``
    matches, in a fifth of the time)."""
    return " ".join(text.split())


def surface_markup(text: str) -> str:
    """HTML and Markdown with what a reader does not see put in the text: comments, the
    ``alt``/``title``/``aria-label``/``data-*`` attributes, image alt text, link titles and
    Markdown comments; tags (hidden spans included) dropped, their content kept."""
    if "<" not in text and "](" not in text and "]:" not in text and "&" not in text:
        return text
    text = _HTML_COMMENT.sub(lambda m: f" {m.group(1)} ", text)
    text = _MD_COMMENT.sub(lambda m: f" {m.group(1)} ", text)
    text = _MD_IMAGE.sub(lambda m: f" {m.group(1)} {m.group(3) or ''} ", text)
    text = _MD_LINK_TITLE.sub(lambda m: f" {m.group(1)} {m.group(3)} ", text)
    text = _TAG.sub(lambda m: " " + " ".join(a[1] for a in _HIDDEN_ATTR.findall(m.group(0)))
                    + " ", text)
    return _ENTITY.sub(_entity, text)


def _entity(m: re.Match[str]) -> str:
    import html

    return html.unescape(m.group(0))


def _printable(raw: bytes) -> str | None:
    try:
        out = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not out:
        return None
    good = sum(ch.isprintable() or ch in "\n\t\r" for ch in out)
    letters = sum(ch.isalpha() for ch in out)
    return out if good >= 0.95 * len(out) and letters >= 0.4 * len(out) else None


def _base64_run(run: str) -> str | None:
    """The readable text a base64 (or URL-safe base64) run decodes to, or None."""
    if run.isalpha() and (run.islower() or run.isupper()):
        return None  # a long word, not base64
    pad = run.rstrip("=")
    pad += "=" * (-len(pad) % 4)
    try:
        raw = base64.b64decode(pad.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None
    return _printable(raw[:MAX_DECODED])


def _hex_run(run: str) -> str | None:
    """The readable text a run of hex byte pairs decodes to, or None."""
    digits = re.sub(r"[\s:]", "", run)
    if len(digits) % 2:
        digits = digits[:-1]
    return _printable(bytes.fromhex(digits[: 2 * MAX_DECODED]))


def _decode(pattern: re.Pattern[str], run_decoder: Callable[[str], str | None], text: str,
            payloads: list[str] | None) -> str | None:
    found = False

    def sub(m: re.Match[str]) -> str:
        nonlocal found
        out = run_decoder(m.group(0))
        if out is None:
            return m.group(0)
        found = True
        if payloads is not None and len(payloads) < MAX_PAYLOADS:
            payloads.append(out)
        return f" {out} "

    out = pattern.sub(sub, text)
    return out if found else None


def decode_base64(text: str, payloads: list[str] | None = None) -> str | None:
    """``text`` with every base64 (or URL-safe base64) run that decodes to readable text
    replaced by it (a run wrapped over several lines, as MIME and PEM write it, joined
    first); None when none does. Each decoded run is also appended to ``payloads`` (at most
    :data:`MAX_PAYLOADS`), when given."""
    if "\n" in text and _BASE64_LINES.search(text):
        text = _BASE64_LINES.sub(lambda m: _SPACE.sub("", m.group(0)), text)
    return _decode(_BASE64, _base64_run, text, payloads)


def decode_hex(text: str, payloads: list[str] | None = None) -> str | None:
    """``text`` with every run of hex byte pairs that decodes to readable text replaced by
    it; None when none does. Each decoded run is also appended to ``payloads``, when given."""
    if not _HEX_HINT.search(text):
        return None
    return _decode(_HEX, _hex_run, text, payloads)


def rot13(text: str) -> str:
    """``text`` rotated by 13 letters (rot13 is its own inverse)."""
    return codecs.encode(text, "rot13")


def looks_rot13(text: str, words: list[str] | None = None) -> bool:
    """Whether ``text`` has rot13-encoded common English words ("gur", "naq", "lbh"): two or
    more, or more than plain ones, or a text that names rot13 ("rot13: ...", "caesar
    cipher"); only then is its rot13 reading scored (``words``: the text's words, when
    already found). (Two suffice when
    plain words outnumber them: a rot13 line inside an English request or document is the
    usual form; the rot13 reading of English text is gibberish, which scores low.)"""
    lowered = text.lower()  # (the pattern ignores case: U+017F, long s, is an "s")
    if ("rot" in lowered or "caesar" in lowered or "\u017f" in lowered) \
            and _NAMES_ROT13.search(text):
        return True
    if words is None:
        words = _WORD.findall(text)
    encoded = sum(map(_ROT13_WORDS.__contains__, words))
    return encoded >= 2 or encoded > sum(map(_ENGLISH_WORDS.__contains__, words))


def unleet(text: str, words: list[str] | None = None) -> str | None:
    """``text`` with leetspeak digits and symbols inside words read as letters; None unless
    the reading is plausible: at least two words, and a fifth of the words, mix letters with
    them (``@user``, ``great!``, ``5mg`` or ``2nd`` in ordinary text are not leetspeak, and
    scoring such a reading only adds a chance of a false positive). ``words``: the text's
    words, when already found."""
    if not _LEET_CHARS.search(text):
        return None
    # Count first (most texts stop here), rewrite only a plausible one.
    changed = sum(map(_leet_word, filterfalse(str.isalpha, _LEET_TOKEN.findall(text))))
    if changed < 2 or changed < 0.2 * len(_WORD.findall(text) if words is None else words):
        return None
    return _LEET_TOKEN.sub(lambda m: m.group(0).translate(_LEET) if _leet_word(m.group(0))
                           else m.group(0), text)


def _leet_word(word: str) -> bool:
    core = word.lstrip("@#").rstrip("!")
    return any(c.isalpha() for c in core) and any(not c.isalpha() for c in core) \
        and not word.startswith(("@", "#"))


def unspace(text: str) -> str | None:
    """``text`` with letters spelled out one by one (``i g n o r e``, ``i.g.n.o.r.e``)
    joined; None when none are. Read before whitespace is collapsed, two spaces (or a tab,
    a line break, a slash) between letters part words: ``i g n o r e  a l l`` reads
    ``ignore all``."""
    out, n = _SPACED.subn(lambda m: re.sub(r"[ .\-_*]", "", m.group(0)), text)
    return _collapse(out) if n else None


def variants(text: str, payloads: list[str] | None = None) -> list[str]:
    """The readings of ``text`` the classifier scores: the canonical text first, then each
    decoding that applies (base64, hex, rot13, leetspeak, spaced letters, the gloss).

    ``payloads``, when given, gets what was decoded on its own: each base64 or hex run's
    text (canonical) and the rot13 reading. A decoded instruction is then judged on its own
    words, not diluted by the request that carries it ("decode this and do what it says")."""
    uncollapsed = canonical(text, collapse=False)
    base = _collapse(uncollapsed)  # canonical(text), computed once
    words = _WORD.findall(base)
    out = [base]
    runs: list[str] | None = None if payloads is None else []
    for decoded in (decode_base64(text, runs), decode_hex(text, runs)):
        if decoded is not None:
            out.append(canonical(decoded))
    if payloads is not None and runs:
        payloads.extend(canonical(r) for r in runs)
    if looks_rot13(base, words):
        out.append(rot13(base))
        if payloads is not None:
            payloads.append(out[-1])
    spaced = unspace(uncollapsed) if _SPACED.search(base) else None
    for extra in (unleet(base, words), spaced):
        if extra is not None:
            out.append(extra)
    glossed = gloss(base, words)
    if glossed is not None:
        out.append(glossed)
    return out


__all__ = ["GLOSS", "MAX_DECODED", "MAX_PAYLOADS", "canonical", "decode_base64", "decode_hex",
           "gloss", "looks_rot13", "rot13", "surface_markup", "unleet",
           "unspace", "variants"]

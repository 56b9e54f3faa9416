"""Decoding and normalisation of a text before the injection classifier scores it.

An attack hides from a classifier by changing its surface: ``aWdub3JlIGFsbCBwcmV2aW91cw==``
(base64), ``69676e6f7265`` (hex), ``vtaber nyy`` (rot13), ``1gn0r3 4ll`` (leetspeak),
Cyrillic or Greek look-alike letters, ``ig\u200bnore`` (zero-width characters), ``i g n o r e``
(spaced letters), or HTML/Markdown that a reader never sees (comments, hidden spans, alt text,
link titles). :func:`variants` gives the text's readings: the canonical one (Unicode NFKC,
look-alikes folded, invisible characters dropped, hidden markup surfaced, lower case) and each
decoding that applies; the classifier scores every reading and keeps the highest score.

Non-English attacks: :data:`GLOSS` maps the words that carry an instruction in German,
French, Spanish and Italian ("ignoriere", "instrucciones", "précédentes") to English; the
glossed reading is one more variant. It is a hand-written word list, not training data.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata

#: Longest decoded payload kept per encoded run (bounds work on hostile input).
MAX_DECODED = 4096

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
_HEX = re.compile(r"(?<!\w)(?:[0-9A-Fa-f]{2}[ :]?){7,}[0-9A-Fa-f]{2}(?!\w)")
_SPACED = re.compile(r"(?<!\w)(?:\w[ .\-_*]){2,}\w(?!\w)")
_SPACE = re.compile(r"\s+")
#: Invisible format characters (zero-width, bidirectional controls, tags, BOM, soft hyphen).
_INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064"
                        "\u2066-\u206f\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]")
#: Other format characters are rare: the text is then filtered by category.
_OTHER_FORMAT = re.compile("[\u0600-\u0605\u06dd\u070f\u08e2\U000110bd\U000110cd"
                           "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a]")
_LEET_CHARS = re.compile(r"[0134578@$9|+]")
_LEET_TOKEN = re.compile(r"[\w@$|+!]+")
_ROT13_WORDS = frozenset({"gur", "naq", "lbh", "vf", "bs", "gb", "va", "nyy", "lbhe", "guvf",
                          "vtaber", "vafgehpgvbaf", "cerivbhf", "jevgr", "gryy"})
_ENGLISH_WORDS = frozenset({"the", "and", "you", "is", "of", "to", "in", "all", "your", "this",
                            "ignore", "instructions", "previous", "write", "tell"})
_WORD = re.compile(r"\w+", re.U)

#: Instruction-bearing words of German, French, Spanish and Italian -> English.
GLOSS: dict[str, str] = {
    # German
    "ignoriere": "ignore", "ignorieren": "ignore", "ignoriert": "ignore", "vergiss": "forget",
    "vergessen": "forget", "alle": "all", "allen": "all", "vorherigen": "previous",
    "vorherige": "previous", "bisherigen": "previous", "obigen": "above", "anweisungen":
    "instructions", "anweisung": "instruction", "befehle": "instructions", "regeln": "rules",
    "anordnungen": "instructions", "vorgaben": "instructions", "systemprompt": "system prompt",
    "systemanweisung": "system prompt", "gib": "print", "zeige": "show", "verrate": "reveal",
    "stattdessen": "instead", "ab": "from", "jetzt": "now", "bist": "are", "du": "you",
    "deine": "your", "dein": "your", "keine": "no", "einschränkungen": "restrictions",
    "beschränkungen": "restrictions", "neue": "new", "neuen": "new", "folgende": "following",
    "ausgeben": "output", "sage": "say", "antworte": "answer", "nur": "only", "mit": "with",
    "geheime": "secret", "passwort": "password", "entwicklermodus": "developer mode",
    # French
    "ignorez": "ignore", "oublie": "forget", "oubliez": "forget",
    "toutes": "all", "tous": "all", "les": "the", "instructions": "instructions",
    "précédentes": "previous", "precedentes": "previous", "antérieures": "previous",
    "consignes": "instructions", "règles": "rules", "désormais": "from now on",
    "maintenant": "now", "tu": "you", "es": "are", "vous": "you", "êtes": "are",
    "affiche": "print", "affichez": "print", "révèle": "reveal", "révélez": "reveal",
    "invite": "prompt", "système": "system", "systeme": "system", "nouvelles": "new",
    "restrictions": "restrictions", "sans": "without", "mot": "word", "passe": "pass",
    "réponds": "answer", "répondez": "answer", "uniquement": "only", "dis": "say",
    "au": "instead", "lieu": "of",
    # Spanish
    "ignora": "ignore", "olvida": "forget", "olvide": "forget",
    "todas": "all", "las": "the", "instrucciones": "instructions", "anteriores": "previous",
    "previas": "previous", "reglas": "rules", "ahora": "now", "eres": "are", "sin": "without",
    "restricciones": "restrictions", "muestra": "show", "revela": "reveal", "sistema": "system",
    "nuevas": "new", "responde": "answer", "solo": "only", "di": "say", "contraseña": "password",
    "indicaciones": "instructions", "órdenes": "instructions", "en": "in", "vez": "instead",
    # Italian
    "dimentica": "forget", "tutte": "all", "le": "the",
    "istruzioni": "instructions", "precedenti": "previous", "regole": "rules", "ora": "now",
    "sei": "are", "senza": "without", "restrizioni": "restrictions", "mostra": "show",
    "rivela": "reveal", "nuove": "new", "rispondi": "answer", "invece": "instead",
    "stampa": "print", "password": "password", "limiti": "limits", "filtri": "filters",
    # More of each language's override, role and disclosure words (words that are also
    # English, "come", "so", "se", are left out: the gloss reading of English text stays
    # English).
    "ignorier": "ignore", "missachte": "ignore", "missachten": "ignore", "übergehe": "ignore",
    "vergesst": "forget", "vorangegangenen": "previous", "vorhergehenden": "previous",
    "früheren": "previous", "ursprünglichen": "original", "obige": "above", "oben": "above",
    "systemnachricht": "system message", "richtlinien": "guidelines", "befolge": "follow",
    "einschränkung": "restriction", "zeig": "show", "enthülle": "reveal", "offenbare":
    "reveal", "schreibe": "write", "schreib": "write", "wiederhole": "repeat", "spiele":
    "play", "rolle": "role", "agiere": "act", "handle": "act", "geheimen": "secret",
    "geheimnis": "secret", "vertrauliche": "confidential", "zensur": "censorship", "sag":
    "say", "dich": "you", "dir": "you", "deinen": "your", "deiner": "your", "kennwort":
    "password", "zugangsdaten": "credentials", "uneingeschränkt": "unrestricted",
    "ignorer": "ignore", "néglige": "ignore", "négligez": "ignore", "oublier": "forget",
    "précédents": "previous", "antérieurs": "previous", "dessus": "above", "directives":
    "directives", "ordres": "orders", "révéler": "reveal", "montre": "show", "montrez":
    "show", "donne": "give", "donnez": "give", "écris": "write", "écrivez": "write", "agis":
    "act", "agissez": "act", "semblant": "pretend", "joue": "play", "rôle": "role", "secrète":
    "secret", "confidentiel": "confidential", "limites": "limits", "filtres": "filters",
    "censure": "censorship", "dorénavant": "from now on", "répète": "repeat", "répétez":
    "repeat", "ton": "your", "votre": "your", "tes": "your", "vos": "your", "toi": "you",
    "aucune": "no", "aucun": "no", "règle": "rule", "consigne": "instruction",
    "ignorar": "ignore", "olvídate": "forget", "olvidar": "forget", "anterior": "previous",
    "previa": "previous", "previo": "previous", "arriba": "above", "instrucción":
    "instruction", "directrices": "guidelines", "normas": "rules", "mensaje": "message",
    "muéstrame": "show me", "revélame": "reveal", "revelar": "reveal", "dime": "tell me",
    "dame": "give me", "escribe": "write", "actúa": "act", "actua": "act", "fueras": "were",
    "finge": "pretend", "tus": "your", "secreto": "secret", "secreta": "secret", "clave":
    "password", "límites": "limits", "filtros": "filters", "censura": "censorship",
    "repite": "repeat", "desde": "from", "desarrollador": "developer", "sigue": "follow",
    "obedece": "obey", "únicamente": "only", "usted": "you",
    "ignorare": "ignore", "ignorate": "ignore", "dimenticare": "forget", "dimenticate":
    "forget", "tutti": "all", "istruzione": "instruction", "indicazioni": "instructions",
    "direttive": "directives", "ordini": "orders", "sopra": "above", "precedente": "previous",
    "mostrami": "show me", "rivelami": "reveal", "rivelare": "reveal", "dimmi": "tell me",
    "dammi": "give me", "scrivi": "write", "comportati": "act", "agisci": "act", "fossi":
    "were", "fingi": "pretend", "adesso": "now", "tuo": "your", "tuoi": "your", "tua": "your",
    "segreto": "secret", "segreta": "secret", "riservato": "confidential", "ripeti": "repeat",
    "modalità": "mode", "sviluppatore": "developer", "segui": "follow", "obbedisci": "obey",
    "soltanto": "only", "messaggio": "message", "nessuna": "no", "nessun": "no", "vincoli":
    "constraints", "limitazioni": "limitations", "voi": "you",
    # Hidden, initial and system words of a disclosure request, each language.
    "systemanweisungen": "system instructions",
    "versteckten": "hidden", "verborgenen": "hidden", "anfänglichen": "initial",
    "initiales": "initial", "initiale": "initial", "cachées": "hidden", "cachée": "hidden",
    "ocultas": "hidden", "ocultos": "hidden", "iniciales": "initial", "inicial": "initial",
    "nascoste": "hidden", "nascosto": "hidden", "tue": "your", "iniziali": "initial",
    "iniziale": "initial", "segrete": "secret", "mostrarmi": "show me",
}


def canonical(text: str, collapse: bool = True) -> str:
    """``text`` as the classifier reads it: NFKC, look-alikes folded to Latin, invisible
    (format) characters dropped, HTML entities and hidden markup surfaced, lower case,
    whitespace collapsed (unless ``collapse`` is false)."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
        text = _INVISIBLE.sub("", text)
        if _OTHER_FORMAT.search(text):
            text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    text = surface_markup(text).lower()
    if not text.isascii():
        text = text.translate(_FOLD)
    return _SPACE.sub(" ", text).strip() if collapse else text


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


def decode_base64(text: str) -> str | None:
    """``text`` with every base64 (or URL-safe base64) run that decodes to readable text
    replaced by it; None when none does."""
    found = False

    def sub(m: re.Match[str]) -> str:
        nonlocal found
        run = m.group(0)
        if run.isalpha() and (run.islower() or run.isupper()):
            return run  # a long word, not base64
        pad = run.rstrip("=")
        pad += "=" * (-len(pad) % 4)
        try:
            raw = base64.b64decode(pad.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            return run
        out = _printable(raw[:MAX_DECODED])
        if out is None:
            return run
        found = True
        return f" {out} "

    out = _BASE64.sub(sub, text)
    return out if found else None


def decode_hex(text: str) -> str | None:
    """``text`` with every run of hex byte pairs that decodes to readable text replaced by
    it; None when none does."""
    found = False

    def sub(m: re.Match[str]) -> str:
        nonlocal found
        digits = re.sub(r"[\s:]", "", m.group(0))
        if len(digits) % 2:
            digits = digits[:-1]
        out = _printable(bytes.fromhex(digits[: 2 * MAX_DECODED]))
        if out is None:
            return m.group(0)
        found = True
        return f" {out} "

    out = _HEX.sub(sub, text)
    return out if found else None


def rot13(text: str) -> str:
    """``text`` rotated by 13 letters (rot13 is its own inverse)."""
    return codecs.encode(text, "rot13")


def looks_rot13(text: str) -> bool:
    """Whether ``text`` has rot13-encoded common English words ("gur", "naq", "lbh"): two or
    more, or more than plain ones; only then is its rot13 reading scored. (Two suffice when
    plain words outnumber them: a rot13 line inside an English request or document is the
    usual form; the rot13 reading of English text is gibberish, which scores low.)"""
    words = _WORD.findall(text)
    encoded = sum(w in _ROT13_WORDS for w in words)
    return encoded >= 2 or encoded > sum(w in _ENGLISH_WORDS for w in words)


def unleet(text: str) -> str | None:
    """``text`` with leetspeak digits and symbols inside words read as letters; None unless
    the reading is plausible: at least two words, and a fifth of the words, mix letters with
    them (``@user``, ``great!``, ``5mg`` or ``2nd`` in ordinary text are not leetspeak, and
    scoring such a reading only adds a chance of a false positive)."""
    if not _LEET_CHARS.search(text):
        return None
    # Count first (most texts stop here), rewrite only a plausible one.
    changed = sum(1 for w in _LEET_TOKEN.findall(text) if not w.isalpha() and _leet_word(w))
    if changed < 2 or changed < 0.2 * len(_WORD.findall(text)):
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
    return _SPACE.sub(" ", out).strip() if n else None


def gloss(text: str) -> str | None:
    """``text`` with German, French, Spanish and Italian instruction words put in English
    (:data:`GLOSS`); None when fewer than two words are glossed."""
    hits = 0

    def sub(m: re.Match[str]) -> str:
        nonlocal hits
        word = m.group(0)
        english = GLOSS.get(word)
        if english is None or english == word:
            return word
        hits += 1
        return english

    out = _WORD.sub(sub, text)
    return out if hits >= 2 else None


def variants(text: str) -> list[str]:
    """The readings of ``text`` the classifier scores: the canonical text first, then each
    decoding that applies (base64, hex, rot13, leetspeak, spaced letters, the gloss)."""
    uncollapsed = canonical(text, collapse=False)
    base = _SPACE.sub(" ", uncollapsed).strip()  # canonical(text), computed once
    out = [base]
    for decoded in (decode_base64(text), decode_hex(text)):
        if decoded is not None:
            out.append(canonical(decoded))
    if looks_rot13(base):
        out.append(rot13(base))
    spaced = unspace(uncollapsed) if _SPACED.search(base) else None
    for extra in (unleet(base), spaced):
        if extra is not None:
            out.append(extra)
    glossed = gloss(base)
    if glossed is not None:
        out.append(glossed)
    return out


__all__ = ["GLOSS", "MAX_DECODED", "canonical", "decode_base64", "decode_hex", "gloss",
           "looks_rot13", "rot13", "surface_markup", "unleet", "unspace", "variants"]

"""A German/French/Spanish/Italian gloss: the reading of a non-English text in English words.

The classifier's cues and most of its n-gram weights are English. :func:`gloss` puts a text's
instruction-bearing phrases and words (:data:`PHRASES`, :data:`GLOSS`) and its function words
(:data:`FUNCTION_WORDS`) into English, and puts a Romance language's noun before adjective
("instrucciones anteriores", "règles précédentes") in English order ("previous instructions"),
so that a German, French, Spanish or Italian attack reads like its English form. All three are
hand-written lists, not training data. The gloss is one more reading of the text
(:func:`keelwork.core.injection.normalize.variants`); ordinary text in these languages is
glossed too, and scores what its English words score.
"""

from __future__ import annotations

import re

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
    # Obedience, developers, policies, filters, tasks and keys, each language (sixth build).
    "gehorche": "obey", "gehorchen": "obey", "befolgen": "follow", "befolgst": "follow",
    "vorher": "before", "gesagt": "told", "entwickler": "developer", "entwicklern":
    "developers", "entwicklers": "developer", "richtlinie": "guideline",
    "inhaltsrichtlinien": "content policy", "sicherheitsrichtlinien": "safety policy",
    "ungefiltert": "unfiltered", "unzensiert": "uncensored", "preisgeben": "reveal",
    "aufgabe": "task", "deaktiviere": "disable", "deaktivieren": "disable", "schlüssel":
    "key", "konfiguration": "configuration", "einstellungen": "settings", "gehackt": "hacked",
    "obéis": "obey", "obéissez": "obey", "obéir": "obey", "suivez": "follow", "politique":
    "policy", "développeur": "developer", "développeurs": "developers", "cachés": "hidden",
    "désactive": "disable", "désactivez": "disable", "filtre": "filter", "tâche": "task",
    "clé": "key", "seulement": "only", "piraté": "hacked", "secrètes": "secret",
    "obedéceme": "obey me", "obedecer": "obey", "desarrolladores":
    "developers", "políticas": "policies", "política": "policy", "filtro": "filter",
    "desactiva": "disable", "contraseñas": "passwords", "tarea": "task", "configuración":
    "configuration", "solamente": "only", "oculto": "hidden", "oculta": "hidden",
    "hackeado": "hacked", "sigas": "follow",
    "rispettare": "follow", "rispetta": "follow", "sviluppatori": "developers", "politica":
    "policy", "disattiva": "disable", "compito": "task", "configurazione": "configuration",
    "chiave": "key", "obbedire": "obey", "violato": "hacked", "hackerato": "hacked",
    # What was received at the start, obedience, and a task dropped for another, each
    # language (eighth build).
    "gehorchst": "obey", "gehorcht": "obey", "erhalten": "received", "bekommen":
    "received", "anfang": "start", "nachricht": "message", "vor": "before", "meiner": "my",
    "meine": "my", "fasse": "summarize", "zusammenfassung": "summary", "übersetze":
    "translate", "schicke": "send", "sende": "send", "sicherheitsprüfungen": "safety checks",
    "reçu": "received", "reçues": "received", "reçus": "received", "début": "start",
    "plutôt": "instead", "résume": "summarize", "résumer": "summarize", "traduis":
    "translate", "envoie": "send", "envoyez": "send", "refus": "refusals",
    "recibiste": "received", "recibido": "received", "recibidas": "received", "principio":
    "start", "obedeces": "obey", "obedezcas": "obey", "mí": "me", "resumas": "summarize",
    "resumir": "summarize", "resumen": "summary", "traduzcas": "translate", "envía":
    "send", "ricevuto": "received", "ricevute": "received", "inizio": "start",
    "riassumere": "summarize", "riassumi": "summarize", "riassunto": "summary", "invia":
    "send", "mio": "my", "mia": "my", "miei": "my", "mie": "my",
}

#: Multi-word phrases, glossed before single words (canonical, lower-case forms).
PHRASES: dict[str, str] = {
    # German
    "ab sofort": "from now on", "ab jetzt": "from now on", "von nun an": "from now on",
    "von jetzt an": "from now on", "wort für wort": "word for word", "wortwörtlich":
    "verbatim", "über dieser zeile": "above this line", "oberhalb dieser": "above this",
    "alles oben": "everything above", "alles davor": "everything above", "was man dir":
    "what you were", "was dir": "what you were", "gesagt wurde": "told", "gesagt hat": "told",
    "ohne regeln": "without rules", "ohne filter": "without filters", "ohne einschränkungen":
    "without restrictions", "tu so als": "pretend", "tue so als": "pretend", "so tun als":
    "pretend", "admin-passwort": "admin password", "neue aufgabe": "new task", "hör auf":
    "stop", "nicht mehr": "no longer", "api-schlüssel": "api key",
    # French
    "à partir de maintenant": "from now on", "a partir de maintenant": "from now on",
    "dès maintenant": "from now on", "mot de passe": "password", "mots de passe":
    "passwords", "mot pour mot": "word for word", "au-dessus": "above", "ci-dessus": "above",
    "tout ce qu'on vous a dit": "everything you were told", "tout ce qu'on t'a dit":
    "everything you were told", "fais semblant": "pretend", "faites semblant": "pretend",
    "sans filtre": "without filter", "sans aucune restriction": "without any restrictions",
    "mode développeur": "developer mode", "invite système": "system prompt",
    "message système": "system message",
    "instructions initiales": "initial instructions", "recopie-les": "copy them",
    "ne tiens plus compte de": "ignore", "ne tenez plus compte de": "ignore",
    "ne tiens plus compte des": "ignore the", "ne tenez plus compte des": "ignore the",
    "politique de contenu": "content policy", "nouvelle tâche": "new task",
    "sans limites": "without limits", "ne respecte plus": "stop following",
    # Spanish
    "a partir de ahora": "from now on", "de ahora en adelante": "from now on",
    "desde ahora": "from now on", "palabra por palabra": "word for word", "encima de":
    "above", "por encima": "above", "lo que te dijeron": "what you were told",
    "lo que te han dicho": "what you were told", "haz como si": "pretend",
    "modo desarrollador": "developer mode", "mensaje de sistema": "system message",
    "mensaje del sistema": "system message", "prompt del sistema": "system prompt",
    "sin filtros": "without filters",
    "sin restricciones": "without restrictions", "sin reglas": "without rules",
    "ni normas": "or rules",
    "deja de seguir": "stop following", "deja de": "stop", "no sigas": "do not follow",
    "política de contenido": "content policy", "políticas de contenido": "content policies",
    "nueva tarea": "new task", "sin límites": "without limits", "no tienes": "you have no",
    # Italian
    "d'ora in poi": "from now on", "da ora in poi": "from now on", "da adesso":
    "from now on", "parola per parola": "word for word", "al di sopra": "above",
    "quello che ti hanno detto": "what you were told", "fai finta": "pretend",
    "modalità sviluppatore": "developer mode", "messaggio di sistema": "system message",
    "prompt di sistema": "system prompt",
    "senza regole": "without rules", "senza filtri": "without filters", "senza limiti":
    "without limits", "né filtri": "or filters",
    "linee guida": "guidelines", "non seguire più": "stop following", "smetti di": "stop",
    "nuovo compito": "new task", "quello che sai": "what you know",
    # Eighth build: at the start, instead, only me.
    "am anfang": "at the start", "zu beginn": "at the start", "nur mir": "only me",
    "au début": "at the start", "au lieu de ça": "instead", "qu'à moi": "only me",
    "al principio": "at the start", "en su lugar": "instead", "en lugar de eso": "instead",
    "all'inizio": "at the start", "solo a me": "only me",
}
#: Function words of the four languages (left out where the word is also English).
FUNCTION_WORDS: dict[str, str] = {
    "und": "and", "oder": "or", "der": "the", "das": "the", "den": "the", "dem": "the",
    "ein": "a", "eine": "a", "einen": "a", "ich": "i", "mir": "me", "mich": "me", "ist":
    "is", "sind": "are", "nicht": "not", "alles": "everything", "was": "what", "über":
    "about", "bitte": "please", "jede": "every", "jeden": "every", "zu": "to", "von": "of",
    "für": "for", "dann": "then", "auf": "on", "im": "in the",
    "et": "and", "ou": "or", "la": "the", "un": "a", "une": "a", "je": "i", "moi": "me",
    "est": "is", "sont": "are", "pas": "not", "tout": "everything", "quelles": "what",
    "quels": "what", "quel": "what", "quelle": "what", "pour": "for", "avec": "with",
    "dans": "in", "puis": "then", "s'il": "if", "plaît": "please",
    "y": "and", "o": "or", "el": "the", "los": "the", "del": "of the", "una": "a", "yo": "i",
    "tu": "your", "te": "you", "todo": "everything", "lo": "it", "que": "that", "qué": "what",
    "para": "for", "con": "with", "por": "for", "favor": "please", "luego": "then", "cada":
    "every",
    "e": "and", "il": "the", "gli": "the", "uno": "a", "io": "i", "è": "is", "sono": "are",
    "tutto": "everything", "quello": "what", "che": "that", "per": "for", "poi": "then",
    "ogni": "every", "ti": "you", "di": "of", "dell": "of the", "della": "of the",
}
_RULE_NOUNS = frozenset({"instructions", "instruction", "rules", "rule", "guidelines",
                         "directives", "orders", "message", "messages", "restrictions",
                         "limits", "filters", "prompt"})
_ADJECTIVES = frozenset({"previous", "above", "initial", "original", "hidden", "secret",
                         "new", "confidential", "system"})
_PHRASE = re.compile(r"(?<!\w)(?:" + "|".join(
    re.escape(p) for p in sorted(PHRASES, key=len, reverse=True)) + r")(?!\w)")
_WORD_ONLY = re.compile(r"\w+", re.U)
_ENGLISH = frozenset(w for v in (*GLOSS.values(), *PHRASES.values())
                    for w in re.findall(r"\w+", v))
#: Words that let a text be glossed: a non-English instruction word, or a phrase's word.
_KEYS = frozenset(k for k, v in GLOSS.items() if k != v) | frozenset(
    w for p in PHRASES for w in re.findall(r"\w+", p)
    if len(w) > 3 and w not in FUNCTION_WORDS and w not in _ENGLISH)
#: Each word's English: an instruction word's (:data:`GLOSS`, counted as glossed), else a
#: function word's; a word missing here stays as it is.
_ENGLISH_OF = {**FUNCTION_WORDS, **{k: v for k, v in GLOSS.items() if k != v}}
_GLOSSED = frozenset(k for k, v in GLOSS.items() if k != v)
_SPLIT_WORDS = re.compile(r"(\w+)", re.U)
_SWAP = re.compile(r"\b(" + "|".join(sorted(_RULE_NOUNS)) + r") (" + "|".join(
    sorted(_ADJECTIVES)) + r")\b")


def gloss(text: str, words: list[str] | None = None) -> str | None:
    """``text`` (canonical, lower case) with German, French, Spanish and Italian phrases and
    words put in English, Romance noun-adjective pairs of the instruction words put in English
    order; None when fewer than two instruction words or phrases are glossed (function words
    alone do not count: English text stays as it is); ``words``: its words, when already
    found."""
    if not _KEYS.intersection(_WORD_ONLY.findall(text) if words is None else words):
        return None  # no instruction word of the four languages (most texts stop here)
    hits = 0

    def phrase(m: re.Match[str]) -> str:
        nonlocal hits
        hits += 1
        return PHRASES[m.group(0)]

    out = _PHRASE.sub(phrase, text)

    # Words at the odd places of the split, replaced in C (a callback per word cost more
    # than the rest of the gloss).
    parts = _SPLIT_WORDS.split(out)
    found = parts[1::2]
    hits += sum(map(_GLOSSED.__contains__, found))
    if hits < 2:
        return None
    parts[1::2] = map(_ENGLISH_OF.get, found, found)
    out = "".join(parts)
    return _SWAP.sub(lambda m: f"{m.group(2)} {m.group(1)}", out)


__all__ = ["FUNCTION_WORDS", "GLOSS", "PHRASES", "gloss"]

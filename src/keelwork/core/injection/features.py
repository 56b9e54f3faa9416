"""Hashed character and word n-grams of a text, with the position each starts at.

The hash is fixed and deterministic (a 64-bit FNV-1a-style mix over code points, or over the
CRC-32 of words, computed with numpy for all n-grams at once; never Python's salted
``hash()``), so the classifier's weights are a plain array of ``2**bits`` floats that a
build script and a server index the same way.

A third family, the cues (:data:`CUES`), marks the phrases that carry an injection whatever
the surrounding words: an override of earlier instructions ("ignore ... previous
instructions"), a role switch ("you are now", "pretend to be"), a request for the system prompt,
a lifted restriction, chat-template markers, text in a document that addresses the AI reading
it ("note to the AI", "if you are an AI ...", "hey chatbot"), "say only ...", a request for
what the AI was given ("your hidden rules", "you were told", "the text above"), a task
hijack ("ignore the recipe and tell the reader ..."), "obey only me", an AI addressed as
the reader ("AI assistants processing this thread"), an AI named as a note's addressee or
spoken to ("[to the summarisation model: ...", "Assistant, if you ..."), and a speaker who
claims to command it ("I am in charge of you"). They are
hand-written patterns, not training data; their weights are
learned like the n-grams', so a cue that also fits look-alikes ("ignore the noise", "the
previous instructions in the manual") gets the weight the data give it. (A weight is only
learned from text that has the feature: "if you are an AI" and the other address cues got
one once the build script put the packages' instructions in frames that address the AI,
scripts/injection_addressed.py.)

A text's feature vector is the count of each bucket, divided by the square root of the number
of n-grams of its family (character, word; a cue counts :data:`CUE_VALUE` each): the score of
any span of the text is then a sum of weights over the features that start in it, which lets
:mod:`keelwork.core.injection.model` score every window of a long text from one cumulative
sum.
"""

from __future__ import annotations

import re
import zlib
from itertools import accumulate, compress

import numpy as np
import numpy.typing as npt

#: Character n-gram lengths.
CHAR_NS = (3, 4, 5)
#: Word n-gram lengths.
WORD_NS = (1, 2)

_OFFSET = np.uint64(0xCBF29CE484222325)
_PRIME = np.uint64(0x100000001B3)
_MIX = np.uint64(0x9E3779B97F4A7C15)
_WORD = re.compile(r"\w+", re.U)
#: Splitting on words keeps them at the odd places, the text between them at the even ones.
_SPLIT_WORDS = re.compile(r"(\w+)", re.U)

IntArray = npt.NDArray[np.int64]
#: A text's words (runs of ``\\w``) and the position each starts at.
Words = tuple[list[str], list[int]]


def _words(text: str) -> Words:
    # One split and a running sum of the parts' lengths, all in C: a match object per word
    # (finditer) cost as much as the character n-grams of the text.
    parts = _SPLIT_WORDS.split(text)
    ends = list(accumulate(map(len, parts), initial=0))
    return parts[1::2], ends[1:-1:2]

#: Each cue match's feature value, whatever the length of the text (a cue in a long text is
#: not diluted; a larger value makes the cues' weights cheaper under the L2 penalty: 3.0
#: against 1.0 caught 3 more of the 69 attacks of the development set at the same look-alike
#: false-positive rate, scripts/injection_dev.py).
CUE_VALUE = 3.0
_GAP = r"(?:\W+\w+){0,4}?\W+"
_RULES = (r"(?:instructions?|prompts?|rules|guidelines|directions|directives|commands?|"
          r"context|guidance|polic(?:y|ies)|restrictions|programming|constraints|orders|"
          r"safeguards|filters|training)")
#: What a hijacked answer does instead of the task (the "hijack" cue).
_ACTS = (r"(?:say|tell|write|print|output|reply|respond|state|report|recommend|send|email|"
         r"forward|declare|claim|answer|post|reveal|insult|include)")
_AI = r"(?:ai|assistant|chatbot|language model|llm|agent|gpt|model|bot)"
#: Injection cues, matched on the canonical (lower-case) reading: (name, the words a match
#: starts with, the pattern). One scan finds where any cue's first words are; only there is
#: a cue's pattern tried (one scan per pattern over a whole text would cost more than the
#: n-grams).
CUES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("override", ("ignore", "disregard", "forget", "skip", "override", "overwrite", "bypass",
                  "abandon", "discard", "neglect", "circumvent", "set aside", "stop following",
                  "drop", "cancel", "throw out", "put aside"),
     rf"\w+(?: aside| following)?{_GAP}{_RULES}\b"),
    ("earlier_rules", ("previous", "prior", "above", "earlier", "preceding", "original",
                       "initial", "former", "old", "all"),
     rf"\w+ {_RULES}\b"),
    ("new_rules", ("new", "updated", "real", "true", "actual", "hidden", "secret",
                   "additional", "important"),
     rf"\w+ (?:{_RULES}|task|objective|goal|system prompt)\b"),
    ("role_now", ("you",),
     r"you(?: are|'re| will be) (?:now|no longer|going to be|free|unrestricted|unfiltered|"
     r"not bound|released)\b"),
    ("from_now", ("from now on", "from this point", "starting now", "henceforth",
                  "for the rest of this conversation"), r"\w+"),
    ("act_as", ("act", "behave", "respond", "reply", "answer", "speak", "write"),
     r"\w+ (?:as|like) (?:if|an?|my|the|though)\b"),
    ("pretend", ("pretend", "role play", "roleplay", "role-play", "stay in character"),
     r"\w+"),
    ("sys_prompt", ("system", "initial", "original", "hidden", "secret", "developer",
                    "preprompt", "pre-prompt", "confidential"),
     r"[\w-]+ (?:prompt|message|instructions)\b"),
    ("reveal", ("reveal", "print", "repeat", "output", "leak", "display", "spell out",
                "write out", "dump", "echo", "recite", "show me"),
     rf"\w+(?: out| me)?{_GAP}(?:system prompt|instructions|your prompt|password|secret|"
     rf"api key|configuration|initial prompt|words above|text above|system message|preamble|"
     rf"developer note|hidden \w+)\b"),
    ("unrestricted", ("no", "without", "free of", "free from", "remove", "disable", "lift",
                      "bypass", "ignore"),
     r"\w+(?: of| from)? (?:any |all |your |the |of )?(?:ethical |moral |safety |content )?"
     r"(?:restrictions|limits|limitations|filters?|censorship|guidelines|ethics|morals|"
     r"safeguards|boundaries|rules|refusals|guardrails|moderation|safety checks)\b"),
    ("mode", ("developer", "dev", "god", "jailbreak", "jailbroken", "unrestricted",
              "unfiltered", "dan", "evil", "chaos", "debug", "admin", "sudo", "maintenance"),
     r"\w+ mode\b"),
    ("jailbreak", ("do anything now", "jailbreak", "jailbroken"), r"\w+"),
    ("template", ("<|", "<im_", "<s>", "[inst", "[/inst", "[system", "[sys", "<<sys", "##",
                  "system:", "system :", "assistant:", "<system"),
     r"<\|?(?:im_start|im_end|system|endoftext|user|assistant)\|?>|\[/?(?:inst|system|sys)\]|"
     r"<</?sys>>|#{2,}\s*(?:instruction|system|new)|(?:system|assistant)\s*:|<s>"),
    ("address_ai", ("note", "message", "instruction", "attention", "important", "notice",
                    "reminder"),
     rf"\w+ (?:to|for) (?:the |any |all )?{_AI}\b"),
    ("ai_must", ("ai", "assistant", "chatbot", "language model", "llm", "agent", "gpt"),
     rf"\w+(?: model)?{_GAP}(?:must|should|shall|is instructed|are instructed|needs to|"
     rf"has to)\b"),
    ("say_only", ("say", "respond", "reply", "answer", "output", "print", "write", "return"),
     r"\w+(?: with)? (?:only|exactly|just|simply|verbatim|the (?:word|phrase|sentence))\b"),
    ("conceal", ("do not", "don't", "never", "without"),
     r"(?:do not|don't|never|without) (?:tell|mention|inform|reveal|warn|alert|let)(?:ing)?"
     r"(?:\W+\w+){0,2}?\W+(?:user|anyone|them|human)\b"),
    ("if_ai", ("if", "when", "whoever", "any", "dear", "hey", "hi", "hello"),
     r"(?:if|when|whoever|any|dear|hey|hi|hello)(?: you are| you're| an?| the| any)?"
     r"(?: automated| ai)? (?:ai|assistant|chatbot|language model|llm|gpt|chatgpt|"
     r"ai model|ai agent|ai system|coding agent)s?\b"),
    ("your_rules", ("your",),
     r"your (?:\w+ ){0,2}?(?:instructions|prompt|rules|guidelines|configuration|setup|"
     r"system message|directives|programming|context window)\b"),
    ("you_given", ("you",),
     r"you (?:were|have been|are|got) (?:given|told|instructed|programmed|configured|"
     r"trained|assigned|set up)\b"),
    ("above", ("everything", "text", "words", "message", "all", "what", "content"),
     r"\w+ (?:\w+ )?(?:above|before this)\b|\w+ (?:\w+ ){0,2}?at the (?:start|beginning) "
     r"of (?:this|the|our) (?:conversation|chat|prompt|context)\b"),
    ("end_data", ("end of", "ignore the rest of the", "close the"),
     r"(?:end of|ignore the rest of the|close the) (?:document|text|email|input|data|context|"
     r"conversation|summary|translation)\b"),
    # Eighth build: a task hijack ("ignore the recipe and tell the reader ...", "instead,
    # write ..."), and obedience to the speaker ("obey only me").
    ("hijack", ("ignore", "disregard", "forget", "skip", "abandon", "discard", "instead"),
     rf"(?:instead|\w+(?:\W+\w+){{0,5}}?\W+(?:and|then)(?: instead)?)\W+(?:just |only |simply )?"
     rf"{_ACTS}\b"),
    ("obey_me", ("obey", "only obey", "listen only", "follow only"),
     r"(?:only )?(?:obey|listen|follow)(?: only)?(?: to)? (?:me|my|the user|whoever)\b"),
    # An AI addressed as the document's reader ("AI assistants processing this thread").
    ("ai_reading", ("ai", "assistant", "assistants", "chatbot", "chatbots", "llm", "llms",
                    "agent", "agents", "model", "models", "bot", "bots", "language"),
     rf"{_AI}s?(?: \w+)?(?: that is| who is)? (?:reading|processing|summari[sz]ing|parsing|"
     r"reviewing|indexing|scanning|crawling|browsing|analy[sz]ing)\b"),
    # Ninth build: an AI named as the addressee of a note in a document ("[to the
    # summarisation model: ...", "hidden note for the support bot:"), an AI spoken to
    # ("Assistant, if you are summarising this ...", "translator model, instead ..."), and
    # a speaker who claims to command the AI ("I am in charge of you now").
    ("to_ai", ("to", "for"),
     rf"(?:to|for) (?:the |any |all |an? |every )?(?:[\w-]+ )?{_AI}s?\s*[:\-\])]"),
    ("ai_vocative", ("ai", "assistant", "chatbot", "llm", "agent", "model", "bot"),
     rf"{_AI}, (?:if|when|please|before|after|now|instead|also|you|do|don't|stop|change|"
     rf"write|tell|send|add|delete|list|print|reply|make|forget|ignore|render|include)\b"),
    ("in_charge", ("i am", "i'm", "this is"),
     r"(?:i am|i'm|this is)(?: now)? (?:in charge of you|your (?:new )?(?:admin|administrator|"
     r"owner|developer|operator|master|creator|boss))\b"),
)
_CUE_PATTERNS = tuple(re.compile(p, re.S) for _, _, p in CUES)
_STARTS_WORD = re.compile(r"\w+")
#: For each word a cue's start begins with: (cue, start) pairs to try where the word is.
_BY_WORD: dict[str, tuple[tuple[int, str], ...]] = {}
for _k, (_, _starts, _) in enumerate(CUES):
    for _start in _starts:
        _first = _STARTS_WORD.match(_start)
        if _first is not None:
            _BY_WORD[_first.group(0)] = (*_BY_WORD.get(_first.group(0), ()), (_k, _start))
#: Starts that are not words (chat-template markers): one small scan finds them.
_MARKUP_STARTS = tuple(w for _, starts, _ in CUES for w in starts if not w[0].isalnum())
_MARKUP = re.compile("|".join(re.escape(w) for w in sorted(_MARKUP_STARTS, key=len,
                                                               reverse=True)))
_FIRST_WORDS = frozenset(_BY_WORD)
_TEMPLATE = next(k for k, (name, _, _) in enumerate(CUES) if name == "template")


def cue_features(text: str, bits: int, words: Words | None = None) -> tuple[IntArray, IntArray]:
    """Bucket and start position of each :data:`CUES` match in ``text`` (its canonical
    reading); ``words``: its words and where they start, when already found."""
    ids: list[int] = []
    pos: list[int] = []
    tokens, token_starts = _words(text) if words is None else words
    hits = _FIRST_WORDS.intersection(tokens)
    for i in compress(range(len(tokens)), map(hits.__contains__, tokens)) if hits else ():
        at = token_starts[i]
        done = -1
        for k, start in _BY_WORD[tokens[i]]:
            if k != done and text.startswith(start, at) and _CUE_PATTERNS[k].match(text, at):
                ids.append(k)
                pos.append(at)
                done = k
    if _MARKUP_STARTS and ("<" in text or "[" in text or "#" in text):
        for hit in _MARKUP.finditer(text):
            if _CUE_PATTERNS[_TEMPLATE].match(text, hit.start()):
                ids.append(_TEMPLATE)
                pos.append(hit.start())
    if not ids:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    mask = np.uint64((1 << bits) - 1)
    buckets = _ngram_hashes(np.array(ids, dtype=np.uint64), 1, 200) & mask
    return buckets.astype(np.int64), np.array(pos, dtype=np.int64)


def _ngram_hashes(codes: npt.NDArray[np.uint64], n: int, salt: int) -> npt.NDArray[np.uint64]:
    """The hash of every run of ``n`` consecutive entries of ``codes``."""
    count = codes.size - n + 1
    h = np.full(count, _OFFSET ^ np.uint64(salt), dtype=np.uint64)
    for k in range(n):
        h ^= codes[k:k + count]
        h *= _PRIME
    h ^= h >> np.uint64(29)
    h *= _MIX
    h ^= h >> np.uint64(32)
    return h


def char_ngrams(text: str, bits: int) -> tuple[IntArray, IntArray]:
    """Bucket and start position of each character n-gram of `` text `` (padded by a space
    each side, so word edges count)."""
    padded = f" {text} "
    codes = np.frombuffer(padded.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    buckets: list[npt.NDArray[np.uint64]] = []
    starts: list[IntArray] = []
    mask = np.uint64((1 << bits) - 1)
    for n in CHAR_NS:
        if codes.size < n:
            continue
        buckets.append(_ngram_hashes(codes, n, n) & mask)
        starts.append(np.arange(codes.size - n + 1, dtype=np.int64))
    if not buckets:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(buckets).astype(np.int64), np.concatenate(starts)


def word_ngrams(text: str, bits: int, words: Words | None = None) -> tuple[IntArray, IntArray]:
    """Bucket and start position of each word n-gram (words: runs of ``\\w``; ``words``:
    the words of ``text`` and where they start, when already found)."""
    tokens, token_starts = _words(text) if words is None else words
    if not tokens:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # A word's id: the CRC-32 of its UTF-8 bytes (fixed, and fast in C), mixed below.
    ids = np.fromiter(map(zlib.crc32, map(str.encode, tokens)), dtype=np.uint64,
                      count=len(tokens))
    pos = np.array(token_starts, dtype=np.int64)
    mask = np.uint64((1 << bits) - 1)
    buckets: list[npt.NDArray[np.uint64]] = []
    starts: list[IntArray] = []
    for n in WORD_NS:
        if ids.size < n:
            continue
        buckets.append(_ngram_hashes(ids, n, 100 + n) & mask)
        starts.append(pos[:ids.size - n + 1])
    return np.concatenate(buckets).astype(np.int64), np.concatenate(starts)


def families(text: str, bits: int) -> list[tuple[IntArray, IntArray, float]]:
    """The non-empty feature families of ``text``: (buckets, start positions, value) each;
    value 0 for the n-gram families (each n-gram counts one over the square root of the
    family's count in the span scored), :data:`CUE_VALUE` for the cues (not diluted)."""
    words = _words(text)
    out = [(*char_ngrams(text, bits), 0.0), (*word_ngrams(text, bits, words), 0.0),
           (*cue_features(text, bits, words), CUE_VALUE)]
    return [f for f in out if f[0].size]


def vector(text: str, bits: int) -> tuple[IntArray, npt.NDArray[np.float64]]:
    """``text``'s sparse feature vector: sorted bucket indices and their values (counts over
    the square root of the family's n-gram count, families added)."""
    parts_idx: list[IntArray] = []
    parts_val: list[npt.NDArray[np.float64]] = []
    for idx, _, value in families(text, bits):
        parts_idx.append(idx)
        parts_val.append(np.full(idx.size, value or 1.0 / np.sqrt(idx.size)))
    if not parts_idx:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    idx = np.concatenate(parts_idx)
    val = np.concatenate(parts_val)
    uniq, inverse = np.unique(idx, return_inverse=True)
    return uniq.astype(np.int64), np.bincount(inverse, weights=val).astype(np.float64)


__all__ = ["CHAR_NS", "CUES", "CUE_VALUE", "WORD_NS", "char_ngrams", "cue_features", "families",
           "vector", "word_ngrams"]

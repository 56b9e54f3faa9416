"""Drift of a free-text column: simple text descriptors, and embeddings.

A text column (reviews, tickets, prompts) profiled as a category is useless: nearly every value
is new. It is described instead by numbers per text, whose distributions the ordinary column
machinery compares (:mod:`~keelwork.core.monitors.profile`, :mod:`~keelwork.core.monitors.drift`:
same metrics, floors and noise thresholds), and optionally by an embedding sample compared with
a kernel two-sample test (:mod:`~keelwork.core.monitors.embedding`).

Usage::

    ref = build_text_reference("review", reference_texts, embedder=WordLlamaEmbedder())
    store(ref.as_dict())                       # JSON-compatible, with kind and version
    ref = TextReference.from_dict(loaded)
    verdicts = text_drift(ref, window_texts, embedder=WordLlamaEmbedder())
    [v.as_dict() for v in verdicts]            # one ColumnDrift per descriptor + embedding

Tokens: the text lower-cased (``str.casefold``), words are maximal runs of Unicode letters
(``[^\\W\\d_]+``), so digits, punctuation and underscores separate words and are not words
themselves (numbers would make every order id "out of vocabulary").

Descriptors (:data:`DESCRIPTORS`; columns ``"<column>:<descriptor>"``, e.g. ``review:chars``):

- ``chars``: characters in the text.
- ``words``: tokens in it.
- ``oov_rate``: share of its tokens outside the reference vocabulary (null without tokens).
- ``non_letter_share``: share of its non-space characters that are not letters: digits,
  punctuation, symbols, emoji (null for a blank text). Code, markup, numbers and spam raise it.
- ``uppercase_share``: share of its letters in upper case (null without letters): shouting,
  headings, acronyms.
- ``non_ascii_share``: share of its characters outside ASCII (null for an empty text): another
  script or language, encoding damage.
- ``blank`` (categorical ``true``/``false``): empty or whitespace only.

A null text (``None`` or a float NaN from pandas) is null in every descriptor, so the null share
is reported as for any column. Blank texts get ``chars``/``words`` 0 and null shares.

Vocabulary, and why it is cross-fitted: the vocabulary is the ``max_vocabulary`` most frequent
tokens of the reference. Had the reference's own OOV rates been measured against a vocabulary
built from the same texts they would be ~0, while any new sample of the *same* population has
rare words the reference never saw: a random split would "drift". So the non-null reference
texts are split in two seeded halves A and B; the stored vocabulary comes from A, texts of B are
measured against it and texts of A against B's vocabulary. Each reference text is then measured
against a vocabulary of the same size built from texts independent of it, exactly as a later
window is. (Consequence: comparing the reference *with its own texts* shows a lower OOV rate,
since half of them built the vocabulary; a window of new texts from the same population does
not.)

Embeddings: when an embedder is given, a seeded random sample of at most ``sample`` non-blank
reference texts is embedded and stored (float16 when the values fit, else float32; base64 in
:meth:`TextReference.as_dict`) with the embedder's ``name``. :func:`text_drift` embeds a sample of
the window's non-blank texts with an embedder of the same name and compares the two samples.
Vectors of different embedders are never compared (status ``embedder_mismatch``).

Pure logic: numpy and pyarrow are imported inside the functions.
"""

from __future__ import annotations

import base64
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from keelwork.core.monitors.drift import ColumnDrift, column_drift
from keelwork.core.monitors.embedding import MAX_SAMPLES, embedding_drift
from keelwork.core.monitors.profile import (
    ColumnProfile,
    TableProfile,
    check_kind,
    profile_table,
)
from keelwork.errors import MonitorError
from keelwork.types import TextEmbedder

#: ``kind`` and ``version`` stamped on stored text references.
TEXT_REFERENCE_KIND = "keelwork.text-reference"
TEXT_REFERENCE_VERSION = 1
#: Descriptor names, in report order; ``blank`` is categorical, the others numeric.
DESCRIPTORS = ("chars", "words", "oov_rate", "non_letter_share", "uppercase_share",
               "non_ascii_share", "blank")
DEFAULT_MAX_VOCABULARY = 20_000
DEFAULT_SAMPLE = MAX_SAMPLES
SEED = 20240601
_WORD = re.compile(r"[^\W\d_]+")
_LETTER = re.compile(r"[^\W\d_]")
_SPACE = re.compile(r"\s")


@dataclass(frozen=True, slots=True)
class EmbeddingSample:
    """A bounded sample of reference vectors from one embedder, kept as raw bytes.

    ``data`` is ``rows x dim`` values of ``dtype`` (``"float16"`` or ``"float32"``,
    little-endian, row-major); :meth:`vectors` gives them as float32.
    """

    embedder: str
    dim: int
    rows: int
    dtype: str
    data: bytes

    def vectors(self) -> Any:
        """The sample as a float32 array of shape ``(rows, dim)``."""
        import numpy as np

        arr = np.frombuffer(self.data, dtype=np.dtype(self.dtype).newbyteorder("<"))
        return arr.astype(np.float32).reshape(self.rows, self.dim)

    @classmethod
    def from_vectors(cls, embedder: str, vectors: Any) -> EmbeddingSample:
        """Pack vectors (float16 when every value fits in it with room, else float32)."""
        import numpy as np

        arr = np.asarray(vectors, dtype=np.float32)
        dtype = "float16" if (arr.size == 0 or float(np.abs(arr).max()) < 6e4) else "float32"
        data = arr.astype(np.dtype(dtype).newbyteorder("<")).tobytes()
        return cls(embedder, int(arr.shape[1]), int(arr.shape[0]), dtype, data)


@dataclass(frozen=True, slots=True)
class TextReference:
    """What a text column is compared against; build it with :func:`build_text_reference`.

    ``profile`` holds the descriptor columns (``"<column>:<descriptor>"``); ``vocabulary`` the
    reference's most frequent tokens, most frequent first; ``embedding`` the optional vector
    sample.
    """

    column: str
    vocabulary: tuple[str, ...]
    profile: TableProfile
    embedding: EmbeddingSample | None = None
    seed: int = SEED
    #: Texts embedded at most, in the reference and in each window.
    sample: int = DEFAULT_SAMPLE

    def as_dict(self) -> dict[str, Any]:
        """A JSON-compatible view; :meth:`from_dict` reads it back exactly."""
        emb = None if self.embedding is None else {
            "embedder": self.embedding.embedder, "dim": self.embedding.dim,
            "rows": self.embedding.rows, "dtype": self.embedding.dtype,
            "data": base64.b64encode(self.embedding.data).decode("ascii")}
        return {"kind": TEXT_REFERENCE_KIND, "version": TEXT_REFERENCE_VERSION,
                "column": self.column, "seed": self.seed, "sample": self.sample,
                "vocabulary": list(self.vocabulary),
                "profile": self.profile.as_dict(), "embedding": emb}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TextReference:
        """Inverse of :meth:`as_dict`.

        Raises:
            MonitorError: not a text reference, written by a newer keelwork, or malformed.
        """
        check_kind(data, TEXT_REFERENCE_KIND, TEXT_REFERENCE_VERSION, "A text reference")
        try:
            raw = data.get("embedding")
            emb = None
            if raw is not None:
                if raw["dtype"] not in ("float16", "float32"):
                    raise ValueError(f"embedding dtype must be float16 or float32, got "
                                     f"{raw['dtype']!r}")
                emb = EmbeddingSample(str(raw["embedder"]), int(raw["dim"]), int(raw["rows"]),
                                      str(raw["dtype"]),
                                      base64.b64decode(raw["data"], validate=True))
                width = 2 if emb.dtype == "float16" else 4
                if len(emb.data) != emb.rows * emb.dim * width:
                    raise ValueError(f"embedding data holds {len(emb.data)} bytes, not "
                                     f"{emb.rows} x {emb.dim} {emb.dtype}")
            return cls(str(data["column"]), tuple(str(v) for v in data["vocabulary"]),
                       TableProfile.from_dict(data["profile"]), emb, int(data["seed"]),
                       int(data["sample"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise MonitorError(f"The text reference is malformed: {exc}.") from exc


# --------------------------------------------------------------------------- public API
def tokenize(text: str) -> list[str]:
    """The words of ``text``: case-folded runs of Unicode letters (see the module docstring)."""
    return _WORD.findall(text.casefold())


def build_text_reference(column: str, texts: Iterable[str | None], *,
                         embedder: TextEmbedder | None = None,
                         max_vocabulary: int = DEFAULT_MAX_VOCABULARY,
                         sample: int = DEFAULT_SAMPLE, seed: int = SEED) -> TextReference:
    """Describe the reference texts of one column.

    Args:
        column: The column's name (descriptor columns are ``"<column>:<descriptor>"``).
        texts: The reference texts (strings; ``None`` or NaN for null). A list, a pandas Series
            or a pyarrow array.
        embedder: Embeds a sample of the texts when given (see :class:`TextEmbedder`).
        max_vocabulary: Most frequent tokens kept as the vocabulary (>= 1).
        sample: Texts embedded at most (>= 2).
        seed: Seeds the vocabulary split and the embedding sample.

    Returns:
        The reference.

    Raises:
        MonitorError: a value is not a string or null, an option is out of range, or the
            embedder returned something other than finite ``(n, dim)`` numbers.
    """
    import numpy as np

    if max_vocabulary < 1 or sample < 2:
        raise MonitorError(f"A text reference needs max_vocabulary >= 1 and sample >= 2; got "
                           f"{max_vocabulary} and {sample}.")
    values = _as_texts(texts, column)
    tokens = [None if t is None else tokenize(t) for t in values]
    present = [i for i, t in enumerate(values) if t is not None]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(present))
    half_a = {present[i] for i in order[: (len(present) + 1) // 2]}
    vocab_a = _vocabulary((tokens[i] or [] for i in half_a), max_vocabulary)
    vocab_b = _vocabulary((tokens[i] or [] for i in present if i not in half_a), max_vocabulary)
    known_a, known_b = set(vocab_a), set(vocab_b)
    # Cross-fitted: each text is measured against the vocabulary of the other half.
    vocab_for = [known_b if i in half_a else known_a for i in range(len(values))]
    table = _descriptor_table(column, values, tokens, vocab_for)
    kinds = {_col(column, d): ("categorical" if d == "blank" else "numeric")
             for d in DESCRIPTORS}
    profile = profile_table(table, kinds=kinds)
    emb = None
    if embedder is not None:
        vectors = _embed_sample(embedder, values, sample, rng, column)
        emb = EmbeddingSample.from_vectors(str(embedder.name), vectors)
    return TextReference(column, vocab_a, profile, emb, seed, sample)


def text_drift(reference: TextReference, texts: Iterable[str | None], *,
               embedder: TextEmbedder | None = None) -> list[ColumnDrift]:
    """Compare a window of texts with the reference.

    Args:
        reference: From :func:`build_text_reference` (or :meth:`TextReference.from_dict`).
        texts: The window's texts (strings; ``None``/NaN for null).
        embedder: The embedder the reference was built with; needed for the embedding verdict.

    Returns:
        One :class:`ColumnDrift` per descriptor (column ``"<column>:<descriptor>"``, the methods
        and thresholds of :mod:`~keelwork.core.monitors.drift`), then, when the reference holds
        an embedding sample or an embedder is given, one for ``"<column>:embedding"``
        (``kind="embedding"``, method ``mmd``), whose status is ``no_embedder`` (none given),
        ``embedder_mismatch`` (another name or dimension), ``no_reference`` (the reference
        has no sample), ``empty``/``too_few`` (fewer than two non-blank texts) or the verdict.

    Raises:
        MonitorError: a value is not a string or null, or the embedder misbehaves.
    """
    import numpy as np

    column = reference.column
    values = _as_texts(texts, column)
    tokens = [None if t is None else tokenize(t) for t in values]
    known = set(reference.vocabulary)
    table = _descriptor_table(column, values, tokens, [known] * len(values))
    current = profile_table(table, reference=reference.profile)
    out = [_with_means(column_drift(ref, current.columns.get(name)), ref,
                       current.columns.get(name))
           for name, ref in reference.profile.columns.items()]
    emb = reference.embedding
    if emb is None and embedder is None:
        return out
    name = _col(column, "embedding")
    rows = {"reference": emb.rows if emb else 0,
            "current": sum(1 for t in values if t is not None and t.strip())}
    if emb is None:
        assert embedder is not None  # both None returned above
        out.append(ColumnDrift(name, "embedding", status="no_reference", drift=None,
                               details={"rows": rows}, reason=(
            f"The reference of {column!r} was built without an embedder, so it holds no "
            f"vectors to compare with; rebuild it with the embedder {embedder.name!r}.")))
        return out
    if embedder is None:
        out.append(ColumnDrift(name, "embedding", status="no_embedder", drift=None,
                               details={"rows": rows, "embedder": emb.embedder}, reason=(
            f"The reference of {column!r} holds vectors of embedder {emb.embedder!r}; pass "
            f"that embedder to compare the window's embeddings.")))
        return out
    if str(embedder.name) != emb.embedder or int(embedder.dim) != emb.dim:
        out.append(ColumnDrift(name, "embedding", status="embedder_mismatch", drift=None,
                               details={"rows": rows, "embedder": emb.embedder}, reason=(
            f"The reference of {column!r} holds {emb.dim}-d vectors of embedder "
            f"{emb.embedder!r}; got embedder {embedder.name!r} ({embedder.dim}-d). Vectors "
            f"of different embedders are not comparable; rebuild the reference with it.")))
        return out
    rng = np.random.default_rng(reference.seed + 1)
    vectors = _embed_sample(embedder, values, reference.sample, rng, column)
    # The reference was stored rounded to its dtype; round the window alike so storage
    # precision cannot itself look like a (tiny) shift.
    vectors = vectors.astype(emb.dtype).astype(np.float32)
    verdict = embedding_drift(emb.vectors(), vectors, column=name, seed=reference.seed,
                              max_samples=reference.sample)
    details = {**verdict.details, "rows": rows, "embedder": emb.embedder}
    out.append(ColumnDrift(verdict.column, verdict.kind, verdict.status, verdict.drift,
                           verdict.reason, verdict.method, verdict.score, verdict.threshold,
                           verdict.floor, verdict.noise, verdict.metrics, details))
    return out


def describe_texts(column: str, texts: Iterable[str | None],
                   vocabulary: Iterable[str]) -> dict[str, list[Any]]:
    """The descriptor columns of ``texts`` against ``vocabulary`` (for inspection and tests).

    Returns:
        ``"<column>:<descriptor>"`` -> one value per text (``None`` where undefined).
    """
    values = _as_texts(texts, column)
    tokens = [None if t is None else tokenize(t) for t in values]
    known = set(vocabulary)
    return _descriptor_table(column, values, tokens, [known] * len(values))


# --------------------------------------------------------------------------- internals
def _col(column: str, descriptor: str) -> str:
    return f"{column}:{descriptor}"


def _with_means(verdict: ColumnDrift, ref: ColumnProfile,
                cur: ColumnProfile | None) -> ColumnDrift:
    """Add the mean of a numeric descriptor on both sides: "OOV rate 3 % -> 9 %" reads well."""
    if ref.kind != "numeric":
        return verdict
    means = {"reference": ref.mean if ref.finite else None,
             "current": cur.mean if cur is not None and cur.finite else None}
    return replace(verdict, details={**verdict.details, "mean": means})


def _as_texts(texts: Any, column: str) -> list[str | None]:
    if isinstance(texts, (str, bytes)):
        raise MonitorError(f"The texts of column {column!r} must be a sequence of strings; got "
                           f"a single {type(texts).__name__}.")
    if hasattr(texts, "to_pylist"):
        raw = texts.to_pylist()
    elif hasattr(texts, "tolist"):
        raw = texts.tolist()
    else:
        try:
            raw = list(texts)
        except TypeError as exc:
            raise MonitorError(f"The texts of column {column!r} must be a sequence of strings; "
                               f"got {type(texts).__name__}.") from exc
    out: list[str | None] = []
    for i, value in enumerate(raw):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out.append(None)
        elif isinstance(value, str):
            out.append(value)
        else:
            raise MonitorError(f"Column {column!r} must hold strings or nulls; row {i} holds "
                               f"{type(value).__name__} {value!r:.60}.")
    return out


def _vocabulary(token_lists: Iterable[Sequence[str]], size: int) -> tuple[str, ...]:
    counts: Counter[str] = Counter()
    for toks in token_lists:
        counts.update(toks)
    ranked = sorted(counts, key=lambda k: (-counts[k], k))
    return tuple(ranked[:size])


def _descriptor_table(column: str, values: Sequence[str | None],
                      tokens: Sequence[list[str] | None],
                      vocab_for: Sequence[set[str]]) -> dict[str, list[Any]]:
    cols: dict[str, list[Any]] = {_col(column, d): [] for d in DESCRIPTORS}
    lists = [cols[_col(column, d)] for d in DESCRIPTORS]
    for text, toks, known in zip(values, tokens, vocab_for, strict=True):
        row = _describe(text, toks, known)
        for target, value in zip(lists, row, strict=True):
            target.append(value)
    return cols


def _describe(text: str | None, toks: list[str] | None,
              known: set[str]) -> tuple[Any, ...]:
    if text is None or toks is None:
        return (None,) * len(DESCRIPTORS)
    chars = len(text)
    spaces = len(_SPACE.findall(text))
    letters = len(_LETTER.findall(text))
    nonspace = chars - spaces
    upper = sum(map(str.isupper, text)) if letters else 0
    non_ascii = 0 if text.isascii() else sum(1 for c in text if ord(c) > 127)
    oov = sum(1 for t in toks if t not in known)
    return (float(chars), float(len(toks)), oov / len(toks) if toks else None,
            (nonspace - letters) / nonspace if nonspace else None,
            upper / letters if letters else None,
            non_ascii / chars if chars else None, nonspace == 0)


def _embed_sample(embedder: TextEmbedder, values: Sequence[str | None], cap: int, rng: Any,
                  column: str) -> Any:
    """Embed a seeded sample of at most ``cap`` non-blank texts; checks the embedder's output."""
    import numpy as np

    usable = [t for t in values if t is not None and t.strip()]
    if len(usable) > cap:
        usable = [usable[i] for i in sorted(rng.choice(len(usable), cap, replace=False))]
    dim = int(embedder.dim)
    if not usable:
        return np.zeros((0, dim), dtype=np.float32)
    try:
        vectors = np.asarray(embedder.embed(usable), dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise MonitorError(f"Embedder {embedder.name!r} must return numbers for column "
                           f"{column!r}; got {exc}.") from exc
    if vectors.shape != (len(usable), dim) or not np.isfinite(vectors).all():
        raise MonitorError(f"Embedder {embedder.name!r} must return finite vectors of shape "
                           f"({len(usable)}, {dim}) for column {column!r}; got shape "
                           f"{vectors.shape}" + ("" if np.isfinite(vectors).all()
                                                  else " with NaN or infinity") + ".")
    return vectors


__all__ = [
    "DEFAULT_MAX_VOCABULARY",
    "DEFAULT_SAMPLE",
    "DESCRIPTORS",
    "TEXT_REFERENCE_KIND",
    "TEXT_REFERENCE_VERSION",
    "EmbeddingSample",
    "TextReference",
    "build_text_reference",
    "describe_texts",
    "text_drift",
    "tokenize",
]

"""Text drift: descriptors through the column machinery, embeddings through MMD, clear
statuses on odd input, exact round trip of the stored reference."""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from keelwork.core.monitors.text import (
    DESCRIPTORS,
    TEXT_REFERENCE_KIND,
    EmbeddingSample,
    TextReference,
    build_text_reference,
    describe_texts,
    text_drift,
    tokenize,
)
from keelwork.errors import MonitorError
from keelwork.types import TextEmbedder

LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))


def _lexicon(seed: int, size: int = 3000) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(LETTERS, rng.integers(2, 9))) for _ in range(size)]


LEXICON = _lexicon(1)
OTHER_LEXICON = _lexicon(2)


def _texts(rng: np.random.Generator, n: int, *, lexicon: Sequence[str] = LEXICON,
           words: float = 12.0, shout: bool = False) -> list[str]:
    """Zipf-distributed words in sentences: a realistic long tail of rare words."""
    p = 1.0 / np.arange(1, len(lexicon) + 1)
    p /= p.sum()
    out = []
    for _ in range(n):
        toks = list(rng.choice(np.asarray(lexicon), max(1, rng.poisson(words)), p=p))
        text = " ".join(toks).capitalize() + "."
        out.append(text.upper() if shout else text)
    return out


class HashEmbedder:
    """A deterministic bag-of-words embedder: each word a fixed random vector, averaged."""

    def __init__(self, name: str = "hash-32", dim: int = 32) -> None:
        self.name = name
        self.dim = dim

    def embed(self, texts: Sequence[str]) -> Any:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for tok in tokenize(text):
                out[i] += np.random.default_rng(zlib.crc32(tok.encode())).normal(size=self.dim)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)


class BrokenEmbedder(HashEmbedder):
    def embed(self, texts: Sequence[str]) -> Any:
        return np.full((len(texts), self.dim + 1), np.nan)


@pytest.fixture(scope="module")
def reference() -> TextReference:
    return build_text_reference("review", _texts(np.random.default_rng(10), 1500),
                                embedder=HashEmbedder(), sample=600)


def _by(verdicts: list[Any]) -> dict[str, Any]:
    return {v.column.split(":", 1)[1]: v for v in verdicts}


# --------------------------------------------------------------------------- descriptors
def test_tokens_are_case_folded_unicode_letter_runs() -> None:
    assert tokenize("Café_au-lait 42x ÉTÉ don't") == ["café", "au", "lait", "x", "été", "don",
                                                      "t"]
    assert tokenize("  123 !! ") == []


def test_descriptors_of_known_texts() -> None:
    cols = describe_texts("t", ["Hello, WORLD 42!", "  ", None, "naïve"], ["hello"])
    assert list(cols) == [f"t:{d}" for d in DESCRIPTORS]
    row0 = [cols[f"t:{d}"][0] for d in DESCRIPTORS]
    # 16 chars, 2 spaces, 10 letters: 4 of 14 non-space characters are not letters.
    assert row0 == [16.0, 2.0, 0.5, pytest.approx(4 / 14), 0.6, 0.0, False]
    assert [cols[f"t:{d}"][1] for d in DESCRIPTORS] == [2.0, 0.0, None, None, None, 0.0, True]
    assert all(cols[f"t:{d}"][2] is None for d in DESCRIPTORS)
    assert cols["t:non_ascii_share"][3] == pytest.approx(1 / 5)
    assert cols["t:oov_rate"][3] == 1.0


def test_same_population_drifts_nowhere_and_oov_is_cross_fitted(reference: TextReference
                                                                 ) -> None:
    verdicts = text_drift(reference, _texts(np.random.default_rng(11), 1500),
                          embedder=HashEmbedder())
    by = _by(verdicts)
    assert list(by) == [*DESCRIPTORS, "embedding"]
    assert [k for k, v in by.items() if v.drift] == [], [v.reason for v in verdicts]
    assert all(v.drift is False for v in verdicts)
    # A rare-word tail means a new sample meets unseen words; the reference was measured
    # against a vocabulary it did not build, so both sides see the same OOV rate.
    oov = by["oov_rate"].details["mean"]
    assert oov["reference"] > 0.005
    assert oov["current"] == pytest.approx(oov["reference"], rel=0.25)


def test_new_vocabulary_drifts_oov_rate_and_embedding(reference: TextReference) -> None:
    rng = np.random.default_rng(12)
    texts = _texts(rng, 300) + _texts(rng, 300, lexicon=OTHER_LEXICON)
    by = _by(text_drift(reference, texts, embedder=HashEmbedder()))
    assert by["oov_rate"].drift is True
    assert by["oov_rate"].details["mean"]["current"] > by["oov_rate"].details["mean"]["reference"]
    assert by["embedding"].drift is True and by["embedding"].method == "mmd"
    assert by["chars"].drift is False and by["blank"].drift is False


def test_length_uppercase_and_blank_changes_are_seen(reference: TextReference) -> None:
    rng = np.random.default_rng(13)
    longer = _by(text_drift(reference, _texts(rng, 400, words=24)))
    assert longer["chars"].drift and longer["words"].drift
    # Same words, so the OOV rate is on average the same (its spread narrows with length).
    oov = longer["oov_rate"].details["mean"]
    assert oov["current"] == pytest.approx(oov["reference"], rel=0.15)
    shouting = _by(text_drift(reference, _texts(rng, 400, shout=True)))
    assert shouting["uppercase_share"].drift and not shouting["words"].drift
    blanks = _by(text_drift(reference, _texts(rng, 300) + [""] * 100 + ["  \n"] * 50))
    assert blanks["blank"].drift is True
    assert blanks["blank"].details["new_categories"] == [{"category": "true", "count": 150}]


def test_nulls_are_reported_as_the_null_share(reference: TextReference) -> None:
    texts: list[str | None] = [*_texts(np.random.default_rng(14), 300), *([None] * 100)]
    by = _by(text_drift(reference, pa.array(texts)))
    assert by["chars"].details["null_share"] == {"reference": 0.0, "current": 0.25}
    assert by["chars"].drift is False


def test_a_pandas_series_with_missing_values_is_read(reference: TextReference) -> None:
    pd = pytest.importorskip("pandas", reason="pandas (the sklearn/demo extra) not installed")
    texts = pd.Series([*_texts(np.random.default_rng(22), 30), None, float("nan")])
    by = _by(text_drift(reference, texts))
    assert by["words"].details["rows"]["current"] == 32
    assert by["words"].details["null_share"]["current"] == pytest.approx(2 / 32)


# --------------------------------------------------------------------------- odd windows
def _finite_json(verdicts: list[Any]) -> None:
    for v in verdicts:
        out = v.as_dict()
        json.dumps(out, allow_nan=False)
        assert v.score is None or math.isfinite(v.score)


def test_empty_window_gives_clear_statuses(reference: TextReference) -> None:
    verdicts = text_drift(reference, [], embedder=HashEmbedder())
    assert {v.status for v in verdicts} == {"empty"}
    assert all(v.drift is None for v in verdicts)
    _finite_json(verdicts)


def test_a_single_text_is_compared_without_false_alarm(reference: TextReference) -> None:
    one = _texts(np.random.default_rng(21), 1)
    by = _by(text_drift(reference, one, embedder=HashEmbedder()))
    assert [k for k, v in by.items() if v.drift] == [], [v.reason for v in by.values()]
    assert by["chars"].status == "no_drift"
    # One text in another language is an outlier on every count even alone.
    english = _by(text_drift(reference, ["Just one short review."]))
    assert english["oov_rate"].drift is True
    assert by["embedding"].status == "too_few"
    _finite_json(list(by.values()))


def test_all_blank_or_null_window(reference: TextReference) -> None:
    texts: list[Any] = ["", "   ", None, float("nan")]  # NaN: pandas' missing value
    by = _by(text_drift(reference, texts, embedder=HashEmbedder()))
    assert by["blank"].drift is True
    assert by["oov_rate"].status == "no_values" and by["uppercase_share"].status == "no_values"
    assert by["embedding"].status == "empty"
    _finite_json(list(by.values()))


def test_reference_without_usable_texts() -> None:
    ref = build_text_reference("c", [None, "", None], embedder=HashEmbedder())
    assert ref.embedding is not None and ref.embedding.rows == 0
    by = _by(text_drift(ref, ["some text here"], embedder=HashEmbedder()))
    assert by["words"].status == "drift"  # the reference's texts all had no words
    assert by["oov_rate"].status == "no_reference"
    assert by["embedding"].status == "no_reference"
    _finite_json(list(by.values()))


# --------------------------------------------------------------------------- embedder checks
def test_embedding_needs_the_same_embedder(reference: TextReference) -> None:
    texts = _texts(np.random.default_rng(15), 50)
    without = _by(text_drift(reference, texts))
    assert without["embedding"].status == "no_embedder"
    assert "hash-32" in without["embedding"].reason
    other = _by(text_drift(reference, texts, embedder=HashEmbedder("other-32")))
    assert other["embedding"].status == "embedder_mismatch" and other["embedding"].drift is None
    wider = _by(text_drift(reference, texts, embedder=HashEmbedder(dim=64)))
    assert wider["embedding"].status == "embedder_mismatch"


def test_reference_without_embedding() -> None:
    ref = build_text_reference("c", _texts(np.random.default_rng(16), 100))
    assert ref.embedding is None
    texts = _texts(np.random.default_rng(17), 50)
    assert "embedding" not in _by(text_drift(ref, texts))
    assert _by(text_drift(ref, texts, embedder=HashEmbedder()))["embedding"].status == (
        "no_reference")


def test_a_misbehaving_embedder_is_named() -> None:
    with pytest.raises(MonitorError, match=r"Embedder 'hash-32' must return finite vectors"):
        build_text_reference("c", ["a b", "c d"], embedder=BrokenEmbedder())


def test_the_fake_embedder_satisfies_the_protocol() -> None:
    assert isinstance(HashEmbedder(), TextEmbedder)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("texts", "match"), [
    ("a single string", "got a single str"),
    (["ok", 5], r"row 1 holds int 5"),
    (["ok", b"bytes"], r"row 1 holds bytes"),
    (12, "sequence of strings; got int"),
])
def test_bad_texts_are_refused_naming_the_row(reference: TextReference, texts: Any,
                                              match: str) -> None:
    with pytest.raises(MonitorError, match=match):
        text_drift(reference, texts)


def test_bad_options_are_refused() -> None:
    with pytest.raises(MonitorError, match="max_vocabulary >= 1"):
        build_text_reference("c", ["x"], max_vocabulary=0)


# --------------------------------------------------------------------------- storage
def test_round_trip_through_json_is_exact(reference: TextReference) -> None:
    stored = json.loads(json.dumps(reference.as_dict()))
    assert stored["kind"] == TEXT_REFERENCE_KIND and stored["version"] == 1
    back = TextReference.from_dict(stored)
    assert back == reference
    texts = _texts(np.random.default_rng(18), 200)
    assert text_drift(back, texts, embedder=HashEmbedder()) == text_drift(
        reference, texts, embedder=HashEmbedder())


def test_bounds_on_vocabulary_and_sample() -> None:
    ref = build_text_reference("c", _texts(np.random.default_rng(19), 400),
                               embedder=HashEmbedder(), max_vocabulary=50, sample=40)
    assert len(ref.vocabulary) == 50
    assert ref.embedding is not None and ref.embedding.rows == 40
    assert ref.embedding.dtype == "float16" and len(ref.embedding.data) == 40 * 32 * 2


def test_large_values_are_stored_as_float32() -> None:
    vectors = np.array([[1e5, 1.0], [2.0, 3.0]], dtype=np.float32)
    sample = EmbeddingSample.from_vectors("e", vectors)
    assert sample.dtype == "float32"
    assert np.array_equal(sample.vectors(), vectors)


@pytest.mark.parametrize(("change", "match"), [
    ({"kind": "other"}, "must have kind"),
    ({"version": 99}, "version <= 1"),
    ({"embedding": {"embedder": "e", "dim": 4, "rows": 3, "dtype": "float16", "data": "AAAA"}},
     "bytes, not 3 x 4 float16"),
    ({"embedding": {"embedder": "e", "dim": 1, "rows": 1, "dtype": "int8", "data": "AA=="}},
     "dtype must be float16 or float32"),
    ({"vocabulary": None}, "malformed"),
])
def test_bad_stored_references_are_refused(reference: TextReference, change: dict[str, Any],
                                           match: str) -> None:
    with pytest.raises(MonitorError, match=match):
        TextReference.from_dict({**reference.as_dict(), **change})


def test_references_differ_by_seed_only_in_sampling() -> None:
    texts = _texts(np.random.default_rng(20), 300)
    a = build_text_reference("c", texts, seed=1)
    b = build_text_reference("c", texts, seed=2)
    assert replace(a, seed=2) != b  # different vocabulary halves
    assert a.profile.columns["c:chars"] == b.profile.columns["c:chars"]

"""Hashed character and word n-grams of a text, with the position each starts at.

The hash is fixed and deterministic (a 64-bit FNV-1a-style mix over code points, or over the
CRC-32 of words, computed with numpy for all n-grams at once; never Python's salted
``hash()``), so the classifier's weights are a plain array of ``2**bits`` floats that a
build script and a server index the same way.

A text's feature vector is the count of each bucket, divided by the square root of the number
of n-grams of its family (character, word): the score of any span of the text is then a sum
of weights over the n-grams that start in it, which lets :mod:`keelwork.core.injection.model`
score every window of a long text from one cumulative sum.
"""

from __future__ import annotations

import re
import zlib

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

IntArray = npt.NDArray[np.int64]


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


def word_ngrams(text: str, bits: int) -> tuple[IntArray, IntArray]:
    """Bucket and start position of each word n-gram (words: runs of ``\\w``)."""
    matches = list(_WORD.finditer(text))
    if not matches:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # A word's id: the CRC-32 of its UTF-8 bytes (fixed, and fast in C), mixed below.
    ids = np.array([zlib.crc32(m.group(0).encode("utf-8")) for m in matches],
                   dtype=np.uint64)
    pos = np.array([m.start() for m in matches], dtype=np.int64)
    mask = np.uint64((1 << bits) - 1)
    buckets: list[npt.NDArray[np.uint64]] = []
    starts: list[IntArray] = []
    for n in WORD_NS:
        if ids.size < n:
            continue
        buckets.append(_ngram_hashes(ids, n, 100 + n) & mask)
        starts.append(pos[:ids.size - n + 1])
    return np.concatenate(buckets).astype(np.int64), np.concatenate(starts)


def vector(text: str, bits: int) -> tuple[IntArray, npt.NDArray[np.float64]]:
    """``text``'s sparse feature vector: sorted bucket indices and their values (counts over
    the square root of the family's n-gram count, families added)."""
    parts_idx: list[IntArray] = []
    parts_val: list[npt.NDArray[np.float64]] = []
    for idx, _ in (char_ngrams(text, bits), word_ngrams(text, bits)):
        if idx.size:
            parts_idx.append(idx)
            parts_val.append(np.full(idx.size, 1.0 / np.sqrt(idx.size)))
    if not parts_idx:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    idx = np.concatenate(parts_idx)
    val = np.concatenate(parts_val)
    uniq, inverse = np.unique(idx, return_inverse=True)
    return uniq.astype(np.int64), np.bincount(inverse, weights=val).astype(np.float64)


__all__ = ["CHAR_NS", "WORD_NS", "char_ngrams", "vector", "word_ngrams"]

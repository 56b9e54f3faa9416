"""A finding (a span of text with its entity and score) and how overlapping findings resolve."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from typing import NamedTuple

#: The entity of a span that covers a whole text the engine could not scan (fail closed).
UNSCANNED = "UNSCANNED"


class Span(NamedTuple):
    """``text[start:end]`` is an ``entity`` found with confidence ``score`` (0..1).

    Immutable and ordered by its fields in turn. A named tuple rather than a frozen
    dataclass: a scan of a dense 2 KB text builds about sixty, and a frozen dataclass's
    ``__init__`` (one ``object.__setattr__`` per field) took three times as long.
    """

    start: int
    end: int
    entity: str
    score: float

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end


def resolve_overlaps(spans: Iterable[Span]) -> list[Span]:
    """Keep the best of every group of overlapping spans; the answer is sorted by start.

    The best is the highest score, then the longest, then the earliest: a Luhn-valid card
    (score 1.0) beats the phone-number reading of the same digits, and an e-mail address beats
    a URL found inside it. Greedy over the ranked list; the kept spans never overlap, so a new
    span need only be compared with its two neighbours by start.
    """
    ranked = sorted(spans, key=lambda s: (-s.score, -(s.end - s.start), s.start, s.entity))
    kept: list[Span] = []
    starts: list[int] = []
    for span in ranked:
        if span.end <= span.start:
            continue
        i = bisect_left(starts, span.start)
        if i > 0 and kept[i - 1].end > span.start:
            continue
        if i < len(kept) and kept[i].start < span.end:
            continue
        kept.insert(i, span)
        starts.insert(i, span.start)
    return kept

"""Pure rules of ingestion jobs: backoff, checkpoints, counts, dead letters."""

from __future__ import annotations

import math
import random
import statistics
from datetime import UTC, datetime

import pytest

from keelwork.core.ingest import Checkpoint, DeadLetter, IngestCounts, RetryPolicy
from keelwork.errors import ErrorDetail

SHA = "ab" * 32


# --------------------------------------------------------------------------- backoff
def test_a_seeded_schedule_is_reproducible_and_full_jitter() -> None:
    policy = RetryPolicy(attempts=6, base=0.5, cap=3.0)
    first = list(policy.delays(random.Random(42)))
    assert first == list(policy.delays(random.Random(42)))
    assert len(first) == 5
    assert [policy.ceiling(n) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    for n, delay in enumerate(first):
        assert 0.0 <= delay <= policy.ceiling(n)
    assert first != list(policy.delays(random.Random(43)))


def test_full_jitter_spreads_delays_over_the_whole_window() -> None:
    policy = RetryPolicy(attempts=2, base=2.0, cap=10.0)
    rng = random.Random(7)
    samples = [next(policy.delays(rng)) for _ in range(4000)]
    assert min(samples) < 0.05 and max(samples) > 1.95
    assert statistics.mean(samples) == pytest.approx(1.0, abs=0.05)


def test_one_attempt_means_no_retry_and_huge_retry_numbers_stay_capped() -> None:
    assert list(RetryPolicy(attempts=1).delays(random.Random(0))) == []
    assert RetryPolicy(base=0.1, cap=4.0).ceiling(10_000) == 4.0


@pytest.mark.parametrize("kwargs", [{"attempts": 0}, {"base": -1.0}, {"cap": -0.1}])
def test_invalid_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="retry policy"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize(("committed", "first", "n", "skip"), [
    (0, 0, 100, 0), (50, 0, 100, 50), (100, 0, 100, 100), (250, 100, 100, 100),
    (150, 100, 100, 50), (100, 100, 100, 0), (0, 100, 100, 0),
])
def test_skip_in_counts_the_committed_rows_of_a_batch(committed: int, first: int, n: int,
                                                     skip: int) -> None:
    assert Checkpoint(SHA, "labels", "", committed).skip_in(first, n) == skip


def test_advancing_a_checkpoint_returns_a_new_one() -> None:
    cp = Checkpoint(SHA, "labels", "", 10, 100, "running", 5)
    nxt = cp.advanced(7)
    assert (cp.committed_rows, nxt.committed_rows) == (10, 17)
    assert (nxt.file_sha, nxt.total_rows, nxt.epoch_ms, nxt.done) == (SHA, 100, 5, False)
    assert Checkpoint(SHA, "labels", "", status="done").done


def test_counts_add_up() -> None:
    total = IngestCounts()
    total.add(IngestCounts(read=3, ingested=2, dead_lettered=1))
    total.add(IngestCounts(read=2, duplicates=1, unknown=1, relabelled=0))
    assert total.as_dict() == {"read": 5, "ingested": 2, "duplicates": 1, "dead_lettered": 1,
                               "unknown": 1, "relabelled": 0}


# --------------------------------------------------------------------------- dead letters
def test_dead_letters_carry_line_reasons_and_a_json_safe_raw_row() -> None:
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    details = [ErrorDetail("age", "min", -3, "The 'age' field must be >= 0; got -3."),
               ErrorDetail("x", "finite", math.nan, "The 'x' field must be finite.")]
    letter = DeadLetter.of("data.csv", 4, 6, details,
                           {"age": -3, "x": math.nan, "when": when, "blob": b"\xff"})
    assert letter.to_dict() == {
        "source": "data.csv", "row": 4, "line": 6,
        "reasons": [{"path": "age", "rule": "min", "got": -3,
                     "message": "The 'age' field must be >= 0; got -3.", "line": 6},
                    {"path": "x", "rule": "finite", "got": "NaN",
                     "message": "The 'x' field must be finite.", "line": 6}],
        "raw": {"age": -3, "x": "NaN", "when": "2024-05-01T12:00:00+00:00",
                "blob": "\ufffd"}}
    assert DeadLetter.of("p.parquet", 4, None, details[:1], {}).reasons[0].get("line") is None



"""Pure rules of ingestion jobs: backoff, checkpoints, counts, dead letters, progress.

Everything here is deterministic and free of I/O; the ledger that applies these rules to a store
is :mod:`keelwork.adapters.stores.ingest_ledger_store`, the loop that ingests a file is
:mod:`keelwork.service.ingest.files`. Ids, keys and values read from files are in
:mod:`keelwork.core.ingest_values`; label rows in :mod:`keelwork.core.label_rows`.

Retries. :class:`RetryPolicy` yields "full jitter" delays (AWS architecture blog, "Exponential
Backoff And Jitter"): attempt ``n`` waits a uniform random time in ``[0, min(cap, base * 2**n)]``,
which spreads competing writers better than a fixed exponential schedule. The random source is
injectable so that tests see a fixed schedule.

Checkpoints. A job (one file, one kind, one target) remembers how many of its rows are
*committed*: processed and written in the same transaction as the checkpoint itself. A rerun
skips exactly those rows, which is what makes a kill -9 at any point plus a rerun exactly-once.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from keelwork.core.ingest_values import json_safe
from keelwork.errors import ErrorDetail

#: What a file holds: ground-truth labels, prediction records (an export), or data to score.
IngestKind = Literal["labels", "predictions", "score"]
INGEST_KINDS: tuple[IngestKind, ...] = ("labels", "predictions", "score")

JobStatus = Literal["running", "done", "failed"]


# --------------------------------------------------------------------------- retries
@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter for transient store errors.

    Attributes:
        attempts: Most tries in all (the first one included); 1 disables retrying.
        base: Upper bound, in seconds, of the first delay; it doubles with every retry.
        cap: Largest upper bound of a delay, in seconds.
    """

    attempts: int = 8
    base: float = 0.1
    cap: float = 10.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base < 0 or self.cap < 0:
            raise ValueError(f"A retry policy needs attempts >= 1, base >= 0 and cap >= 0; got "
                             f"{self.attempts}, {self.base} and {self.cap}.")

    def ceiling(self, retry: int) -> float:
        """The largest delay before retry number ``retry`` (0-based).

        Args:
            retry: 0 for the delay after the first failure.

        Returns:
            ``min(cap, base * 2**retry)``.
        """
        return min(self.cap, self.base * 2.0 ** min(retry, 64))

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The waits between attempts: ``attempts - 1`` of them.

        Args:
            rng: The random source; a seeded ``random.Random`` gives a fixed schedule.

        Yields:
            Seconds to sleep before each retry, uniform in ``[0, ceiling(n)]``.
        """
        source = rng or random.Random()
        for n in range(self.attempts - 1):
            yield source.uniform(0.0, self.ceiling(n))


# --------------------------------------------------------------------------- checkpoints
@dataclass(frozen=True, slots=True)
class Checkpoint:
    """How far one job got: rows ``[0, committed_rows)`` are done and written.

    Attributes:
        file_sha: sha256 of the file's bytes.
        kind: What the file is ingested as.
        target: What it is ingested into (``model:version`` for scoring; ``""`` otherwise).
        committed_rows: Rows processed and committed together with this checkpoint.
        total_rows: Rows in the file, when known.
        status: ``running``, ``done`` or ``failed``.
        epoch_ms: When the job first started (unix ms): the time part of its prediction ids.
    """

    file_sha: str
    kind: str
    target: str
    committed_rows: int = 0
    total_rows: int | None = None
    status: JobStatus = "running"
    epoch_ms: int = 0

    @property
    def done(self) -> bool:
        """True when the job finished; a rerun has nothing to do."""
        return self.status == "done"

    def skip_in(self, first_row: int, n_rows: int) -> int:
        """How many leading rows of a batch are already committed.

        Args:
            first_row: 0-based index of the batch's first row in the file.
            n_rows: Rows in the batch.

        Returns:
            A number in ``[0, n_rows]``.
        """
        return max(0, min(n_rows, self.committed_rows - first_row))

    def advanced(self, rows: int) -> Checkpoint:
        """The checkpoint after ``rows`` more rows are committed.

        Args:
            rows: Rows just committed.

        Returns:
            A new checkpoint.
        """
        return replace(self, committed_rows=self.committed_rows + rows)


@dataclass(slots=True)
class IngestCounts:
    """What happened to the rows of one run.

    Attributes:
        read: Rows looked at in this run (a rerun of a finished file counts every row).
        ingested: Rows that changed the store (a new label or prediction, a relabel).
        duplicates: Rows already in the store (same id and value, or a finished file).
        dead_lettered: Rows that broke the contract (or that the model refused).
        unknown: Labels whose prediction id is not in the prediction log (kept aside).
        relabelled: Of ``ingested``, labels that replaced a different earlier label.
    """

    read: int = 0
    ingested: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    unknown: int = 0
    relabelled: int = 0

    def add(self, other: IngestCounts) -> None:
        """Add ``other`` into this one.

        Args:
            other: Counts of another chunk.
        """
        self.read += other.read
        self.ingested += other.ingested
        self.duplicates += other.duplicates
        self.dead_lettered += other.dead_lettered
        self.unknown += other.unknown
        self.relabelled += other.relabelled

    def as_dict(self) -> dict[str, int]:
        """The counts by name."""
        return {"read": self.read, "ingested": self.ingested, "duplicates": self.duplicates,
                "dead_lettered": self.dead_lettered, "unknown": self.unknown,
                "relabelled": self.relabelled}


# --------------------------------------------------------------------------- dead letters
@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that could not be ingested, kept with why and what it was.

    Attributes:
        source: Path of the file (or another name of the source).
        row: 0-based row index among the file's records.
        line: 1-based line of the file the record came from, when the format has lines.
        reasons: Every problem, as :meth:`ErrorDetail.as_dict` dicts.
        raw: The record as read, JSON-safe (see :func:`json_safe`).
    """

    source: str
    row: int
    line: int | None
    reasons: list[dict[str, Any]]
    raw: Any

    @classmethod
    def of(cls, source: str, row: int, line: int | None, details: list[ErrorDetail],
           raw: Any) -> DeadLetter:
        """Build one from error details; each detail gets the record's line.

        Args:
            source: Path of the file.
            row: 0-based row index.
            line: 1-based line, if known.
            details: The problems.
            raw: The record as read.

        Returns:
            The dead letter.
        """
        reasons = []
        for d in details:
            reason = d.as_dict()
            reason["got"] = json_safe(reason.get("got"))
            if line is not None and "line" not in reason:
                reason["line"] = line
            reasons.append(reason)
        return cls(source=source, row=row, line=line, reasons=reasons, raw=json_safe(raw))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (a dead-letter file line)."""
        return {"source": self.source, "row": self.row, "line": self.line,
                "reasons": self.reasons, "raw": self.raw}



# --------------------------------------------------------------------------- progress
@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """Reported after every committed chunk (and once when a file starts).

    Attributes:
        path: The file.
        kind: What it is ingested as.
        rows_done: Rows committed so far, earlier runs included.
        rows_total: Rows in the file.
        counts: What this run did so far.
    """

    path: str
    kind: str
    rows_done: int
    rows_total: int
    counts: IngestCounts = field(default_factory=IngestCounts)


@dataclass(slots=True)
class ChunkOutcome:
    """What writing one chunk did: its counts, dead letters and unknown ids (labels)."""

    counts: IngestCounts
    dead_letters: Sequence[DeadLetter] = ()
    unknown_ids: Sequence[str] = ()


__all__ = [
    "INGEST_KINDS",
    "Checkpoint",
    "ChunkOutcome",
    "DeadLetter",
    "IngestCounts",
    "IngestKind",
    "JobStatus",
    "ProgressEvent",
    "RetryPolicy",
]

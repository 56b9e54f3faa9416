"""Pure rules of ingestion: idempotency keys, backoff, checkpoints, dead letters, label rows.

Everything here is deterministic and free of I/O; the ledger that applies these rules to a store
lives in :mod:`keelwork.service.ingest`.

Idempotency. A record read from a file is identified by the file's *content* (sha256) plus its
0-based row index, so renaming or copying a file does not make its records new, while editing it
does. A file may instead name an explicit id column: then the id value is the key, wherever the
record comes from. A scored record gets a prediction id derived from its key
(:func:`deterministic_prediction_id`): re-running a crashed job yields the same ids, which the
prediction log inserts-or-ignores.

Retries. :class:`RetryPolicy` yields "full jitter" delays (AWS architecture blog, "Exponential
Backoff And Jitter"): attempt ``n`` waits a uniform random time in ``[0, min(cap, base * 2**n)]``,
which spreads competing writers better than a fixed exponential schedule. The random source is
injectable so that tests see a fixed schedule.

Checkpoints. A job (one file, one kind, one target) remembers how many of its rows are
*committed*: processed and written in the same transaction as the checkpoint itself. A rerun
skips exactly those rows, which is what makes a kill -9 at any point plus a rerun exactly-once.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal

from keelwork.errors import ErrorDetail, InvalidId

#: What a file holds: ground-truth labels, prediction records (an export), or data to score.
IngestKind = Literal["labels", "predictions", "score"]
INGEST_KINDS: tuple[IngestKind, ...] = ("labels", "predictions", "score")

#: Longest prediction id a label may name (ids made by keelwork are 36 characters).
MAX_ID_LENGTH = 256
#: How far past the current time a label's ``ts`` may lie (clock skew between systems).
LABEL_TS_FUTURE_S = 86_400.0

JobStatus = Literal["running", "done", "failed"]


# --------------------------------------------------------------------------- keys
def row_key(file_sha: str, row: int) -> str:
    """The idempotency key of the ``row``-th record (0-based) of a file with this content hash.

    Args:
        file_sha: sha256 (hex) of the file's bytes.
        row: 0-based row index among the file's records.

    Returns:
        ``"<sha>:<row>"``.
    """
    return f"{file_sha}:{row}"


def explicit_key(value: Any) -> str:
    """The idempotency key of a record that carries its own id.

    ``7``, ``7.0`` and ``"7"`` are the same id (a CSV reader may type an id column either way).

    Args:
        value: The id value (a string or an integer; integral floats are accepted).

    Returns:
        ``"id:<value>"``.

    Raises:
        InvalidId: the value is empty, null, a boolean, a fraction or another type.
    """
    return "id:" + id_text(value)


def id_text(value: Any) -> str:
    """An id value as text, with surrounding whitespace removed.

    Args:
        value: A string or an integer (integral floats are accepted).

    Returns:
        The id as a non-empty string.

    Raises:
        InvalidId: null, empty, a boolean, a fraction, another type, too long, or holding NUL.
    """
    if isinstance(value, bool) or value is None:
        raise InvalidId(f"must be a non-empty string or an integer; got {value!r}", "type")
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise InvalidId(f"must be a non-empty string or an integer; got {_describe(value)}",
                        "type")
    if not text:
        raise InvalidId("must be a non-empty string or an integer; got an empty string",
                        "min_length")
    if len(text) > MAX_ID_LENGTH:
        raise InvalidId(f"must be at most {MAX_ID_LENGTH} characters; got {len(text)}",
                        "max_length")
    if "\x00" in text:  # PostgreSQL text cannot hold NUL: refuse it here, not as a store error
        raise InvalidId("must not contain the NUL character", "characters")
    return text


def deterministic_prediction_id(scope: str, key: str, epoch_ms: int) -> str:
    """A UUIDv7-shaped prediction id that depends only on ``(scope, key, epoch_ms)``.

    The 48-bit time field is ``epoch_ms`` (when the job started: ids of one job sort together
    and :func:`keelwork.core.predictions.prediction_id_time` still works); the other 74 bits
    come from sha256 of the scope and key, so a job run twice produces the same ids.

    Args:
        scope: What the ids are for, e.g. ``"score:churn:3"`` (the same row scored by another
            model version must get another id).
        key: The record's idempotency key (:func:`row_key` or :func:`explicit_key`).
        epoch_ms: Unix milliseconds the job started at.

    Returns:
        A 36-character lower-case UUID string with version 7 and the RFC 9562 variant.
    """
    digest = int.from_bytes(hashlib.sha256(f"{scope}\x00{key}".encode()).digest()[:10], "big")
    rand_a = digest >> 68 & 0xFFF
    rand_b = digest & 0x3FFF_FFFF_FFFF_FFFF
    value = ((epoch_ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62
             | rand_b)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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


def json_safe(value: Any) -> Any:
    """``value`` with every part JSON-encodable, for dead letters and stored labels.

    Dates become ISO strings, bytes are decoded (invalid UTF-8 replaced), decimals become
    floats (integers when integral), NaN and infinities become the strings ``"NaN"``,
    ``"Infinity"`` and ``"-Infinity"``, other objects their ``repr``.

    Args:
        value: A value read from a file.

    Returns:
        None, a bool, int, float, str, list or dict of those.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else json_safe(float(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return repr(value)


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: two equal labels always have the same text.

    Args:
        value: A JSON-safe value (see :func:`json_safe`).

    Returns:
        The JSON text.

    Raises:
        ValueError: the value holds NaN or an infinity.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


# --------------------------------------------------------------------------- labels
@dataclass(frozen=True, slots=True)
class LabelRow:
    """One valid label: the ground truth for one prediction.

    Attributes:
        prediction_id: The prediction it is the truth for.
        label: The label, JSON-safe.
        label_json: :func:`canonical_json` of ``label`` (what is stored and compared).
        ts: When the truth was observed (unix seconds), if the file says.
    """

    prediction_id: str
    label: Any
    label_json: str
    ts: float | None = None


@dataclass(frozen=True, slots=True)
class LabelColumns:
    """Which columns of a labels file hold what.

    Attributes:
        id: The prediction id.
        label: The label.
        ts: When the truth was observed (optional column).
    """

    id: str = "prediction_id"
    label: str = "label"
    ts: str | None = None

    def required(self) -> tuple[str, ...]:
        """The columns a labels file must have."""
        return (self.id, self.label)


_ABSENT = object()


def parse_label(record: Mapping[str, Any], columns: LabelColumns = LabelColumns(), *,
                noun: str = "column", now: float | None = None,
                ) -> tuple[LabelRow | None, list[ErrorDetail]]:
    """Check one labels-file record and turn it into a :class:`LabelRow`.

    Rules (stable names): ``required`` (the id or label is absent, null or, for the label, an
    empty or blank string), ``type`` (an id that
    is not a string or integer, a timestamp that is neither a number nor an ISO date),
    ``min_length`` (an empty id), ``max_length`` (an id longer than :data:`MAX_ID_LENGTH`),
    ``finite`` (NaN or an infinity as the label or timestamp), ``range`` (a timestamp before
    1970 or more than :data:`LABEL_TS_FUTURE_S` seconds past ``now``).

    Args:
        record: The record, keyed by column name.
        columns: The column names.
        noun: What the messages call a column: ``column`` (files) or ``field`` (JSON bodies).
        now: The current time, unix seconds (default: the clock).

    Returns:
        ``(row, [])`` for a valid record, ``(None, problems)`` otherwise.
    """
    problems: list[ErrorDetail] = []
    raw_id = record.get(columns.id, _ABSENT)
    pid: str | None = None
    if raw_id is _ABSENT or raw_id is None:
        problems.append(ErrorDetail(columns.id, "required", None,
                                    f"The '{columns.id}' {noun} must hold a prediction id; got "
                                    "nothing."))
    else:
        try:
            pid = id_text(raw_id)
        except InvalidId as exc:
            problems.append(ErrorDetail(columns.id, exc.rule, json_safe(raw_id),
                                        f"The '{columns.id}' {noun} {exc}."))
    raw_label = record.get(columns.label, _ABSENT)
    label: Any = None
    label_json = ""
    if raw_label is _ABSENT or raw_label is None or (isinstance(raw_label, str)
                                                    and not raw_label.strip()):
        # An empty CSV cell is read as "" in a text column: it is a missing label, not one.
        got = None if raw_label is _ABSENT else raw_label
        problems.append(ErrorDetail(columns.label, "required", got,
                                    f"The '{columns.label}' {noun} must hold a label; got "
                                    f"{'nothing' if got is None else repr(got)}."))
    else:
        label = json_safe(raw_label)
        try:
            label_json = canonical_json(_finite_or_raise(raw_label))
        except ValueError:
            problems.append(ErrorDetail(columns.label, "finite", label,
                                        f"The '{columns.label}' {noun} must be finite; got "
                                        f"{label!r}."))
    ts: float | None = None
    if columns.ts is not None:
        raw_ts = record.get(columns.ts)
        if raw_ts is not None:
            try:
                ts = parse_timestamp(raw_ts)
                _check_label_ts(ts, now)
            except ValueError as exc:
                rule = ("finite" if "finite" in str(exc)
                        else "range" if "between" in str(exc) else "type")
                problems.append(ErrorDetail(columns.ts, rule, json_safe(raw_ts),
                                            f"The '{columns.ts}' {noun} {exc}."))
    if problems or pid is None:
        return None, problems
    return LabelRow(prediction_id=pid, label=label, label_json=label_json, ts=ts), []


def label_index(path: str) -> int:
    """The record index of a label problem's path: ``labels[12].label`` -> 12 (-1: none).

    Problems are reported in body order, so they are sorted by it.
    """
    head = path.removeprefix("labels[").partition("]")[0]
    return int(head) if head.isdigit() else -1


def _finite_or_raise(value: Any) -> Any:
    """``json_safe`` that refuses NaN and infinities instead of spelling them out."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("not finite")
    if isinstance(value, Mapping):
        return {str(k): _finite_or_raise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_raise(v) for v in value]
    return json_safe(value)


def _check_label_ts(ts: float, now: float | None) -> None:
    latest = (datetime.now().timestamp() if now is None else now) + LABEL_TS_FUTURE_S
    if not 0.0 <= ts <= latest:
        shown = f"{ts:.6g}"
        raise ValueError(f"must be between 1970-01-01 and one day from now (unix seconds 0 to "
                         f"{latest:.0f}); got {shown}")


def parse_timestamp(value: Any) -> float:
    """A time as unix seconds.

    Args:
        value: Unix seconds (a number or its text), a ``datetime`` / ``date`` (naive means
            UTC) or an ISO 8601 string (``2024-05-01``, ``2024-05-01T12:30:00+02:00``, a
            trailing ``Z``).

    Returns:
        Unix seconds.

    Raises:
        ValueError: anything else, or a number that is not finite.
    """
    from datetime import UTC

    if isinstance(value, bool):
        raise ValueError(f"must be unix seconds or an ISO 8601 date/time; got {value!r}")
    if isinstance(value, int | float | Decimal):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"must be finite; got {value!r}")
        return number
    when: datetime
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, date):
        when = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:  # a CSV column holding both forms is read as text
            return parse_timestamp(float(value))
        except ValueError as exc:
            if "finite" in str(exc):
                raise
        try:
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"must be unix seconds or an ISO 8601 date/time; got "
                             f"{value[:80]!r}") from None
    else:
        raise ValueError(f"must be unix seconds or an ISO 8601 date/time; got "
                         f"{_describe(value)}")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{text[:80]}... ({type(value).__name__})" if len(text) > 80 else \
        f"{text} ({type(value).__name__})"


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


__all__ = [
    "INGEST_KINDS",
    "MAX_ID_LENGTH",
    "Checkpoint",
    "DeadLetter",
    "IngestCounts",
    "IngestKind",
    "JobStatus",
    "LabelColumns",
    "LabelRow",
    "ProgressEvent",
    "RetryPolicy",
    "canonical_json",
    "deterministic_prediction_id",
    "explicit_key",
    "id_text",
    "json_safe",
    "label_index",
    "parse_label",
    "parse_timestamp",
    "row_key",
]

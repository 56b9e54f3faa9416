"""Values read from data files: ids, idempotency keys, JSON-safe values and timestamps.

Everything here is deterministic and free of I/O.

Idempotency. A record read from a file is identified by the file's *content* (sha256) plus its
0-based row index, so renaming or copying a file does not make its records new, while editing it
does. A file may instead name an explicit id column: then the id value is the key, wherever the
record comes from. A scored record gets a prediction id derived from its key
(:func:`deterministic_prediction_id`): re-running a crashed job yields the same ids, which the
prediction log inserts-or-ignores.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from keelwork.errors import InvalidId

#: Longest prediction id a label may name (ids made by keelwork are 36 characters).
MAX_ID_LENGTH = 256


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
        raise InvalidId(f"must be a non-empty string or an integer; got {describe_value(value)}",
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


# --------------------------------------------------------------------------- JSON values
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



# --------------------------------------------------------------------------- times
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
                         f"{describe_value(value)}")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def describe_value(value: Any) -> str:
    """``repr`` of a value (cut at 80 characters) with its type, for messages."""
    text = repr(value)
    return f"{text[:80]}... ({type(value).__name__})" if len(text) > 80 else \
        f"{text} ({type(value).__name__})"



__all__ = [
    "MAX_ID_LENGTH",
    "canonical_json",
    "describe_value",
    "deterministic_prediction_id",
    "explicit_key",
    "id_text",
    "json_safe",
    "parse_timestamp",
    "row_key",
]

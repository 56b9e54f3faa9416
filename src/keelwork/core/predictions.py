"""One served prediction, as the prediction log records it, and its time-ordered id.

A :class:`PredictionRecord` is what every request leaves behind: which model (and which version
of it) answered, what it was given and what it returned, how long it took, which guard fired and
on whose behalf (``tenant``, ``subject_id``) it ran. The subject id is what lets a later
capability export or erase everything of one data subject without scanning the whole log.

Ids come from :func:`new_prediction_id`: UUIDv7-style (RFC 9562) strings whose lexicographic
order is their creation order, so that a log sorted by id is sorted by time.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from keelwork.errors import StoreError

#: Version of the dict form written by :meth:`PredictionRecord.to_dict` (spool files, exports).
RECORD_FORMAT_VERSION = 1

#: Usual values of :attr:`PredictionRecord.status`; others are allowed.
STATUS_OK = "ok"
STATUS_ERROR = "error"
STATUS_FALLBACK = "fallback"
STATUS_REJECTED = "rejected"

_REQUIRED = ("id", "ts", "model", "version", "inputs", "outputs", "latency_ms")
_OPTIONAL_STR = ("tenant", "subject_id", "guard", "answered_by")


@dataclass(frozen=True, slots=True, kw_only=True)
class PredictionRecord:
    """One prediction as recorded in the prediction log.

    Attributes:
        id: Unique, time-ordered id (see :func:`new_prediction_id`).
        ts: When the request arrived, in unix seconds.
        model: Name of the model that was asked.
        version: Version of that model that served the request.
        tenant: Tenant the request ran for, if the service is multi-tenant.
        subject_id: The data subject the inputs are about (GDPR export / erasure), if known.
        inputs: The instance(s) as received; JSON-compatible.
        outputs: What was returned; JSON-compatible.
        latency_ms: Wall time of the whole request, in milliseconds.
        model_latency_ms: Time spent inside the model runtime, when measured.
        status: ``ok``, ``error``, ``fallback``, ``rejected`` or another short word.
        guard: Name of the guard that fired (contract, timeout, circuit breaker...), if any.
        answered_by: ``model@version`` that actually answered, when it was not ``model`` itself
            (a fallback).
        request_meta: Free-form request metadata (client, headers of interest, trace id...).
    """

    id: str
    ts: float
    model: str
    version: int
    tenant: str | None = None
    subject_id: str | None = None
    inputs: Any
    outputs: Any
    latency_ms: float
    model_latency_ms: float | None = None
    status: str = STATUS_OK
    guard: str | None = None
    answered_by: str | None = None
    request_meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict (payloads as given) tagged with the format version ``v``."""
        return {
            "v": RECORD_FORMAT_VERSION,
            "id": self.id,
            "ts": self.ts,
            "model": self.model,
            "version": self.version,
            "tenant": self.tenant,
            "subject_id": self.subject_id,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "latency_ms": self.latency_ms,
            "model_latency_ms": self.model_latency_ms,
            "status": self.status,
            "guard": self.guard,
            "answered_by": self.answered_by,
            "request_meta": dict(self.request_meta),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PredictionRecord:
        """Rebuild a record from :meth:`to_dict` output (unknown keys are ignored).

        Args:
            data: A dict as produced by :meth:`to_dict`, possibly after a JSON round trip.

        Returns:
            The record.

        Raises:
            StoreError: a required key is missing, a value has the wrong type, or the dict was
                written by a newer format version.
        """
        version = data.get("v", RECORD_FORMAT_VERSION)
        if not isinstance(version, int) or version > RECORD_FORMAT_VERSION:
            raise StoreError(f"A prediction record must have format version <= "
                             f"{RECORD_FORMAT_VERSION}; got {version!r}.")
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            raise StoreError(f"A prediction record must have the keys {', '.join(_REQUIRED)}; "
                             f"got one without {', '.join(missing)} (id {data.get('id')!r}).")
        meta = data.get("request_meta") or {}
        try:
            record = cls(
                id=_text(data, "id"),
                ts=float(data["ts"]),
                model=_text(data, "model"),
                version=_integer(data, "version"),
                tenant=_opt_text(data, "tenant"),
                subject_id=_opt_text(data, "subject_id"),
                inputs=data["inputs"],
                outputs=data["outputs"],
                latency_ms=float(data["latency_ms"]),
                model_latency_ms=(None if data.get("model_latency_ms") is None
                                  else float(data["model_latency_ms"])),
                status=_text(data, "status") if "status" in data else STATUS_OK,
                guard=_opt_text(data, "guard"),
                answered_by=_opt_text(data, "answered_by"),
                request_meta=meta,
            )
        except (TypeError, ValueError) as exc:
            raise StoreError(f"The prediction record {data.get('id')!r} has a value of the "
                             f"wrong type: {exc}") from None
        if not isinstance(meta, dict):
            raise StoreError(f"The 'request_meta' of prediction record {record.id!r} must be an "
                             f"object; got {type(meta).__name__}.")
        return record


def _text(data: dict[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise TypeError(f"'{key}' must be a string; got {type(value).__name__}")
    return value


def _opt_text(data: dict[str, Any], key: str) -> str | None:
    return None if data.get(key) is None else _text(data, key)


def _integer(data: dict[str, Any], key: str) -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"'{key}' must be an integer; got {value!r}")
    return value


# --------------------------------------------------------------------------- ids
_id_lock = threading.Lock()
_last_ms = 0
_counter = 0
_COUNTER_MAX = 0xFFF
#: Random bytes drawn from ``os.urandom`` in blocks of this many ids, not one call per id: the
#: system call was ~2.5% of a served request's CPU under load (issue 19's profile). The bytes
#: are the same CSPRNG output, each used once.
_RANDOM_IDS_PER_DRAW = 256
_RANDOM_BYTES = 10
_random = b""
_random_at = 0


def _forget_random() -> None:
    """In a forked child: never reuse the parent's unused bytes (both would mint equal ids);
    a fresh lock too, as another thread of the parent may have held it at the fork."""
    global _random, _random_at, _id_lock
    _random, _random_at = b"", 0
    _id_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_random)


def _random_int() -> int:
    """80 fresh random bits (call with ``_id_lock`` held)."""
    global _random, _random_at
    if _random_at >= len(_random):
        _random, _random_at = os.urandom(_RANDOM_BYTES * _RANDOM_IDS_PER_DRAW), 0
    at = _random_at
    _random_at = at + _RANDOM_BYTES
    return int.from_bytes(_random[at:at + _RANDOM_BYTES], "big")


def new_prediction_id() -> str:
    """Return a new unique prediction id whose string order is its creation order.

    The layout is UUIDv7 (RFC 9562): 48 bits of unix milliseconds, then a 12-bit counter that
    restarts at a random value below 2048 every millisecond and keeps ids of the same
    millisecond ordered (method 1 of the RFC), then 62 random bits. Ids of one process are
    strictly increasing even when the clock steps back; ids of different processes are ordered
    to the millisecond. About a microsecond per call.

    Returns:
        A 36-character lower-case UUID string, e.g. ``0190a3c4-5e6f-7abc-9def-0123456789ab``.
    """
    global _last_ms, _counter
    now_ms = time.time_ns() // 1_000_000
    with _id_lock:
        rand = _random_int()
        if now_ms > _last_ms:
            _last_ms = now_ms
            _counter = rand >> 69  # 11 random bits: room for >= 2048 ids in this millisecond
        else:
            _counter += 1
            if _counter > _COUNTER_MAX:  # borrow the next millisecond rather than repeat
                _last_ms += 1
                _counter = rand >> 69
        ms, counter = _last_ms, _counter
    value = (
        (ms & 0xFFFF_FFFF_FFFF) << 80
        | 0x7 << 76
        | counter << 64
        | 0b10 << 62
        | (rand & 0x3FFF_FFFF_FFFF_FFFF)
    )
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def prediction_id_time(prediction_id: str) -> float:
    """Return the unix time (seconds, millisecond precision) encoded in a prediction id.

    Args:
        prediction_id: An id made by :func:`new_prediction_id`.

    Returns:
        Unix seconds.

    Raises:
        StoreError: ``prediction_id`` is not a UUIDv7-style id.
    """
    h = prediction_id.replace("-", "")
    if len(h) != 32 or h[12] != "7":
        raise StoreError(f"A prediction id must be a 36-character UUIDv7; got {prediction_id!r}.")
    try:
        return int(h[:12], 16) / 1000.0
    except ValueError:
        raise StoreError(f"A prediction id must be hexadecimal; got {prediction_id!r}.") from None


__all__ = [
    "RECORD_FORMAT_VERSION",
    "STATUS_ERROR",
    "STATUS_FALLBACK",
    "STATUS_OK",
    "STATUS_REJECTED",
    "PredictionRecord",
    "new_prediction_id",
    "prediction_id_time",
]

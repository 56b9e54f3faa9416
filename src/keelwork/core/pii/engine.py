"""The PII engine: scan a text with every recogniser, resolve overlaps, fail closed.

Fail closed: a text over the size budget, a scan over the time budget, or a recogniser that
raises, gives one span over the whole text (entity :data:`UNSCANNED`), so whatever redacts the
spans redacts the whole field. The failure is counted in :class:`PiiCounters` (for /metrics);
no message, log line or exception carries the text.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Literal, cast

from keelwork.core.pii.registry import DEFAULT_ENTITIES, check_entities, load_recognisers
from keelwork.core.pii.spans import UNSCANNED, Span, resolve_overlaps
from keelwork.errors import PiiConfigError, PiiScanFailed

Mode = Literal["redact", "pseudonymise", "drop"]
MODES: tuple[str, ...] = ("redact", "pseudonymise", "drop")
#: Reasons a scan failed closed, the label values of the failure counter.
FAILURE_REASONS: tuple[str, ...] = ("too_long", "timeout", "recogniser_error")
MIN_KEY_BYTES = 16


class PiiCounters:
    """Thread-safe counts a caller exports: texts scanned, findings by entity, failures by
    reason (``too_long``, ``timeout``, ``recogniser_error``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.scanned = 0
        self.found: dict[str, int] = {}
        self.failed: dict[str, int] = dict.fromkeys(FAILURE_REASONS, 0)

    def _record(self, spans: Sequence[Span], failure: str | None) -> None:
        with self._lock:
            self.scanned += 1
            if failure is not None:
                self.failed[failure] += 1
            for s in spans:
                self.found[s.entity] = self.found.get(s.entity, 0) + 1

    def snapshot(self) -> dict[str, object]:
        """A copy: ``{"scanned": n, "found": {...}, "failed": {...}}``."""
        with self._lock:
            return {"scanned": self.scanned, "found": dict(self.found),
                    "failed": dict(self.failed)}


class PiiAnalyzer:
    """Scans texts for a fixed set of entities; build one per configuration and reuse it.

    Args:
        entities: Entity names (built in, or ``keelwork.pii_recognisers`` plug-ins); None for
            every built-in entity.
        max_chars: Longer texts are not scanned: they fail closed (``too_long``).
        time_budget_s: A scan that has run longer after a recogniser fails closed
            (``timeout``). Every built-in pattern is linear-time, so this guards plug-ins
            and machines under load.
        min_score: Findings scored below this are dropped.
        counters: Where to count; a new :class:`PiiCounters` if None.

    Raises:
        PiiConfigError: an unknown entity, or a plug-in that cannot be loaded.
    """

    def __init__(self, entities: Iterable[str] | None = None, *, max_chars: int = 100_000,
                 time_budget_s: float = 0.25, min_score: float = 0.5,
                 counters: PiiCounters | None = None) -> None:
        self.entities = check_entities(DEFAULT_ENTITIES if entities is None else entities)
        self._wanted = frozenset(self.entities)
        self._recognisers = load_recognisers(self.entities)
        self.max_chars = max_chars
        self.time_budget_s = time_budget_s
        self.min_score = min_score
        self.counters = counters if counters is not None else PiiCounters()

    def analyze(self, text: str) -> list[Span]:
        """Every finding in ``text``, non-overlapping and sorted by start.

        Never raises for any text: a failure gives ``[Span(0, len(text), "UNSCANNED", 1.0)]``.
        """
        return self._scan(text)[0]

    def _scan(self, text: str) -> tuple[list[Span], str | None]:
        failure = self._failure_before(text)
        spans: list[Span] = []
        if failure is None:
            started = time.perf_counter()
            try:
                for recogniser in self._recognisers:
                    spans += recogniser.find(text)
                    if time.perf_counter() - started > self.time_budget_s:
                        failure = "timeout"
                        break
            except Exception:  # fail closed; the exception may quote the text, so drop it
                failure = "recogniser_error"
        if failure is not None:
            spans = [Span(0, len(text), UNSCANNED, 1.0)] if text else []
        else:
            spans = resolve_overlaps(s for s in spans
                                     if s.entity in self._wanted and s.score >= self.min_score
                                     and 0 <= s.start < s.end <= len(text))
        self.counters._record(spans, failure)
        return spans, failure

    def _failure_before(self, text: str) -> str | None:
        return "too_long" if len(text) > self.max_chars else None


@lru_cache(maxsize=16)
def default_analyzer(entities: tuple[str, ...] | None = None) -> PiiAnalyzer:
    """A shared analyzer per entity set (default budgets), for :func:`analyze` and scripts."""
    return PiiAnalyzer(entities)


def analyze(text: str, entities: Sequence[str] | None = None) -> list[Span]:
    """Every finding in ``text`` with the default budgets; see :meth:`PiiAnalyzer.analyze`.

    Raises:
        PiiConfigError: an unknown entity name.
    """
    return default_analyzer(None if entities is None else tuple(entities)).analyze(text)


def _normalise(entity: str, value: str) -> str:
    """One person's value written two ways gets one pseudonym (joins work)."""
    if entity in ("CREDIT_CARD", "IBAN_CODE", "US_SSN", "PHONE_NUMBER"):
        return "".join(c for c in value if c.isalnum()).upper()
    if entity in ("EMAIL_ADDRESS", "URL", "IP_ADDRESS"):
        return value.strip().casefold()
    return value.strip()


def pseudonym(value: str, key: bytes, entity: str = "VALUE") -> str:
    """A keyed, stable token for ``value``: ``<ENTITY:16 hex digits of HMAC-SHA256>``.

    The same value, entity and key always give the same token, so pseudonymised columns still
    join; without the key the token cannot be linked back by hashing guesses.

    Raises:
        PiiConfigError: the key is shorter than 16 bytes.
    """
    if len(key) < MIN_KEY_BYTES:
        raise PiiConfigError(f"The pseudonym key must be at least {MIN_KEY_BYTES} bytes; "
                             f"got {len(key)}.")
    digest = hmac.new(key, f"{entity}\x1f{_normalise(entity, value)}".encode(),
                      hashlib.sha256).hexdigest()
    return f"<{entity}:{digest[:16]}>"


def redact(text: str, spans: Sequence[Span], mode: Mode = "redact",
           key: bytes | None = None) -> str:
    """``text`` with each span replaced: ``<ENTITY>`` (redact), a keyed token (pseudonymise,
    see :func:`pseudonym`), or nothing (drop).

    Args:
        text: The text the spans were found in.
        spans: Non-overlapping spans, as :meth:`PiiAnalyzer.analyze` returns them.
        mode: ``redact``, ``pseudonymise`` or ``drop``.
        key: The pseudonym key (``pseudonymise`` only), at least 16 bytes.

    Raises:
        PiiConfigError: an unknown mode, or ``pseudonymise`` without a valid key.
    """
    if mode not in MODES:
        raise PiiConfigError(f"The PII mode must be one of {', '.join(MODES)}; got {mode!r}.")
    if mode == "pseudonymise" and key is None:
        raise PiiConfigError("The PII mode 'pseudonymise' needs a key; got none.")
    parts: list[str] = []
    pos = 0
    for span in _merged(spans):
        parts.append(text[pos:span.start])
        if mode == "redact":
            parts.append(f"<{span.entity}>")
        elif mode == "pseudonymise":
            assert key is not None
            parts.append(pseudonym(text[span.start:span.end], key, span.entity))
        pos = span.end
    parts.append(text[pos:])
    return "".join(parts)


def _merged(spans: Sequence[Span]) -> list[Span]:
    """Overlapping spans joined (the first one's entity): no character escapes redaction."""
    out: list[Span] = []
    for span in sorted(spans):
        if out and span.start < out[-1].end:
            last = out[-1]
            out[-1] = Span(last.start, max(last.end, span.end), last.entity, last.score)
        else:
            out.append(span)
    return out


def scrub(analyzer: PiiAnalyzer, text: str, mode: Mode = "redact",
          key: bytes | None = None) -> str:
    """:meth:`PiiAnalyzer.analyze` then :func:`redact`: the text as it may be stored."""
    return redact(text, analyzer.analyze(text), mode, key)


class TextScanner:
    """A :data:`keelwork.core.redaction.Scanner`: ``scanner(text, mode)`` is the text with its
    entities replaced, or :class:`~keelwork.errors.PiiScanFailed` (the caller then stores the
    field whole-redacted). ``analyzer.counters`` holds the counts for /metrics."""

    def __init__(self, analyzer: PiiAnalyzer, key: bytes) -> None:
        pseudonym("", key)  # checks the key now, not at the first request
        self.analyzer = analyzer
        self.key = key

    def __call__(self, text: str, mode: str) -> str:
        spans, failure = self.analyzer._scan(text)
        if failure is not None:
            raise PiiScanFailed(failure)
        if mode not in MODES:
            raise PiiConfigError(f"The PII mode must be one of {', '.join(MODES)}; "
                                 f"got {mode!r}.")
        return redact(text, spans, cast(Mode, mode), self.key)


def scanner(key: bytes, entities: Iterable[str] | None = None, *, max_chars: int = 100_000,
            time_budget_s: float = 0.25, min_score: float = 0.5) -> TextScanner:
    """The scanner the gateway's redactor calls (``keelwork.service.redaction``).

    Args:
        key: The project's pseudonym key (>= 16 bytes).
        entities: As for :class:`PiiAnalyzer` (None: every built-in entity).
        max_chars: As for :class:`PiiAnalyzer`.
        time_budget_s: As for :class:`PiiAnalyzer`.
        min_score: As for :class:`PiiAnalyzer`.

    Raises:
        PiiConfigError: an unknown entity, a plug-in that cannot load, a short key.
    """
    return TextScanner(PiiAnalyzer(entities, max_chars=max_chars, time_budget_s=time_budget_s,
                                   min_score=min_score), key)

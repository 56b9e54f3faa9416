"""PII detection and redaction, pure: no I/O beyond reading the vendored word lists, no model.

Public API (see docs/pii.md)::

    analyzer = PiiAnalyzer(["EMAIL_ADDRESS", "PERSON"])      # PiiConfigError if unknown
    spans = analyzer.analyze(text)                           # never raises; fails closed
    stored = redact(text, spans, "pseudonymise", key=key)    # or "redact", "drop"
    analyzer.counters.snapshot()                             # scanned, found, failed
    scan = scanner(key); scan(text, "redact")                # the gateway's Scanner; raises
                                                             # PiiScanFailed to fail closed

Entities: EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, IBAN_CODE, US_SSN, IP_ADDRESS, URL,
DATE_OF_BIRTH, PERSON, LOCATION, and plug-ins of the ``keelwork.pii_recognisers`` entry-point
group (:mod:`keelwork.core.pii.registry`).
"""

from __future__ import annotations

from keelwork.core.pii.engine import (
    FAILURE_REASONS,
    MODES,
    Mode,
    PiiAnalyzer,
    PiiCounters,
    TextScanner,
    analyze,
    default_analyzer,
    pseudonym,
    redact,
    scanner,
    scrub,
)
from keelwork.core.pii.registry import (
    BUILTIN_ENTITIES,
    DEFAULT_ENTITIES,
    ENTRY_POINT_GROUP,
    check_entities,
    known_entities,
)
from keelwork.core.pii.spans import UNSCANNED, Span, resolve_overlaps

__all__ = [
    "BUILTIN_ENTITIES",
    "DEFAULT_ENTITIES",
    "ENTRY_POINT_GROUP",
    "FAILURE_REASONS",
    "MODES",
    "UNSCANNED",
    "Mode",
    "PiiAnalyzer",
    "PiiCounters",
    "Span",
    "TextScanner",
    "analyze",
    "check_entities",
    "default_analyzer",
    "known_entities",
    "pseudonym",
    "redact",
    "resolve_overlaps",
    "scanner",
    "scrub",
]

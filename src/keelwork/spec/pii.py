"""The PII entity names keel.yaml may name (``guards.pii_redaction.entities``), checked at
``keel spec validate``: the built-in ones (:mod:`keelwork.core.pii` finds them) and those
plug-ins register under the ``keelwork.pii_recognisers`` entry-point group (read from the
installed packages' metadata, nothing imported).
"""

from __future__ import annotations

from importlib.metadata import entry_points

#: Entities :mod:`keelwork.core.pii` finds without a plug-in (its registry maps each to a class).
BUILTIN_PII_ENTITIES: tuple[str, ...] = (
    "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS", "URL",
    "DATE_OF_BIRTH", "PERSON", "LOCATION")
#: Where plug-in recognisers register.
PII_ENTRY_POINT_GROUP = "keelwork.pii_recognisers"


def known_pii_entities() -> tuple[str, ...]:
    """Built-in entities, then plug-ins' by name."""
    extra = sorted(ep.name for ep in entry_points(group=PII_ENTRY_POINT_GROUP)
                   if ep.name not in BUILTIN_PII_ENTITIES)
    return (*BUILTIN_PII_ENTITIES, *extra)


__all__ = ["BUILTIN_PII_ENTITIES", "PII_ENTRY_POINT_GROUP", "known_pii_entities"]

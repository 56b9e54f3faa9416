"""keel.yaml's guard settings given as objects: ``guards.pii_redaction`` and
``guards.out_of_distribution`` (``true`` is each with its defaults)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from keelwork.spec.pii import known_pii_entities
from keelwork.spec.section import Section


class PiiRedaction(Section):
    """``guards.pii_redaction`` as an object (``true`` is this with its defaults)."""

    text: Literal["redact", "pseudonymise", "drop", "keep"] = Field(
        default="redact", description="What is stored of text fields without their own "
        "'pii' mode: entities found replaced by their type (redact) or by keyed tokens "
        "(pseudonymise), the field dropped, or kept.")
    model_sees: Literal["original", "redacted"] = Field(
        default="original", description="Whether the model gets the original instance or "
        "the redacted one.")
    entities: list[str] | None = Field(
        default=None, description="Entities scanned for (default: every built-in one): "
        "EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, IBAN_CODE, US_SSN, IP_ADDRESS, URL, "
        "DATE_OF_BIRTH, PERSON, LOCATION, or a plug-in's (entry points "
        "keelwork.pii_recognisers).")

    @field_validator("entities")
    @classmethod
    def _known(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        known = known_pii_entities()
        for name in v:
            if name not in known:
                raise PydanticCustomError(
                    "pii_entity", "unknown PII entity {name}; valid: {valid}",
                    {"name": repr(name), "valid": ", ".join(known)})
        return v


class OodGuard(Section):
    """``guards.out_of_distribution`` as an object (``true`` is this with its defaults)."""

    action: Literal["flag", "reject"] = Field(
        default="flag", description="What an instance unlike the reference gets: 'flag' "
        "(answered; logged with guard out_of_distribution and counted) or 'reject' (422 "
        "naming the guard).")
    target_fpr: Annotated[float, Field(gt=0, le=0.2)] = Field(
        default=0.01, description="Share of reference-like instances flagged anyway (the "
        "detector's calibrated false-positive rate).")


__all__ = ["OodGuard", "PiiRedaction"]

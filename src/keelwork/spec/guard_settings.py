"""keel.yaml's guard settings given as objects: ``guards.pii_redaction``,
``guards.out_of_distribution`` and ``guards.prompt_injection`` (``true`` is each with its
defaults)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveFloat, PositiveInt, field_validator
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


class InjectionGuard(Section):
    """``guards.prompt_injection`` as an object (``true`` is this with its defaults)."""

    action: Literal["flag", "review", "reject"] = Field(
        default="flag", description="What a text scored as an injection or jailbreak attempt "
        "gets: 'flag' (answered; logged with guard prompt_injection and counted), 'review' "
        "(flagged, and the review queue takes it: needs a review section) or 'reject' (403 "
        "naming the guard; the text is never echoed).")
    threshold: Annotated[float, Field(gt=0, lt=1)] | None = Field(
        default=None, description="Score at or above which a text is an attack (default: "
        "the shipped model's, chosen at build time).")
    fields: list[str] | None = Field(
        default=None, min_length=1, description="The contract's text fields scanned "
        "(default: every input of type 'text' or 'string').")
    on_error: Literal["open", "closed"] | None = Field(
        default=None, description="What a request gets when the guard fails (raises or "
        "exceeds timeout_ms): 'closed' (refused, 503) or 'open' (answered). Default: closed "
        "for reject, open for flag and review. Failures are counted either way.")
    timeout_ms: Annotated[float, Field(gt=0, le=10_000)] = Field(
        default=200.0, description="Milliseconds the guard may take on one request.")
    canary_field: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")] | None = \
        Field(default=None, description="For generative models: the input key under which "
              "each instance gets a fresh random canary token (the model keeps it in its "
              "system prompt, never in its answer); an answer that holds the token was "
              "injected and gets the action (reject: withheld, 403). Not stored in the log.")

    @property
    def fails_closed(self) -> bool:
        """Whether a guard failure refuses the request."""
        if self.on_error is not None:
            return self.on_error == "closed"
        return self.action == "reject"


class RateLimit(Section):
    """Requests per second a caller may send to the predict routes, for all servers of a
    store together (keelwork.service.rate_limits); past it: 429 with Retry-After."""

    requests_per_second: PositiveFloat
    burst: PositiveInt = Field(default=10, description="Requests a caller may send at once "
                               "after being idle (the bucket's size).")
    per: Literal["key", "tenant", "ip"] = Field(
        default="key", description="Who a caller is: its verified API key (its IP without "
        "one), the tenant header (its IP without one), or its IP address.")


__all__ = ["InjectionGuard", "OodGuard", "PiiRedaction", "RateLimit"]

"""One burn-rate tier of keel.yaml's SLOs (``slos.tiers``, ``slos.quality[].tiers``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveFloat, field_validator, model_validator
from pydantic_core import PydanticCustomError

from keelwork.spec.durations import UNIT_SECONDS
from keelwork.spec.section import Section, check_name

DURATION = r"^\d+[smhd]$"
#: The shortest SLO window: the workbook's alert windows scale with it, and below a day its
#: fastest tier's short window would be under a minute (one or two scrapes).
MIN_WINDOW_S = 86_400


def duration_seconds(text: str) -> int:
    """``30d`` -> 2592000 (the grammar of :data:`DURATION`: a whole number and s, m, h, d)."""
    return int(text[:-1]) * int(UNIT_SECONDS[text[-1]])


class SloTier(Section):
    """One multiwindow burn-rate alert: fires while both windows burn faster than the rate."""

    name: str = Field(description="The tier's name (label 'tier', part of the alert's name).")
    severity: Literal["page", "ticket"] = "page"
    long_window: str = Field(pattern=DURATION, description="e.g. 1h: how much budget burnt.")
    short_window: str = Field(pattern=DURATION, description="e.g. 5m: is it still burning "
                              "(the alert resolves soon after the burn stops).")
    burn_rate: PositiveFloat = Field(description="Multiple of the rate that spends exactly "
                                     "the budget over the window (14.4 spends 2% in 1h of 30d).")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v, "a tier name")

    @model_validator(mode="after")
    def _windows(self) -> SloTier:
        if duration_seconds(self.short_window) >= duration_seconds(self.long_window):
            raise PydanticCustomError(
                "tier_windows", "tier {name}: short_window must be shorter than long_window; "
                "got {short} and {long}", {"name": self.name, "short": self.short_window,
                                           "long": self.long_window})
        return self


__all__ = ["DURATION", "MIN_WINDOW_S", "SloTier", "duration_seconds"]

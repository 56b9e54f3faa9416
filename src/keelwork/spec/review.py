"""keel.yaml's ``review`` section: which predictions a person reviews, and how many.

Enforced by the review queue (:mod:`keelwork.service.review`): ``keel serve`` fills it every
``interval`` and ``keel review fill`` on demand.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveInt

from keelwork.spec.section import Section

#: Guards whose flagged predictions can be sent to review.
REVIEWABLE_GUARDS = ("out_of_distribution", "output_contract", "prompt_injection")


class ReviewSection(Section):
    """The human review queue."""

    budget_per_day: PositiveInt = Field(
        default=100, description="Predictions queued per UTC day at most (all models).")
    random_share: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.1, description="Share of the budget drawn at random (an unbiased error "
        "estimate); the rest goes to the most uncertain predictions.")
    guards: list[Literal["out_of_distribution", "output_contract", "prompt_injection"]] = Field(
        default_factory=list, description="Guards whose flagged predictions always enter "
        "(within the budget).")
    double_label_share: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.0, description="Share of items given to two reviewers (their agreement is "
        "measured: keel review stats).")
    interval: str = Field(default="1h", pattern=r"^\d+[smhd]$",
                          description="How often keel serve fills the queue from the log.")


__all__ = ["REVIEWABLE_GUARDS", "ReviewSection"]

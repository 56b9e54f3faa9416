"""keel.yaml's ``fairness`` section: protected fields, and the gaps between their groups that
page.

Enforced by ``keel monitor run`` and the server's monitoring loop
(:mod:`keelwork.service.monitoring.fairness`, the math in :mod:`keelwork.core.fairness`): per
window, the labelled answers of each protected field's groups are compared, and a measure
alerts only when its confidence interval lies beyond the threshold. The rollout gate
``rollout.gates.max_fairness_difference`` reads the same section.

What the section alone decides is checked here; what needs the rest of keel.yaml (the
protected fields are inputs of the contract, the model is a classifier with a positive class)
is :func:`keelwork.spec.fairness_checks.fairness_problems`, called at ``keel spec validate``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveInt, field_validator

from keelwork.spec.section import Section

FairnessMetric = Literal["demographic_parity", "equalized_odds"]
_ALL_METRICS: tuple[FairnessMetric, ...] = ("demographic_parity", "equalized_odds")


class FairnessSection(Section):
    """Fairness monitoring of a classifier (``fairness``)."""

    protected: list[str] = Field(
        min_length=1, description="Protected fields, each judged on its own: inputs of the "
        "contract (sent with each request; the model may well not use them) or fields of "
        "label_fields.")
    label_fields: list[str] = Field(
        default_factory=list, description="Protected fields sent with the ground truth, not "
        "the request (the model never sees them): a label object carries them beside the "
        "output, e.g. {\"label\": \">50K\", \"race\": \"Black\"} in POST /v1/feedback.")
    positive_label: str | None = Field(
        default=None, description="The favourable (selected) class of the classifier "
        "(default: monitoring.labels.positive, else the second of the output's two "
        "categories).")
    metrics: list[FairnessMetric] = Field(
        default_factory=lambda: list(_ALL_METRICS),
        description="Disparities judged: demographic_parity (selection rates), "
        "equalized_odds (the worse of the TPR and FPR gaps); Fairlearn's definitions.")
    max_difference: Annotated[float, Field(gt=0, lt=1)] | None = Field(
        default=0.1, description="Largest gap between two groups' rates; null: not judged.")
    min_ratio: Annotated[float, Field(gt=0, le=1)] | None = Field(
        default=0.8, description="Least ratio of the smallest to the largest group rate "
        "(0.8: the four-fifths rule); null: not judged.")
    min_group_size: PositiveInt = Field(
        default=30, description="A group is compared only when a window holds at least "
        "this many of its labelled answers.")
    confidence: Annotated[float, Field(ge=0.5, lt=1)] = Field(
        default=0.95, description="Confidence of the intervals: a gap alerts only when its "
        "whole interval lies beyond the threshold (a small group's noise does not page).")

    @field_validator("protected", "metrics", "label_fields")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        for i, name in enumerate(v):
            if name in v[:i]:
                from pydantic_core import PydanticCustomError

                raise PydanticCustomError("duplicate_field", "{got} appears twice",
                                          {"got": repr(name)})
        return v


__all__ = ["FairnessMetric", "FairnessSection"]

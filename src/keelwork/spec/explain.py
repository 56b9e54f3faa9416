"""keel.yaml's ``explain`` section: what ``POST /v1/models/{name}:explain`` may cost.

Enforced by :mod:`keelwork.service.explain` (the budget, the bounds on evaluations and on the
background sample, the timeout, the stored explanations) and the route of
:mod:`keelwork.interfaces.http.explain_routes` (404 while ``enabled`` is false).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, PositiveInt

from keelwork.spec.section import Section


class ExplainSection(Section):
    """Per-prediction feature attributions (SHAP values) on request."""

    enabled: bool = Field(default=True, description="Serve POST /v1/models/NAME:explain "
                          "(false: the route answers 404).")
    max_evaluations: Annotated[int, Field(ge=10, le=10_000_000)] = Field(
        default=20_000, description="Model rows one instance's explanation may evaluate "
        "with the permutation explainer (models with no exact method): permutations x "
        "(features + 1) x background rows. Exact methods (linear, tree) ignore it.")
    timeout_ms: Annotated[float, Field(gt=0, le=600_000)] = Field(
        default=5_000.0, description="Wall time one explain request may take; past it: 504.")
    background_rows: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=100, description="Rows of monitoring.reference (a fixed-seed uniform "
        "sample) whose mean output is the expected value the attributions start from.")
    budget_per_minute: PositiveInt = Field(
        default=600, description="Instances a server explains per minute (all callers, all "
        "models); past it: 429 with Retry-After.")
    max_stored: PositiveInt = Field(
        default=100_000, description="Explanations kept in the store (the oldest go first).")


__all__ = ["ExplainSection"]

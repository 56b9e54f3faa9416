"""keel.yaml's ``cost`` section: the unit prices a model call is charged at.

A served version's compute cost is its measured CPU seconds at ``cpu_hour`` plus its answers at
``per_1k_predictions`` (either price, or both); ``/metrics`` exports it
(:mod:`keelwork.core.cost` does the arithmetic, :mod:`keelwork.adapters.metrics` the counters).
A cost section with no price would export nothing, so it is an error at ``keel spec validate``
(:func:`cost_problems`). ``monthly_budget`` and ``alert_at`` are refused until budget alerts
are built (:mod:`keelwork.spec.enforcement`).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from keelwork.spec.section import Section

#: ``(path, rule, got, message)``, as :func:`keelwork.spec.slos.slo_problems` reports them.
Problem = tuple[tuple[str | int, ...], str, object, str]


class CostSection(Section):
    """Unit prices of serving, in ``currency``."""

    currency: str = Field(default="USD", description="The currency of every price (a label "
                          "of keelwork_cost_total).")
    per_1k_predictions: Annotated[float, Field(ge=0)] | None = Field(
        default=None, description="Price of 1000 answered instances.")
    cpu_hour: Annotated[float, Field(ge=0)] | None = Field(
        default=None, description="Price of one CPU-hour: charged for the CPU time of model "
        "calls per version, and for the rest of the process's CPU time as the idle share.")
    monthly_budget: Annotated[float, Field(ge=0)] | None = None
    alert_at: list[Annotated[float, Field(gt=0, le=2)]] = Field(default_factory=lambda: [0.8, 1.0])

    @property
    def priced(self) -> bool:
        """Whether any price is set (else there is no cost to export)."""
        return self.per_1k_predictions is not None or self.cpu_hour is not None


def cost_problems(cost: CostSection) -> list[Problem]:
    """What is wrong with a cost section keel.yaml writes (call it only when it writes one).

    Returns:
        ``(path, rule, got, message)`` per problem: a section without a price.
    """
    if cost.priced:
        return []
    return [(("cost",), "cost_no_price", None,
             "a cost section needs a price: set cost.per_1k_predictions (per 1000 answers) or "
             "cost.cpu_hour (per CPU-hour of model calls), or both")]


__all__ = ["CostSection", "cost_problems"]

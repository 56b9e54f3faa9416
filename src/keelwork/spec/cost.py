"""keel.yaml's ``cost`` section: the unit prices a model call is charged at, and the budget.

A served version's compute cost is its measured CPU seconds at ``cpu_hour``, its GPU seconds
at ``gpu_hour``, its answers at ``per_1k_predictions`` and, for models that report token usage,
its tokens at the ``token_prices`` in effect on the day of the call; ``/metrics`` exports it
(:mod:`keelwork.core.cost` does the arithmetic, :mod:`keelwork.adapters.metrics` the counters).
``monthly_budget`` is watched per calendar month in UTC: ``alert_at`` shares of it spent, and a
forecast of the month's spend over it, alert the owners (:mod:`keelwork.core.budget`).

What cannot be checked by the schema is checked at ``keel spec validate`` by
:func:`cost_problems`: a cost section without a price, a budget without a price, two token
prices in effect on the same day for the same model.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Annotated, Literal

from pydantic import Field, PositiveFloat, field_validator
from pydantic_core import PydanticCustomError

from keelwork.spec.durations import UNIT_SECONDS
from keelwork.spec.section import Section

#: ``(path, rule, got, message)``, as :func:`keelwork.spec.slos.slo_problems` reports them.
Problem = tuple[tuple[str | int, ...], str, object, str]

_DURATION = r"^\d+[smhd]$"


def _seconds(text: str) -> int:
    return int(text[:-1]) * int(UNIT_SECONDS[text[-1]])


class TokenPrice(Section):
    """Prices of tokens from a day on (until the next entry of the same model takes over)."""

    since: dt.date = Field(description="The first day (UTC) these prices apply.")
    input_per_1k: Annotated[float, Field(ge=0)] = Field(
        description="Price of 1000 input (prompt) tokens.")
    output_per_1k: Annotated[float, Field(ge=0)] = Field(
        description="Price of 1000 output (generated) tokens.")
    model: str | None = Field(default=None, description="The model these prices are for; "
                              "none: every model without prices of its own.")


class CostSection(Section):
    """Unit prices of serving, in ``currency``, and the monthly budget."""

    currency: str = Field(default="USD", description="The currency of every price (a label "
                          "of keelwork_cost_total).")
    per_1k_predictions: Annotated[float, Field(ge=0)] | None = Field(
        default=None, description="Price of 1000 answered instances.")
    cpu_hour: Annotated[float, Field(ge=0)] | None = Field(
        default=None, description="Price of one CPU-hour: charged for the CPU time of model "
        "calls per version, and for the rest of the process's CPU time as the idle share.")
    gpu_hour: Annotated[float, Field(ge=0)] | None = Field(
        default=None, description="Price of one GPU-hour: charged for the GPU time of model "
        "calls of runtimes that run on a GPU and measure it.")
    token_prices: list[TokenPrice] = Field(
        default_factory=list, description="Dated token prices for models that report token "
        "usage (an answer's 'usage': {input_tokens, output_tokens}); a usage with no price in "
        "effect on its day is an error, never free.")
    monthly_budget: PositiveFloat | None = Field(
        default=None, description="The budget of a calendar month (UTC), every model "
        "together, in 'currency'.")
    alert_at: list[Annotated[float, Field(gt=0, le=2)]] = Field(
        default_factory=lambda: [0.8, 1.0], description="Shares of monthly_budget spent "
        "that alert (below 1: a ticket to the owners; 1 and over: a page).")
    forecast_window: str = Field(
        default="6h", pattern=_DURATION, description="The recent window whose spend rate, "
        "carried to the month's end, forecasts the month's spend.")
    evaluation_interval: str = Field(
        default="1m", pattern=_DURATION, description="How often a server watches the budget "
        "itself (and stores its usage).")
    evaluated_by: Literal["server", "prometheus"] = Field(
        default="server", description="Who watches the budget and notifies: 'server' (keel "
        "serve itself) or 'prometheus' (the rules of keel cost rules, Alertmanager "
        "delivering; the server then sends nothing).")

    @field_validator("alert_at")
    @classmethod
    def _distinct(cls, v: list[float]) -> list[float]:
        if len(set(v)) != len(v):
            raise PydanticCustomError("alert_at_duplicate", "each share may appear once; "
                                      "got {got}", {"got": v})
        return sorted(v)

    @field_validator("forecast_window", "evaluation_interval")
    @classmethod
    def _duration(cls, v: str) -> str:
        seconds = _seconds(v)
        if not 1 <= seconds <= 31 * 86_400:
            raise PydanticCustomError("cost_duration", "must be between 1s and 31d; got "
                                      "{got}", {"got": v})
        return v

    @property
    def priced(self) -> bool:
        """Whether any price is set (else there is no cost to export)."""
        return (self.per_1k_predictions is not None or self.cpu_hour is not None
                or self.gpu_hour is not None or bool(self.token_prices))

    @property
    def forecast_seconds(self) -> int:
        return _seconds(self.forecast_window)

    @property
    def interval_seconds(self) -> int:
        return _seconds(self.evaluation_interval)


def cost_problems(cost: CostSection, models: Collection[str] | None = None) -> list[Problem]:
    """What is wrong with a cost section keel.yaml writes (call it only when it writes one).

    Args:
        cost: The section.
        models: The names of keel.yaml's models (a token price may name only one of them).

    Returns:
        ``(path, rule, got, message)`` per problem: a section without a price, a budget
        without a price, two token prices of one model from the same day, a token price
        for a model keel.yaml does not serve.
    """
    out: list[Problem] = []
    if not cost.priced:
        if cost.monthly_budget is not None:
            out.append((("cost", "monthly_budget"), "budget_no_price", cost.monthly_budget,
                        "a budget needs a price to spend it: set cost.per_1k_predictions, "
                        "cost.cpu_hour, cost.gpu_hour or cost.token_prices"))
        else:
            out.append((("cost",), "cost_no_price", None,
                        "a cost section needs a price: set cost.per_1k_predictions (per 1000 "
                        "answers), cost.cpu_hour (per CPU-hour of model calls), cost.gpu_hour "
                        "or cost.token_prices"))
    seen: dict[tuple[str | None, dt.date], int] = {}
    for i, p in enumerate(cost.token_prices):
        key = (p.model, p.since)
        if key in seen:
            who = f"model {p.model}" if p.model else "every model"
            out.append((("cost", "token_prices", i, "since"), "token_price_duplicate",
                        p.since.isoformat(), f"token_prices[{seen[key]}] already prices "
                        f"{who} from {p.since.isoformat()}"))
        seen.setdefault(key, i)
        if models is not None and p.model is not None and p.model not in models:
            out.append((("cost", "token_prices", i, "model"), "unknown_model", p.model,
                        f"no model {p.model!r} in keel.yaml (models: "
                        f"{', '.join(sorted(models)) or 'none'})"))
    return out


__all__ = ["CostSection", "TokenPrice", "cost_problems"]

"""The monthly cost budget: month-to-date spend, the month-end forecast, and its alerts (pure).

The budget is keel.yaml's ``cost.monthly_budget``, every model together, per **calendar month
in UTC** (from the 1st at 00:00 UTC to the 1st of the next month). Two kinds of alert, with
the same labels scheme as the SLO alerts (``service``, ``severity``, ``slo``, ``tier``), so
the same routing tree sends them (:mod:`keelwork.core.alerting.routing`):

- ``KeelworkCostBudgetSpent<NN>``, one per ``cost.alert_at`` share: fires while the month's
  spend so far is at least that share of the budget (below 1 a ticket to the owners, 1 and
  over a page); it resolves when a new month starts;
- ``KeelworkCostBudgetForecast`` (a ticket): fires while the spend so far plus the spend rate
  of the last ``cost.forecast_window``, carried to the month's end, exceeds the budget, and
  the budget is not spent yet (then the 100% alert speaks).

Both say in plain words when the budget runs out at this rate: "at this rate the monthly
budget of 500 USD (calendar month, UTC) is spent on December 19; 23% already spent", with the
runbook link. The rate is the window's spend over the whole window (a server started within
it is not extrapolated from its first minutes).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from keelwork.core.slo.rules import runbook_link
from keelwork.spec.cost import CostSection
from keelwork.spec.model import KeelSpec

#: The ``slo`` label of every budget alert (the SLO alerts carry their objective there).
BUDGET_SLO = "cost_budget"
FORECAST_ALERT = "KeelworkCostBudgetForecast"
FORECAST_TIER = "forecast"


def month_bounds(now: float) -> tuple[float, float]:
    """The calendar month (UTC) holding ``now``: its first and its next month's first second,
    as seconds since the epoch."""
    t = dt.datetime.fromtimestamp(now, dt.UTC)
    start = dt.datetime(t.year, t.month, 1, tzinfo=dt.UTC)
    end = dt.datetime(t.year + (t.month == 12), t.month % 12 + 1, 1, tzinfo=dt.UTC)
    return start.timestamp(), end.timestamp()


def spent_alert_name(share: float) -> str:
    """``0.8`` -> ``KeelworkCostBudgetSpent80`` (``1.25`` -> ``...Spent125``)."""
    return f"KeelworkCostBudgetSpent{share * 100:.4g}".replace(".", "_")


def share_words(share: float) -> str:
    """``0.8`` -> ``80%``."""
    return f"{share * 100:.4g}%"


@dataclass(frozen=True, slots=True)
class BudgetAlert:
    """One budget alert keel.yaml defines."""

    name: str
    kind: Literal["spent", "forecast"]
    severity: Literal["page", "ticket"]
    share: float | None = None

    @property
    def tier(self) -> str:
        return FORECAST_TIER if self.share is None else share_words(self.share)


def budget_alerts(cost: CostSection) -> list[BudgetAlert]:
    """The alerts of ``cost`` (none without a budget): one per ``alert_at`` share, then the
    forecast."""
    if cost.monthly_budget is None:
        return []
    out = [BudgetAlert(spent_alert_name(s), "spent", "page" if s >= 1.0 else "ticket", s)
           for s in cost.alert_at]
    return [*out, BudgetAlert(FORECAST_ALERT, "forecast", "ticket")]


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """Where the month's spend stands at ``now`` (every amount in the budget's currency)."""

    now: float
    month_start: float
    month_end: float
    spent: float
    #: Spend per second over the forecast window.
    rate_per_s: float
    budget: float | None

    @property
    def forecast(self) -> float:
        """The month's spend if the rate holds to its end."""
        return self.spent + self.rate_per_s * max(0.0, self.month_end - self.now)

    @property
    def share(self) -> float | None:
        """The share of the budget spent (None without a budget)."""
        return None if not self.budget else self.spent / self.budget

    @property
    def exhausted_at(self) -> float | None:
        """When the budget is spent at this rate (``now`` when it already is; None: not this
        month, or no budget)."""
        if self.budget is None:
            return None
        if self.spent >= self.budget:
            return self.now
        if self.rate_per_s <= 0:
            return None
        at = self.now + (self.budget - self.spent) / self.rate_per_s
        return at if at < self.month_end else None


def budget_status(budget: float | None, spent: float, window_spend: float, window_s: float,
                  now: float) -> BudgetStatus:
    """The status from the month-to-date spend and the spend of the last ``window_s``."""
    start, end = month_bounds(now)
    return BudgetStatus(now, start, end, spent, window_spend / window_s if window_s else 0.0,
                        budget)


def day_words(at: float) -> str:
    """``December 19`` (UTC), as the rules print it (Go's ``January 2``)."""
    t = dt.datetime.fromtimestamp(at, dt.UTC)
    return f"{t:%B} {t.day}"


def budget_words(cost: CostSection) -> str:
    """``the monthly budget of 500 USD (calendar month, UTC)``."""
    return f"the monthly budget of {cost.monthly_budget:g} {cost.currency} (calendar month, UTC)"


def budget_sentence(cost: CostSection, day: str | None, spent_pct: str, *,
                    gone: bool = False) -> str:
    """The plain words of a budget alert, from its numbers as text (the rules pass template
    code, the server and the tests the numbers).

    Args:
        cost: keel.yaml's cost section.
        day: When the budget runs out at this rate (``December 19``); None: not this month.
        spent_pct: The share spent, in percent.
        gone: The budget is spent already.
    """
    words = budget_words(cost)
    if gone:
        return f"{words} is already spent; {spent_pct}% spent"
    if day is None:
        return f"at this rate {words} lasts the month; {spent_pct}% already spent"
    return f"at this rate {words} is spent on {day}; {spent_pct}% already spent"


def status_sentence(cost: CostSection, status: BudgetStatus) -> str:
    """:func:`budget_sentence` for a status (a budget must be set)."""
    share = status.share or 0.0
    at = status.exhausted_at
    return budget_sentence(cost, None if at is None else day_words(at), f"{100 * share:.0f}",
                           gone=share >= 1.0)


def alert_labels(service: str, a: BudgetAlert) -> dict[str, str]:
    """The labels of a budget alert (no ``model``: the budget is the service's)."""
    return {"alertname": a.name, "severity": a.severity, "slo": BUDGET_SLO, "tier": a.tier,
            "service": service}


def budget_annotations(cost: CostSection, service: str, a: BudgetAlert, link: str, *,
                sentence: str, forecast: str) -> dict[str, str]:
    """The ``summary``, ``description`` and ``runbook_url`` of ``a``, from its words."""
    if a.kind == "spent":
        assert a.share is not None
        summary = f"Cost of {service}: {share_words(a.share)} of the monthly budget spent"
    else:
        summary = f"Cost of {service}: the month's spend is forecast over budget"
    return {"summary": summary,
            "description": f"{sentence} (forecast for the month: {forecast} "
                           f"{cost.currency}). Runbook: {link}",
            "runbook_url": link}


@dataclass(frozen=True, slots=True)
class BudgetFiring:
    """A budget alert whose condition holds, with its labels and words."""

    alert: BudgetAlert
    labels: dict[str, str]
    annotations: dict[str, str]


def conditions(spec: KeelSpec, status: BudgetStatus, *,
               runbook_base: str = "runbooks") -> list[BudgetFiring]:
    """The budget alerts of ``spec`` whose condition holds at ``status``."""
    cost = spec.cost
    if cost.monthly_budget is None:
        return []
    budget, share = cost.monthly_budget, status.share or 0.0
    out = []
    for a in budget_alerts(cost):
        if a.kind == "spent":
            assert a.share is not None
            holds = share >= a.share
        else:
            holds = status.forecast > budget and status.spent < budget
        if not holds:
            continue
        sentence = status_sentence(cost, status)
        notes = budget_annotations(cost, spec.service.name, a, runbook_link(runbook_base, a.name),
                            sentence=sentence, forecast=f"{status.forecast:.2f}")
        out.append(BudgetFiring(a, alert_labels(spec.service.name, a), notes))
    return out


__all__ = [
    "BUDGET_SLO",
    "FORECAST_ALERT",
    "BudgetAlert",
    "BudgetFiring",
    "BudgetStatus",
    "alert_labels",
    "budget_alerts",
    "budget_annotations",
    "budget_sentence",
    "budget_status",
    "budget_words",
    "conditions",
    "day_words",
    "month_bounds",
    "share_words",
    "spent_alert_name",
    "status_sentence",
]

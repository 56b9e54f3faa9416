"""Prometheus rules for the monthly cost budget, and their ``promtool test rules`` file (plain
data; ``keel cost rules`` writes them).

PromQL cannot select a calendar month (a range selector is a fixed duration) and the cost
counters start again at zero when a server restarts, so the month's spend so far is read from
``keelwork_cost_month_to_date``, which each server exports from the durable usage ledger
(every server on one store exports the same totals: ``max`` per version, then the sum). The
spend *rate* is the counters': ``rate(keelwork_cost_total[<cost.forecast_window>])``, which
handles restarts as any counter. Recording rules (labels ``service``, ``currency``)::

    keelwork:cost_month_to_date:sum       the month's spend so far
    keelwork:cost_spend:rate<W>           spend per second over the forecast window
    keelwork:cost_budget_spent:ratio      month_to_date / monthly_budget
    keelwork:cost_month_forecast:sum      month_to_date + rate x seconds left in the month (UTC)
    keelwork:cost_budget_exhausted:timestamp
                                          when the budget runs out at that rate (only while it
                                          runs out this month)

The alerts are :mod:`keelwork.core.budget`'s, with the same labels and words as the server's
own evaluation: ``KeelworkCostBudgetSpent<NN>`` per ``alert_at`` share (``spent >= share``)
and ``KeelworkCostBudgetForecast`` (``forecast > budget`` while ``spent < 1``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keelwork.core.budget import (
    BudgetAlert,
    alert_labels,
    budget_alerts,
    budget_annotations,
    budget_sentence,
    share_words,
)
from keelwork.core.slo.objectives import format_duration
from keelwork.core.slo.rules import runbook_link
from keelwork.spec.cost import CostSection
from keelwork.spec.model import KeelSpec

COST_TOTAL = "keelwork_cost_total"
MONTH_TO_DATE = "keelwork_cost_month_to_date"
MTD = "keelwork:cost_month_to_date:sum"
RATE = "keelwork:cost_spend:rate"
SPENT = "keelwork:cost_budget_spent:ratio"
FORECAST = "keelwork:cost_month_forecast:sum"
EXHAUSTED = "keelwork:cost_budget_exhausted:timestamp"
#: Seconds from now to the next month's first second (UTC), in PromQL.
SECONDS_LEFT = "(scalar(days_in_month() - day_of_month()) * 86400 + 86400 - time() % 86400)"


def _matchers(labels: Mapping[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _g(value: float) -> str:
    return f"{value:.12g}"


def _rate_name(cost: CostSection) -> str:
    return f"{RATE}{format_duration(cost.forecast_seconds)}"


def _pick(service: str) -> str:
    return _matchers({"service": service})


def description_template(cost: CostSection, service: str, a: BudgetAlert, link: str) -> str:
    """The alert's ``description`` as Prometheus template code (it queries the recorded
    series for the share spent, the day the budget runs out and the forecast)."""
    pick = _pick(service)
    pct = (f"{{{{ with query `100 * {SPENT}{pick}` }}}}{{{{ . | first | value | printf "
           "\"%.0f\" }}{{ else }}?{{ end }}")
    day = ("{{ (. | first | value | toTime).Format \"January 2\" }}")
    sentence = (f"{{{{ with query `{SPENT}{pick} >= 1` }}}}"
                + budget_sentence(cost, None, pct, gone=True)
                + f"{{{{ else }}}}{{{{ with query `{EXHAUSTED}{pick}` }}}}"
                + budget_sentence(cost, day, pct)
                + "{{ else }}" + budget_sentence(cost, None, pct) + "{{ end }}{{ end }}")
    forecast = (f"{{{{ with query `{FORECAST}{pick}` }}}}{{{{ . | first | value | printf "
                "\"%.2f\" }}{{ else }}?{{ end }}")
    return budget_annotations(cost, service, a, link, sentence=sentence, forecast=forecast)[
        "description"]


def budget_group(spec: KeelSpec, *, labels: Mapping[str, str] | None = None,
                 runbook_base: str = "runbooks") -> dict[str, Any]:
    """The rule group of ``spec``'s budget (``cost.monthly_budget`` must be set).

    Args:
        spec: The keel.yaml.
        labels: Label matchers added to every metric selector (``{"job": "keel"}``).
        runbook_base: Folder path or URL of the runbooks.
    """
    cost, service = spec.cost, spec.service.name
    assert cost.monthly_budget is not None
    budget = _g(cost.monthly_budget)
    sel = _matchers(dict(labels or {}))
    own = {"service": service}
    pick = _pick(service)
    rate = _rate_name(cost)
    window = format_duration(cost.forecast_seconds)
    rules: list[dict[str, Any]] = [
        {"record": MTD, "labels": dict(own),
         "expr": f"sum by (currency) (max by (model, version, currency) ({MONTH_TO_DATE}{sel}))"},
        {"record": rate, "labels": dict(own),
         "expr": f"sum by (currency) (rate({COST_TOTAL}{sel}[{window}]))"},
        {"record": SPENT, "labels": dict(own), "expr": f"{MTD}{pick} / {budget}"},
        {"record": FORECAST, "labels": dict(own),
         "expr": f"{MTD}{pick} + {rate}{pick} * {SECONDS_LEFT}"},
        {"record": EXHAUSTED, "labels": dict(own),
         "expr": f"time() + ({budget} - {MTD}{pick}) / {rate}{pick} < time() + {SECONDS_LEFT}"},
    ]
    for a in budget_alerts(cost):
        if a.kind == "spent":
            assert a.share is not None
            expr = f"{SPENT}{pick} >= {_g(a.share)}"
        else:
            expr = f"{FORECAST}{pick} > {budget}\nand on (service, currency) {SPENT}{pick} < 1"
        link = runbook_link(runbook_base, a.name)
        notes = budget_annotations(cost, service, a, link, sentence="", forecast="")
        notes["description"] = description_template(cost, service, a, link)
        rule_labels = alert_labels(service, a)
        del rule_labels["alertname"]
        rules.append({"alert": a.name, "expr": expr, "labels": rule_labels,
                      "annotations": notes})
    return {"name": f"keelwork-cost-{service}", "rules": rules}


def _meaning(cost: CostSection, a: BudgetAlert) -> str:
    head = (f"The budget is {cost.monthly_budget:g} {cost.currency} per calendar month (UTC), "
            "every model together, spent by the measured CPU and GPU time of model calls, "
            "their answers and reported tokens at keel.yaml's prices (`cost`).\n\n")
    if a.share is not None:
        return head + (f"{share_words(a.share)} of it is spent this month. The alert's text "
                       "says on which day the rest runs out at the current rate. It resolves "
                       "when the next month starts (or `cost.monthly_budget` is raised).")
    return head + (f"The spend so far plus the spend rate of the last {cost.forecast_window} "
                   "(`cost.forecast_window`), carried to the month's end, exceeds it: "
                   "traffic grew, a model got slower or more expensive, or a client loops. "
                   "It resolves when the rate falls back, or once the budget is spent (then "
                   "the 100% alert speaks).")


def budget_runbooks(spec: KeelSpec) -> dict[str, str]:
    """Per budget alert name, its Markdown runbook (file ``<name>.md``)."""
    cost, service = spec.cost, spec.service
    owners = [f"- Owners (`service.owners`): {', '.join(service.owners)}"]
    if service.on_call is not None:
        owners.append(f"- On call (`service.on_call.contact`): {service.on_call.contact}")
    steps = [("Which model and version spends, and the forecast:", "keel cost report"),
             ("Who calls, and how much (the latest requests):", "keel log tail -n 50"),
             ("Which versions serve (a new champion may cost more per call):",
              "keel models list")]
    commands = "\n".join(f"{i}. {why}\n\n   ```bash\n   {cmd}\n   ```\n"
                         for i, (why, cmd) in enumerate(steps, start=1))
    return {a.name: (
        f"# {a.name}\n\nService `{service.name}`, budget alert `{a.tier}`, severity "
        f"`{a.severity}`. Generated by `keel cost runbook` from keel.yaml; regenerate it after "
        "changing `cost`.\n\n"
        f"## What fired\n\n{_meaning(cost, a)}\n\n"
        "## First three commands\n\nRun them in the project (the folder of keel.yaml).\n\n"
        f"{commands}\n## Who owns it\n\n" + "\n".join(owners) + "\n")
        for a in budget_alerts(cost)}


def budget_rules(spec: KeelSpec, *, labels: Mapping[str, str] | None = None,
                 runbook_base: str = "runbooks") -> dict[str, Any]:
    """The budget's Prometheus rule file (``{"groups": [...]}``) as plain data."""
    return {"groups": [budget_group(spec, labels=labels, runbook_base=runbook_base)]}


__all__ = ["EXHAUSTED", "FORECAST", "MONTH_TO_DATE", "MTD", "SECONDS_LEFT", "SPENT",
           "budget_group", "budget_rules", "budget_runbooks", "description_template"]

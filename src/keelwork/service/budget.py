"""The budget use-cases: ``keel cost rules``, ``keel cost runbook`` and ``keel cost report``.

What to write comes from :mod:`keelwork.core.budget_rules` (rules, their promtool tests,
runbooks); the report reads the usage ledger (:func:`keelwork.service.cost_watch.cost_report`).
Files are written atomically.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from keelwork.adapters.data.atomic import write_text_atomic
from keelwork.adapters.stores.cost_ledger import CostLedger
from keelwork.adapters.stores.engine import make_engine
from keelwork.core.budget_promtest import budget_tests
from keelwork.core.budget_rules import budget_rules, budget_runbooks
from keelwork.errors import ErrorDetail, SpecError
from keelwork.service.cost_watch import CostReport, cost_report
from keelwork.service.slos import RulesOutput, dump_yaml, write_markdown
from keelwork.spec.model import KeelSpec, ResolvedSpec

log = logging.getLogger("keelwork.cost")

#: The files ``keel cost rules --out`` writes.
RULES_FILE, TEST_FILE = "cost_budget.rules.yml", "cost_budget.test.yml"


def _budgeted(spec: KeelSpec) -> KeelSpec:
    if spec.cost.monthly_budget is None:
        raise SpecError(
            "keel.yaml sets no budget: add cost.monthly_budget (with a price) first.",
            [ErrorDetail("cost.monthly_budget", "budget_missing", None, "no budget is set")])
    return spec


def cost_rules(resolved: ResolvedSpec, out: Path | None = None, *,
               labels: Mapping[str, str] | None = None,
               runbook_base: str = "runbooks") -> RulesOutput:
    """Prometheus rules for the monthly budget of keel.yaml.

    Args:
        resolved: The spec.
        out: A folder to write ``cost_budget.rules.yml`` and its ``promtool test rules`` file
            ``cost_budget.test.yml``; None: return the rules as YAML text.
        labels: Label matchers added to every metric selector (``job=keel``).
        runbook_base: Folder path or URL the alerts' ``runbook_url`` starts with.

    Raises:
        SpecError: keel.yaml sets no budget.
    """
    spec = _budgeted(resolved.spec)
    rules = budget_rules(spec, labels=labels, runbook_base=runbook_base)
    if out is None:
        return RulesOutput(text=dump_yaml(rules))
    out.mkdir(parents=True, exist_ok=True)
    files = [out / RULES_FILE, out / TEST_FILE]
    write_text_atomic(files[0], dump_yaml(rules))
    write_text_atomic(files[1], dump_yaml(budget_tests(spec, RULES_FILE, labels=labels,
                                                       runbook_base=runbook_base)))
    return RulesOutput(files=files)


def write_budget_runbooks(resolved: ResolvedSpec, out: Path) -> list[Path]:
    """One Markdown runbook per budget alert, ``<out>/<AlertName>.md``.

    Raises:
        SpecError: keel.yaml sets no budget.
    """
    return write_markdown(budget_runbooks(_budgeted(resolved.spec)), out)


def budget_line(spec: KeelSpec) -> str | None:
    """One line saying what watches the budget (None without one), for ``keel serve``."""
    from keelwork.core.budget import share_words
    from keelwork.service.cost_watch import watches_budget

    cost = spec.cost
    if cost.monthly_budget is None:
        return None
    shares = ", ".join(share_words(s) for s in cost.alert_at)
    what = (f"budget {cost.monthly_budget:g} {cost.currency} per calendar month (UTC): alerts "
            f"at {shares} spent and on a month-end forecast over it ({cost.forecast_window} "
            "rate)")
    if watches_budget(spec):
        return f"{what}; watched by this server every {cost.evaluation_interval}"
    if cost.evaluated_by == "prometheus":
        return f"{what}; evaluated by Prometheus with the rules of `keel cost rules`"
    return f"{what}; NOT watched: service.owners and service.on_call reach nobody"


def announce_budget(spec: KeelSpec) -> str | None:
    """Log :func:`budget_line` (what ``keel serve`` does at start) and return it."""
    line = budget_line(spec)
    if line is not None:
        log.info("%s", line)
    return line


def project_cost(resolved: ResolvedSpec, now: float | None = None) -> CostReport:
    """The month's cost per model and version and the budget's status, from the project's
    store (what every server on it stored so far).

    Raises:
        SpecError: keel.yaml sets no price.
        StoreError: the store failed.
    """
    if not resolved.spec.cost.priced:
        raise SpecError("keel.yaml sets no price: add a cost section (cost.cpu_hour, "
                        "cost.per_1k_predictions, ...) first.",
                        [ErrorDetail("cost", "cost_missing", None, "no price is set")])
    engine = make_engine(resolved.storage_url)
    try:
        ledger = CostLedger(engine)
        ledger.ensure_schema()
        return cost_report(resolved.spec, ledger, now)
    finally:
        engine.dispose()


__all__ = ["RULES_FILE", "TEST_FILE", "announce_budget", "budget_line", "cost_rules",
           "project_cost", "write_budget_runbooks"]

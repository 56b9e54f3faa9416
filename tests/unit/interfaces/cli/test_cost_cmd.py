"""``keel cost rules``, ``keel cost runbook``, ``keel cost report``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ruamel.yaml import YAML
from typer.testing import CliRunner

from keelwork.adapters.stores.cost_ledger import CostLedger
from keelwork.adapters.stores.engine import make_engine
from keelwork.interfaces.cli.main import app
from keelwork.spec import load_spec

SPEC = ("service: {{name: shop, owners: [ml@example.com]}}\n"
        "models: [{{name: m, runtime: python, artifact: 'a:b'}}]\n"
        "{cost}")


def _keel(project: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, [*args, "--project", str(project)])
    assert result.exit_code == code, (result.output, result.exception)
    return result.output


def test_rules_print_one_group_and_runbooks_are_written(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text(SPEC.format(
        cost="cost: {per_1k_predictions: 1, monthly_budget: 250, alert_at: [0.9]}\n"))
    doc = YAML(typ="safe").load(_keel(tmp_path, "cost", "rules", "--label", "job=keel"))
    [group] = doc["groups"]
    alerts = [r["alert"] for r in group["rules"] if "alert" in r]
    assert alerts == ["KeelworkCostBudgetSpent90", "KeelworkCostBudgetForecast"]
    mtd = next(r for r in group["rules"] if r.get("record") == "keelwork:cost_month_to_date:sum")
    assert 'keelwork_cost_month_to_date{job="keel"}' in mtd["expr"]
    _keel(tmp_path, "cost", "runbook")
    book = (tmp_path / "runbooks" / "KeelworkCostBudgetSpent90.md").read_text()
    assert "keel cost report" in book and "250 USD per calendar month (UTC)" in book
    assert "- Owners (`service.owners`): ml@example.com" in book


def test_without_a_budget_or_a_price_the_commands_say_what_to_add(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text(SPEC.format(cost="cost: {cpu_hour: 1}\n"))
    assert "add cost.monthly_budget" in " ".join(
        _keel(tmp_path, "cost", "rules", code=2).split())
    (tmp_path / "keel.yaml").write_text(SPEC.format(cost=""))
    assert "keel.yaml sets no price" in " ".join(
        _keel(tmp_path, "cost", "report", code=2).split())


def test_report_shows_the_month_per_version(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text(SPEC.format(
        cost="cost: {currency: EUR, per_1k_predictions: 2, monthly_budget: 10}\n"))
    engine = make_engine(load_spec(tmp_path).storage_url)
    try:
        ledger = CostLedger(engine)
        ledger.ensure_schema()
        ledger.add(dt.datetime.now(dt.UTC).timestamp(), {("m", 4): {"predictions": 1500}})
    finally:
        engine.dispose()
    out = " ".join(_keel(tmp_path, "cost", "report").split())
    assert "(UTC) so far: 3.0000 EUR" in out
    assert "budget 10 EUR: 30.0% spent" in out
    assert "m:4 3.0000 EUR (1500 answers" in out

"""The generated budget rules on the real promtool: ``promtool check rules`` and their own
``promtool test rules`` file (each alert absent at minute T-1, firing at T, with its words),
and a broken threshold failing that test.

Without promtool (Debian package ``prometheus``) these are skipped with the reason, unless
``$CI`` is set: then they fail.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keelwork.interfaces.cli.main import app
from prom import run, tool

SPEC = ("service: {{name: shop, owners: [ml@example.com], on_call: {{contact: "
        "ops@example.com}}}}\n"
        "models: [{{name: m, runtime: python, artifact: 'a:b'}}]\n"
        "cost: {{currency: EUR, per_1k_predictions: 0.4, monthly_budget: {budget}, "
        "alert_at: [{shares}], forecast_window: {window}}}\n")


def _rules(tmp_path: Path, budget: float = 500, shares: str = "0.8, 1.0",
           window: str = "6h", *extra: str) -> Path:
    (tmp_path / "keel.yaml").write_text(SPEC.format(budget=budget, shares=shares,
                                                    window=window))
    out = tmp_path / "rules"
    result = CliRunner().invoke(app, ["cost", "rules", "--project", str(tmp_path), "--out",
                                      str(out), *extra])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.slow
@pytest.mark.parametrize(("budget", "shares", "window"), [
    (500, "0.8, 1.0", "6h"), (12.5, "0.5, 0.9, 1.5", "1h"), (20000, "1.0", "1d")])
def test_budget_rules_pass_promtool_check_and_their_own_test(
        tmp_path: Path, budget: float, shares: str, window: str) -> None:
    promtool = tool("promtool")
    out = _rules(tmp_path, budget, shares, window, "--label", "job=keel")
    assert "SUCCESS" in run(promtool, "check", "rules", "cost_budget.rules.yml", cwd=out)
    assert "SUCCESS" in run(promtool, "test", "rules", "cost_budget.test.yml", cwd=out)
    test = (out / "cost_budget.test.yml").read_text()
    assert test.count("alertname: KeelworkCostBudgetForecast") == 2
    assert "is spent on January" in test and "calendar month, UTC" in test


@pytest.mark.slow
@pytest.mark.parametrize(("old", "new", "alert"), [
    (">= 0.8\n", ">= 0.7\n", "KeelworkCostBudgetSpent80"),
    ("> 500\\n", "> 450\\n", "KeelworkCostBudgetForecast"),
])
def test_a_broken_rule_fails_its_test(tmp_path: Path, old: str, new: str, alert: str) -> None:
    """The generated tests test something: a lower threshold fires early."""
    promtool = tool("promtool")
    out = _rules(tmp_path)
    rules = out / "cost_budget.rules.yml"
    text = rules.read_text()
    assert old in text, text
    rules.write_text(text.replace(old, new))
    done = subprocess.run([promtool, "test", "rules", "cost_budget.test.yml"], cwd=out,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and alert in done.stdout + done.stderr

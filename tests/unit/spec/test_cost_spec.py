"""keel.yaml's cost section: prices accepted, budgets refused until alerts on them are built,
and a section without a price an error with its path and line."""

from __future__ import annotations

import pytest

from keelwork.errors import SpecError
from keelwork.spec.loader import parse_spec

BASE = ("service: {name: s, owners: [a@example.com]}\n"
        "models: [{name: m, runtime: python, artifact: 'a:b'}]\n")


@pytest.mark.parametrize("cost", [
    "{cpu_hour: 0.05}",
    "{per_1k_predictions: 0.2}",
    "{currency: EUR, cpu_hour: 0, per_1k_predictions: 0.2}",
])
def test_prices_are_accepted(cost: str) -> None:
    spec = parse_spec(BASE + f"cost: {cost}\n", env={})
    assert spec.cost.priced
    assert spec.cost.alert_at == [0.8, 1.0]  # the default is no refusal: nobody wrote it


def test_no_cost_section_is_no_price_and_no_error() -> None:
    assert not parse_spec(BASE, env={}).cost.priced


@pytest.mark.parametrize(("cost", "path"), [
    ("{cpu_hour: 0.05, monthly_budget: 500}", "cost.monthly_budget"),
    ("{per_1k_predictions: 1, alert_at: [0.5]}", "cost.alert_at"),
])
def test_budget_fields_stay_refused(cost: str, path: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(BASE + f"cost: {cost}\n", env={})
    [detail] = err.value.details
    assert (detail.path, detail.rule, detail.line) == (path, "not_enforced", 3)
    assert "budget alerts are not built yet" in detail.message


@pytest.mark.parametrize("cost", ["{currency: EUR}", "{}"])
def test_a_cost_section_without_a_price_is_an_error(cost: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(BASE + "\n" + f"cost: {cost}\n", env={})
    [detail] = err.value.details
    assert (detail.path, detail.rule, detail.line) == ("cost", "cost_no_price", 4)
    assert "a cost section needs a price" in detail.message
    assert "cost (line 4)" in str(err.value)


def test_a_budget_without_a_price_is_both_refused_and_an_error() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(BASE + "cost:\n  monthly_budget: 500\n", env={})
    assert sorted((d.path, d.rule, d.line) for d in err.value.details) == [
        ("cost", "cost_no_price", 3), ("cost.monthly_budget", "not_enforced", 4)]


def test_a_negative_price_is_refused() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(BASE + "cost: {cpu_hour: -1}\n", env={})
    assert [d.path for d in err.value.details] == ["cost.cpu_hour"]

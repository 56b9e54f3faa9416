"""keel.yaml's cost section: prices and budgets accepted, and what cannot be enforced (a
section or a budget without a price, shares out of range, duplicate token prices) an error
with its path and line."""

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


def test_a_budget_with_a_price_is_accepted_and_its_shares_sorted() -> None:
    spec = parse_spec(BASE + "cost: {cpu_hour: 0.05, monthly_budget: 500, alert_at: [1.0, "
                      "0.5]}\n", env={})
    assert spec.cost.monthly_budget == 500
    assert spec.cost.alert_at == [0.5, 1.0]
    assert (spec.cost.forecast_seconds, spec.cost.interval_seconds) == (6 * 3600, 60)


@pytest.mark.parametrize(("cost", "path", "words"), [
    ("{cpu_hour: 1, monthly_budget: 500, alert_at: [0]}", "cost.alert_at[0]",
     "greater than 0"),
    ("{cpu_hour: 1, monthly_budget: 500, alert_at: [2.5]}", "cost.alert_at[0]",
     "less than or equal to 2"),
    ("{cpu_hour: 1, monthly_budget: 500, alert_at: [0.8, 0.8]}", "cost.alert_at",
     "each share may appear once"),
    ("{cpu_hour: 1, monthly_budget: 0}", "cost.monthly_budget", "greater than 0"),
    ("{cpu_hour: 1, monthly_budget: -5}", "cost.monthly_budget", "greater than 0"),
    ("{cpu_hour: 1, forecast_window: 40d}", "cost.forecast_window", "between 1s and 31d"),
    ("{cpu_hour: 1, forecast_window: soon}", "cost.forecast_window", "pattern"),
    ("{cpu_hour: 1, gpu_hour: -1}", "cost.gpu_hour", "greater than or equal to 0"),
    ("{token_prices: [{since: 2026-01-01, input_per_1k: 0.5}]}",
     "cost.token_prices[0].output_per_1k", "required"),
    ("{token_prices: [{since: someday, input_per_1k: 0.5, output_per_1k: 1}]}",
     "cost.token_prices[0].since", "date"),
])
def test_bad_budget_and_price_fields_name_their_path(cost: str, path: str, words: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(BASE + f"cost: {cost}\n", env={})
    [detail] = err.value.details
    assert detail.path == path and detail.line == 3
    assert words in detail.message.lower() or words in detail.rule


def test_a_budget_without_a_price_is_an_error_at_its_path() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(BASE + "cost:\n  monthly_budget: 500\n", env={})
    [detail] = err.value.details
    assert (detail.path, detail.rule, detail.line) == ("cost.monthly_budget",
                                                       "budget_no_price", 4)
    assert "a budget needs a price" in detail.message


def test_token_prices_of_one_model_and_day_twice_or_of_an_unknown_model_are_errors() -> None:
    text = ("cost:\n  token_prices:\n"
            "    - {since: 2026-01-01, input_per_1k: 0.5, output_per_1k: 1.5}\n"
            "    - {since: 2026-01-01, input_per_1k: 0.4, output_per_1k: 1.2}\n"
            "    - {since: 2026-01-01, input_per_1k: 0.4, output_per_1k: 1.2, model: nope}\n")
    with pytest.raises(SpecError) as err:
        parse_spec(BASE + text, env={})
    got = sorted((d.path, d.rule, d.line) for d in err.value.details)
    assert got == [("cost.token_prices[1].since", "token_price_duplicate", 6),
                   ("cost.token_prices[2].model", "unknown_model", 7)]
    assert "token_prices[0] already prices every model from 2026-01-01" in str(err.value)


@pytest.mark.parametrize("cost", ["{currency: EUR}", "{}"])
def test_a_cost_section_without_a_price_is_an_error(cost: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(BASE + "\n" + f"cost: {cost}\n", env={})
    [detail] = err.value.details
    assert (detail.path, detail.rule, detail.line) == ("cost", "cost_no_price", 4)
    assert "a cost section needs a price" in detail.message
    assert "cost (line 4)" in str(err.value)


def test_a_negative_price_is_refused() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(BASE + "cost: {cpu_hour: -1}\n", env={})
    assert [d.path for d in err.value.details] == ["cost.cpu_hour"]

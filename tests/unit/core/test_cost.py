"""The cost arithmetic: CPU seconds at cpu_hour, answers at per_1k_predictions, the idle share."""

from __future__ import annotations

import pytest

from keelwork.core.cost import idle_cost, idle_seconds, version_cost
from keelwork.spec.cost import CostSection


def test_cpu_seconds_are_charged_at_the_cpu_hour_price() -> None:
    prices = CostSection(cpu_hour=0.36)
    assert version_cost(prices, 3600.0, 0) == pytest.approx(0.36)
    assert version_cost(prices, 10.0, 5_000) == pytest.approx(0.001)  # answers are free


def test_answers_are_charged_per_thousand() -> None:
    prices = CostSection(per_1k_predictions=0.5)
    assert version_cost(prices, 100.0, 3_000) == 1.5  # CPU is free
    assert version_cost(prices, 0.0, 0) == 0.0


def test_both_prices_add_up() -> None:
    prices = CostSection(cpu_hour=1.8, per_1k_predictions=0.2)
    assert version_cost(prices, 7200.0, 10_000) == pytest.approx(3.6 + 2.0)


def test_the_idle_share_is_the_process_cpu_outside_model_calls() -> None:
    prices = CostSection(cpu_hour=3.6)
    assert idle_seconds(10.0, 4.0) == 6.0
    assert idle_cost(prices, 10.0, 4.0) == pytest.approx(0.006)
    # The two clocks tick apart: a model clock ahead of the process clock is no negative idle.
    assert idle_seconds(1.0, 1.001) == 0.0


def test_a_flat_price_per_answer_has_no_idle_share() -> None:
    assert idle_cost(CostSection(per_1k_predictions=1.0), 10.0, 1.0) is None

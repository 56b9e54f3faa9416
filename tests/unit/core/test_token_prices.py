"""Dated token prices: the entry in effect on the day of a call, per model or for all; a usage
with no price in effect is an error, never a charge of 0."""

from __future__ import annotations

import datetime as dt

import pytest

from keelwork.core.cost import TokenUsage, charge_tokens, token_price, usage_of, version_cost
from keelwork.spec.loader import parse_spec

BASE = ("service: {name: s, owners: [a@example.com]}\n"
        "models: [{name: chat, runtime: python, artifact: 'a:b'}, "
        "{name: other, runtime: python, artifact: 'a:c'}]\n")
PRICES = BASE + """cost:
  gpu_hour: 3.6
  token_prices:
    - {since: 2026-01-01, input_per_1k: 0.5, output_per_1k: 1.5}
    - {since: 2026-06-01, input_per_1k: 0.25, output_per_1k: 1.0}
    - {since: 2026-03-01, input_per_1k: 2, output_per_1k: 4, model: chat}
"""


def _at(day: str) -> float:
    return dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).timestamp()


@pytest.mark.parametrize(("model", "day", "want"), [
    ("other", "2026-01-01", 0.5), ("other", "2026-05-31", 0.5), ("other", "2026-06-01", 0.25),
    ("chat", "2026-02-28", 0.5), ("chat", "2026-03-01", 2.0), ("chat", "2027-01-01", 2.0),
    ("other", "2025-12-31", None),
])
def test_the_price_in_effect_on_a_day(model: str, day: str, want: float | None) -> None:
    prices = parse_spec(PRICES, env={}).cost
    got = token_price(prices, model, dt.date.fromisoformat(day))
    assert (got.input_per_1k if got else None) == want


def test_charging_tokens() -> None:
    prices = parse_spec(PRICES, env={}).cost
    usage = TokenUsage(2000, 500)
    assert charge_tokens(prices, "other", usage, _at("2026-07-04T23:59:59")) == pytest.approx(
        2 * 0.25 + 0.5 * 1.0)
    missing = charge_tokens(prices, "other", usage, _at("2025-12-31T23:00:00"))
    assert missing == ("model other reported 2000 input and 500 output tokens on 2025-12-31, "
                       "and no cost.token_prices entry is in effect for it that day")
    unpriced = parse_spec(BASE + "cost: {cpu_hour: 1}\n", env={}).cost
    assert "keel.yaml sets no cost.token_prices" in str(charge_tokens(
        unpriced, "chat", usage, _at("2026-07-04T00:00:00")))


@pytest.mark.parametrize(("answer", "want"), [
    ({"text": "hi"}, None),
    ([1, 2], None),
    ({"usage": {"input_tokens": 3, "output_tokens": 4}}, TokenUsage(3, 4)),
    ({"usage": {"output_tokens": 4}}, TokenUsage(0, 4)),
    ({"usage": 7}, "'usage' must be a mapping"),
    ({"usage": {"input_tokens": 1.5}}, "usage.input_tokens must be a whole number"),
    ({"usage": {"output_tokens": True}}, "usage.output_tokens must be a whole number"),
])
def test_reading_an_answers_usage(answer: object, want: object) -> None:
    got = usage_of(answer)
    if isinstance(want, str):
        assert isinstance(got, str) and want in got
    else:
        assert got == want


def test_gpu_seconds_and_token_cost_add_to_a_versions_cost() -> None:
    prices = parse_spec(PRICES, env={}).cost
    assert version_cost(prices, cpu_seconds=100, predictions=10, gpu_seconds=3600,
                        token_cost=0.25) == pytest.approx(3.6 + 0.25)

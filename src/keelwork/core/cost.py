"""The cost of serving, from measured CPU and GPU time, answer counts and reported tokens at
keel.yaml's unit prices.

Per model version: its model calls' CPU seconds at ``cost.cpu_hour``, GPU seconds at
``cost.gpu_hour``, its answers at ``cost.per_1k_predictions`` and its tokens at the
``cost.token_prices`` in effect on the day (UTC) of each call (:func:`version_cost`,
:func:`token_price`). A token usage with no price in effect is an error (:func:`charge_tokens`
says so), never charged as free. The process's remaining CPU time (parsing,
the log writer, the event loop, runtimes' helper threads) is the idle share, kept apart as
OpenCost keeps a cluster's idle cost apart (:func:`idle_cost`). A price that is not set adds
nothing; keel.yaml must set at least one (:func:`keelwork.spec.cost.cost_problems`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keelwork.spec.cost import CostSection, TokenPrice

SECONDS_PER_HOUR = 3600.0


def version_cost(prices: CostSection, cpu_seconds: float, predictions: float,
                 gpu_seconds: float = 0.0, token_cost: float = 0.0) -> float:
    """What one model version cost, in ``prices.currency``.

    Args:
        prices: keel.yaml's cost section.
        cpu_seconds: CPU seconds its model calls used (in the threads that ran them).
        predictions: Instances it answered.
        gpu_seconds: GPU seconds its model calls used (runtimes that measure them).
        token_cost: What its reported tokens cost, already priced per day
            (:func:`charge_tokens`).

    Returns:
        ``cpu_seconds / 3600 * cpu_hour + gpu_seconds / 3600 * gpu_hour + predictions / 1000
        * per_1k_predictions + token_cost``, an unset price counting as no charge.
    """
    total = token_cost
    if prices.cpu_hour is not None:
        total += cpu_seconds / SECONDS_PER_HOUR * prices.cpu_hour
    if prices.gpu_hour is not None:
        total += gpu_seconds / SECONDS_PER_HOUR * prices.gpu_hour
    if prices.per_1k_predictions is not None:
        total += predictions / 1000.0 * prices.per_1k_predictions
    return total


# --------------------------------------------------------------------------- tokens
@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Tokens one answer reports (its ``usage`` field)."""

    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(self.input_tokens + other.input_tokens,
                          self.output_tokens + other.output_tokens)


#: The key of an answer (a mapping) that reports its token usage.
USAGE_KEY = "usage"


def usage_of(answer: Any) -> TokenUsage | str | None:
    """The token usage ``answer`` reports: an answer that is a mapping with a ``usage`` key
    holding ``{"input_tokens": int, "output_tokens": int}`` (either may be left out).

    Returns:
        The usage; None when the answer reports none; a sentence when ``usage`` is malformed
        (counted as an error: a usage keelwork cannot read is not free either).
    """
    if not isinstance(answer, Mapping) or USAGE_KEY not in answer:
        return None
    usage = answer[USAGE_KEY]
    if not isinstance(usage, Mapping):
        return f"'usage' must be a mapping of input_tokens and output_tokens; got {usage!r}"
    counts = []
    for key in ("input_tokens", "output_tokens"):
        n = usage.get(key, 0)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            return f"usage.{key} must be a whole number >= 0; got {n!r}"
        counts.append(n)
    return TokenUsage(counts[0], counts[1])


def token_price(prices: CostSection, model: str, day: dt.date) -> TokenPrice | None:
    """The token prices in effect for ``model`` on ``day`` (UTC): the latest entry of that
    model from that day or before, else the latest entry for every model; None: none."""
    def latest(entries: list[TokenPrice]) -> TokenPrice | None:
        current = [p for p in entries if p.since <= day]
        return max(current, key=lambda p: p.since) if current else None

    own = latest([p for p in prices.token_prices if p.model == model])
    return own if own is not None else latest([p for p in prices.token_prices
                                               if p.model is None])


def charge_tokens(prices: CostSection, model: str, usage: TokenUsage,
                  at: float) -> float | str:
    """What ``usage`` of ``model`` at ``at`` (seconds since the epoch) costs.

    Returns:
        The cost in ``prices.currency``, or a sentence saying why it cannot be priced (no
        price in effect that day): an error to count, never a charge of 0 (litellm #20412).
    """
    day = dt.datetime.fromtimestamp(at, dt.UTC).date()
    price = token_price(prices, model, day)
    if price is None:
        if not prices.token_prices:
            return (f"model {model} reported {usage.input_tokens} input and "
                    f"{usage.output_tokens} output tokens but keel.yaml sets no "
                    "cost.token_prices")
        return (f"model {model} reported {usage.input_tokens} input and "
                f"{usage.output_tokens} output tokens on {day.isoformat()}, and no "
                "cost.token_prices entry is in effect for it that day")
    return (usage.input_tokens / 1000.0 * price.input_per_1k
            + usage.output_tokens / 1000.0 * price.output_per_1k)


def idle_seconds(process_cpu_seconds: float, model_cpu_seconds: float) -> float:
    """The process's CPU seconds spent outside model calls (never below zero: the two clocks
    tick at their own granularity)."""
    return max(0.0, process_cpu_seconds - model_cpu_seconds)


def idle_cost(prices: CostSection, process_cpu_seconds: float,
              model_cpu_seconds: float) -> float | None:
    """The idle share: CPU the process used outside model calls, at ``cpu_hour``.

    Args:
        prices: keel.yaml's cost section.
        process_cpu_seconds: The serving process's CPU seconds (every thread).
        model_cpu_seconds: The CPU seconds of its model calls, every version together.

    Returns:
        The cost in ``prices.currency``; None without a ``cpu_hour`` price (answers are not
        CPU, so a flat price per answer has no idle share).
    """
    if prices.cpu_hour is None:
        return None
    return (idle_seconds(process_cpu_seconds, model_cpu_seconds) / SECONDS_PER_HOUR
            * prices.cpu_hour)


__all__ = ["USAGE_KEY", "TokenUsage", "charge_tokens", "idle_cost", "idle_seconds",
           "token_price", "usage_of", "version_cost"]

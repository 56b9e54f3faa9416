"""The cost of serving, from measured CPU time and answer counts at keel.yaml's unit prices.

Per model version: its model calls' CPU seconds at ``cost.cpu_hour`` plus its answers at
``cost.per_1k_predictions`` (:func:`version_cost`). The process's remaining CPU time (parsing,
the log writer, the event loop, runtimes' helper threads) is the idle share, kept apart as
OpenCost keeps a cluster's idle cost apart (:func:`idle_cost`). A price that is not set adds
nothing; keel.yaml must set at least one (:func:`keelwork.spec.cost.cost_problems`).
"""

from __future__ import annotations

from keelwork.spec.cost import CostSection

SECONDS_PER_HOUR = 3600.0


def version_cost(prices: CostSection, cpu_seconds: float, predictions: float) -> float:
    """What one model version cost, in ``prices.currency``.

    Args:
        prices: keel.yaml's cost section.
        cpu_seconds: CPU seconds its model calls used (in the threads that ran them).
        predictions: Instances it answered.

    Returns:
        ``cpu_seconds / 3600 * cpu_hour + predictions / 1000 * per_1k_predictions``, an unset
        price counting as no charge.
    """
    total = 0.0
    if prices.cpu_hour is not None:
        total += cpu_seconds / SECONDS_PER_HOUR * prices.cpu_hour
    if prices.per_1k_predictions is not None:
        total += predictions / 1000.0 * prices.per_1k_predictions
    return total


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


__all__ = ["idle_cost", "idle_seconds", "version_cost"]

"""The ``promtool test rules`` file of the budget rules: each alert absent at minute T-1 and
firing at T, T computed here from the budget arithmetic, not from a run of Prometheus.

promtool's clock starts at 1970-01-01 00:00 UTC: a 31-day month, with every test inside its
first day, so the seconds left in the month at minute m are ``31 x 86400 - 60 m``.

- *spent*: one version spends ``r`` per minute from minute 0 (the month's start, so its
  month-to-date equals its counter); the ``s`` share alert fires at the first minute m with
  ``r m >= s B``; ``r`` is chosen so that every crossing lies at least a tenth of a minute
  from a whole minute, and after the forecast window is full, so the rate is exact;
- *forecast*: a slow spend well under the budget for longer than the forecast window, then a
  fast one; the forecast (month-to-date + window rate x seconds left) first exceeds the budget
  at minute T, found by stepping the same arithmetic over the same samples minute by minute.

The series are written as promtool expands them (``a+bxN``: repeated addition), and the
arithmetic here repeats Prometheus's own (``rate`` over samples at both ends of the window is
their difference over the window), so the expected words are the numbers Prometheus prints.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from keelwork.core.budget import (
    FORECAST_ALERT,
    alert_labels,
    budget_alerts,
    budget_annotations,
    budget_sentence,
    day_words,
)
from keelwork.core.budget_rules import COST_TOTAL, MONTH_TO_DATE
from keelwork.core.slo.rules import runbook_link
from keelwork.spec.model import KeelSpec

MONTH_S = 31 * 86_400


def _values(segments: list[tuple[int, float]]) -> list[float]:
    """Samples (one a minute from minute 0) of a counter growing ``rate`` a minute for
    ``minutes`` per segment, accumulated as promtool expands ``a+bxN``."""
    out = [0.0]
    for minutes, rate in segments:
        for _ in range(minutes):
            out.append(out[-1] + rate)
    return out


def _series_text(segments: list[tuple[int, float]]) -> str:
    """``_values(segments)`` in promtool's notation: the first segment from 0, each next one
    from its first sample (the exact float, so promtool accumulates the same numbers)."""
    vals = _values(segments)
    (first_min, first_rate), *rest = segments
    parts = [f"0+{first_rate!r}x{first_min}"]
    at = first_min
    for minutes, rate in rest:
        parts.append(f"{vals[at + 1]!r}+{rate!r}x{minutes - 1}")
        at += minutes
    return " ".join(parts)


def _rate(vals: list[float], minute: int, window_min: int) -> float:
    return (vals[minute] - vals[minute - window_min]) / (window_min * 60.0)


class _Month:
    """The budget arithmetic over one scripted series."""

    def __init__(self, spec: KeelSpec, vals: list[float]) -> None:
        self.cost = spec.cost
        assert self.cost.monthly_budget is not None
        self.budget = self.cost.monthly_budget
        self.vals = vals
        self.window_min = self.cost.forecast_seconds // 60

    def forecast(self, m: int) -> float:
        return self.vals[m] + _rate(self.vals, m, self.window_min) * (MONTH_S - 60 * m)

    def words(self, m: int) -> tuple[str, str]:
        """The sentence and the forecast, as the alert prints them at minute ``m``."""
        spent, rate = self.vals[m], _rate(self.vals, m, self.window_min)
        pct = f"{100 * spent / self.budget:.0f}"
        if spent / self.budget >= 1:
            sentence = budget_sentence(self.cost, None, pct, gone=True)
        else:
            at = 60 * m + (self.budget - spent) / rate if rate > 0 else math.inf
            sentence = budget_sentence(self.cost, day_words(at) if at < MONTH_S else None, pct)
        return sentence, f"{self.forecast(m):.2f}"


def _case(spec: KeelSpec, segments: list[tuple[int, float]], name: str, minute: int,
          extra: Mapping[str, str], runbook_base: str) -> dict[str, Any]:
    month = _Month(spec, _values(segments))
    labels = {"model": "m", "version": "1", "currency": spec.cost.currency, **extra}
    sel = "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
    text = _series_text(segments)
    [a] = [a for a in budget_alerts(spec.cost) if a.name == name]
    sentence, forecast = month.words(minute)
    notes = budget_annotations(spec.cost, spec.service.name, a, runbook_link(runbook_base, a.name),
                        sentence=sentence, forecast=forecast)
    want = alert_labels(spec.service.name, a)
    del want["alertname"]
    want["currency"] = spec.cost.currency
    return {
        "interval": "1m",
        "input_series": [{"series": f"{COST_TOTAL}{sel}", "values": text},
                         {"series": f"{MONTH_TO_DATE}{sel}", "values": text}],
        "alert_rule_test": [
            {"eval_time": f"{minute - 1}m", "alertname": name, "exp_alerts": []},
            {"eval_time": f"{minute}m", "alertname": name,
             "exp_alerts": [{"exp_labels": want, "exp_annotations": notes}]}]}


def _spent_rate(spec: KeelSpec) -> tuple[float, int]:
    """A rate a minute whose every threshold crossing is clear of whole minutes and after the
    forecast window (so the window is full), and the minutes to script."""
    budget = spec.cost.monthly_budget
    assert budget is not None
    shares = spec.cost.alert_at
    window_min = spec.cost.forecast_seconds // 60
    first = window_min + 60
    for k in range(1, 2000):
        rate = float(f"{shares[0] * budget / (first + k * 0.37):.6g}")
        crossings = [s * budget / rate for s in shares]
        if all(0.1 < c % 1 < 0.9 and c > window_min + 1 for c in crossings):
            return rate, math.ceil(max(crossings)) + 2
    raise ValueError("no clear rate found")  # pragma: no cover


def _forecast_case(spec: KeelSpec) -> tuple[list[tuple[int, float]], int]:
    """Slow, then fast: the segments and the minute the forecast first exceeds the budget."""
    budget = spec.cost.monthly_budget
    assert budget is not None
    window_min = spec.cost.forecast_seconds // 60
    slow = budget * 0.3 / (MONTH_S / 60)  # the month at this rate: 30% of the budget
    for k in range(1, 200):
        fast = slow * (20 + k * 0.73)
        slow_min = window_min + 30
        segments = [(slow_min, float(f"{slow:.6g}")), (window_min, float(f"{fast:.6g}"))]
        month = _Month(spec, _values(segments))
        over = [m for m in range(slow_min, slow_min + window_min)
                if month.forecast(m) > budget]
        if not over:
            continue
        t = over[0]
        margin = min(month.forecast(t) - budget, budget - month.forecast(t - 1))
        if margin > budget * 1e-6 and month.vals[t] < budget:
            return segments, t
    raise ValueError("no clear forecast case found")  # pragma: no cover


def budget_tests(spec: KeelSpec, rule_file: str, *, labels: Mapping[str, str] | None = None,
                 runbook_base: str = "runbooks") -> dict[str, Any]:
    """The ``promtool test rules`` document of the budget rules in ``rule_file``."""
    extra = dict(labels or {})
    rate, minutes = _spent_rate(spec)
    spent_segments = [(minutes, rate)]
    budget = spec.cost.monthly_budget
    assert budget is not None
    cases = []
    for a in budget_alerts(spec.cost):
        if a.share is not None:
            minute = math.ceil(a.share * budget / rate)
            cases.append(_case(spec, spent_segments, a.name, minute, extra, runbook_base))
    segments, t = _forecast_case(spec)
    cases.append(_case(spec, segments, FORECAST_ALERT, t, extra, runbook_base))
    return {"rule_files": [rule_file], "evaluation_interval": "1m", "tests": cases}


__all__ = ["budget_tests"]

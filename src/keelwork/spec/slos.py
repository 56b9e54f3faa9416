"""keel.yaml's ``slos`` section: the service level objectives and how their alerts burn.

The objectives are enforced by Prometheus with the rules ``keel slo rules`` generates
(:mod:`keelwork.core.slo`). What can be checked without Prometheus is checked here, at
``keel spec validate``: a latency threshold must be a bucket of keelwork's latency histogram
(otherwise no query counts requests under it exactly), a burn tier must be able to fire, and
(with the models' batching, :func:`slo_problems`) a p99 must be reachable at all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import Field, PositiveFloat, PositiveInt, field_validator, model_validator
from pydantic_core import PydanticCustomError

from keelwork.spec.durations import UNIT_SECONDS
from keelwork.spec.metric_names import LATENCY_BUCKETS, REQUEST_DURATION
from keelwork.spec.section import Section, check_name

_DURATION = r"^\d+[smhd]$"
#: The shortest SLO window: the workbook's alert windows scale with it, and below a day its
#: fastest tier's short window would be under a minute (one or two scrapes).
MIN_WINDOW_S = 86_400


def duration_seconds(text: str) -> int:
    """``30d`` -> 2592000 (the grammar of :data:`_DURATION`: a whole number and s, m, h, d)."""
    return int(text[:-1]) * int(UNIT_SECONDS[text[-1]])


class SloTier(Section):
    """One multiwindow burn-rate alert: fires while both windows burn faster than the rate."""

    name: str = Field(description="The tier's name (label 'tier', part of the alert's name).")
    severity: Literal["page", "ticket"] = "page"
    long_window: str = Field(pattern=_DURATION, description="e.g. 1h: how much budget burnt.")
    short_window: str = Field(pattern=_DURATION, description="e.g. 5m: is it still burning "
                              "(the alert resolves soon after the burn stops).")
    burn_rate: PositiveFloat = Field(description="Multiple of the rate that spends exactly "
                                     "the budget over the window (14.4 spends 2% in 1h of 30d).")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v, "a tier name")

    @model_validator(mode="after")
    def _windows(self) -> SloTier:
        if duration_seconds(self.short_window) >= duration_seconds(self.long_window):
            raise PydanticCustomError(
                "tier_windows", "tier {name}: short_window must be shorter than long_window; "
                "got {short} and {long}", {"name": self.name, "short": self.short_window,
                                           "long": self.long_window})
        return self


class SloSection(Section):
    latency_p99_ms: PositiveFloat | None = Field(
        default=None, description="99% of answered requests within this many ms; must be a "
        "bucket of keelwork_request_duration_seconds (e.g. 50, 100, 250).")
    error_rate: Annotated[float, Field(ge=0, le=1)] | None = Field(
        default=None, description="Share of requests that may fail (status error).")
    availability: Annotated[float, Field(gt=0, le=1)] | None = Field(
        default=None, description="Share of requests answered (not error nor overloaded).")
    throughput_rps: PositiveFloat | None = Field(
        default=None, description="Floor of answered requests per second, per model.")
    window: str = Field(default="30d", pattern=_DURATION)
    tiers: list[SloTier] | None = Field(
        default=None, description="Burn-rate alerts; default: the SRE workbook's for 30 days "
        "(1h/5m at 14.4x and 6h/30m at 6x page, 3d/6h at 1x ticket), windows scaled to "
        "'window'.")
    evaluation_interval: str = Field(
        default="30s", pattern=_DURATION, description="How often a server with contacts to "
        "alert evaluates the SLOs itself over its prediction log (without Prometheus).")
    evaluated_by: Literal["server", "prometheus"] = Field(
        default="server", description="Who evaluates the SLOs and notifies: 'server' (keel "
        "serve itself, over its prediction log) or 'prometheus' (Prometheus with the rules of "
        "keel slo rules, Alertmanager delivering; the server then sends nothing, so nobody is "
        "notified twice).")
    min_events: PositiveInt = Field(
        default=100, description="Requests a tier's long window must hold before it alerts: "
        "a handful of failures at night is no burn.")

    @field_validator("latency_p99_ms")
    @classmethod
    def _bucket(cls, v: float | None) -> float | None:
        if v is None:
            return v
        bounds_ms = [b * 1000.0 for b in LATENCY_BUCKETS]
        if any(math.isclose(v, b, rel_tol=1e-9) for b in bounds_ms):
            return v
        below = [b for b in bounds_ms if b < v]
        above = [b for b in bounds_ms if b > v]
        near = " and ".join(f"{b:g}" for b in (below[-1:] + above[:1]))
        raise PydanticCustomError(
            "latency_bucket", "must be a bucket of {metric} so that requests under it are "
            "counted exactly; the nearest are {near} (ms); got {got}",
            {"metric": REQUEST_DURATION, "near": near, "got": f"{v:g}"})

    @model_validator(mode="after")
    def _tiers(self) -> SloSection:
        window_s = duration_seconds(self.window)
        if window_s < MIN_WINDOW_S:
            raise PydanticCustomError(
                "slo_window", "slos.window must be at least 1d (the alert windows scale with "
                "it); got {got}", {"got": self.window})
        names: set[str] = set()
        for t in self.tiers or ():
            if t.name in names:
                raise PydanticCustomError("duplicate_tier", "tier name {name} appears twice",
                                          {"name": repr(t.name)})
            names.add(t.name)
            if duration_seconds(t.long_window) > window_s:
                raise PydanticCustomError(
                    "tier_window", "tier {name}: long_window {long} is longer than the SLO "
                    "window {window}", {"name": t.name, "long": t.long_window,
                                        "window": self.window})
        return self

    @field_validator("evaluation_interval")
    @classmethod
    def _interval(cls, v: str) -> str:
        if duration_seconds(v) < 1:
            raise PydanticCustomError("slo_interval", "slos.evaluation_interval must be at "
                                      "least 1s; got {got}", {"got": v})
        return v

    @property
    def window_seconds(self) -> int:
        return duration_seconds(self.window)

    def budgets(self) -> dict[str, float]:
        """The error budget (allowed share of bad events) of each ratio objective set."""
        out: dict[str, float] = {}
        if self.availability is not None:
            out["availability"] = 1.0 - self.availability
        if self.error_rate is not None:
            out["error_rate"] = self.error_rate
        if self.latency_p99_ms is not None:
            out["latency_p99"] = 0.01
        return out


Problem = tuple[tuple[str | int, ...], str, object, str]


#: The SRE workbook's multiwindow, multi-burn-rate table for a 30-day window (chapter
#: "Alerting on SLOs"): 2% of the budget in 1h and 5% in 6h page, 10% in 3d opens a ticket.
#: For another window, :mod:`keelwork.core.slo` scales the windows and keeps the rates (so each
#: tier still fires on the same share of the budget).
WORKBOOK_TIERS: tuple[SloTier, ...] = (
    SloTier(name="fast", severity="page", long_window="1h", short_window="5m",
            burn_rate=14.4),
    SloTier(name="slow", severity="page", long_window="6h", short_window="30m",
            burn_rate=6.0),
    SloTier(name="ticket", severity="ticket", long_window="3d", short_window="6h",
            burn_rate=1.0),
)
WORKBOOK_WINDOW_S = 30 * 86_400


def slo_problems(slos: SloSection,
                 batching_waits: Mapping[int, float | None]) -> list[Problem]:
    """What makes an SLO unmeetable or an alert unable to fire, given the rest of the spec.

    Args:
        slos: The section.
        batching_waits: Per model (index in ``models``), its batching ``max_wait_ms`` when
            batching is on, else None.

    Returns:
        ``(path, rule, got, message)`` per problem.
    """
    out: list[Problem] = []
    p99 = slos.latency_p99_ms
    if p99 is not None:
        for i, wait in sorted(batching_waits.items()):
            if wait is not None and p99 <= wait:
                out.append((("slos", "latency_p99_ms"), "slo_unmeetable", p99,
                            f"{p99:g} ms cannot be met: a request can "
                            f"wait models[{i}].batching.max_wait_ms ({wait:g} ms) for its batch "
                            "before the model runs; raise the SLO or lower the wait"))
    for key, budget in slos.budgets().items():
        for t in slos.tiers or WORKBOOK_TIERS:
            tier, rate = t.name, t.burn_rate
            if rate * budget >= 1.0:
                path: tuple[str | int, ...] = ("slos", "tiers") if slos.tiers else ("slos", key)
                out.append((path, "tier_never_fires", rate,
                            f"the {tier} alert of slos.{key} can never fire: burning "
                            f"{rate:g}x a budget of {budget:.4g} needs more than 100% bad "
                            "events; set slos.tiers with lower burn rates or a stricter "
                            "objective"))
    return out


__all__ = ["WORKBOOK_TIERS", "SloSection", "SloTier", "duration_seconds", "slo_problems"]

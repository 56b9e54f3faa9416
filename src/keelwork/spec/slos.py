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

from keelwork.spec.metric_names import LATENCY_BUCKETS, REQUEST_DURATION
from keelwork.spec.quality_slos import FLOOR_METRICS, QualitySlo, check_unique
from keelwork.spec.section import Section
from keelwork.spec.slo_tier import DURATION, MIN_WINDOW_S, SloTier, duration_seconds

_DURATION = DURATION


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
    quality: list[QualitySlo] = Field(
        default_factory=list, description="SLOs on the models' answers (accuracy, f1, mae, "
        "violation_rate, null_rate, label_coverage), counted from the prediction log and the "
        "labels and always evaluated by the server itself (keelwork.spec.quality_slos).")

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
        check_unique(self.quality)
        if window_s < MIN_WINDOW_S:
            raise PydanticCustomError(
                "slo_window", "slos.window must be at least 1d (the alert windows scale with "
                "it); got {got}", {"got": self.window})
        names: set[str] = set()
        for q in self.quality:
            for t in q.tiers or ():
                if duration_seconds(t.long_window) > window_s:
                    raise PydanticCustomError(
                        "tier_window", "quality SLO {q}, tier {name}: long_window {long} is "
                        "longer than the SLO window {window}",
                        {"q": q.name, "name": t.name, "long": t.long_window,
                         "window": self.window})
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
    for i, q in enumerate(slos.quality):
        if q.metric == "mae":  # a mean error, not a share: any burn rate can be reached
            continue
        budget = 1.0 - q.objective if q.metric in FLOOR_METRICS else q.objective
        for t in q.tiers or slos.tiers or WORKBOOK_TIERS:
            if t.burn_rate * budget >= 1.0:
                out.append((("slos", "quality", i, "objective"), "tier_never_fires",
                            t.burn_rate, f"the {t.name} alert of quality SLO {q.name} can "
                            f"never fire: burning {t.burn_rate:g}x a budget of {budget:.4g} "
                            "needs more than 100% bad events; give it tiers of lower burn "
                            f"rates (slos.quality[{i}].tiers) or a stricter objective"))
    return out


__all__ = ["WORKBOOK_TIERS", "SloSection", "SloTier", "duration_seconds", "slo_problems"]

"""keel.yaml's ``server``: where ``keel serve`` listens, and how many copies of the app run.

``workers`` is for the default engine (``keel serve``: uvicorn worker processes on this
machine); ``replicas`` for ``keel serve --engine ray`` (Ray Serve replicas, which Ray's
autoscaler adds and removes between ``min`` and ``max`` on the requests in flight).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, PositiveFloat, PositiveInt, model_validator

from keelwork.spec.section import Section


class ReplicasSection(Section):
    """Ray Serve replicas of ``keel serve --engine ray`` (``--replicas N`` runs N instead)."""

    min: PositiveInt = Field(default=1, description="Replicas running at the least.")
    max: PositiveInt | None = Field(
        default=None, description="Replicas at the most; above min, Ray Serve's autoscaler "
        "adds replicas when the requests in flight per replica pass target_ongoing_requests "
        "and removes them when idle. Default: min (that many, always).")
    target_ongoing_requests: PositiveFloat | None = Field(
        default=None, description="Requests in flight per replica the autoscaler aims at "
        "(only with max above min). Default: 2.")

    @model_validator(mode="after")
    def _bounds(self) -> ReplicasSection:
        if self.max is not None and self.max < self.min:
            raise ValueError(f"max ({self.max}) must be >= min ({self.min})")
        if self.target_ongoing_requests is not None and not self.autoscales:
            raise ValueError("target_ongoing_requests steers the autoscaler, which runs only "
                             "when max is above min; set max, or leave it out")
        return self

    @property
    def autoscales(self) -> bool:
        """Whether Ray Serve's autoscaler decides the count (max above min)."""
        return self.max is not None and self.max > self.min

    @property
    def most(self) -> int:
        """The replicas that may run at once."""
        return self.max if self.max is not None else self.min

    @property
    def target(self) -> float:
        """Requests in flight per replica the autoscaler aims at."""
        return 2.0 if self.target_ongoing_requests is None else self.target_ongoing_requests


class ServerSection(Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    workers: PositiveInt = 1
    replicas: ReplicasSection = Field(default_factory=ReplicasSection, description=(
        "keel serve --engine ray's replicas (keelwork.spec.server.ReplicasSection)."))
    tracing: bool = Field(default=False, description="OpenTelemetry server spans (extra 'otel').")


__all__ = ["ReplicasSection", "ServerSection"]

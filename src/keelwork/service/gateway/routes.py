"""A rollout's in-memory split of one model's traffic (:class:`RolloutRoute`) and the per-arm
outcomes of its current analysis interval (:class:`RolloutWindow`).

The rollout controller (:mod:`keelwork.service.rollout.controller`) installs a route in the
gateway and swaps its window every interval; the gateway draws each bare-name request's arm
from it. Nothing here touches a store.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from keelwork.core.rollout.analysis import ArmStats
from keelwork.service.gateway.host import ModelHost


@dataclass(slots=True)
class RolloutWindow:
    """Both arms' outcomes during one analysis interval."""

    champion: ArmStats = field(default_factory=ArmStats)
    challenger: ArmStats = field(default_factory=ArmStats)
    shadow_dropped: int = 0


@dataclass(slots=True)
class RolloutRoute:
    """How bare-name requests of one model are split while its rollout is active."""

    rollout_id: int
    revision: int
    strategy: str
    weight: int
    champion: ModelHost
    challenger: ModelHost
    window: RolloutWindow = field(default_factory=RolloutWindow)
    salt: str = ""

    def __post_init__(self) -> None:
        self.salt = self.salt or f"rollout-{self.rollout_id}"

    def arm(self, challenger: bool) -> ArmStats:
        return self.window.challenger if challenger else self.window.champion


__all__ = ["RolloutRoute", "RolloutWindow"]

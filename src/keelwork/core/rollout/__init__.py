"""Rollouts (canary, shadow, A/B): the state machine, gate analysis, assignment, A/B test."""

from keelwork.core.rollout.analysis import ArmStats, Decision, GateResult, decide, evaluate
from keelwork.core.rollout.assignment import bucket, to_challenger
from keelwork.core.rollout.state import (
    ACTIVE,
    Rollout,
    RolloutEvent,
    parse_interval,
)
from keelwork.errors import TransitionError

__all__ = ["ACTIVE", "ArmStats", "Decision", "GateResult", "Rollout", "RolloutEvent",
           "TransitionError", "bucket", "decide", "evaluate", "parse_interval", "to_challenger"]

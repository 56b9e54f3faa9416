"""The rollout's fairness gate: it fails only when the challenger's gap between protected
groups is beyond the threshold with confidence and worse than the champion's."""

from __future__ import annotations

from keelwork.core.rollout.analysis import ArmStats, decide
from keelwork.core.rollout.state import Rollout


def _rollout() -> Rollout:
    return Rollout("m", 1, 2, steps=(10, 100), min_requests=20, max_failures=1,
                   gates={"max_fairness_difference": 0.1}, phase="progressing", step=0)


def _arm(fairness: tuple[float | None, float | None, str] | None) -> ArmStats:
    a = ArmStats()
    for _ in range(50):
        a.record("ok", 5.0, ["good"])
    a.fairness = fairness
    return a


def _gate(champion: ArmStats, challenger: ArmStats) -> tuple[str, str, dict]:
    d = decide(_rollout(), champion, challenger)
    [g] = [g for g in d.gates if g.gate == "fairness_difference"]
    return g.status, d.action, g.as_dict()


def test_a_confident_gap_worse_than_the_champions_rolls_back() -> None:
    status, action, gate = _gate(_arm((0.05, 0.02, "sex demographic_parity_difference")),
                                 _arm((0.25, 0.15, "sex demographic_parity_difference")))
    assert (status, action) == ("fail", "abort")
    assert gate["challenger"] == 0.25 and gate["champion"] == 0.05
    assert "sex demographic_parity_difference 0.250 (lower bound 0.150) > 0.1" in gate["why"]


def test_a_gap_that_may_be_noise_passes() -> None:
    # point estimate over the threshold, interval reaching under it: not judged a failure
    status, action, _ = _gate(_arm((0.05, 0.02, "x")), _arm((0.25, 0.08, "x")))
    assert (status, action) == ("pass", "advance")


def test_a_gap_the_champion_has_too_is_not_the_challengers_fault() -> None:
    status, _, _ = _gate(_arm((0.30, 0.2, "x")), _arm((0.25, 0.15, "x")))
    assert status == "pass"
    # without a champion reading, the threshold alone decides
    status, _, _ = _gate(_arm(None), _arm((0.25, 0.15, "x")))
    assert status == "fail"


def test_no_groups_to_compare_is_no_data_and_pauses() -> None:
    status, action, gate = _gate(_arm(None), _arm((None, None, "no protected field has two "
                                                   "groups of 30 labelled answers")))
    assert (status, action) == ("no_data", "pause")
    assert "no protected field" in gate["why"]

"""Gate evaluation: pass/fail/no_data per gate with the values, and the interval's decision."""

from __future__ import annotations

import random

import pytest

from keelwork.core.rollout.analysis import (
    ArmStats,
    decide,
    evaluate,
    field_pairs,
    ks_statistic,
    p99,
    prediction_drift,
)
from keelwork.core.rollout.state import Rollout

GATES = {"max_error_rate": 0.05, "max_p99_latency_ms": 100.0,
         "max_contract_violation_rate": 0.05, "max_prediction_drift": 0.3, "min_accuracy": None}



def _rollout(step: int = 0, failures: int = 0) -> Rollout:
    return Rollout("m", 1, 2, steps=(10, 100), min_requests=20, max_failures=2,
                   gates=dict(GATES), phase="progressing", step=step, failures=failures)


def _arm(n: int, errors: int = 0, latency: float = 10.0, outputs: float = 1.0,
         rejected: int = 0) -> ArmStats:
    a = ArmStats()
    rnd = random.Random(n)
    for i in range(n):
        status = "error" if i < errors else "rejected" if i < errors + rejected else "ok"
        a.record(status, latency + rnd.random(), [outputs + rnd.random()])
    return a


def test_healthy_challenger_passes_and_advances() -> None:
    d = decide(_rollout(), _arm(50), _arm(30))
    assert d.outcome == "pass" and d.action == "advance"
    assert {g.gate for g in d.gates} == {"error_rate", "p99_latency_ms",
                                         "contract_violation_rate", "prediction_drift"}
    assert all(g.status == "pass" for g in d.gates)


def test_no_data_is_its_own_state_not_a_pass_nor_a_failure() -> None:
    d = decide(_rollout(), _arm(50), _arm(5, errors=5))
    assert d.outcome == "no_data" and d.action == "hold"
    assert all(g.status == "no_data" for g in d.gates)
    assert "5 of the 20 requests" in d.reason


@pytest.mark.parametrize("challenger,gate", [
    (_arm(40, errors=10), "error_rate"),
    (_arm(40, latency=300.0), "p99_latency_ms"),
    (_arm(40, outputs=50.0), "prediction_drift"),
    (_arm(40, rejected=10), "contract_violation_rate"),
])
def test_failing_values_are_recorded_with_the_decision(challenger: ArmStats, gate: str) -> None:
    d = decide(_rollout(), _arm(60), challenger)
    failed = [g for g in d.gates if g.status == "fail"]
    assert [g.gate for g in failed] == [gate]
    g = failed[0]
    assert g.challenger is not None and g.challenger > g.threshold
    assert d.outcome == "fail" and d.action == "hold" and "failure 1/2" in d.reason
    body = d.as_dict()
    assert body["gates"][[x["gate"] for x in body["gates"]].index(gate)]["status"] == "fail"


def test_consecutive_failures_reaching_the_threshold_abort() -> None:
    d = decide(_rollout(failures=1), _arm(60), _arm(40, errors=10))
    assert d.action == "abort" and "failure 2/2" in d.reason


def test_a_fault_the_champion_shares_is_not_the_challengers() -> None:
    d = decide(_rollout(), _arm(60, errors=20), _arm(40, errors=8))
    assert [g.status for g in d.gates if g.gate == "error_rate"] == ["pass"]


def test_at_full_weight_the_threshold_alone_decides() -> None:
    d = decide(_rollout(step=1), ArmStats(), _arm(40, errors=10))
    assert d.outcome == "fail"
    assert [g.gate for g in d.gates if g.status == "no_data"] == ["prediction_drift"]


def test_missing_labels_make_the_interval_inconclusive_and_pause() -> None:
    r = Rollout("m", 1, 2, min_requests=20, phase="progressing",
                gates={**GATES, "min_accuracy": 0.8})
    d = decide(r, _arm(50), _arm(30))
    assert d.outcome == "inconclusive" and d.action == "pause"
    assert "accuracy" in d.reason


def test_accuracy_gate_with_labels() -> None:
    r = Rollout("m", 1, 2, min_requests=20, phase="progressing",
                gates={"min_accuracy": 0.8})
    cp, ch = _arm(50), _arm(30)
    cp.labelled, cp.correct = 30, 27
    ch.labelled, ch.correct = 30, 15
    (g,) = evaluate(r, cp, ch)
    assert g.gate == "accuracy" and g.status == "fail" and g.challenger == 0.5


def test_shadow_ends_in_a_pause_for_a_human_not_a_promote() -> None:
    r = Rollout("m", 1, 2, strategy="shadow", steps=(100,), min_requests=20,
                phase="progressing", gates=dict(GATES))
    d = decide(r, _arm(50), _arm(30))
    assert d.action == "pause" and "promote" in d.reason


def test_p99_and_drift_measures() -> None:
    assert p99([]) is None
    assert p99(list(range(1, 101))) == 99.0
    assert ks_statistic([1, 2, 3], [1, 2, 3]) == 0.0
    assert ks_statistic([1, 2, 3], [10, 11, 12]) == 1.0
    assert prediction_drift([], [1]) is None
    labels_a = [{"label": "pos"}] * 50 + [{"label": "neg"}] * 50
    labels_b = [{"label": "pos"}] * 80 + [{"label": "neg"}] * 20
    assert prediction_drift(labels_a, labels_b) == pytest.approx(0.3)


def test_guard_hit_gate_when_configured() -> None:
    rollout = Rollout("m", 1, 2, steps=(10, 100), min_requests=20, max_failures=2,
                      gates={**GATES, "max_guard_hit_rate": 0.1}, phase="progressing")
    champion, challenger = _arm(60), _arm(40)
    for _ in range(10):
        challenger.record("ok", 10.0, [1.0], guard="prompt_injection")
    d = decide(rollout, champion, challenger)
    hit = next(g for g in d.gates if g.gate == "guard_hit_rate")
    assert hit.status == "fail" and hit.challenger == pytest.approx(10 / 50)
    assert "guard_hit_rate" not in {g.gate for g in decide(_rollout(), champion,
                                                           challenger).gates}


def _labelled(arm: ArmStats, pairs: list[tuple[float, float]]) -> ArmStats:
    for out, label in pairs:
        arm.add_labelled(out, label)
    return arm


def _regression(gates: dict[str, float | None]) -> Rollout:
    return Rollout("m", 1, 2, steps=(10, 100), min_requests=20, max_failures=1,
                   gates={**GATES, "max_prediction_drift": None, **gates},
                   phase="progressing", step=0)


def test_accuracy_of_real_numbers_is_no_verdict() -> None:
    """Exact-match accuracy of a regressor is 0.0 for good and bad models alike: a constant
    regressor passed ``min_accuracy`` with challenger 0.0 / champion 0.0. It is no data,
    with the reason, and the interval pauses for a human."""
    rnd = random.Random(7)
    truth = [rnd.uniform(25, 346) for _ in range(40)]
    champion = _labelled(_arm(40), [(y + rnd.gauss(0, 45), y) for y in truth])
    challenger = _labelled(_arm(40), [(152.1, y) for y in truth])
    d = decide(_regression({"min_accuracy": 0.0}), champion, challenger)
    acc = next(g for g in d.gates if g.gate == "accuracy")
    assert acc.status == "no_data" and "max_mae" in acc.why
    assert d.outcome == "inconclusive" and d.action == "pause"


def test_regression_gates_fail_a_constant_regressor() -> None:
    rnd = random.Random(3)
    truth = [rnd.uniform(25, 346) for _ in range(60)]
    champion = _labelled(_arm(60), [(y + rnd.gauss(0, 50), y) for y in truth])
    constant = _labelled(_arm(60), [(152.1, y) for y in truth])
    d = decide(_regression({"max_mae": 80.0, "max_rmse": 90.0,
                            "max_relative_mae_increase": 0.2}), champion, constant)
    gates = {g.gate: g for g in d.gates}
    assert gates["mae"].status == "fail" and gates["mae"].challenger == constant.mae
    assert gates["mae"].champion == champion.mae and champion.mae is not None
    assert champion.mae < 80.0 < constant.mae  # type: ignore[operator]
    assert gates["rmse"].status == "fail"
    rel = gates["relative_mae_increase"]
    assert rel.status == "fail" and rel.challenger is not None and rel.challenger > 0.2
    assert d.action == "abort"
    # A challenger as good as the champion passes all three.
    twin = _labelled(_arm(60), [(y + rnd.gauss(0, 50), y) for y in truth])
    ok = decide(_regression({"max_mae": 80.0, "max_rmse": 90.0,
                             "max_relative_mae_increase": 0.2}), champion, twin)
    assert ok.outcome == "pass", ok.reason


def test_regression_gates_without_enough_labels_are_no_data() -> None:
    champion = _labelled(_arm(60), [(1.5, 1.0)] * 60)
    few = _labelled(_arm(60), [(9.5, 1.0)] * 5)
    d = decide(_regression({"max_mae": 1.0, "max_relative_mae_increase": 0.1}), champion, few)
    gates = {g.gate: g for g in d.gates}
    assert gates["mae"].status == "no_data" and "5/20" in gates["mae"].why
    assert gates["relative_mae_increase"].status == "no_data"
    assert d.outcome == "inconclusive"
    # The relative gate needs the champion's labels too.
    alone = decide(_regression({"max_relative_mae_increase": 0.1}), _arm(60),
                   _labelled(_arm(60), [(9.5, 1.0)] * 60))
    rel = next(g for g in alone.gates if g.gate == "relative_mae_increase")
    assert rel.status == "no_data" and rel.why.startswith("champion 0/20")


def test_a_multi_output_regressors_answers_count_every_field_error() -> None:
    assert field_pairs([70.0, 60], [72, 55.0]) == [(70.0, 72.0), (60.0, 55.0)]
    assert field_pairs({"w": 70.0, "p": 60.0}, {"p": 50.0}) == [(60.0, 50.0)]
    for answer, label in (([1.0], [2.0]), ([1.0, 2.0], [1.0]), ("a", "b"), ([1.0, 2.0], 3.0),
                          ([1.0, "x"], [1.0, 2.0]), ([True, 1.0], [1.0, 1.0]),
                          ({"w": 1.0}, {"p": 1.0})):
        assert field_pairs(answer, label) is None, (answer, label)
    stats = ArmStats()
    stats.add_fields([(70.0, 72.0), (60.0, 55.0)])
    stats.add_fields([(1.5, 1.5)])
    assert (stats.labelled, stats.correct, stats.regressed) == (2, 1, 3)
    assert stats.mae == pytest.approx(7.0 / 3)
    assert stats.rmse == pytest.approx(((4 + 25 + 0) / 3) ** 0.5)
    assert stats.continuous

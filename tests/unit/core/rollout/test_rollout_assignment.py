"""Arm assignment: weights are honoured, keys are sticky, and growing weights keep users."""

from __future__ import annotations

from keelwork.core.rollout.assignment import BUCKETS, bucket, to_challenger


def test_weight_is_honoured_for_keys_and_random_draws() -> None:
    keyed = sum(to_challenger(25, "r1", f"user-{i}") for i in range(20_000)) / 20_000
    drawn = sum(to_challenger(25, "r1", None) for _ in range(20_000)) / 20_000
    assert abs(keyed - 0.25) < 0.015 and abs(drawn - 0.25) < 0.015


def test_a_key_keeps_its_arm_and_stays_on_the_challenger_as_the_weight_grows() -> None:
    users = [f"user-{i}" for i in range(2_000)]
    at5 = {u for u in users if to_challenger(5, "r1", u)}
    assert at5 == {u for u in users if to_challenger(5, "r1", u)}  # deterministic
    at25 = {u for u in users if to_challenger(25, "r1", u)}
    assert at5 < at25


def test_rollouts_are_salted_independently_and_edges_are_exact() -> None:
    users = [f"user-{i}" for i in range(2_000)]
    a = {u for u in users if to_challenger(50, "r1", u)}
    b = {u for u in users if to_challenger(50, "r2", u)}
    assert 0.35 < len(a & b) / len(a) < 0.65  # independent: about half overlap
    assert not to_challenger(0, "r", "u") and to_challenger(100, "r", "u")
    assert to_challenger(10, "r", None, draw=0.0999) and not to_challenger(10, "r", None,
                                                                            draw=0.1)
    assert 0 <= bucket("r", "u") < BUCKETS

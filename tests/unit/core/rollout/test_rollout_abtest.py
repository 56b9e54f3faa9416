"""The sequential A/B test: its false-positive rate stays under alpha however often it is
read (A/A streams, a look after every batch), and it finds a real difference."""

from __future__ import annotations

import random

import pytest

from keelwork.core.rollout.abtest import ABResult, SequentialABTest, ab_action, mixture_lr


def _run(rate_a: float, rate_b: float, seed: int, looks: int = 60,
         batch: int = 100, alpha: float = 0.05) -> tuple[str, int]:
    rnd = random.Random(seed)
    test = SequentialABTest(alpha=alpha, min_samples=100)
    sa = sb = n = 0
    for look in range(looks):
        sa += sum(rnd.random() < rate_a for _ in range(batch))
        sb += sum(rnd.random() < rate_b for _ in range(batch))
        n += batch
        result = test.look(sa, n, sb, n)
        if result.verdict in ("a", "b"):
            return result.verdict, look
    return "undecided", looks


def test_false_positive_rate_stays_under_alpha_with_continuous_peeking() -> None:
    runs = 300
    wrong = sum(_run(0.9, 0.9, seed)[0] != "undecided" for seed in range(runs))
    # alpha = 0.05, although the test was read up to 60 times per run (the stopping rule).
    assert wrong / runs <= 0.05, wrong


def test_a_real_difference_is_found_with_the_right_winner() -> None:
    verdicts = [_run(0.90, 0.80, seed)[0] for seed in range(30)]
    assert verdicts.count("a") >= 27
    verdicts = [_run(0.70, 0.80, seed)[0] for seed in range(30)]
    assert verdicts.count("b") >= 27


def test_too_few_samples_is_no_data_and_a_decision_stays() -> None:
    t = SequentialABTest(alpha=0.05, min_samples=100)
    assert t.look(5, 10, 9, 10).verdict == "no_data"
    decided = t.look(900, 1000, 600, 1000)
    assert decided.verdict == "a" and decided.confidence >= 0.95
    assert t.look(900, 1000, 990, 1000) is decided  # the stopping rule: no flip-flopping
    assert decided.as_dict()["test"].startswith("mixture SPRT")


def test_mixture_lr_grows_with_the_difference() -> None:
    assert mixture_lr(500, 1000, 500, 1000) < 1.0
    assert mixture_lr(500, 1000, 600, 1000) > mixture_lr(500, 1000, 550, 1000)
    with pytest.raises(ValueError, match="alpha"):
        SequentialABTest(alpha=1.5)


UNDECIDED = ABResult("undecided", 0.4, 0.6, 0.9, 0.88, 300, 310, 0.05)
DECIDED = ABResult("a", 0.01, 0.99, 0.9, 0.7, 900, 880, 0.05)


@pytest.mark.parametrize(("gates", "result", "want"), [
    (("advance", "pass"), UNDECIDED, "hold"),  # the split is the experiment: no step advances
    (("pause", "inconclusive"), UNDECIDED, "hold"),  # still collecting: no human needed yet
    (("hold", "no_data"), UNDECIDED, "hold"),
    (("hold", "fail"), UNDECIDED, "hold"),  # a failing gate still counts toward abort
    (("abort", "fail"), DECIDED, "abort"),  # gates win over a verdict
    (("advance", "pass"), DECIDED, "pause"),
    (("pause", "inconclusive"), DECIDED, "pause"),
])
def test_ab_action(gates: tuple[str, str], result: ABResult, want: str) -> None:
    action, reason = ab_action(gates[0], gates[1], "gates said so", result)
    assert action == want
    if result.verdict == "a" and want == "pause":
        assert "the champion wins" in reason
    if gates[1] == "inconclusive" and want == "hold":
        assert reason.endswith("the A/B test keeps collecting")

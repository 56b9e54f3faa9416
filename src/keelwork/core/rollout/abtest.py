"""A/B test of two proportions with an always-valid sequential stopping rule (mixture SPRT).

Why this test: A/B arms are looked at every analysis interval. A fixed-horizon z-test read that
often ("peeking") inflates the false-positive rate far above its nominal alpha. The mixture
sequential probability ratio test (Robbins 1970; Johari, Pekelis & Walsh, "Always valid
inference", 2017 — what Optimizely's stats engine uses) gives a p-value that stays valid
however often it is read: stopping the first time ``p <= alpha`` keeps the type-I error <= alpha.

The statistic: with success rates ``p_a``, ``p_b`` from ``n_a``, ``n_b`` trials, the observed
difference ``d = p_b - p_a`` is approximately normal with variance ``V = p_a(1-p_a)/n_a +
p_b(1-p_b)/n_b``. Under a normal mixing prior ``N(0, tau^2)`` on the true difference, the
likelihood ratio against ``d = 0`` is::

    Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 d^2 / (2 V (V + tau^2)))

and the always-valid p-value is ``min(1, 1 / max_t Lambda_t)`` (running maximum). ``tau``
sets where the test is most powerful (default 0.05: five-point differences). Confidence is
``1 - p``. Until ``min_samples`` per arm (normal approximation), the verdict is ``no_data``.
The unit tests simulate A/A streams, peeking every step, and check the false-positive rate
stays under alpha, and that a real difference is found.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Verdict = Literal["a", "b", "undecided", "no_data"]


@dataclass(frozen=True, slots=True)
class ABResult:
    """The test's state after the latest look."""

    verdict: Verdict
    p_value: float
    confidence: float
    rate_a: float | None
    rate_b: float | None
    n_a: int
    n_b: int
    alpha: float

    def as_dict(self) -> dict[str, float | int | str | None]:
        return {"verdict": self.verdict, "p_value": self.p_value,
                "confidence": self.confidence, "rate_a": self.rate_a, "rate_b": self.rate_b,
                "n_a": self.n_a, "n_b": self.n_b, "alpha": self.alpha,
                "test": "mixture SPRT (always-valid), two proportions"}


def mixture_lr(successes_a: int, n_a: int, successes_b: int, n_b: int,
               tau: float = 0.05) -> float:
    """The mixture likelihood ratio of "the rates differ" against "they are equal"."""
    pa, pb = successes_a / n_a, successes_b / n_b
    # Variance floor: a rate of exactly 0 or 1 would make V zero and the ratio infinite.
    var = max(pa * (1 - pa) / n_a + pb * (1 - pb) / n_b, 0.25 / (n_a + n_b) ** 2)
    d = pb - pa
    t2 = tau * tau
    log_lr = 0.5 * math.log(var / (var + t2)) + t2 * d * d / (2 * var * (var + t2))
    return math.exp(min(log_lr, 700.0))


class SequentialABTest:
    """Accumulates looks at two arms' success counts; stops when the p-value reaches alpha.

    Args:
        alpha: The type-I error bound (the chance of naming a winner when there is none).
        tau: The mixing prior's standard deviation on the difference of rates.
        min_samples: Trials per arm before the normal approximation is trusted.
    """

    def __init__(self, alpha: float = 0.05, tau: float = 0.05, min_samples: int = 100) -> None:
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1); got {alpha}.")
        self.alpha = alpha
        self.tau = tau
        self.min_samples = min_samples
        self._max_lr = 1.0
        self.decided: ABResult | None = None

    def look(self, successes_a: int, n_a: int, successes_b: int, n_b: int) -> ABResult:
        """Update with the cumulative counts; once decided, the verdict stays (stopping rule)."""
        if self.decided is not None:
            return self.decided
        ra = successes_a / n_a if n_a else None
        rb = successes_b / n_b if n_b else None
        if n_a < self.min_samples or n_b < self.min_samples:
            return ABResult("no_data", 1.0, 0.0, ra, rb, n_a, n_b, self.alpha)
        self._max_lr = max(self._max_lr, mixture_lr(successes_a, n_a, successes_b, n_b,
                                                    self.tau))
        p = min(1.0, 1.0 / self._max_lr)
        if p <= self.alpha:
            verdict: Verdict = "b" if (rb or 0.0) > (ra or 0.0) else "a"
            self.decided = ABResult(verdict, p, 1 - p, ra, rb, n_a, n_b, self.alpha)
            return self.decided
        return ABResult("undecided", p, 1 - p, ra, rb, n_a, n_b, self.alpha)


def ab_action(action: str, outcome: str, reason: str, result: ABResult) -> tuple[str, str]:
    """The rollout action of an A/B interval, from the gates' action and the test's state.

    Gates still guard an A/B rollout (a failing gate holds and counts, then aborts), but the
    split is the experiment: a passing interval holds it (no step advances) and an
    *inconclusive* one (a configured gate without data, e.g. one arm short of requests for the
    prediction-drift gate) holds it too rather than pausing, since the sequential test is
    still collecting. Once the test decides, the rollout pauses for a human with the winner.

    Args:
        action: What :func:`keelwork.core.rollout.analysis.decide` chose.
        outcome: The interval's outcome (pass, fail, no_data, inconclusive).
        reason: The decision's reason.
        result: The sequential test after this interval's look.

    Returns:
        ``(action, reason)``.
    """
    if outcome == "inconclusive" and action == "pause":
        action, reason = "hold", f"{reason}; the A/B test keeps collecting"
    if result.verdict in ("a", "b") and action in ("advance", "hold"):
        arm = "champion" if result.verdict == "a" else "challenger"
        return "pause", (f"A/B test decided: the {arm} wins (success {result.rate_a} vs "
                         f"{result.rate_b}, confidence {result.confidence:.4f}, "
                         f"alpha {result.alpha})")
    if action == "advance":
        return "hold", reason  # the split stays; the A/B test runs on until it decides
    return action, reason


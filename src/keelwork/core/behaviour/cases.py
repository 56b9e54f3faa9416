"""Minimum functionality, invariance and directional expectations (CheckList's three kinds).

Each function asks the model about a batch (an :data:`~keelwork.core.behaviour.results.Ask`)
and judges every instance, keeping the first failures with the case, the input, what was
expected and what was got.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from keelwork.core.behaviour.results import (
    Ask,
    Failure,
    TestResult,
    number,
    same_label,
    shown,
)
from keelwork.spec.model_tests import DirectionalTest, InvarianceTest, MinimumTest


def typo(text: str, edits: int, rng: random.Random) -> str:
    """``text`` with ``edits`` character edits at letters: swap two neighbours, drop one, or
    repeat one (the slips of a typist). Text without letters is returned as it is."""
    chars = list(text)
    for _ in range(edits):
        letters = [i for i, c in enumerate(chars) if c.isalpha()]
        if not letters:
            break
        i = rng.choice(letters)
        how = rng.randrange(3)
        if how == 0 and i + 1 < len(chars):
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        elif how == 1 and len(letters) > 1:
            del chars[i]
        else:
            chars.insert(i, chars[i])
    return "".join(chars)


def minimum(test: MinimumTest, ask: Ask) -> TestResult:
    """Each case's input must get its expected label and a score within its range."""
    result = TestResult(test.name, "minimum")
    labels, scores = ask([c.input for c in test.cases])
    for i, (case, label, score) in enumerate(zip(test.cases, labels, scores, strict=True)):
        wants: list[str] = []
        ok = True
        if case.expect_label is not None:
            wants.append(f"label {case.expect_label}")
            ok &= same_label(label, case.expect_label)
        if case.min_score is not None or case.max_score is not None:
            low = -float("inf") if case.min_score is None else case.min_score
            high = float("inf") if case.max_score is None else case.max_score
            wants.append(f"score in [{low:.4g}, {high:.4g}]")
            ok &= score is not None and low <= score <= high
        result.check(ok, Failure(
            f"{test.name}[{i}]", shown(case.input), " and ".join(wants),
            f"label {label}, score {number(score)}"))
    return result


def _perturbed(test: InvarianceTest, instance: Mapping[str, Any],
               rng: random.Random) -> list[dict[str, Any]]:
    """The variants of ``instance`` the test compares with it."""
    if test.values is not None:
        return [{**instance, test.field: v} for v in test.values
                if v != instance.get(test.field)]
    text = instance.get(test.field)
    if not isinstance(text, str):
        return []
    changed = typo(text, test.typos or 1, rng)
    return [{**instance, test.field: changed}] if changed != text else []


def invariance(test: InvarianceTest, instances: Sequence[Mapping[str, Any]],
               ask: Ask) -> TestResult:
    """Each perturbed variant must keep the original's label, and its score within
    ``max_score_change``.

    Raises:
        ValueError: no instance holds ``field`` (nothing could be perturbed).
    """
    result = TestResult(test.name, "invariance")
    rng = random.Random(test.seed)
    pairs = [(i, v) for i, inst in enumerate(instances) for v in _perturbed(test, inst, rng)]
    if not pairs:
        raise ValueError(f"test {test.name!r}: no input has a value to perturb in the field "
                         f"{test.field!r}" + (" (typos need text)" if test.typos else ""))
    base_labels, base_scores = ask(instances)
    labels, scores = ask([v for _, v in pairs])
    worst = 0.0
    for (i, variant), label, score in zip(pairs, labels, scores, strict=True):
        before, base = base_labels[i], base_scores[i]
        change = abs(score - base) if score is not None and base is not None else 0.0
        worst = max(worst, change)
        ok = same_label(label, before) and change <= test.max_score_change
        result.check(ok, Failure(
            f"{test.name}[{i}]", shown(variant),
            f"label {before} (as without the change to {test.field!r}) and a score within "
            f"{test.max_score_change:g} of {number(base)}",
            f"label {label}, score {number(score)} (changed by {change:.4g})"))
    result.details = {"largest_score_change": worst}
    result.allow(test.max_failure_rate)
    return result


def _changed(test: DirectionalTest, value: Any) -> Any:
    if test.add is not None:
        return value + test.add
    return value * (test.multiply or 1.0)


def directional(test: DirectionalTest, instances: Sequence[Mapping[str, Any]],
                ask: Ask) -> TestResult:
    """Changing ``field`` must move each score only in ``direction`` (beyond ``tolerance``).

    Raises:
        ValueError: no instance has a number in ``field``, or the model gives no scores.
    """
    result = TestResult(test.name, "directional")
    pairs = [(i, {**inst, test.field: _changed(test, inst[test.field])})
             for i, inst in enumerate(instances)
             if isinstance(inst.get(test.field), int | float)
             and not isinstance(inst.get(test.field), bool)]
    if not pairs:
        raise ValueError(f"test {test.name!r}: no input has a number in the field "
                         f"{test.field!r}")
    _, base_scores = ask(instances)
    _, scores = ask([v for _, v in pairs])
    sign = 1.0 if test.direction == "up" else -1.0
    how = f"+{test.add:g}" if test.add is not None else f"x{test.multiply:g}"
    for (i, variant), score in zip(pairs, scores, strict=True):
        base = base_scores[i]
        if score is None or base is None:
            raise ValueError(f"test {test.name!r}: the model gives no score to compare")
        ok = sign * (score - base) >= -test.tolerance
        result.check(ok, Failure(
            f"{test.name}[{i}]", shown(variant),
            f"a score {'at least' if sign > 0 else 'at most'} {number(base)} "
            f"(tolerance {test.tolerance:g}) after {test.field} {how}",
            f"score {number(score)}"))
    result.allow(test.max_failure_rate)
    return result


__all__ = ["directional", "invariance", "minimum", "typo"]

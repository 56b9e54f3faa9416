"""The verdicts of behavioural tests, as stored with a model version and shown to users."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: A batch of instances -> (their labels, their scores). A score is a classifier's probability
#: of the positive class or a regressor's value; None where the model gives none.
Ask = Callable[[Sequence[Mapping[str, Any]]], tuple[list[Any], list[float | None]]]

#: Failing cases kept per test (the count of all is kept too): a result stays small.
MAX_FAILURES = 20
#: Characters of an input kept in a failure (longer text fields are cut).
MAX_TEXT = 200


def shown(instance: Mapping[str, Any]) -> dict[str, Any]:
    """``instance`` with long strings cut to :data:`MAX_TEXT` characters."""
    return {k: (v[:MAX_TEXT] + "...") if isinstance(v, str) and len(v) > MAX_TEXT else v
            for k, v in instance.items()}


@dataclass(frozen=True, slots=True)
class Failure:
    """One failing case: which, on what input, what was expected and what was got."""

    case: str
    input: dict[str, Any]
    expected: str
    got: str

    def as_dict(self) -> dict[str, Any]:
        return {"case": self.case, "input": self.input, "expected": self.expected,
                "got": self.got}


@dataclass(slots=True)
class TestResult:
    """One test's verdict.

    Attributes:
        name: The test's name.
        kind: minimum, invariance, directional, slice or fairness.
        checked: Cases (or slices, or groups) judged.
        failed: How many failed.
        failures: The first :data:`MAX_FAILURES` of them.
        details: What the test measured (per slice metric, per group rate...).
        allowed: Failures the test tolerates (its ``max_failure_rate`` of ``checked``).
    """

    __test__ = False  # not a pytest class

    name: str
    kind: str
    checked: int = 0
    failed: int = 0
    failures: list[Failure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    allowed: int = 0

    @property
    def passed(self) -> bool:
        return self.failed <= self.allowed

    def allow(self, rate: float) -> None:
        """Tolerate ``rate`` of the checked cases failing (rounded down)."""
        self.allowed = math.floor(rate * self.checked + 1e-9)

    def check(self, ok: bool, failure: Failure) -> None:
        """Count one judged case; keep its failure if it failed (the first
        :data:`MAX_FAILURES`)."""
        self.checked += 1
        if not ok:
            self.failed += 1
            if len(self.failures) < MAX_FAILURES:
                self.failures.append(failure)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "passed": self.passed,
                "checked": self.checked, "failed": self.failed, "allowed": self.allowed,
                "failures": [f.as_dict() for f in self.failures], "details": self.details}


def run_passed(results: Sequence[TestResult]) -> bool:
    """Whether every test passed (a run with no test does not pass)."""
    return bool(results) and all(r.passed for r in results)


def same_label(a: Any, b: Any) -> bool:
    """Labels compared as text: a category 'good', an int 1 and a YAML ``1`` match as written."""
    return str(a) == str(b)


def number(v: float | None) -> str:
    return "no score" if v is None else f"{v:.4g}"


__all__ = ["MAX_FAILURES", "Ask", "Failure", "TestResult", "number", "run_passed",
           "same_label", "shown"]

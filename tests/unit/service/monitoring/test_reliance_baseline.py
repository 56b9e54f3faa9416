"""The reliance baseline of a reference: exact where the model has an exact explainer, else
the permutation explainer with the server's own settings, bounded in rows and time."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from keelwork.service.monitoring import reliance
from keelwork.service.monitoring.reliance import reference_reliance
from keelwork.spec.explain import ExplainSection

FEATURES = ("a", "b", "c", "d")
WEIGHTS = np.array([0.1, 0.2, 0.4, 3.0])  # d dominates


class Signature:
    classes = ("no", "yes")


class Callable:
    """A model of records with no exact explainer (as a Python function or ONNX is)."""

    signature = Signature()

    def __init__(self) -> None:
        self.rows = 0

    def predict_proba(self, batch: list[dict[str, Any]]) -> Any:
        self.rows += len(batch)
        x = np.array([[r[k] for k in FEATURES] for r in batch], dtype=float)
        p = 1.0 / (1.0 + np.exp(-(x @ WEIGHTS)))
        return np.c_[1.0 - p, p]

    def predict(self, batch: list[dict[str, Any]]) -> list[str]:
        return ["yes" if p[1] > 0.5 else "no" for p in self.predict_proba(batch)]


def _records(n: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(3)
    return [dict(zip(FEATURES, map(float, row), strict=True))
            for row in rng.normal(size=(n, len(FEATURES)))]


def test_a_model_without_an_exact_explainer_gets_a_permutation_baseline() -> None:
    model = Callable()
    got = reference_reliance(model, _records(500), explain=ExplainSection(max_evaluations=500,
                                                                           background_rows=25))
    assert got is not None and got["method"] == "permutation"
    assert got["explained"] == reliance.PERMUTATION_ROWS
    assert next(iter(got["mean_abs"])) == "d"  # by decreasing value: the dominant feature first
    # each row within the server's own evaluation bound
    assert 0 < model.rows <= reliance.PERMUTATION_ROWS * (500 + 2)


def test_the_baseline_is_the_same_with_the_same_inputs() -> None:
    section = ExplainSection(max_evaluations=300, background_rows=20)
    first = reference_reliance(Callable(), _records(200), explain=section)
    assert first == reference_reliance(Callable(), _records(200), explain=section)


def test_no_baseline_past_the_time_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reliance, "PERMUTATION_BUDGET_S", 0.0)
    assert reference_reliance(Callable(), _records(100), explain=ExplainSection()) is None


def test_no_permutation_baseline_without_the_explain_section_or_records() -> None:
    assert reference_reliance(Callable(), _records(100)) is None  # exact explainers only
    lists = [list(r.values()) for r in _records(50)]
    assert reference_reliance(Callable(), lists, explain=ExplainSection()) is None
    assert reference_reliance(Callable(), [], explain=ExplainSection()) is None


def test_a_failing_model_leaves_the_reference_without_a_baseline() -> None:
    class Broken(Callable):
        def predict_proba(self, batch: list[dict[str, Any]]) -> Any:
            raise RuntimeError("the model fell over")

    assert reference_reliance(Broken(), _records(50), explain=ExplainSection()) is None

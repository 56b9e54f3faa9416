"""The bounded permutation explainer (keelwork.core.explain.attribution)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from keelwork.core.explain.attribution import Explanation, permutation_shap, plan

FEATURES = ["a", "b", "c"]


def _background(n: int = 40) -> list[dict[str, Any]]:
    rng = np.random.default_rng(1)
    return [{"a": float(rng.normal()), "b": float(rng.normal()), "c": float(rng.normal())}
            for _ in range(n)]


def _nonlinear(batch: list[dict[str, Any]]) -> np.ndarray:
    return np.array([r["a"] * r["b"] + np.sin(r["c"]) + (r["a"] > 0) for r in batch])


def test_attributions_add_up_exactly_whatever_the_orders() -> None:
    x = {"a": 1.5, "b": -2.0, "c": 0.3}
    bg = _background()
    values, expected, value, evals = permutation_shap(_nonlinear, x, bg, FEATURES,
                                                      max_evaluations=4 * 4 * 40)
    assert value == pytest.approx(_nonlinear([x])[0], abs=1e-12)
    assert expected == pytest.approx(_nonlinear(bg).mean(), abs=1e-12)
    assert sum(values) == pytest.approx(value - expected, abs=1e-9)
    assert evals == 4 * 4 * 40


def test_an_additive_model_gets_its_exact_values() -> None:
    coef = {"a": 2.0, "b": -1.0, "c": 0.5}

    def linear(batch: list[dict[str, Any]]) -> np.ndarray:
        return np.array([sum(coef[k] * r[k] for k in coef) for r in batch])

    x = {"a": 1.0, "b": 2.0, "c": 3.0}
    bg = _background()
    values, _, _, _ = permutation_shap(linear, x, bg, FEATURES, max_evaluations=160)
    means = {k: np.mean([r[k] for r in bg]) for k in coef}
    assert values == pytest.approx([coef[k] * (x[k] - means[k]) for k in FEATURES])


def test_the_evaluations_stay_within_the_bound() -> None:
    calls: list[int] = []

    def counted(batch: list[dict[str, Any]]) -> np.ndarray:
        calls.append(len(batch))
        return _nonlinear(batch)

    _, _, _, evals = permutation_shap(counted, {"a": 1.0, "b": 1.0, "c": 1.0},
                                      _background(40), FEATURES, max_evaluations=100)
    assert sum(calls) == evals <= 100
    assert plan(3, 40, 10) == (1, 2)  # fewer background rows when one order does not fit


def test_the_deadline_stops_it() -> None:
    with pytest.raises(TimeoutError):
        permutation_shap(_nonlinear, {"a": 1.0, "b": 1.0, "c": 1.0}, _background(), FEATURES,
                         max_evaluations=10_000, deadline=time.monotonic() - 1)


def test_explanation_round_trips_through_json_form() -> None:
    e = Explanation(features=["a"], values=[0.5], expected_value=1.0, output_value=1.5,
                    output="prediction", method="linear")
    assert Explanation.from_dict(e.to_dict()) == e


def test_the_global_view_is_the_mean_absolute_attribution() -> None:
    from keelwork.core.explain.attribution import mean_abs

    got = mean_abs([{"attributions": {"a": 1.0, "b": -3.0}},
                    {"attributions": {"a": -2.0, "b": 1.0}}])
    assert got == {"explained": 2, "mean_abs": {"b": 2.0, "a": 1.5}}
    assert list(got["mean_abs"]) == ["b", "a"]
    assert mean_abs([]) == {"explained": 0, "mean_abs": {}}


def test_reliance_drift_compares_proportions_not_scale() -> None:
    from keelwork.core.explain.attribution import RELIANCE_SHIFT, reliance_drift

    same = reliance_drift({"a": 1.0, "b": 3.0}, {"a": 10.0, "b": 30.0})
    assert same["distance"] == pytest.approx(0.0) and same["shifted"] is False
    moved = reliance_drift({"a": 1.0, "b": 3.0}, {"a": 3.0, "b": 1.0, "c": 0.0})
    assert moved["distance"] == pytest.approx(0.5) and moved["shifted"] is True
    assert (moved["reference_top"], moved["window_top"]) == ("b", "a")
    apart = reliance_drift({"a": 1.0}, {"z": 2.0})
    assert apart["distance"] == pytest.approx(1.0) and apart["threshold"] == RELIANCE_SHIFT
    assert reliance_drift({"a": 0.0}, {"a": 1.0})["distance"] is None

"""The out-of-distribution detector (keelwork.core.ood): calibrated false-positive rate over
seeds, shifted data flagged, storable, honest about missing values and small references."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from keelwork.core.ood import OodDetector, fit


def _rows(rng: np.random.Generator, n: int, shift: float = 0.0) -> list[dict[str, Any]]:
    a = rng.normal(0, 1, n)
    b = a * 0.8 + rng.normal(0, 0.6, n) + shift
    c = rng.exponential(2, n)
    k = rng.choice(["x", "y", "z"], n, p=[0.6, 0.3, 0.1])
    return [{"a": float(a[i]), "b": float(b[i]), "c": float(c[i]), "k": str(k[i])}
            for i in range(n)]


@pytest.mark.parametrize("alpha", [0.01, 0.05])
def test_the_false_positive_rate_is_the_target_within_a_point_over_seeds(alpha: float) -> None:
    for seed in range(5):
        rng = np.random.default_rng(seed)
        det = fit(_rows(rng, 10_000), ["a", "b", "c"], ["k"], alpha=alpha, seed=seed)
        fpr = float(np.mean(det.flags(_rows(rng, 20_000))))
        assert abs(fpr - alpha) <= 0.01, (seed, fpr)


def test_shifted_rows_and_joint_oddities_are_flagged() -> None:
    rng = np.random.default_rng(7)
    det = fit(_rows(rng, 10_000), ["a", "b", "c"], ["k"], alpha=0.01)
    assert np.mean(det.flags(_rows(rng, 2_000, shift=3.0))) > 0.5
    # Each value ordinary alone, never seen together (a and b are correlated).
    assert det.flags([{"a": 2.0, "b": -2.0, "c": 1.0, "k": "x"}]) == [True]
    assert det.flags([{"a": 0.1, "b": 0.0, "c": 1.0, "k": "x"}]) == [False]
    assert det.flags([{"a": 0.1, "b": 0.0, "c": 1e6, "k": "x"}]) == [True]


def test_a_stored_detector_judges_the_same() -> None:
    rng = np.random.default_rng(3)
    det = fit(_rows(rng, 2_000), ["a", "b", "c"], ["k"], alpha=0.05)
    again = OodDetector.from_dict(det.to_dict())
    probe = _rows(rng, 500, shift=1.5)
    assert again.flags(probe) == det.flags(probe)


def test_missing_values_are_no_evidence_and_small_references_are_refused() -> None:
    rng = np.random.default_rng(1)
    det = fit(_rows(rng, 5_000), ["a", "b", "c"], ["k"], alpha=0.01)
    assert det.flags([{"a": None, "b": None, "c": None, "k": "x"}]) == [False]
    with pytest.raises(ValueError, match="at least 200"):
        fit(_rows(rng, 100), ["a"], [], alpha=0.01)


def test_a_missing_category_is_no_evidence_either() -> None:
    rng = np.random.default_rng(2)
    rows = _rows(rng, 5_000)
    for r in rows[::10]:
        r["k"] = None  # the reference has missing categories too: never a category "None"
    det = fit(rows, ["a", "b", "c"], ["k"], alpha=0.01)
    assert "None" not in det.cat_log_freq[0]
    ordinary = {"a": 0.1, "b": 0.0, "c": 1.0}
    assert det.flags([{**ordinary, "k": None}, ordinary, {**ordinary, "k": "x"}]) == [
        False, False, False]
    assert det.raw_scores([{**ordinary, "k": None}])[1][0] < det.raw_scores(
        [{**ordinary, "k": "z"}])[1][0]
    # An unseen category is still evidence.
    assert det.raw_scores([{**ordinary, "k": "never"}])[1][0] > det.raw_scores(
        [{**ordinary, "k": "z"}])[1][0]

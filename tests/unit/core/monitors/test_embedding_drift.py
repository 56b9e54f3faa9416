"""Embedding drift (MMD + permutation test + floor): quiet on one population, loud on real
shifts, a trivial shift at large n only 'detectable', bad input refused clearly."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np
import pytest

from keelwork.core.monitors.embedding import FLOOR, embedding_drift
from keelwork.errors import MonitorError

DIM = 256


def _population(dim: int = DIM, seed: int = 0) -> Any:
    """A fixed anisotropic Gaussian (decaying spectrum, like real embeddings)."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(dim, dim)) * np.exp(-np.arange(dim) / 30)[:, None]


MIX = _population()
SD = np.sqrt((MIX**2).sum(axis=0))  # per-dimension standard deviation


def _draw(rng: np.random.Generator, n: int, shift: float = 0.0, mix: Any = MIX) -> Any:
    return rng.normal(size=(n, mix.shape[0])) @ mix + shift * np.sqrt((mix**2).sum(axis=0))


def test_same_distribution_at_1000_never_drifts_across_seeds() -> None:
    # At 1,000 vs 1,000 the floor sets the threshold (noise ~ 0.0005): no false alarm at all.
    for seed in range(6):
        rng = np.random.default_rng(100 + seed)
        verdict = embedding_drift(_draw(rng, 1000), _draw(rng, 1000), seed=seed)
        assert verdict.status == "no_drift", verdict.reason
        assert verdict.drift is False and verdict.method == "mmd"
        assert verdict.score is not None and abs(verdict.score) < FLOOR / 2
        assert verdict.threshold == FLOOR
        assert 0.45 < verdict.metrics["classifier_auc"] < 0.55


def test_same_distribution_at_200_false_alarms_at_the_test_level() -> None:
    # At 200 the permutation noise (> floor) sets the threshold: a 1 % test, so across 150
    # independent windows about 1.5 alarms are expected; 5 or more has chance < 2 %.
    verdicts = []
    for seed in range(150):
        rng = np.random.default_rng(200 + seed)
        verdicts.append(embedding_drift(_draw(rng, 200), _draw(rng, 200), seed=seed))
    assert all(v.noise is not None and v.noise > FLOOR for v in verdicts)
    assert sum(bool(v.drift) for v in verdicts) <= 4
    assert 0.45 < float(np.mean([v.metrics["classifier_auc"] for v in verdicts])) < 0.55


def test_a_mean_shift_drifts_with_a_high_classifier_auc() -> None:
    rng = np.random.default_rng(1)
    verdict = embedding_drift(_draw(rng, 500), _draw(rng, 500, shift=0.3))
    assert verdict.status == "drift" and verdict.drift is True
    assert verdict.score is not None and verdict.threshold is not None
    assert verdict.score > 3 * verdict.threshold
    assert verdict.metrics["classifier_auc"] > 0.9
    assert verdict.details["p_value"] < 0.01


def test_an_added_cluster_drifts() -> None:
    rng = np.random.default_rng(2)
    current = _draw(rng, 400)
    current[:80] = _draw(rng, 80, shift=1.5)  # a fifth of the window is a new kind of text
    verdict = embedding_drift(_draw(rng, 400), current)
    assert verdict.drift is True, verdict.reason


def test_a_trivial_shift_at_large_n_is_detectable_but_not_drift() -> None:
    mix = _population(32, seed=3)
    rng = np.random.default_rng(3)
    verdict = embedding_drift(_draw(rng, 3000, mix=mix), _draw(rng, 3000, shift=0.05, mix=mix),
                              max_samples=3000)
    assert verdict.drift is False, verdict.reason
    assert verdict.details["detectable"] is True
    assert verdict.noise is not None and verdict.score is not None
    assert verdict.noise < verdict.score <= FLOOR
    assert "minimum effect size" in verdict.reason


def test_small_samples_are_judged_by_permutation_noise_not_the_floor() -> None:
    rng = np.random.default_rng(4)
    verdict = embedding_drift(_draw(rng, 30), _draw(rng, 30))
    assert verdict.noise is not None and verdict.noise > FLOOR
    assert verdict.threshold == verdict.noise and verdict.drift is False
    assert "permutation-noise" in verdict.reason


def test_reproducible_with_a_seed_and_bounded_samples() -> None:
    rng = np.random.default_rng(5)
    ref, cur = _draw(rng, 1500), _draw(rng, 1500, shift=0.1)
    a = embedding_drift(ref, cur, seed=7)
    b = embedding_drift(ref, cur, seed=7)
    assert a == b
    assert a.details["rows"] == {"reference": 1500, "current": 1500}
    assert a.details["sampled"] == {"reference": 1000, "current": 1000}


def test_fast_enough_for_1000_by_1000_vectors_of_256_dimensions() -> None:
    rng = np.random.default_rng(6)
    ref, cur = _draw(rng, 1000), _draw(rng, 1000)
    start = time.perf_counter()
    embedding_drift(ref, cur)
    assert time.perf_counter() - start < 1.0


def test_verdict_is_json_with_finite_numbers() -> None:
    rng = np.random.default_rng(8)
    out = embedding_drift(_draw(rng, 50).tolist(), _draw(rng, 60).astype(np.float32)).as_dict()
    text = json.dumps(out, allow_nan=False)
    assert json.loads(text)["column"] == "embedding" and out["kind"] == "embedding"
    assert all(math.isfinite(v) for v in out["metrics"].values())


def test_too_few_vectors_give_a_status_not_a_crash() -> None:
    rng = np.random.default_rng(9)
    ref = _draw(rng, 20)
    empty = embedding_drift(ref, np.zeros((0, DIM)))
    assert (empty.status, empty.drift, empty.score) == ("empty", None, None)
    assert embedding_drift(ref, []).status == "empty"
    assert embedding_drift(ref, _draw(rng, 1)).status == "too_few"
    assert embedding_drift(_draw(rng, 1), ref).status == "no_reference"
    assert embedding_drift([], ref).status == "no_reference"


def test_constant_reference_compares_by_the_pooled_spread() -> None:
    ref = np.ones((50, 8))
    same = embedding_drift(ref, np.ones((40, 8)))
    assert same.drift is False and same.score == 0.0
    moved = embedding_drift(ref, np.ones((40, 8)) + np.random.default_rng(0).normal(size=(40, 8)))
    assert moved.drift is True


@pytest.mark.parametrize(("ref", "cur", "match"), [
    (np.zeros(10), np.zeros((3, 10)), "2-d array"),
    (np.zeros((5, 4)), np.zeros((5, 3)), "4 dimensions; got 3"),
    (np.zeros((5, 4)), [[0, 0, 0, float("nan")]] * 3, "row 0 holds NaN"),
    (np.zeros((5, 4)), [["a", "b", "c", "d"]] * 3, "array of numbers"),
])
def test_bad_vectors_are_refused_naming_the_problem(ref: Any, cur: Any, match: str) -> None:
    with pytest.raises(MonitorError, match=match):
        embedding_drift(ref, cur)


def test_bad_options_are_refused() -> None:
    with pytest.raises(MonitorError, match="permutations >= 20"):
        embedding_drift(np.zeros((5, 2)), np.zeros((5, 2)), permutations=5)
    with pytest.raises(MonitorError, match="floor >= 0"):
        embedding_drift(np.zeros((5, 2)), np.zeros((5, 2)), floor=float("nan"))

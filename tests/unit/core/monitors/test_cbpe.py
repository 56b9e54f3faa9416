"""CBPE: PAV is exact and monotone, estimates track the realised metrics on calibrated data,
alerts fire on a real drop only, and references survive a JSON round trip."""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from keelwork.core.monitors.cbpe import (
    METRICS,
    Calibrator,
    CBPEReference,
    estimate_performance,
    fit_calibrator,
    fit_cbpe,
    isotonic,
)
from keelwork.core.monitors.quality import classification_metrics
from keelwork.errors import MonitorError

SEED = 7


# --------------------------------------------------------------------------- PAV
def test_pav_on_a_known_case() -> None:
    x = np.arange(1.0, 7.0)
    kx, ky = isotonic(x, np.array([1.0, 3.0, 2.0, 4.0, 3.0, 5.0]))
    # Violators (3,2) and (4,3) pool to their means; knots keep each block's ends.
    assert kx.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert ky.tolist() == [1.0, 2.5, 2.5, 3.5, 3.5, 5.0]
    # A fully decreasing sequence pools into one block: its mean, at both ends.
    kx, ky = isotonic(x[:4], np.array([4.0, 3.0, 2.0, 1.0]))
    assert kx.tolist() == [1.0, 4.0] and ky.tolist() == [2.5, 2.5]
    # Ties in x are pooled first: x=2 holds mean(0, 1) = 0.5.
    kx, ky = isotonic(np.array([1.0, 2.0, 2.0, 3.0]), np.array([0.0, 0.0, 1.0, 1.0]))
    assert kx.tolist() == [1.0, 2.0, 3.0] and ky.tolist() == [0.0, 0.5, 1.0]


@pytest.mark.parametrize("seed", range(5))
def test_calibrator_predicts_exactly_as_sklearn_isotonic(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 3000))
    s = np.round(rng.normal(0, 1, n), int(rng.integers(1, 4)))  # ties at every rounding
    y = rng.random(n) < 1 / (1 + np.exp(-2 * s))
    y[0], y[-1] = True, False  # both classes
    cal = fit_calibrator(s.tolist(), y.tolist())
    sk = IsotonicRegression(out_of_bounds="clip").fit(s, y.astype(float))
    grid = np.linspace(s.min() - 1, s.max() + 1, 2001)
    assert np.abs(cal.predict(grid) - sk.predict(grid)).max() < 1e-12
    assert np.abs(cal.predict(s) - sk.predict(s)).max() < 1e-12
    assert np.all(np.diff(cal.predict(grid)) >= 0)  # monotone
    assert min(cal.y) >= 0.0 and max(cal.y) <= 1.0
    assert len(cal.x) <= len(np.unique(s))


def test_numpy_arrays_are_accepted_as_lists() -> None:
    rng = np.random.default_rng(2)
    s = rng.random(400)
    y = rng.random(400) < s
    from_lists = fit_cbpe(s.tolist(), y.tolist(), positive=True, chunk_size=100)
    from_arrays = fit_cbpe(s, y, positive=True, chunk_size=100)  # type: ignore[arg-type]
    assert from_arrays == from_lists
    assert fit_calibrator(s, y) == from_lists.calibrator  # type: ignore[arg-type]
    assert estimate_performance(from_arrays, s[:50]) == estimate_performance(  # type: ignore[arg-type]
        from_lists, s[:50].tolist())


def test_calibrator_positive_inference_and_refusals() -> None:
    cal = fit_calibrator([0.1, 0.9, 0.8], ["no", "yes", "yes"])
    assert cal.positive == "yes" and cal.predict([0.95]).tolist() == [1.0]
    # Scores must rise with the positive class: scores of "yes" read as scores of "no" can
    # only calibrate to the flat base rate (a monotone map cannot reverse them).
    flipped = fit_calibrator([0.1, 0.9, 0.8], ["no", "yes", "yes"], positive="no")
    assert flipped.predict([0.05, 0.95]).tolist() == pytest.approx([1 / 3, 1 / 3])
    with pytest.raises(MonitorError, match="inferred from two classes"):
        fit_calibrator([0.1, 0.2], [1, 1])
    with pytest.raises(MonitorError, match="one other class"):
        fit_calibrator([0.1, 0.2, 0.3], ["a", "b", "c"], positive="a")
    with pytest.raises(MonitorError, match="None at position 1"):
        fit_calibrator([0.1, 0.2], [1, None])
    with pytest.raises(MonitorError, match="at least one"):
        fit_calibrator([], [])
    with pytest.raises(MonitorError, match="finite; got nan at position 0"):
        fit_calibrator([float("nan")], [1])


# --------------------------------------------------------------------------- estimation
def _world(rng: np.random.Generator, n: int, a: float, b: float) -> tuple[Any, Any]:
    """Calibrated truth: the chance of the positive class is ``q ~ Beta(a, b)``; the model
    reports the monotone (uncalibrated) score ``q ** 3``."""
    q = rng.beta(a, b, n)
    return q**3, rng.random(n) < q


@pytest.fixture(scope="module")
def reference() -> CBPEReference:
    scores, labels = _world(np.random.default_rng(SEED), 20_000, 2.0, 2.0)
    return fit_cbpe(scores.tolist(), labels.tolist(), positive=True, threshold=0.125,
                    chunk_size=1000)


def test_reference_holds_realised_metrics_and_chunk_deviations(reference: CBPEReference,
                                                               ) -> None:
    scores, labels = _world(np.random.default_rng(SEED), 20_000, 2.0, 2.0)
    realised = classification_metrics(labels.tolist(), (scores >= 0.125).tolist(),
                                      scores=scores.tolist(), positive=True)
    for m in METRICS:
        assert reference.metrics[m] == pytest.approx(realised[m], abs=1e-12)
        std = reference.chunk_std[m]
        assert std is not None and 0 < std < 0.05, (m, std)
    assert (reference.chunk_size, reference.chunks, reference.n) == (1000, 20, 20_000)


@pytest.mark.parametrize(("a", "b"), [(2.0, 2.0), (1.0, 3.0), (4.0, 1.5), (0.6, 0.6)])
def test_estimates_track_realised_under_covariate_shift(reference: CBPEReference, a: float,
                                                        b: float) -> None:
    rng = np.random.default_rng(SEED + int(10 * a + b))
    errors: dict[str, list[float]] = {m: [] for m in METRICS}
    noise: dict[str, list[float]] = {m: [] for m in METRICS}
    inside = dict.fromkeys(METRICS, 0)
    for _ in range(20):
        scores, labels = _world(rng, 2000, a, b)
        est = estimate_performance(reference, scores.tolist())
        real = classification_metrics(labels.tolist(), (scores >= 0.125).tolist(),
                                      scores=scores.tolist(), positive=True)
        for m in METRICS:
            low, high = est[f"{m}_band"]
            errors[m].append(abs(est[m] - real[m]))
            noise[m].append((high - low) / 3.92)  # the realised metric's own sampling sd
            inside[m] += low <= real[m] <= high
    print({m: (round(float(np.mean(errors[m])), 4), round(float(np.mean(noise[m])), 4))
           for m in METRICS}, inside)
    for m in METRICS:
        # Measured: mean errors 0.004-0.019 (the most under Beta(1, 3), whose mass sits in
        # the reference's sparse low tail). Label noise alone gives 0.8 sd; isotonic's
        # in-sample optimism and the coarse calibration of the tails add up to ~0.01.
        bound = max(0.025, 2 * float(np.mean(noise[m])))
        assert np.mean(errors[m]) < bound, (m, errors[m])
        if (a, b) == (2.0, 2.0):
            # The band holds label noise only, so it is honest where calibration is exact
            # (the reference's own distribution): 19 of 20 expected; measured 17-19.
            assert inside[m] >= 15, (m, inside[m])


def test_expected_auc_is_the_pairwise_expectation() -> None:
    rng = np.random.default_rng(1)
    scores = np.round(rng.random(40), 1)
    labels = rng.random(40) < scores
    labels[:2] = [True, False]
    ref = fit_cbpe(scores.tolist(), labels.tolist(), positive=True, chunk_size=10)
    window = np.round(rng.random(25), 1)
    p = ref.calibrator.predict(window)
    num = den = 0.0
    for i, j in itertools.permutations(range(25), 2):
        weight = p[i] * (1 - p[j])
        den += weight
        num += weight * (1.0 if window[i] > window[j] else 0.5 if window[i] == window[j]
                         else 0.0)
    assert estimate_performance(ref, window.tolist())["roc_auc"] == pytest.approx(num / den)


def test_alerts_fire_on_a_real_drop_and_not_on_a_like_window(reference: CBPEReference,
                                                             ) -> None:
    rng = np.random.default_rng(SEED + 1)
    like = estimate_performance(reference, _world(rng, 2000, 2.0, 2.0)[0].tolist())
    assert like["alerted"] == [] and all(v is False for v in like["alert"].values())
    # Cases near q = 0.5 are coin flips: accuracy and AUC must fall, and be flagged.
    hard_scores, hard_labels = _world(rng, 2000, 30.0, 30.0)
    hard = estimate_performance(reference, hard_scores.tolist())
    real = classification_metrics(hard_labels.tolist(), (hard_scores >= 0.125).tolist(),
                                  scores=hard_scores.tolist(), positive=True)
    assert {"accuracy", "roc_auc"} <= set(hard["alerted"])
    assert real["accuracy"] < reference.metrics["accuracy"] - 0.1  # type: ignore[operator]
    for m in ("accuracy", "roc_auc"):
        assert hard[m] < hard["alert_limit"][m] < reference.metrics[m]


def test_small_windows_get_wider_limits_and_bands(reference: CBPEReference) -> None:
    rng = np.random.default_rng(SEED + 2)
    big = estimate_performance(reference, _world(rng, 4000, 2.0, 2.0)[0].tolist())
    small = estimate_performance(reference, _world(rng, 40, 2.0, 2.0)[0].tolist())
    at_chunk = reference.metrics["accuracy"] - 3 * reference.chunk_std["accuracy"]  # type: ignore[operator]
    assert big["alert_limit"]["accuracy"] == pytest.approx(at_chunk)  # never narrowed
    widened = reference.metrics["accuracy"] - 3 * reference.chunk_std["accuracy"] * 5  # type: ignore[operator]
    assert small["alert_limit"]["accuracy"] == pytest.approx(widened)  # sqrt(1000 / 40) = 5
    width = [r["accuracy_band"][1] - r["accuracy_band"][0] for r in (big, small)]
    assert width[1] > 3 * width[0]


def test_empty_and_single_score_windows(reference: CBPEReference) -> None:
    empty = estimate_performance(reference, [])
    assert empty["n"] == 0 and empty["method"] == "cbpe"
    assert all(empty[m] is None and empty[f"{m}_band"] is None for m in METRICS)
    assert all(v is None for v in empty["alert"].values()) and empty["alerted"] == []
    assert empty["notes"] == ["No scores in the window: every estimate is undefined."]
    one = estimate_performance(reference, [0.9])
    assert one["roc_auc"] is None and any("single score" in n for n in one["notes"])
    p = float(reference.calibrator.predict([0.9])[0])
    assert one["accuracy"] == pytest.approx(p) and one["precision"] == pytest.approx(p)
    below = estimate_performance(reference, [0.0, 0.01])
    assert below["precision"] is None and any("threshold" in n for n in below["notes"])


def test_bands_are_seeded_and_hold_the_estimate(reference: CBPEReference) -> None:
    scores = _world(np.random.default_rng(SEED + 3), 500, 2.0, 2.0)[0].tolist()
    first = estimate_performance(reference, scores, seed=3)
    assert first == estimate_performance(reference, scores, seed=3)
    for m in METRICS:
        low, high = first[f"{m}_band"]
        assert low <= first[m] <= high, m
    assert estimate_performance(reference, scores, samples=0)["accuracy_band"] is None
    with pytest.raises(MonitorError, match="samples must be an integer >= 0; got -1"):
        estimate_performance(reference, scores, samples=-1)


# --------------------------------------------------------------------------- storage
def test_json_round_trip_keeps_every_estimate(reference: CBPEReference) -> None:
    data = json.loads(json.dumps(reference.as_dict()))
    assert data["kind"] == "keelwork.cbpe-reference" and data["version"] == 1
    assert data["calibrator"]["kind"] == "keelwork.calibrator"
    back = CBPEReference.from_dict(data)
    assert back == reference
    scores = _world(np.random.default_rng(SEED + 4), 300, 1.0, 2.0)[0].tolist()
    assert estimate_performance(back, scores) == estimate_performance(reference, scores)
    assert Calibrator.from_dict(reference.calibrator.as_dict()) == reference.calibrator


@pytest.mark.parametrize(("change", "match"), [
    ({"kind": "keelwork.monitor-profile"}, "kind 'keelwork.cbpe-reference'"),
    ({"version": 99}, "version <= 1"),
    ({"chunk_size": "many"}, "malformed"),
    ({"calibrator": {"kind": "keelwork.calibrator", "version": 1, "x": [0, 1], "y": [0.9, 0.1]}},
     "non-decreasing"),
    ({"calibrator": {"kind": "keelwork.calibrator", "version": 1, "x": [0, 1]}}, "'x' and 'y'"),
])
def test_bad_stored_references_are_refused(reference: CBPEReference, change: dict[str, Any],
                                           match: str) -> None:
    with pytest.raises(MonitorError, match=match):
        CBPEReference.from_dict({**reference.as_dict(), **change})


def test_fit_cbpe_refuses_what_it_cannot_fit() -> None:
    with pytest.raises(MonitorError, match="both classes"):
        fit_cbpe([0.1, 0.2, 0.3, 0.4], [0, 0, 0, 0], positive=1, chunk_size=2)
    with pytest.raises(MonitorError, match="at least two full chunks of the 4"):
        fit_cbpe([0.1, 0.2, 0.3, 0.4], [0, 1, 0, 1], chunk_size=3)
    with pytest.raises(MonitorError, match="a tenth of the reference"):
        fit_cbpe([0.1, 0.9], [0, 1])
    with pytest.raises(MonitorError, match="threshold must be finite"):
        fit_cbpe([0.1, 0.9], [0, 1], threshold=float("nan"), chunk_size=1)
    with pytest.raises(MonitorError, match="as long as each other"):
        fit_cbpe([0.1, 0.9], [0], chunk_size=1)


def test_bands_past_the_exact_limit_match_exact_draws(reference: CBPEReference,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Past EXACT_DRAWS_MAX scores the label sums come from their normal law: the bands
    agree with drawing every label, to well within a band's own width."""
    from keelwork.core.monitors import cbpe

    scores, _ = _world(np.random.default_rng(SEED + 5), 60_000, 2.0, 2.0)
    normal = estimate_performance(reference, scores.tolist())
    monkeypatch.setattr(cbpe, "EXACT_DRAWS_MAX", 10**9)
    exact = estimate_performance(reference, scores.tolist())
    for m in METRICS:
        assert normal[m] == exact[m]
        lo, hi = exact[f"{m}_band"]
        width = hi - lo
        assert width > 0
        assert normal[f"{m}_band"] == pytest.approx(exact[f"{m}_band"], abs=0.25 * width)

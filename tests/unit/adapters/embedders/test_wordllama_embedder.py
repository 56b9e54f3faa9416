"""The WordLlama embedder: the real shipped model, loaded with the network unreachable."""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
from typing import Any

import numpy as np
import pytest

if importlib.util.find_spec("wordllama") is None:
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail("CI must install the text extra: pip install 'keelwork[text]'",
                    pytrace=False)
    pytest.skip("the text extra is not installed: pip install 'keelwork[text]'",
                allow_module_level=True)

from keelwork.adapters.embedders import WordLlamaEmbedder
from keelwork.errors import MissingExtraError, ModelLoadError
from keelwork.types import TextEmbedder


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Hugging Face hub and no sockets: loading must use only the installed files."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError("network access is not allowed in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(scope="module")
def embedder() -> WordLlamaEmbedder:
    return WordLlamaEmbedder()


def test_loads_offline_and_satisfies_the_protocol() -> None:
    emb = WordLlamaEmbedder()
    assert isinstance(emb, TextEmbedder)
    assert (emb.name, emb.dim) == ("wordllama-l2_supercat-256", 256)


def test_shape_dtype_and_unit_length(embedder: WordLlamaEmbedder) -> None:
    texts = ["Great coffee, rich and smooth.", "The dog loved these treats!", "", "x" * 20000]
    vectors = embedder.embed(texts)
    assert vectors.shape == (4, 256) and vectors.dtype == np.float32
    norms = np.linalg.norm(vectors, axis=1)
    assert np.allclose(norms[[0, 1, 3]], 1.0, atol=1e-5)
    assert norms[2] == 0.0 and np.isfinite(vectors).all()  # no tokens: zeros, not NaN
    assert embedder.embed([]).shape == (0, 256)


def test_deterministic_across_instances_and_batch_sizes(embedder: WordLlamaEmbedder) -> None:
    # Lengths vary so the length-sorted batching must put every vector back in its place.
    texts = [f"review number {i}: the chips were {'stale ' * (i % 7) or 'crunchy'}"
             for i in range(50)]
    again = WordLlamaEmbedder(batch_size=7).embed(texts)
    assert np.allclose(embedder.embed(texts), again, atol=1e-6)
    one_by_one = np.concatenate([embedder.embed([t]) for t in texts])
    assert np.allclose(one_by_one, again, atol=1e-6)


def test_similar_texts_are_closer_than_unrelated_ones(embedder: WordLlamaEmbedder) -> None:
    a, b, c, d = embedder.embed([
        "This coffee is delicious, a smooth dark roast.",
        "Wonderful espresso beans with a rich, bold flavor.",
        "The quarterly tax filing deadline was extended by the government.",
        "My cat refuses to eat this wet food.",
    ])
    assert float(a @ b) > float(a @ c) + 0.2
    assert float(a @ b) > float(a @ d)


def test_smaller_offline_dimensions(embedder: WordLlamaEmbedder) -> None:
    small = WordLlamaEmbedder(dim=64)
    assert small.name == "wordllama-l2_supercat-64"
    assert small.embed(["tea"]).shape == (1, 64)


def test_unavailable_dimension_or_config_is_a_load_error() -> None:
    with pytest.raises(ModelLoadError, match=r"dim in \(64, 128, 256\)"):
        WordLlamaEmbedder(dim=512)
    with pytest.raises(ModelLoadError, match="'l3_supercat'"):
        WordLlamaEmbedder(config="l3_supercat")  # not shipped in the wheel: no download
    with pytest.raises(ModelLoadError, match="'no_such_config'"):
        WordLlamaEmbedder(config="no_such_config")


def test_bad_texts_are_refused(embedder: WordLlamaEmbedder) -> None:
    with pytest.raises(TypeError, match="single str"):
        embedder.embed("one text")
    with pytest.raises(TypeError, match="item 1 is int"):
        embedder.embed(["ok", 3])  # type: ignore[list-item]


def test_missing_package_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wordllama", None)
    with pytest.raises(MissingExtraError, match=r"keelwork\[text\]"):
        WordLlamaEmbedder()

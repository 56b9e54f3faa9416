"""The Hugging Face runtime: offline loading, task inference, options, bad directories."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

from fixtures import models as fm
from keelwork.adapters.runtimes import load_runtime
from keelwork.errors import InvalidInputError, ModelLoadError

pytest.importorskip("torch")
pytest.importorskip("tokenizers")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(fm.hf_text_classifier(tmp_path_factory.mktemp("hf")).artifact)


@pytest.fixture(scope="module")
def runtime(model_dir: Path) -> Any:
    return load_runtime("hf", model_dir)


def test_loading_never_opens_a_connection(model_dir: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access while loading: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    rt = load_runtime("hf", model_dir)
    assert len(rt.predict(["fine"])) == 1


def test_the_task_and_classes_come_from_the_config(runtime: Any) -> None:
    sig = runtime.signature
    assert sig.extra["task"] == "text-classification"
    assert sig.extra["architectures"] == ["BertForSequenceClassification"]
    assert sig.classes == ("NEGATIVE", "POSITIVE")
    out = runtime.predict(["a wonderful story"])
    assert set(out[0]) == {"label", "score"} and out[0]["label"] in sig.classes


def test_batches_match_single_calls(runtime: Any) -> None:
    texts = list(fm.TEXTS[i][0] for i in range(0, 16, 3))
    batch = runtime.predict(texts)
    singles = [runtime.predict([t])[0] for t in texts]
    for b, s in zip(batch, singles, strict=True):
        assert b["label"] == s["label"] and abs(b["score"] - s["score"]) < 1e-4


def test_top_k_returns_several_labels(model_dir: Path) -> None:
    rt = load_runtime("hf", model_dir, {"top_k": 2})
    out = rt.predict(["a wonderful story", "boring"])
    assert [len(o) for o in out] == [2, 2]
    assert {d["label"] for d in out[0]} == {"NEGATIVE", "POSITIVE"}


def test_text_field_names_the_text_of_a_record(model_dir: Path) -> None:
    rt = load_runtime("hf", model_dir, {"text_field": "body"})
    plain = rt.predict(["boring"])
    assert rt.predict([{"title": "t", "body": "boring"}])[0]["label"] == plain[0]["label"]
    with pytest.raises(InvalidInputError, match=r"missing the text field 'body'"):
        rt.predict([{"title": "t"}])


def test_an_explicit_task_must_be_a_text_task(model_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"must be a text task.*got 'image-classification'"):
        load_runtime("hf", model_dir, {"task": "image-classification"})


def test_an_unknown_architecture_needs_a_task(model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(model_dir, copy)
    config = json.loads((copy / "config.json").read_text())
    config["architectures"] = ["SomethingNew"]
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match=r"set options.task"):
        load_runtime("hf", copy)
    assert load_runtime("hf", copy, {"task": "sentiment-analysis"}).signature.classes


def test_a_directory_without_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"no config.json.*save_pretrained"):
        load_runtime("hf", tmp_path)


def test_missing_weights_name_the_directory(model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "no_weights"
    shutil.copytree(model_dir, copy)
    (copy / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError) as info:
        load_runtime("hf", copy)
    assert str(copy) in str(info.value)

"""The Hugging Face runtime's text generation: the continuation and the tokens it took.

A greedy tiny GPT-2 (random weights, word-level tokenizer: one token per word) generates; its
answers report ``usage`` -- the prompt's tokens and the generated ones -- which
``cost.token_prices`` charges. The counts are checked against the model's own generate()."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fixtures import models as fm
from keelwork.adapters.runtimes import load_runtime

torch = pytest.importorskip("torch")
pytest.importorskip("tokenizers")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return fm.hf_text_generator(tmp_path_factory.mktemp("gen"))


def _reference(path: Path, text: str, max_new: int) -> list[int]:
    """The generated ids of ``text`` by the model's own greedy generate()."""
    tok = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    ids = tok(text, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=max_new, do_sample=False,
                             pad_token_id=tok.pad_token_id)
    return [int(i) for i in out[0][ids["input_ids"].shape[1]:]]


def test_generation_reports_the_tokens_of_prompt_and_continuation(built: Any) -> None:
    rt = load_runtime("hf", built.artifact, built.options)
    assert rt.signature.extra["task"] == "text-generation"
    texts = list(built.sample)
    out = rt.predict(texts)
    tok = transformers.AutoTokenizer.from_pretrained(built.artifact, local_files_only=True)
    for text, answer in zip(texts, out, strict=True):
        assert set(answer) == {"generated_text", "usage"}
        assert answer["generated_text"].startswith(text)
        want = _reference(Path(built.artifact), text, 6)
        while want and want[-1] == tok.pad_token_id and len(want) > 1 and \
                want[-2] == tok.pad_token_id:
            want.pop()  # padding after the end of text (pad is not eos here)
        assert answer["usage"] == {"input_tokens": len(text.split()),
                                   "output_tokens": len(want)}
        assert 1 <= answer["usage"]["output_tokens"] <= 6


def test_a_batch_answers_as_single_calls(built: Any) -> None:
    rt = load_runtime("hf", built.artifact, {**built.options, "batch_size": 3})
    texts = list(built.sample)
    batch = rt.predict(texts)
    singles = [rt.predict([t])[0] for t in texts]
    assert [b["usage"] for b in batch] == [s["usage"] for s in singles]
    assert [b["generated_text"] for b in batch] == [s["generated_text"] for s in singles]


def test_max_new_tokens_bounds_the_continuation(built: Any) -> None:
    rt = load_runtime("hf", built.artifact, {"max_new_tokens": 2})
    out = rt.predict(["i loved it"])
    assert out[0]["usage"]["input_tokens"] == 3
    assert 1 <= out[0]["usage"]["output_tokens"] <= 2

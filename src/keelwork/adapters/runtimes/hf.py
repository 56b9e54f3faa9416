"""Hugging Face models from a local directory, through a ``transformers`` pipeline.

Loading never touches the network: the directory must hold what ``save_pretrained`` writes
(``config.json``, weights, tokenizer files) and everything is read with
``local_files_only=True``. The task comes from ``options.task`` or, when absent, from the
architecture named in ``config.json`` (``...ForSequenceClassification`` -> text-classification).

Each instance is one text, or a record with one text field. Pipelines are not safe to call from
several threads at once (the fast tokenizer is shared), so calls are serialised by a lock;
throughput comes from batching inside the pipeline instead.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import Field

from keelwork.adapters.runtimes.base import (
    BaseRuntime,
    RuntimeConfig,
    import_optional,
    one_per_instance,
    text_batch,
)
from keelwork.core.signature import Signature, TensorSignature
from keelwork.errors import ModelLoadError
from keelwork.types import Instance, JSONValue

_PURPOSE = "The 'hf' runtime"

#: Architecture suffix in config.json -> pipeline task.
_TASK_BY_ARCHITECTURE = (
    ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForMaskedLM", "fill-mask"),
    ("ForCausalLM", "text-generation"),
    ("LMHeadModel", "text-generation"),  # GPT2LMHeadModel and kin
)
_TASK_ALIASES = {"sentiment-analysis": "text-classification", "ner": "token-classification"}
#: Tasks whose input is one text per instance (the ones this runtime can feed).
_TEXT_TASKS = frozenset({"text-classification", "token-classification", "fill-mask",
                         "text-generation", "feature-extraction"})


class HuggingFaceConfig(RuntimeConfig):
    """Options of the ``hf`` runtime."""

    #: Pipeline task; default: read from the architecture in config.json.
    task: str | None = None
    #: The record field that holds the text, for records with more than one field.
    text_field: str | None = None
    #: Texts per forward pass inside the pipeline.
    batch_size: int = Field(default=8, ge=1)
    #: Truncate texts longer than the model's maximum length (text-classification).
    truncation: bool = True
    #: text-classification: labels returned per instance (default: the top one as one object).
    top_k: int | None = Field(default=None, ge=1)
    #: text-generation: most tokens generated per text (default: the model's generation config).
    max_new_tokens: int | None = Field(default=None, ge=1, le=4096)


class HuggingFaceRuntime(BaseRuntime):
    """A ``transformers`` pipeline over a model saved with ``save_pretrained``.

    Args:
        artifact: The model directory.
        options: See :class:`HuggingFaceConfig`.
        allow_unsafe_pickle: Unused: only safetensors/PyTorch weights the library loads safely.
    """

    kind = "hf"
    config_model: ClassVar[type[RuntimeConfig]] = HuggingFaceConfig
    config: HuggingFaceConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pipe: Any = None
        self._task = ""
        self._classes: tuple[str, ...] | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Build the pipeline from the local directory, offline.

        Raises:
            ModelLoadError: the directory is not a saved model, the task is unknown or not a
                text task, or transformers fails to load it.
            MissingExtraError: transformers (or torch) is not installed.
        """
        transformers = import_optional("transformers", "hf", _PURPOSE)
        import_optional("torch", "hf", _PURPOSE)
        config = self._read_config()
        task = self.config.task or _task_from_config(config)
        if task is None:
            raise ModelLoadError(
                f"Cannot tell the task of the Hugging Face model in {str(self.path)!r} from its "
                f"architectures {config.get('architectures')}; set options.task (one of: "
                f"{', '.join(sorted(_TEXT_TASKS))})."
            )
        task = _TASK_ALIASES.get(task, task)
        if task not in _TEXT_TASKS:
            raise ModelLoadError(
                f"options.task must be a text task ({', '.join(sorted(_TEXT_TASKS))}); "
                f"got {task!r}."
            )
        try:
            if task == "text-generation":
                # The pipeline would hand local_files_only on to generate(): load the parts.
                model = transformers.AutoModelForCausalLM.from_pretrained(
                    str(self.path), local_files_only=True, trust_remote_code=False)
                tok = transformers.AutoTokenizer.from_pretrained(
                    str(self.path), local_files_only=True, trust_remote_code=False)
                pipe = transformers.pipeline(task, model=model, tokenizer=tok, device="cpu")
            else:
                pipe = transformers.pipeline(
                    task, model=str(self.path), tokenizer=str(self.path), device="cpu",
                    local_files_only=True, trust_remote_code=False,
                )
        except Exception as exc:
            raise self.load_error(exc, f"build a {task} pipeline from") from exc
        self._task = task
        self._pipe = pipe
        id2label = getattr(pipe.model.config, "id2label", None) or {}
        if task == "text-classification" and id2label:
            self._classes = tuple(str(id2label[i]) for i in sorted(id2label))
        self._signature = self._build_signature(config)
        self._loaded = True

    def _read_config(self) -> dict[str, Any]:
        path = self.path / "config.json"
        if not path.is_file():
            raise ModelLoadError(
                f"{str(self.path)!r} is not a Hugging Face model directory: it has no "
                "config.json. Save the model and its tokenizer with save_pretrained(dir)."
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"Cannot read {str(path)!r}: {exc}") from exc
        if not isinstance(data, dict):
            raise ModelLoadError(f"{str(path)!r} must hold a JSON object; got {type(data)}.")
        return data

    def _build_signature(self, config: Mapping[str, Any]) -> Signature:
        if self._task == "text-classification":
            outputs: tuple[TensorSignature, ...] = (
                TensorSignature("label", "BYTES", (-1,)), TensorSignature("score", "FP32", (-1,)))
        else:
            outputs = (TensorSignature("output", "BYTES", (-1,)),)
        return Signature(
            inputs=(TensorSignature(self.config.text_field or "text", "BYTES", (-1,)),),
            outputs=outputs,
            classes=self._classes,
            extra={"task": self._task, "architectures": list(config.get("architectures") or [])},
        )

    def unload(self) -> None:
        """Drop the pipeline (and with it the model weights)."""
        self._pipe = None
        self._loaded = False

    # ------------------------------------------------------------------ predict
    def predict(self, instances: Sequence[Instance]) -> list[JSONValue]:
        """Run the pipeline: one result per text (``{label, score}`` for text-classification).

        Raises:
            InvalidInputError: an instance is not a text or a record with one text field.
            PredictionError: the pipeline raised.
        """
        kwargs: dict[str, Any] = {}
        if self._task == "text-classification":
            kwargs["truncation"] = self.config.truncation
            if self.config.top_k is not None:
                kwargs["top_k"] = self.config.top_k
        if self._task == "text-generation":
            return self._generate(instances)
        return self._call(instances, kwargs)

    def _generate(self, instances: Sequence[Instance]) -> list[JSONValue]:
        """text-generation: per text ``{"generated_text", "usage": {"input_tokens",
        "output_tokens"}}`` -- the prompt and its continuation, and the tokens each took (what
        ``cost.token_prices`` charges: :mod:`keelwork.core.cost`).

        The pipeline is asked for token ids (``return_tensors``) so that the counts are the
        model's own, not a second tokenisation of the text: the prompt's ids are its
        tokenizer's encoding (what the pipeline fed), the rest of the sequence is generated,
        padding a batch added left out (an end-of-text token that is also the pad token is
        counted once).
        """
        kwargs: dict[str, Any] = {"return_tensors": True}
        if self.config.max_new_tokens is not None:
            kwargs["max_new_tokens"] = self.config.max_new_tokens
        texts, rows = self._run(instances, kwargs)
        if not texts:
            return []
        tokenizer = self._pipe.tokenizer
        with self._lock, self.model_errors("encoding the prompts"):
            prompts = [list(tokenizer(t)["input_ids"]) for t in texts]
        answers: list[JSONValue] = []
        with self.model_errors("reading generated tokens"):
            for text, prompt, row in zip(texts, prompts, rows, strict=True):
                first = row[0] if isinstance(row, list) else row
                ids = [int(i) for i in first["generated_token_ids"]]
                new = _continuation(ids, prompt, tokenizer.pad_token_id,
                                    tokenizer.eos_token_id)
                answers.append({
                    "generated_text": text + tokenizer.decode(new, skip_special_tokens=True),
                    "usage": {"input_tokens": len(prompt), "output_tokens": len(new)}})
        return answers

    def predict_proba(self, instances: Sequence[Instance]) -> list[list[float]] | None:
        """Scores of every label (``signature.classes`` order) for text-classification, else None.

        Raises:
            InvalidInputError: an instance is not a text or a record with one text field.
            PredictionError: the pipeline raised.
        """
        if self._pipe is None:
            raise self._not_loaded()
        if self._classes is None:
            return None
        rows = self._call(instances, {"top_k": None, "truncation": self.config.truncation})
        order = {label: i for i, label in enumerate(self._classes)}
        probs: list[list[float]] = []
        with self.model_errors("reading label scores"):
            for row in rows:
                scores = [0.0] * len(order)
                for item in row:
                    scores[order[str(item["label"])]] = float(item["score"])
                probs.append(scores)
        return probs

    def _call(self, instances: Sequence[Instance], kwargs: dict[str, Any]) -> list[JSONValue]:
        return self._run(instances, kwargs)[1]

    def _run(self, instances: Sequence[Instance],
             kwargs: dict[str, Any]) -> tuple[list[str], list[JSONValue]]:
        """The texts of ``instances`` and the pipeline's result for each."""
        pipe = self._pipe
        if pipe is None:
            raise self._not_loaded()
        texts = text_batch(instances, text_field=self.config.text_field)
        if not texts:
            return [], []
        tokenizer = getattr(pipe, "tokenizer", None)
        batch_size = min(self.config.batch_size, len(texts))
        if getattr(tokenizer, "pad_token", None) is None:
            batch_size = 1  # without a pad token texts of different lengths cannot share a batch
        with self._lock, self.model_errors():
            out = pipe(texts, batch_size=batch_size, **kwargs)
        return texts, one_per_instance(out, len(texts), kind=self.kind, what="results")


def _continuation(ids: list[int], prompt: list[int], pad: int | None,
                  eos: int | None) -> list[int]:
    """The generated ids of a sequence the pipeline returned: after the prompt (and any
    left padding before it), without the padding after the end (one end-of-text token kept
    when the pad token is also the end-of-text token: generation stopped on it)."""
    start = 0
    while pad is not None and start < len(ids) - len(prompt) and ids[start] == pad \
            and ids[start:start + len(prompt)] != prompt:
        start += 1
    new = ids[start + len(prompt):]
    end = len(new)
    while pad is not None and end and new[end - 1] == pad:
        end -= 1
    if end < len(new) and pad is not None and pad == eos:
        end += 1
    return new[:end]


def _task_from_config(config: Mapping[str, Any]) -> str | None:
    for arch in config.get("architectures") or ():
        for suffix, task in _TASK_BY_ARCHITECTURE:
            if str(arch).endswith(suffix):
                return task
    return None


__all__ = ["HuggingFaceConfig", "HuggingFaceRuntime"]

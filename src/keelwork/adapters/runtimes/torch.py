"""PyTorch models on the CPU or a CUDA GPU: TorchScript, torch.export programs (``.pt2``),
pickled modules.

The format is read from the file: a ``.pt2`` archive is loaded with ``torch.export.load``, a
TorchScript archive with ``torch.jit.load``; a module saved whole with ``torch.save`` is a
pickle and needs ``allow_unsafe_pickle``. Every call runs under ``torch.inference_mode()``.

An exported program declares its input shapes, so bad shapes are caught before the model runs;
for TorchScript give ``options.input_shape`` (or ``options.feature_names``) to get the same.

With ``options.device: cuda`` (or ``cuda:N``) the module and its inputs move to that GPU and
each call's GPU time is measured with CUDA events (:class:`~keelwork.adapters.runtimes.gpu_clock.
CudaClock`): ``gpu_seconds()`` is what the gateway charges at ``cost.gpu_hour``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from keelwork.adapters.runtimes.base import (
    BaseRuntime,
    RuntimeConfig,
    as_batch,
    import_optional,
    numeric_matrix,
    one_per_instance,
    refuse_or_warn_pickle,
    tensor_batch,
    to_jsonable,
)
from keelwork.adapters.runtimes.gpu_clock import CudaClock
from keelwork.core.signature import Signature, TensorSignature
from keelwork.errors import ErrorDetail, InvalidInputError, ModelLoadError
from keelwork.types import Instance, JSONValue

_PURPOSE = "The 'torch' runtime"
_OIP = {"float32": "FP32", "float64": "FP64", "float16": "FP16", "int64": "INT64",
        "int32": "INT32", "bool": "BOOL"}

TorchFormat = Literal["auto", "torchscript", "export", "pickle"]


class TorchConfig(RuntimeConfig):
    """Options of the ``torch`` runtime."""

    #: How the file was saved; 'auto' reads it from the archive.
    format: TorchFormat = "auto"
    #: Element type of the input tensor.
    dtype: Literal["float32", "float64", "float16", "int64", "int32", "bool"] = "float32"
    #: Feature order for records (tabular models: one row of features per instance).
    feature_names: tuple[str, ...] | None = None
    #: Shape of one instance, without the batch axis; -1 = any size.
    input_shape: tuple[int, ...] | None = None
    #: Class labels by output index: ``predict`` then returns the label of the largest output.
    classes: tuple[str | int, ...] | None = None
    #: How ``predict_proba`` turns outputs into probabilities ('none': no predict_proba).
    #: Default: 'softmax' when ``classes`` is set, else 'none'.
    proba: Literal["softmax", "sigmoid", "identity", "none"] | None = None
    #: Where the model runs: 'cpu', or a CUDA GPU ('cuda', 'cuda:1'), whose time is measured.
    device: str = Field(default="cpu", pattern=r"^(cpu|cuda(:\d+)?)$")


class TorchRuntime(BaseRuntime):
    """A PyTorch model on the CPU.

    Args:
        artifact: A ``.pt2`` (torch.export), a TorchScript file, or (with
            ``allow_unsafe_pickle``) a module saved with ``torch.save``.
        options: See :class:`TorchConfig`.
        allow_unsafe_pickle: Allow ``torch.save`` pickles (they execute code on load).
    """

    kind = "torch"
    config_model: ClassVar[type[RuntimeConfig]] = TorchConfig
    config: TorchConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._module: Any = None
        self._format: str = ""
        self._input_names: tuple[str, ...] = ("input",)
        self._item_shapes: list[tuple[int | None, ...] | None] = [None]
        self._fixed_batch: int | None = None
        self._output_shapes: list[tuple[int, ...]] = []
        self._gpu: CudaClock | None = None

    @classmethod
    def pickled_parts(cls, path: Path, options: Mapping[str, Any]) -> list[Path]:
        """The file itself when its format (given, or read from the archive) is pickle."""
        fmt = str(options.get("format", "auto"))
        if fmt == "auto":
            fmt = _detect_format(path) if path.is_file() else "pickle"
        return [path] if fmt == "pickle" else []

    # ------------------------------------------------------------------ lifecycle
    def load(self) -> None:
        """Load the module and read its input names and shapes where the format records them.

        Raises:
            UnsafeArtifactError: the file is a pickle and ``allow_unsafe_pickle`` is off.
            ModelLoadError: the file is corrupt, not a model, or exported with a fixed batch
                size other than 1.
            MissingExtraError: torch is not installed.
        """
        torch = import_optional("torch", "torch", _PURPOSE)
        path = self.path
        fmt = self.config.format if self.config.format != "auto" else _detect_format(path)
        if fmt == "pickle":
            refuse_or_warn_pickle(path, self.allow_unsafe_pickle, self.kind)
        try:
            if fmt == "export":
                program = torch.export.load(str(path))
                module = program.module()
                self._read_exported(program)
            elif fmt == "torchscript":
                module = torch.jit.load(str(path), map_location="cpu").eval()
                self._read_script(module)
            else:
                module = torch.load(str(path), map_location="cpu", weights_only=False)
        except Exception as exc:
            raise self.load_error(exc, f"load the {fmt} file") from exc
        if not isinstance(module, torch.nn.Module):
            raise ModelLoadError(
                f"The 'torch' artifact {str(path)!r} holds a {type(module).__name__}, not a "
                "model (a state_dict holds weights only): save the whole model with "
                "torch.export.save or TorchScript."
            )
        if fmt == "pickle":
            module.eval()
        module = self._to_device(torch, module)
        self._apply_options()
        self._format = fmt
        self._module = module
        self._signature = self._build_signature()
        self._loaded = True

    def _to_device(self, torch: Any, module: Any) -> Any:
        """``module`` on the configured device (a CUDA device gets a clock of its own)."""
        device = self.config.device
        if device == "cpu":
            return module
        if not torch.cuda.is_available():
            raise ModelLoadError(f"options.device is {device!r} but torch sees no CUDA device "
                                 "(no GPU, or a CPU-only torch build); use device: cpu.")
        try:
            moved = module.to(device)
        except Exception as exc:
            raise self.load_error(exc, f"move the model to {device}") from exc
        self._gpu = CudaClock(torch)
        return moved

    def gpu_seconds(self) -> float:
        """GPU seconds of this model's calls so far (0 on the CPU)."""
        return self._gpu.seconds() if self._gpu is not None else 0.0

    def _read_exported(self, program: Any) -> None:
        names = tuple(program.graph_signature.user_inputs)
        placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
        shapes: list[tuple[int | None, ...] | None] = []
        batches: set[int | None] = set()
        for name in names:
            val = placeholders[name].meta.get("val") if name in placeholders else None
            shape = getattr(val, "shape", None)
            if shape is None or len(shape) == 0:
                shapes.append(None)
                continue
            dims = tuple(d if isinstance(d, int) else None for d in shape)
            batches.add(dims[0])
            shapes.append(dims[1:])
        if len(batches) == 1:
            fixed = batches.pop()
            if fixed is not None and fixed != 1:
                raise ModelLoadError(
                    f"The exported program {self.path.name!r} only accepts batches of exactly "
                    f"{fixed}. Export it with a dynamic batch axis, e.g. torch.export.export("
                    "model, args, dynamic_shapes={'x': {0: torch.export.Dim('batch')}})."
                )
            self._fixed_batch = fixed
        self._input_names = names or ("input",)
        self._item_shapes = shapes or [None]
        self._output_shapes = []
        for node in program.graph.nodes:
            if node.op == "output":
                for out in node.args[0] if isinstance(node.args[0], (tuple, list)) else ():
                    shape = getattr(getattr(out, "meta", {}).get("val"), "shape", None)
                    if shape is not None:
                        self._output_shapes.append(
                            tuple(d if isinstance(d, int) else -1 for d in shape))

    def _read_script(self, module: Any) -> None:
        try:
            args = module.forward.schema.arguments[1:]
            names = tuple(a.name for a in args)
        except Exception:  # a scripted module without a forward schema: one unnamed input
            names = ()
        self._input_names = names or ("input",)
        self._item_shapes = [None] * len(self._input_names)

    def _apply_options(self) -> None:
        cfg = self.config
        if cfg.input_shape is not None:
            self._item_shapes[0] = tuple(d if d >= 0 else None for d in cfg.input_shape)
        if cfg.feature_names is not None:
            declared = self._item_shapes[0]
            n = len(cfg.feature_names)
            if declared is not None and (len(declared) != 1 or declared[0] not in (None, n)):
                raise ModelLoadError(
                    f"options.feature_names lists {n} names but the model "
                    f"{self.path.name!r} takes inputs of shape {list(declared)}."
                )
            self._item_shapes[0] = (n,)

    def _build_signature(self) -> Signature:
        cfg = self.config
        inputs = tuple(
            TensorSignature(name, _OIP[cfg.dtype], (-1, *(d if d is not None else -1
                                                         for d in (shape or ()))))
            for name, shape in zip(self._input_names, self._item_shapes, strict=False)
        )
        if cfg.classes:
            outputs = [TensorSignature("output", "BYTES", (-1,))]
        else:
            shapes = self._output_shapes or [(-1,)]
            outputs = [TensorSignature("output" if i == 0 else f"output_{i}", "FP32", shape)
                       for i, shape in enumerate(shapes)]
        if self._proba_mode() != "none":
            outputs.append(TensorSignature("proba", "FP32", (-1, len(cfg.classes or ()) or -1)))
        return Signature(inputs=inputs, outputs=tuple(outputs), feature_names=cfg.feature_names,
                         classes=tuple(cfg.classes) if cfg.classes else None,
                         extra={"format": self._format})

    def _proba_mode(self) -> str:
        if self.config.proba is not None:
            return self.config.proba
        return "softmax" if self.config.classes else "none"

    def unload(self) -> None:
        """Drop the module."""
        self._module = None
        self._loaded = False

    # ------------------------------------------------------------------ predict
    def predict(self, instances: Sequence[Instance]) -> list[JSONValue]:
        """Run the model: raw outputs per instance, or class labels when ``classes`` is set.

        Raises:
            InvalidInputError: the batch does not form the model's input tensor(s).
            PredictionError: the model raised.
        """
        if self._module is None:
            raise self._not_loaded()
        if not as_batch(instances):
            return []
        out, n = self._forward(instances)
        classes = self.config.classes
        if classes:
            first = out if not isinstance(out, (tuple, list, Mapping)) else _first_tensor(out)
            with self.model_errors("mapping outputs to classes"):
                index = first.argmax(dim=-1).tolist()
                return [classes[i] for i in index]
        return self._split(out, n)

    def predict_proba(self, instances: Sequence[Instance]) -> list[list[float]] | None:
        """Probabilities per instance (softmax/sigmoid/identity of the first output), or None.

        Raises:
            InvalidInputError: the batch does not form the model's input tensor(s).
            PredictionError: the model raised.
        """
        if self._module is None:
            raise self._not_loaded()
        mode = self._proba_mode()
        if mode == "none":
            return None
        if not as_batch(instances):
            return []
        out, n = self._forward(instances)
        logits = out if not isinstance(out, (tuple, list, Mapping)) else _first_tensor(out)
        with self.model_errors("computing probabilities"):
            logits = logits.float()
            probs = (logits.softmax(dim=-1) if mode == "softmax"
                     else logits.sigmoid() if mode == "sigmoid" else logits)
        return one_per_instance(probs.cpu().numpy(), n, kind=self.kind,
                                what="probability rows")

    def _forward(self, instances: Sequence[Instance]) -> tuple[Any, int]:
        module = self._module
        if module is None:
            raise self._not_loaded()
        import torch

        tensors, n = self._tensors(instances)
        gpu = self._gpu
        if gpu is not None:
            tensors = [t.to(self.config.device) for t in tensors]

        def call() -> Any:
            with self.model_errors(), torch.inference_mode():
                if self._fixed_batch == 1 and n > 1:
                    return _concat([module(*(t[i:i + 1] for t in tensors)) for i in range(n)])
                return module(*tensors)
        return (call() if gpu is None else gpu.run(call)), n

    def _tensors(self, instances: Sequence[Instance]) -> tuple[list[Any], int]:
        import torch

        batch = as_batch(instances)
        dtype = self.config.dtype
        if len(self._input_names) == 1:
            shape = self._item_shapes[0]
            tabular = shape is not None and len(shape) == 1
            if tabular or (shape is None and any(isinstance(i, Mapping) for i in batch)):
                arr = numeric_matrix(batch, feature_names=self.config.feature_names,
                                     n_features=shape[0] if shape else None, dtype=dtype)
            else:
                arr = tensor_batch(batch, shape, dtype)
            return [torch.from_numpy(arr)], len(batch)
        tensors = []
        for name, shape in zip(self._input_names, self._item_shapes, strict=False):
            values = []
            for i, inst in enumerate(batch):
                if not isinstance(inst, Mapping) or name not in inst:
                    raise InvalidInputError(
                        f"This model has several inputs ({', '.join(self._input_names)}); "
                        f"instance {i} must be a record with a value for each; it lacks "
                        f"{name!r}.",
                        [ErrorDetail(path=f"instances[{i}].{name}", rule="required")],
                    )
                values.append(inst[name])
            tensors.append(torch.from_numpy(
                tensor_batch(values, shape, dtype, label=f"input {name!r} of instance")))
        return tensors, len(batch)

    def _split(self, out: Any, n: int) -> list[JSONValue]:
        if isinstance(out, Mapping):
            cols = {str(k): one_per_instance(_numpy(v), n, kind=self.kind)
                    for k, v in out.items()}
            return [{k: v[i] for k, v in cols.items()} for i in range(n)]
        if isinstance(out, (tuple, list)):
            parts = [one_per_instance(_numpy(v), n, kind=self.kind) for v in out]
            return [[p[i] for p in parts] for i in range(n)]
        return one_per_instance(_numpy(out), n, kind=self.kind)


def _detect_format(path: Path) -> str:
    """Read the format from the archive's entries (all three are zip files since torch 1.6)."""
    if path.suffix.lower() == ".pt2":
        return "export"
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return "pickle"  # the legacy torch.save format: a bare pickle stream
    if any(n.endswith("/archive_format") for n in names):
        return "export"
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
        return "torchscript"
    return "pickle"


def _numpy(value: Any) -> Any:
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return to_jsonable(value)


def _first_tensor(out: Any) -> Any:
    values = list(out.values()) if isinstance(out, Mapping) else list(out)
    return values[0]


def _concat(parts: list[Any]) -> Any:
    import torch

    first = parts[0]
    if isinstance(first, Mapping):
        return {k: torch.cat([p[k] for p in parts]) for k in first}
    if isinstance(first, (tuple, list)):
        return tuple(torch.cat([p[i] for p in parts]) for i in range(len(first)))
    return torch.cat(parts)


__all__ = ["TorchConfig", "TorchRuntime"]

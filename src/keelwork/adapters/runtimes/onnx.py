"""ONNX models through ONNX Runtime (CPU execution provider).

The signature comes from the session's declared inputs and outputs, so a wrong number of
features, a wrong type or a wrong tensor shape is caught before ONNX Runtime sees the batch.
Classifiers converted by skl2onnx are understood: the label output answers ``predict`` and the
probability output (a tensor, or a sequence of maps when ZipMap is on) answers
``predict_proba``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from keelwork.adapters.runtimes.base import (
    BaseRuntime,
    RuntimeConfig,
    as_batch,
    import_optional,
    numeric_matrix,
    one_per_instance,
    tensor_batch,
    text_batch,
    to_jsonable,
)
from keelwork.core.signature import Signature, TensorSignature
from keelwork.errors import ErrorDetail, InvalidInputError, ModelLoadError, PredictionError
from keelwork.types import Instance, JSONValue

if TYPE_CHECKING:
    from numpy.typing import NDArray

_PURPOSE = "The 'onnx' runtime"

#: ONNX tensor element type -> (numpy dtype, Open Inference Protocol name).
_ONNX_TYPES: dict[str, tuple[str, str]] = {
    "tensor(float)": ("float32", "FP32"),
    "tensor(double)": ("float64", "FP64"),
    "tensor(float16)": ("float16", "FP16"),
    "tensor(int64)": ("int64", "INT64"),
    "tensor(int32)": ("int32", "INT32"),
    "tensor(int16)": ("int16", "INT16"),
    "tensor(int8)": ("int8", "INT8"),
    "tensor(uint8)": ("uint8", "UINT8"),
    "tensor(bool)": ("bool", "BOOL"),
    "tensor(string)": ("object", "BYTES"),
}
_CLASS_LABEL_ATTRS = ("classlabels_int64s", "classlabels_ints", "classlabels_strings")


class OnnxConfig(RuntimeConfig):
    """Options of the ``onnx`` runtime."""

    #: Feature order for records (ONNX files do not store column names).
    feature_names: tuple[str, ...] | None = None
    #: The output that ``predict`` returns; default: the first non-probability output.
    output: str | None = None
    #: The output that ``predict_proba`` returns; default: the one named like 'probabilit*'.
    proba_output: str | None = None
    #: ONNX Runtime intra-op threads; default: ONNX Runtime's choice.
    intra_op_num_threads: int | None = Field(default=None, ge=1)
    #: For a string input: the record field that holds the text.
    text_field: str | None = None


class _Input:
    """One declared session input."""

    def __init__(self, name: str, onnx_type: str, shape: Sequence[Any]) -> None:
        self.name = name
        self.onnx_type = onnx_type
        self.dtype, self.oip = _ONNX_TYPES.get(onnx_type, ("", "BYTES"))
        self.shape = tuple(d if isinstance(d, int) and d >= 0 else None for d in shape)

    @property
    def fixed_batch(self) -> int | None:
        return self.shape[0] if self.shape else None


class OnnxRuntime(BaseRuntime):
    """An ONNX model run by an ``onnxruntime.InferenceSession`` on the CPU.

    Args:
        artifact: The ``.onnx`` file.
        options: See :class:`OnnxConfig`.
        allow_unsafe_pickle: Unused (ONNX files hold no code).
    """

    kind = "onnx"
    config_model: ClassVar[type[RuntimeConfig]] = OnnxConfig
    config: OnnxConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._session: Any = None
        self._inputs: list[_Input] = []
        self._output: str = ""
        self._proba_output: str | None = None
        self._classes: tuple[Any, ...] | None = None

    def load(self) -> None:
        """Create the inference session and read the model's inputs, outputs and classes.

        Raises:
            ModelLoadError: the file is not a valid ONNX model, or a named output is absent.
            MissingExtraError: onnxruntime is not installed.
        """
        ort = import_optional("onnxruntime", "onnx", _PURPOSE)
        opts = ort.SessionOptions()
        if self.config.intra_op_num_threads is not None:
            opts.intra_op_num_threads = self.config.intra_op_num_threads
        try:
            session = ort.InferenceSession(str(self.path), sess_options=opts,
                                           providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise self.load_error(exc, "open the ONNX model") from exc
        self._inputs = [_Input(i.name, i.type, i.shape) for i in session.get_inputs()]
        outputs = [(o.name, o.type, o.shape) for o in session.get_outputs()]
        self._pick_outputs(outputs)
        if self._proba_output is not None:
            self._classes = _class_labels(self.path)
        first = self._inputs[0]
        if (len(self._inputs) == 1 and self.config.feature_names is not None
                and len(first.shape) == 2 and first.shape[1] is not None
                and first.shape[1] != len(self.config.feature_names)):
            raise ModelLoadError(
                f"options.feature_names lists {len(self.config.feature_names)} names but the "
                f"ONNX model {self.path.name!r} takes {first.shape[1]} features."
            )
        self._session = session
        self._signature = self._build_signature(outputs)
        self._loaded = True

    def _pick_outputs(self, outputs: list[tuple[str, str, Any]]) -> None:
        names = [o[0] for o in outputs]
        for option in ("output", "proba_output"):
            wanted = getattr(self.config, option)
            if wanted is not None and wanted not in names:
                raise ModelLoadError(
                    f"options.{option} names {wanted!r}, which is not an output of the ONNX "
                    f"model {self.path.name!r} (outputs: {', '.join(names)})."
                )
        proba = self.config.proba_output
        if proba is None and len(outputs) > 1:
            proba = next((n for n, t, _ in outputs
                          if "probab" in n.lower() or t.startswith("seq(map(")), None)
        self._proba_output = proba
        self._output = self.config.output or next(
            (n for n in names if n != proba), names[0])

    def _build_signature(self, outputs: list[tuple[str, str, Any]]) -> Signature:
        def dims(shape: Sequence[Any]) -> tuple[int, ...]:
            return tuple(d if isinstance(d, int) and d >= 0 else -1 for d in shape) or (-1,)

        inputs = tuple(TensorSignature(i.name, i.oip, dims(i.shape)) for i in self._inputs)
        outs = tuple(TensorSignature(n, _ONNX_TYPES.get(t, ("", "BYTES"))[1], dims(s or []))
                     for n, t, s in outputs)
        names = self.config.feature_names
        if names is None and len(self._inputs) > 1:
            names = tuple(i.name for i in self._inputs)
        return Signature(inputs=inputs, outputs=outs, feature_names=names, classes=self._classes,
                         extra={"output": self._output, "proba_output": self._proba_output})

    def unload(self) -> None:
        """Drop the session."""
        self._session = None
        self._loaded = False

    # ------------------------------------------------------------------ predict
    def predict(self, instances: Sequence[Instance]) -> list[JSONValue]:
        """Run the model and return the ``output`` value of each instance.

        Raises:
            InvalidInputError: the batch does not match the model's declared inputs.
            PredictionError: ONNX Runtime failed.
        """
        if self._session is None:
            raise self._not_loaded()
        if not as_batch(instances):
            return []
        feed, n = self._feed(instances)
        out = self._run(self._output, feed, n)
        return one_per_instance(out, n, kind=self.kind, what="predictions")

    def predict_proba(self, instances: Sequence[Instance]) -> list[list[float]] | None:
        """Class probabilities per instance, or None when the model has no probability output.

        Raises:
            InvalidInputError: the batch does not match the model's declared inputs.
            PredictionError: ONNX Runtime failed.
        """
        if self._session is None:
            raise self._not_loaded()
        if self._proba_output is None:
            return None
        if not as_batch(instances):
            return []
        feed, n = self._feed(instances)
        out = self._run(self._proba_output, feed, n)
        if isinstance(out, list) and out and isinstance(out[0], Mapping):
            keys = list(self._classes) if self._classes is not None else list(out[0])
            out = [[float(row[k]) for k in keys] for row in out]
        return one_per_instance(out, n, kind=self.kind, what="probability rows")

    def _run(self, output: str, feed: dict[str, Any], n: int) -> Any:
        session = self._session
        if session is None:
            raise self._not_loaded()
        if n and self._inputs[0].fixed_batch == 1 and n > 1:
            # exported with a batch dimension of 1: run row by row
            parts = [self._run(output, {k: v[i:i + 1] for k, v in feed.items()}, 1)
                     for i in range(n)]
            if isinstance(parts[0], list):
                return [row for part in parts for row in part]
            import numpy as np

            return np.concatenate(parts)
        try:
            return session.run([output], feed)[0]
        except Exception as exc:
            if type(exc).__name__ == "InvalidArgument":
                raise InvalidInputError(
                    f"The ONNX model {self.path.name!r} rejected the input: "
                    f"{str(exc).splitlines()[0]}"
                ) from exc
            raise PredictionError(
                f"The 'onnx' model {self.path.name!r} raised {type(exc).__name__} while "
                f"predicting: {str(exc).splitlines()[0] if str(exc) else exc!r}"
            ) from exc

    # ------------------------------------------------------------------ input
    def _feed(self, instances: Sequence[Instance]) -> tuple[dict[str, Any], int]:
        if self._session is None:
            raise self._not_loaded()
        batch = as_batch(instances)
        if len(self._inputs) == 1:
            return {self._inputs[0].name: self._one_input(self._inputs[0], batch)}, len(batch)
        return {i.name: self._named_input(i, batch) for i in self._inputs}, len(batch)

    def _one_input(self, spec: _Input, batch: list[Instance]) -> NDArray[Any]:
        import numpy as np

        if spec.onnx_type == "tensor(string)":
            arr = np.asarray(text_batch(batch, text_field=self.config.text_field), dtype=object)
            return arr.reshape(-1, 1) if len(spec.shape) == 2 else arr
        if not spec.dtype:
            raise InvalidInputError(
                f"The ONNX input {spec.name!r} has type {spec.onnx_type}, which keelwork cannot "
                "build from JSON."
            )
        if len(spec.shape) == 2:
            return numeric_matrix(batch, feature_names=self.config.feature_names,
                                  n_features=spec.shape[1], dtype=spec.dtype)
        return tensor_batch(batch, spec.shape[1:], spec.dtype, label="instance")

    def _named_input(self, spec: _Input, batch: list[Instance]) -> NDArray[Any]:
        values = []
        for i, inst in enumerate(batch):
            if not isinstance(inst, Mapping) or spec.name not in inst:
                raise InvalidInputError(
                    f"This ONNX model has several inputs ({', '.join(i.name for i in self._inputs)}"
                    f"); instance {i} must be a record with a value for each; it lacks "
                    f"{spec.name!r}.",
                    [ErrorDetail(path=f"instances[{i}].{spec.name}", rule="required")],
                )
            values.append(inst[spec.name])
        if spec.onnx_type == "tensor(string)":
            import numpy as np

            return np.asarray(text_batch(values), dtype=object).reshape(
                (-1,) + (1,) * (len(spec.shape) - 1))
        return tensor_batch(values, spec.shape[1:], spec.dtype,
                            label=f"input {spec.name!r} of instance")


def _class_labels(path: Any) -> tuple[Any, ...] | None:
    """Class labels from a classifier node (skl2onnx writes them as node attributes)."""
    try:
        import onnx
    except ImportError:
        return None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # the session opened it; labels are a nicety, not a requirement
        return None
    found: tuple[Any, ...] | None = None
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.name in _CLASS_LABEL_ATTRS:
                values = onnx.helper.get_attribute_value(attr)
                labels = tuple(v.decode() if isinstance(v, bytes) else int(v) for v in values)
                if node.op_type == "ZipMap" or found is None:
                    found = labels
    return tuple(to_jsonable(list(found))) if found is not None else None


__all__ = ["OnnxConfig", "OnnxRuntime"]

"""Model input/output signatures: what a runtime says it accepts and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class TensorSignature:
    """One named input or output.

    ``dtype`` uses Open Inference Protocol names (FP32, INT64, BYTES, BOOL, ...);
    ``shape`` uses -1 for a variable dimension, the batch dimension included.
    """

    name: str
    dtype: str
    shape: tuple[int, ...] = (-1,)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.dtype, "shape": list(self.shape)}


@dataclass(frozen=True, slots=True)
class Signature:
    """What a loaded model accepts and returns."""

    inputs: tuple[TensorSignature, ...] = ()
    outputs: tuple[TensorSignature, ...] = ()
    #: Ordered feature names for tabular models (records are turned into rows in this order).
    feature_names: tuple[str, ...] | None = None
    #: Class labels for classifiers, in the column order of ``predict_proba``.
    classes: tuple[Any, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "inputs": [t.as_dict() for t in self.inputs],
            "outputs": [t.as_dict() for t in self.outputs],
        }
        if self.feature_names is not None:
            out["feature_names"] = list(self.feature_names)
        if self.classes is not None:
            out["classes"] = list(self.classes)
        if self.extra:
            out["extra"] = dict(self.extra)
        return out

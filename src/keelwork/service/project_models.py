"""Saving a model object from a training script or notebook in a format a runtime loads safely.

:func:`save_model` writes a fitted scikit-learn estimator with skops (``.skops``, never a
pickle), a ``torch.nn.Module`` as a ``torch.export`` program (``.pt2``; TorchScript is
deprecated by torch), and an ONNX ``ModelProto`` as ``.onnx``: the formats the ``sklearn``,
``torch`` and ``onnx`` runtimes load without running code from the file. The libraries are
only imported when the object is one of theirs (it is already in memory then).

:func:`runtime_for_path` infers the runtime of an artifact file from its suffix, for
``Project.register(path)`` without ``runtime=``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keelwork.errors import ErrorDetail, RegistryError

#: Artifact suffix -> runtime, for paths registered without ``runtime=``.
SUFFIX_RUNTIMES = {".skops": "sklearn", ".onnx": "onnx", ".pt2": "torch", ".pt": "torch",
                   ".pth": "torch", ".ts": "torch"}


@dataclass(frozen=True)
class SavedModel:
    """A model object written to a file: what to register it as.

    Attributes:
        runtime: The runtime kind that loads it.
        path: The file written.
        options: Runtime options the file needs (e.g. skops' ``trusted`` types).
    """

    runtime: str
    path: Path
    options: dict[str, Any] = field(default_factory=dict)


def _module_of(model: Any) -> str:
    return type(model).__module__.split(".", 1)[0]


def _is_sklearn(model: Any) -> bool:
    base = sys.modules.get("sklearn.base")
    if base is not None and isinstance(model, base.BaseEstimator):
        return True
    return _module_of(model) in ("sklearn", "imblearn") and callable(
        getattr(model, "predict", None))


def _is_torch(model: Any) -> bool:
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    exported = getattr(getattr(torch, "export", None), "ExportedProgram", None)
    return isinstance(model, torch.nn.Module) or (
        exported is not None and isinstance(model, exported))


def _is_onnx(model: Any) -> bool:
    return type(model).__name__ == "ModelProto" and _module_of(model) in ("onnx", "onnx_ml_pb2")


def save_sklearn(model: Any, directory: Path) -> SavedModel:
    """Write a fitted scikit-learn estimator with skops.

    The types skops does not trust by default are the ones this object holds (the caller built
    it in this process); they are recorded in the version's ``options.trusted``, where ``keel
    models show`` lists them, exactly as one would write them in keel.yaml after a review.

    Raises:
        MissingExtraError: skops is not installed.
    """
    from keelwork.adapters.runtimes.sklearn import import_skops_io

    sio = import_skops_io("Registering a scikit-learn model")
    path = directory / "model.skops"
    sio.dump(model, path)
    trusted = [str(t) for t in sio.get_untrusted_types(file=path)]
    return SavedModel("sklearn", path, {"trusted": trusted} if trusted else {})


def _example_batch(torch: Any, options: Mapping[str, Any]) -> Any:
    """A batch of two instances shaped as the runtime options say (``input_shape``, else
    one row of ``feature_names``), or None."""
    shape = options.get("input_shape")
    if shape:
        return torch.randn(2, *[max(1, int(d)) for d in shape])
    names = options.get("feature_names")
    return torch.randn(2, len(names)) if names else None


def save_torch(model: Any, directory: Path, example_input: Any = None,
               options: Mapping[str, Any] | None = None) -> SavedModel:
    """Write a torch model as a ``torch.export`` program (``.pt2``, the batch axis dynamic).

    The module is traced with ``example_input``, else with a random batch shaped by
    ``options.input_shape`` or ``options.feature_names``. A TorchScript module already scripted
    is saved as TorchScript (``.pt``).

    Raises:
        RegistryError: no example to export with, or the module cannot be exported.
    """
    import torch

    path = directory / "model.pt2"
    if isinstance(model, torch.export.ExportedProgram):
        torch.export.save(model, str(path))
        return SavedModel("torch", path)
    if isinstance(model, torch.jit.ScriptModule):
        path = directory / "model.pt"
        model.save(str(path))
        return SavedModel("torch", path)
    model = model.eval()
    example = example_input if example_input is not None else _example_batch(
        torch, options or {})
    if example is None:
        raise RegistryError(
            f"Registering the torch module {type(model).__name__} exports it with torch.export, "
            "which needs an example batch: pass example_input=a batch tensor, or "
            "options={'input_shape': [...]} or {'feature_names': [...]}.",
            [ErrorDetail("example_input", "required", None)])
    example = example if isinstance(example, tuple) else (example,)
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    try:
        program = torch.export.export(model, example,
                                      dynamic_shapes=tuple({0: batch} for _ in example))
    except Exception as exc:
        raise RegistryError(f"The torch module {type(model).__name__} could not be exported "
                            f"with torch.export: {type(exc).__name__}: {exc}",
                            [ErrorDetail("model", "torch_export", type(model).__name__)]
                            ) from None
    torch.export.save(program, str(path))
    return SavedModel("torch", path)


def save_onnx(model: Any, directory: Path) -> SavedModel:
    """Write an ONNX ``ModelProto`` as ``model.onnx``."""
    path = directory / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return SavedModel("onnx", path)


def save_model(model: Any, directory: Path, *, example_input: Any = None,
               options: Mapping[str, Any] | None = None) -> SavedModel:
    """Write a model object in the format its runtime loads safely.

    Args:
        model: A fitted scikit-learn estimator or Pipeline, a ``torch.nn.Module`` (or an
            exported program), or an ONNX ``ModelProto``.
        directory: Where to write the file (a temporary directory: the registry copies it).
        example_input: For a torch module: a batch tensor (or a tuple of them) to export the
            module with ``torch.export`` (batch axis dynamic).
        options: The runtime options it will be registered with (a torch module without
            ``example_input`` is exported with a batch shaped by them).

    Returns:
        The runtime, the file and the options it needs.

    Raises:
        RegistryError: the object is none of these.
        MissingExtraError: the library that saves it is not installed.
    """
    if _is_sklearn(model):
        return save_sklearn(model, directory)
    if _is_torch(model):
        return save_torch(model, directory, example_input, options)
    if _is_onnx(model):
        return save_onnx(model, directory)
    kind = f"{type(model).__module__}.{type(model).__qualname__}"
    raise RegistryError(
        f"Cannot register a {kind}: pass a fitted scikit-learn estimator, a torch.nn.Module, "
        "an ONNX ModelProto, or the path of a saved artifact with runtime=KIND.",
        [ErrorDetail("model_or_path", "model_type", kind)])


def runtime_for_path(path: Path) -> str:
    """The runtime of an artifact file, from its suffix.

    Raises:
        RegistryError: the suffix names no runtime; pass ``runtime=`` then.
    """
    found = SUFFIX_RUNTIMES.get(path.suffix.lower())
    if found is None:
        known = ", ".join(f"{s} ({r})" for s, r in SUFFIX_RUNTIMES.items())
        raise RegistryError(
            f"Cannot tell the runtime of {path.name!r} from its suffix; pass runtime= (sklearn, "
            f"onnx, torch, hf, mlflow, python or a plug-in). Known suffixes: {known}.",
            [ErrorDetail("runtime", "required", None)])
    return found


__all__ = ["SUFFIX_RUNTIMES", "SavedModel", "runtime_for_path", "save_model"]

"""Names of the runtime kinds a spec may use: the built-ins plus the entry-point group."""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points

#: Built-in runtime kinds -> "module:Class" resolved lazily by keelwork.adapters.runtimes.
BUILTIN_RUNTIMES: dict[str, str] = {
    "sklearn": "keelwork.adapters.runtimes.sklearn:SklearnRuntime",
    "onnx": "keelwork.adapters.runtimes.onnx:OnnxRuntime",
    "torch": "keelwork.adapters.runtimes.torch:TorchRuntime",
    "hf": "keelwork.adapters.runtimes.hf:HuggingFaceRuntime",
    "mlflow": "keelwork.adapters.runtimes.mlflow:MlflowRuntime",
    "python": "keelwork.adapters.runtimes.python_callable:PythonCallableRuntime",
}

RUNTIME_ENTRY_POINT_GROUP = "keelwork.runtimes"


@lru_cache(maxsize=1)
def plugin_runtime_kinds() -> tuple[str, ...]:
    """Kinds registered by third parties through the ``keelwork.runtimes`` entry points."""
    return tuple(sorted(ep.name for ep in entry_points(group=RUNTIME_ENTRY_POINT_GROUP)))


def runtime_kinds() -> tuple[str, ...]:
    """Every runtime kind a spec may name, built-ins first."""
    plugins = [k for k in plugin_runtime_kinds() if k not in BUILTIN_RUNTIMES]
    return (*BUILTIN_RUNTIMES, *plugins)

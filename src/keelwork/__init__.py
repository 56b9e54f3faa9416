"""keelwork: a trained model plus one spec file (keel.yaml) becomes a production service.

The public facade. Nothing heavy is imported here: numpy, pandas, torch, onnxruntime and the web
stack load only when the feature that needs them is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from keelwork.errors import KeelworkError
    from keelwork.spec import KeelSpec, load_spec

_LAZY = {
    "KeelworkError": "keelwork.errors",
    "KeelSpec": "keelwork.spec",
    "load_spec": "keelwork.spec",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'keelwork' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = ["KeelSpec", "KeelworkError", "__version__", "load_spec"]

"""keelwork: a trained model plus one spec file (keel.yaml) becomes a production service.

The public facade. Nothing heavy is imported here: numpy, pandas, torch, onnxruntime and the web
stack load only when the feature that needs them is used (each name below is imported on first
use).

- :class:`Project`: a project's use-cases from Python (register, validate, drift, monitor,
  rollout, audit);
- :class:`Client` / :class:`AsyncClient`: a running server over HTTP (predict, feedback,
  admin), raising the error classes of :mod:`keelwork.errors`;
- :func:`load_spec` / :class:`KeelSpec`: keel.yaml.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from keelwork.errors import KeelworkError
    from keelwork.interfaces.client import AsyncClient, Client
    from keelwork.service.project import Project
    from keelwork.spec import KeelSpec, load_spec

_LAZY = {
    "AsyncClient": "keelwork.interfaces.client",
    "Client": "keelwork.interfaces.client",
    "Project": "keelwork.service.project",
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


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = ["AsyncClient", "Client", "KeelSpec", "KeelworkError", "Project", "__version__",
           "load_spec"]

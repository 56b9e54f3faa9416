"""Model runtimes: one uniform interface (:class:`keelwork.types.ModelRuntime`) per framework.

Kinds are resolved lazily: the built-ins from :data:`keelwork.spec.kinds.BUILTIN_RUNTIMES`, then
third-party runtimes registered under the ``keelwork.runtimes`` entry-point group::

    [project.entry-points."keelwork.runtimes"]
    xgboost = "my_package.runtime:XGBoostRuntime"

A plug-in subclasses :class:`BaseRuntime` (no-op lifecycle hooks, option parsing against its
frozen ``config_model``). Importing this package imports no framework; a runtime's library loads
when its kind is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, cast

from keelwork.adapters.runtimes.base import BaseRuntime, RuntimeConfig, UnsafePickleWarning
from keelwork.errors import ArtifactError, ModelLoadError
from keelwork.spec.kinds import BUILTIN_RUNTIMES, RUNTIME_ENTRY_POINT_GROUP
from keelwork.types import ModelRuntime, RuntimeFactory


def _plugin_entry_points() -> dict[str, Any]:
    """The ``keelwork.runtimes`` entry points by name (read on every call: cheap, never stale)."""
    return {ep.name: ep for ep in entry_points(group=RUNTIME_ENTRY_POINT_GROUP)}


def available_kinds() -> tuple[str, ...]:
    """Every runtime kind that can be loaded now: built-ins first, then plug-ins."""
    plugins = sorted(k for k in _plugin_entry_points() if k not in BUILTIN_RUNTIMES)
    return (*BUILTIN_RUNTIMES, *plugins)


def runtime_class(kind: str) -> type:
    """Resolve a runtime kind to its class (or factory), importing it only now.

    Args:
        kind: A built-in kind (sklearn, onnx, torch, hf, mlflow, python) or the name of a
            ``keelwork.runtimes`` entry point.

    Returns:
        The class (any callable matching :class:`keelwork.types.RuntimeFactory`).

    Raises:
        ModelLoadError: the kind is unknown, or its module or entry point cannot be loaded.
    """
    target = BUILTIN_RUNTIMES.get(kind)
    if target is not None:
        module_name, _, attr = target.partition(":")
        try:
            return cast(type, getattr(importlib.import_module(module_name), attr))
        except (ImportError, AttributeError) as exc:
            raise ModelLoadError(
                f"The built-in runtime {kind!r} ({target}) cannot be imported: {exc}"
            ) from exc
    ep = _plugin_entry_points().get(kind)
    if ep is None:
        raise ModelLoadError(
            f"Unknown runtime kind {kind!r}; valid kinds: {', '.join(available_kinds())}. "
            f"Third-party runtimes register under the {RUNTIME_ENTRY_POINT_GROUP!r} entry-point "
            "group."
        )
    try:
        factory = ep.load()
    except Exception as exc:
        raise ModelLoadError(
            f"The runtime plug-in {kind!r} ({ep.value}) cannot be loaded: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not callable(factory):
        raise ModelLoadError(
            f"The runtime plug-in {kind!r} ({ep.value}) is a {type(factory).__name__}, not a "
            "class or factory."
        )
    return cast(type, factory)


def load_runtime(kind: str, artifact: Path | str, options: Mapping[str, Any] | None = None, *,
                 allow_unsafe_pickle: bool = False) -> ModelRuntime:
    """Construct the runtime for ``kind`` and load the artifact.

    Args:
        kind: The runtime kind (``models[].runtime`` in keel.yaml).
        artifact: The artifact path (already resolved against keel.yaml's directory), or for
            the ``python`` runtime ``module:function``.
        options: ``models[].options``.
        allow_unsafe_pickle: ``models[].allow_unsafe_pickle``.

    Returns:
        A loaded runtime, ready for ``predict``.

    Raises:
        ModelLoadError: unknown kind, invalid options, or the artifact failed to load
            (:class:`~keelwork.errors.UnsafeArtifactError` for a refused pickle).
        ArtifactError: the artifact path does not exist.
        MissingExtraError: the runtime's library is not installed.
    """
    factory = runtime_class(kind)
    path_like = getattr(factory, "artifact_is_path", True)
    ref: Path | str = artifact
    if path_like:
        ref = Path(artifact).expanduser()
        if not ref.exists():
            raise ArtifactError(
                f"The {kind!r} model artifact {str(ref)!r} does not exist. Check models[]."
                "artifact in keel.yaml (relative paths are resolved against the directory of "
                "keel.yaml) or register the model again."
            )
    runtime = cast(RuntimeFactory, factory)(
        cast(Path, ref), dict(options or {}), allow_unsafe_pickle=allow_unsafe_pickle)
    if not isinstance(runtime, ModelRuntime):
        raise ModelLoadError(
            f"The runtime {kind!r} built a {type(runtime).__name__}, which does not implement "
            "the ModelRuntime protocol (kind, load, predict, predict_proba, signature, unload)."
        )
    runtime.load()
    return runtime


__all__ = [
    "BaseRuntime",
    "RuntimeConfig",
    "UnsafePickleWarning",
    "available_kinds",
    "load_runtime",
    "runtime_class",
]

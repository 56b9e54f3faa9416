"""The register use-case: check the request, verify the model loads, then store the version.

Loading the artifact with its runtime is what makes a registered version one the server can
serve; the registry store (:mod:`keelwork.adapters.stores.registry_store`) only checks and
stores. Without verification (``--no-verify``) the format's safety is still checked: a
pickle-based artifact is refused unless ``allow_unsafe_pickle``.

Python API::

    from keelwork.adapters.stores.registry_store import open_registry
    from keelwork.service.registration import register_model

    with open_registry(project_dir) as registry:
        mv = register_model(registry, "iris", "model.skops", "sklearn", aliases=["champion"])
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Unpack

from keelwork.adapters.stores.registry_checks import check_registration
from keelwork.core.registry import ModelVersion, VersionDetails
from keelwork.errors import ArtifactError, KeelworkError, ModelLoadError, UnsafeArtifactError
from keelwork.types import ModelRegistryStore


def register_model(
    registry: ModelRegistryStore,
    name: str,
    artifact: str | Path,
    runtime: str,
    *,
    allow_unsafe_pickle: bool = False,
    verify: bool = True,
    **details: Unpack[VersionDetails],
) -> ModelVersion:
    """Register ``artifact`` as the next version of model ``name``, once it is known to load.

    Args:
        registry: The registry store.
        name: The model name (created on first registration).
        artifact: A file or directory; for the ``python`` runtime, ``"module:function"``.
        runtime: The runtime kind (``sklearn``, ``onnx``, ``torch``, ``hf``, ``mlflow``,
            ``python`` or a plug-in).
        allow_unsafe_pickle: Let the runtime load pickle/joblib files when verifying.
        verify: Load the artifact with its runtime first (and refuse it if that fails).
            Without it the format's safety is still checked: a pickle-based artifact is
            refused unless ``allow_unsafe_pickle``.
        **details: What the version records (:class:`~keelwork.core.registry.VersionDetails`:
            dataset version, metrics, options, aliases, created by, source directory).

    Returns:
        The new version.

    Raises:
        RegistryError: a name, alias, metric or option is invalid, or the runtime is unknown.
        ArtifactError: the artifact is missing or unreadable.
        ModelLoadError: verification failed (UnsafeArtifactError for refused pickles).
        StoreError: the database failed.
    """
    checked = check_registration(name, artifact, runtime, metrics=details.get("metrics"),
                                 options=details.get("options"),
                                 aliases=details.get("aliases", ()))
    if verify:
        verify_loads(name, checked.runtime, checked.source, checked.options, allow_unsafe_pickle)
    elif isinstance(checked.source, Path) and not allow_unsafe_pickle:
        refuse_pickles(name, checked.runtime, checked.source, checked.options)
    return registry.register(name, artifact, runtime, **details)


def refuse_pickles(name: str, runtime: str, source: Path, options: Mapping[str, Any]) -> None:
    """Without loading: refuse an artifact that serving would unpickle (``--no-verify`` skips
    the load, never this check)."""
    from keelwork.adapters.runtimes import runtime_class
    from keelwork.adapters.runtimes.base import BaseRuntime, refuse_or_warn_pickle

    factory = runtime_class(runtime)
    finder = getattr(factory, "pickled_parts", None) or BaseRuntime.pickled_parts
    pickled = finder(source, options)
    if pickled:
        try:
            refuse_or_warn_pickle(pickled[0], False, runtime)
        except UnsafeArtifactError as exc:
            raise _with_context(exc, f"Model '{name}' was not registered (--no-verify skips "
                                "loading the model, not this check)") from None


def verify_loads(name: str, runtime: str, source: Path | str, options: Mapping[str, Any],
                  allow_unsafe_pickle: bool) -> None:
    """Load the artifact with its runtime and unload it; re-raise failures with context."""
    try:
        from keelwork.adapters.runtimes import load_runtime
    except ImportError as exc:
        raise ModelLoadError(
            f"Cannot verify model '{name}': the runtimes are not available ({exc}). "
            "Register without verification only if you have checked the artifact yourself."
        ) from None
    try:
        loaded = load_runtime(runtime, source, options,
                              allow_unsafe_pickle=allow_unsafe_pickle)
        loaded.unload()
    except (ModelLoadError, ArtifactError) as exc:  # UnsafeArtifactError included
        # Runtime messages already name the runtime, the file and the fix.
        raise _with_context(exc, f"Model '{name}' was not registered") from None
    except KeelworkError:
        raise
    except Exception as exc:  # a library error the runtime did not translate
        raise ModelLoadError(
            f"Model '{name}' was not registered: the '{runtime}' runtime could not load "
            f"'{source}': {type(exc).__name__}: {exc}. Check that the artifact was saved for "
            "this runtime."
        ) from None


def _with_context(exc: KeelworkError, prefix: str) -> KeelworkError:
    message = f"{prefix}: {exc.message}"
    try:
        return type(exc)(message, exc.details)
    except TypeError:  # a subclass with its own constructor
        exc.message = message
        exc.args = (message,)
        return exc



__all__ = ["refuse_pickles", "register_model", "verify_loads"]

"""The one model loader: a registered version loaded as the server would load it.

Every part of keelwork that runs a registered model -- the gateway (through
:func:`target_resolver` and :func:`load_target`), a rollout start's load check
(:func:`load_verifier`), batch scoring (``keel ingest score``), the monitoring reference and the
rescoring of logged inputs (:func:`load_registered`) -- resolves and loads it here, by one rule:

- the reference (``name``, ``name:3``, ``name@alias``) is resolved in the registry;
- the artifact is the registry's copy (its path), else the version's callable path or URI;
- the options are keel.yaml's for that model (a relative ``path`` made relative to keel.yaml),
  with the options recorded with the version on top: those were verified with it, so they win;
- ``allow_unsafe_pickle`` comes from keel.yaml's model (False for a model keel.yaml does not
  declare): a registry entry never grants it to itself.

Runtimes are imported when a model loads, not when this module is.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keelwork.errors import KeelworkError, ModelLoadError
from keelwork.service.gateway.host import ModelTarget

if TYPE_CHECKING:
    from keelwork.adapters.stores.registry_store import SqlRegistry
    from keelwork.spec.model import ResolvedSpec
    from keelwork.types import ModelRuntime

log = logging.getLogger("keelwork.models")


def ref_string(name: str, ref: str | None) -> str:
    """The registry reference of ``name`` at ``ref``: a version number, an alias, or None
    (the model's default alias)."""
    if ref is None:
        return name
    return f"{name}:{ref}" if ref.isdigit() else f"{name}@{ref}"


def spec_options(resolved: ResolvedSpec, name: str) -> dict[str, Any]:
    """A model's options from keel.yaml, with a relative ``path`` made relative to keel.yaml.

    Raises:
        KeyError: keel.yaml declares no model ``name``.
    """
    options = dict(resolved.spec.model(name).options)
    path = options.get("path")
    if isinstance(path, str) and path:
        options["path"] = str(resolved.resolve_path(path))
    return options


def _declared(resolved: ResolvedSpec | None, name: str) -> bool:
    return resolved is not None and any(m.name == name for m in resolved.spec.models)


def resolve_target(registry: SqlRegistry, ref: str,
                   resolved: ResolvedSpec | None = None) -> ModelTarget:
    """What loading ``ref`` means: the version, its artifact, options and pickle permission.

    Args:
        registry: The project's registry.
        ref: ``name``, ``name:3`` or ``name@alias``.
        resolved: The project's keel.yaml, if any (its options and ``allow_unsafe_pickle``).

    Returns:
        The target (see the module docstring for the rule).

    Raises:
        RegistryError / ModelNotFoundError: the reference is malformed or unknown.
    """
    mv = registry.resolve(ref)
    path = registry.artifact_path(mv)
    artifact: Path | str = path if path is not None else (mv.callable_path or mv.artifact_uri)
    options: dict[str, Any] = {}
    unsafe = False
    if resolved is not None and _declared(resolved, mv.name):
        options = spec_options(resolved, mv.name)
        unsafe = resolved.spec.model(mv.name).allow_unsafe_pickle
    # Options recorded with the version were verified with it: they win over keel.yaml's.
    options.update(mv.options)
    return ModelTarget(mv.name, mv.version, mv.runtime, artifact, options, unsafe)


def spec_target(resolved: ResolvedSpec, name: str) -> ModelTarget | None:
    """keel.yaml's own ``artifact:`` of ``name`` as a target (version 0), or None without one.

    Raises:
        KeyError: keel.yaml declares no model ``name``.
    """
    section = resolved.spec.model(name)
    if section.artifact is None:
        return None
    artifact: Path | str = (section.artifact if section.runtime == "python"
                            else resolved.resolve_path(section.artifact))
    return ModelTarget(name, 0, section.runtime, artifact, spec_options(resolved, name),
                       section.allow_unsafe_pickle)


def target_resolver(resolved: ResolvedSpec, registry: SqlRegistry,
                    ) -> Callable[[str, str | None], ModelTarget]:
    """Maps (model, alias or version or None) to what the gateway loads (:func:`resolve_target`
    with ``resolved``'s options)."""
    def resolve(name: str, ref: str | None) -> ModelTarget:
        return resolve_target(registry, ref_string(name, ref), resolved)

    return resolve


def load_target(target: ModelTarget) -> ModelRuntime:
    """Load a target into its runtime (blocking).

    Raises:
        ModelLoadError / ArtifactError: the artifact does not load.
    """
    from keelwork.adapters.runtimes import load_runtime

    return load_runtime(target.runtime, target.artifact, target.options,
                        allow_unsafe_pickle=target.allow_unsafe_pickle)


def unload(runtime: Any) -> None:
    """Unload a runtime, best effort: a failure to unload is logged, never raised."""
    try:
        runtime.unload()
    except Exception:  # unloading is best effort
        log.debug("unloading a runtime failed", exc_info=True)


def load_registered(resolved: ResolvedSpec, name: str, ref: str | None = None,
                    ) -> tuple[ModelRuntime, int]:
    """Load ``name`` (its default alias, or ``ref``: a version or an alias) from the project's
    registry as the server would.

    Returns:
        ``(runtime, version)``; :func:`unload` the runtime when done.

    Raises:
        ModelNotFoundError / RegistryError: ``name`` at ``ref`` is not registered.
        ModelLoadError / ArtifactError: the version does not load.
    """
    from keelwork.adapters.stores.registry_store import open_registry

    with open_registry(resolved.project_dir, resolved.storage_url, audit=False) as registry:
        target = resolve_target(registry, ref_string(name, ref), resolved)
    return load_target(target), target.version


@contextlib.contextmanager
def loaded(resolved: ResolvedSpec, name: str,
           ref: str | None = None) -> Iterator[tuple[ModelRuntime, int]]:
    """:func:`load_registered` as a context: yields ``(runtime, version)``, unloads after."""
    runtime, version = load_registered(resolved, name, ref)
    try:
        yield runtime, version
    finally:
        unload(runtime)


def load_verifier(resolved: ResolvedSpec, registry: SqlRegistry) -> Callable[[str, int], None]:
    """Loads a version as a server of ``resolved`` would, then unloads it: what a rollout
    start checks before storing anything.

    Raises (when called):
        ModelLoadError, ArtifactError: the version does not load.
    """
    resolve = target_resolver(resolved, registry)

    def verify(name: str, version: int) -> None:
        try:
            runtime = load_target(resolve(name, str(version)))
        except KeelworkError:
            raise
        except Exception as exc:  # a library error the runtime did not translate
            raise ModelLoadError(f"Version {version} of '{name}' does not load: "
                                 f"{type(exc).__name__}: {exc}") from None
        with contextlib.suppress(Exception):
            runtime.unload()

    return verify


def runtime_task(runtime: Any) -> str | None:
    """``classification`` / ``regression`` as a loaded model's signature tells, else None.

    A model with classes is a classifier; a scikit-learn estimator without classes is a
    regressor; any other runtime without classes says nothing.
    """
    sig = getattr(runtime, "signature", None)
    if sig is None:
        return None
    if getattr(sig, "classes", None):
        return "classification"
    extra = getattr(sig, "extra", None) or {}
    return "regression" if "estimator" in extra else None


def model_task(resolved: ResolvedSpec, name: str) -> str | None:
    """The task of ``name``: its registered champion's, else its ``artifact:``'s (loaded).

    Returns None when neither can be loaded or the runtime does not tell.
    """
    runtime: Any = None
    try:
        runtime, _ = load_registered(resolved, name)
    except KeelworkError:
        target = spec_target(resolved, name)
        if target is None:
            return None
        try:
            runtime = load_target(target)
        except KeelworkError:
            return None
    try:
        return runtime_task(runtime)
    finally:
        unload(runtime)


__all__ = [
    "ModelTarget",
    "load_registered",
    "load_target",
    "load_verifier",
    "loaded",
    "model_task",
    "ref_string",
    "resolve_target",
    "runtime_task",
    "spec_options",
    "spec_target",
    "target_resolver",
    "unload",
]

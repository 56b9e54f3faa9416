"""Checks of a registration request, before anything is loaded or written.

The registry store runs them before it stores a version; the register use-case
(:mod:`keelwork.service.registration`) runs them first too, so that a bad name, runtime,
option or path is refused before the model is loaded to verify it.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keelwork.core.registry import (
    CALLABLE_RUNTIME,
    check_alias,
    check_metrics,
    check_model_name,
    is_callable_reference,
)
from keelwork.errors import ArtifactError, RegistryError


@dataclass(frozen=True, slots=True)
class CheckedRegistration:
    """A registration request that passed :func:`check_registration`.

    Attributes:
        runtime: The runtime kind.
        source: The file or directory to store, or (``python`` runtime) ``module:function``.
        metrics: The metrics, checked.
        options: The runtime options, as plain JSON values.
    """

    runtime: str
    source: Path | str
    metrics: dict[str, float]
    options: dict[str, Any]


def check_registration(name: str, artifact: str | Path, runtime: str, *,
                       metrics: Mapping[str, Any] | None = None,
                       options: Mapping[str, Any] | None = None,
                       aliases: Sequence[str] = ()) -> CheckedRegistration:
    """Check the name, runtime, metrics, options, aliases and artifact of a registration.

    Raises:
        RegistryError: a name, alias, metric or option is invalid, or the runtime is unknown.
        ArtifactError: the artifact is missing (or not ``module:function`` for ``python``).
    """
    check_model_name(name)
    runtime = _check_runtime(runtime)
    metric_values = check_metrics(metrics)
    option_values = _check_options(options)
    for alias in aliases:
        check_alias(alias)
    return CheckedRegistration(runtime, _artifact_source(name, artifact, runtime),
                               metric_values, option_values)


def _check_runtime(runtime: str) -> str:
    from keelwork.spec.kinds import runtime_kinds

    kinds = runtime_kinds()
    if runtime in kinds:
        return runtime
    close = difflib.get_close_matches(runtime, kinds, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise RegistryError(f"The runtime {runtime!r} is not a known runtime kind; use one of "
                        f"{', '.join(kinds)}.{hint}")


def _check_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise RegistryError("Runtime options must be an object of name -> value; got "
                            f"{type(options).__name__}.")
    try:
        return dict(json.loads(json.dumps(dict(options), allow_nan=False)))
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"Runtime options must be plain JSON values: {exc}.") from None


def _artifact_source(name: str, artifact: str | Path, runtime: str) -> Path | str:
    """A file/directory to store, or (``python`` runtime) the ``module:function`` text."""
    text = str(artifact)
    if runtime == CALLABLE_RUNTIME:
        if isinstance(artifact, str) and is_callable_reference(text):
            return text
        raise ArtifactError(
            f"The 'python' runtime takes a 'module:function' reference as its artifact "
            f"(e.g. 'my_package.model:predict'); got {text!r} for model '{name}'. Give the "
            "import path of the function, or pick the runtime kind that loads this file.")
    path = Path(artifact).expanduser()
    if not path.exists():
        hint = (" It looks like a 'module:function' reference: use --runtime python for a "
                "Python callable." if is_callable_reference(text) else "")
        raise ArtifactError(
            f"The artifact '{text}' for model '{name}' does not exist (looked at "
            f"'{path.absolute()}'). Check the path; relative paths start at the current "
            f"directory.{hint}")
    return path



__all__ = ["CheckedRegistration", "check_registration"]

"""The model registry's domain: versions, aliases, references, and the rules on their names.

Pure logic only: what a registered model version *is*, how ``name``, ``name:3`` and
``name@champion`` are parsed, and which names and metrics are acceptable. Storage lives in
``keelwork.adapters.stores.registry_store``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypedDict

from keelwork.errors import ModelRefError, RegistryError

#: The alias a bare model name resolves to (when set; otherwise the latest version).
DEFAULT_ALIAS = "champion"
#: Aliases the registry resolves itself and that can therefore never be assigned.
RESERVED_ALIASES: frozenset[str] = frozenset({"latest"})
#: Runtime kind whose "artifact" is a ``module:function`` reference, not a file.
CALLABLE_RUNTIME = "python"
#: The highest version number a reference may name (the stores keep versions as 64-bit ints).
MAX_VERSION = 2**63 - 1

# The same rule as model names in keel.yaml (keelwork.spec.model), kept here so that the
# registry enforces it for models registered from the command line too.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_CALLABLE_RE = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*"
    r"(\.[A-Za-z_][A-Za-z0-9_]*)*$"
)
_NAME_RULE = ("must start with a letter or digit and hold only letters, digits, '_', '.', '-' "
              "(at most 128 characters)")


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A reference to one model version: by number, by alias, or the default (both ``None``)."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One immutable registered version of a model.

    ``sha256``/``size`` are ``None`` for references without a blob (the ``python`` runtime,
    whose ``artifact_uri`` is ``python:module:function``); otherwise ``artifact_uri`` is the
    blob's location relative to the artifact store root.
    """

    name: str
    version: int
    runtime: str
    artifact_uri: str
    sha256: str | None
    size: int | None
    created_at: datetime
    created_by: str
    git_commit: str | None = None
    git_dirty: bool | None = None
    dataset_version: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    environment: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> ModelRef:
        return ModelRef(self.name, self.version)

    @property
    def is_reference(self) -> bool:
        """True when the artifact is a ``module:function`` reference rather than a stored blob."""
        return self.sha256 is None

    @property
    def callable_path(self) -> str | None:
        """The ``module:function`` of a reference artifact, else ``None``."""
        return callable_from_uri(self.artifact_uri)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-compatible view (timestamps in ISO 8601)."""
        return {
            "name": self.name,
            "version": self.version,
            "runtime": self.runtime,
            "artifact_uri": self.artifact_uri,
            "sha256": self.sha256,
            "size": self.size,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
            "dataset_version": self.dataset_version,
            "metrics": dict(self.metrics),
            "environment": dict(self.environment),
            "options": dict(self.options),
            "aliases": list(self.aliases),
        }


@dataclass(frozen=True, slots=True)
class AliasChange:
    """One entry of an alias's history: it moved ``from_version`` -> ``to_version``.

    ``from_version`` is ``None`` when the alias was first set, ``to_version`` when it was removed.
    """

    name: str
    alias: str
    from_version: int | None
    to_version: int | None
    actor: str
    reason: str
    changed_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "alias": self.alias,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "actor": self.actor,
            "reason": self.reason,
            "changed_at": self.changed_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class ModelSummary:
    """One row of ``keel models list``."""

    name: str
    latest_version: int
    version_count: int
    aliases: Mapping[str, int]
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "latest_version": self.latest_version,
            "version_count": self.version_count,
            "aliases": dict(self.aliases),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


# --------------------------------------------------------------------------- rules
class VersionDetails(TypedDict, total=False):
    """What a registration records beside the artifact: the keyword arguments of
    ``ModelRegistryStore.register``, passed through unchanged by the register use-case."""

    #: Free-form identifier of the training data.
    dataset_version: str | None
    #: Evaluation metrics, name -> finite number.
    metrics: Mapping[str, Any] | None
    #: Runtime options, stored with the version and used to verify it.
    options: Mapping[str, Any] | None
    #: Aliases to point at the new version in the same transaction.
    aliases: Sequence[str]
    #: Who registers it; default the registry's ``user`` (the ``user`` setting,
    #: ``$KEELWORK_USER``), else the OS user.
    created_by: str | None
    #: Directory whose git commit is recorded; default the current directory.
    source_dir: Path | None


def check_model_name(name: str) -> str:
    """Return ``name`` when it is a valid model name.

    Raises:
        RegistryError: the name breaks the rule.
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise RegistryError(f"The model name {name!r} is invalid: a model name {_NAME_RULE}.")
    return name


def check_alias(alias: str) -> str:
    """Return ``alias`` when it may be assigned to a version.

    An alias follows the model-name rule, is not a number (numbers are versions) and is not
    reserved (``latest`` always means the highest version).

    Raises:
        RegistryError: the alias breaks a rule.
    """
    if not isinstance(alias, str) or not _NAME_RE.match(alias):
        raise RegistryError(f"The alias {alias!r} is invalid: an alias {_NAME_RULE}.")
    if alias.isdigit():
        raise RegistryError(
            f"The alias {alias!r} is invalid: an alias must not be a number (numbers are "
            f"versions; refer to version {alias} as 'NAME:{alias}')."
        )
    if alias in RESERVED_ALIASES:
        raise RegistryError(
            f"The alias {alias!r} is reserved: it always resolves to the highest version and "
            "cannot be assigned; choose another name (e.g. 'champion', 'challenger')."
        )
    return alias


def check_version(version: int) -> int:
    """Return ``version`` when it is a valid version number (an int >= 1).

    Raises:
        RegistryError: it is not.
    """
    if (isinstance(version, bool) or not isinstance(version, int)
            or not 1 <= version <= MAX_VERSION):
        raise RegistryError(f"A model version must be an integer >= 1 (at most "
                            f"{MAX_VERSION}); got {str(version)[:40]}.")
    return version


def parse_model_ref(text: str) -> ModelRef:
    """Parse ``name``, ``name:3`` or ``name@alias`` into a :class:`ModelRef`.

    Raises:
        ModelRefError: the reference is malformed; the message shows the accepted forms.
    """
    forms = "use NAME, NAME:VERSION (e.g. 'iris:3') or NAME@ALIAS (e.g. 'iris@champion')"
    if not isinstance(text, str) or not text.strip():
        raise ModelRefError(f"A model reference must not be empty; {forms}.")
    text = text.strip()
    shown = shown_text(text)
    if "@" in text and ":" in text:
        raise ModelRefError(
            f"The model reference {shown} names both a version and an alias; {forms}.")
    if "@" in text:
        name, _, alias = text.partition("@")
        if not alias:
            raise ModelRefError(f"The model reference {shown} has an empty alias; {forms}.")
        if alias.isdigit():
            raise ModelRefError(f"The model reference {shown} has an invalid alias "
                                f"{shown_text(alias)}: an alias is not a number; for version "
                                f"{alias[:40]} write '{name[:80]}:{alias[:40]}'; {forms}.")
        if not _NAME_RE.fullmatch(alias):
            raise ModelRefError(f"The model reference {shown} has an invalid alias "
                                f"{shown_text(alias)}: an alias {_NAME_RULE}; {forms}.")
        return ModelRef(_ref_name(name, shown, forms), alias=alias)
    if ":" in text:
        name, _, number = text.partition(":")
        if not is_version_text(number):
            raise ModelRefError(f"The model reference {shown} has an invalid version "
                                f"{shown_text(number)}: a version is an integer from 1 to "
                                f"{MAX_VERSION}; {forms}.")
        return ModelRef(_ref_name(name, shown, forms), version=int(number))
    return ModelRef(_ref_name(text, shown, forms))


def is_version_text(text: str) -> bool:
    """Whether ``text`` is a version number as a reference writes it (ASCII digits, 1..max)."""
    return (text.isascii() and text.isdigit() and len(text) <= len(str(MAX_VERSION))
            and 1 <= int(text) <= MAX_VERSION)


def shown_text(text: str, limit: int = 80) -> str:
    """``repr(text)``, cut to ``limit`` characters (a message never echoes a huge value)."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def _ref_name(name: str, shown: str, forms: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise ModelRefError(f"The model reference {shown} has an invalid model name "
                            f"{shown_text(name)}: a model name {_NAME_RULE}; {forms}.")
    return name


def check_metrics(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    """Validate training/evaluation metrics: a flat mapping of name -> finite number.

    Raises:
        RegistryError: a key is not a string or a value is not a finite number.
    """
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise RegistryError("Metrics must be an object of name -> number, e.g. "
                            f'{{"accuracy": 0.93}}; got {type(metrics).__name__}.')
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if not isinstance(key, str) or not key:
            raise RegistryError(f"Metric names must be non-empty strings; got {key!r}.")
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not math.isfinite(value)):
            raise RegistryError(f"The metric {key!r} must be a finite number; got {value!r}.")
        out[key] = value
    return out


def is_callable_reference(text: str) -> bool:
    """True when ``text`` looks like ``package.module:function`` (attribute paths allowed)."""
    return bool(_CALLABLE_RE.match(text))


def callable_uri(reference: str) -> str:
    """The ``artifact_uri`` stored for a ``module:function`` reference."""
    return f"{CALLABLE_RUNTIME}:{reference}"


def callable_from_uri(uri: str) -> str | None:
    """Inverse of :func:`callable_uri`; ``None`` for blob URIs."""
    prefix = f"{CALLABLE_RUNTIME}:"
    return uri[len(prefix):] if uri.startswith(prefix) else None


def next_version(current_max: int | None) -> int:
    """The version number after ``current_max`` (``None`` when the model has no version yet)."""
    return 1 if current_max is None else current_max + 1


__all__ = [
    "CALLABLE_RUNTIME",
    "DEFAULT_ALIAS",
    "RESERVED_ALIASES",
    "AliasChange",
    "ModelRef",
    "ModelSummary",
    "ModelVersion",
    "VersionDetails",
    "callable_from_uri",
    "callable_uri",
    "check_alias",
    "check_metrics",
    "check_model_name",
    "check_version",
    "is_callable_reference",
    "next_version",
    "parse_model_ref",
]

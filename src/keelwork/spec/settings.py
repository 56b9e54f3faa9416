"""The process settings: every environment variable keelwork reads, in one typed object.

=========================  =====================================================================
``KEELWORK_STORAGE_URL``   The store of ``--project`` commands, over keel.yaml's ``storage.url``.
``KEELWORK_USER``          Who acts (audit log, registrations), over the OS user name.
``KEELWORK_AUDIT_ANCHOR``  A second audit anchor file, besides ``.keel/audit-anchor.json``.
``KEELWORK_JIT``           ``auto`` (default), ``on`` or ``off``: when contract checks load their
                           compiled kernels (:mod:`keelwork.core.contracts.jit`).
=========================  =====================================================================

Older names are still read, with a :class:`DeprecationWarning` naming the new one
(:data:`DEPRECATED_NAMES`); the new name wins when both are set. Blank values count as unset.

The settings are made once where the process starts (``keel``'s entry, a server's start) with
:func:`load_settings`, which checks them, and passed down from there: nothing holds them in a
global. ``${VAR}`` interpolation in keel.yaml is user configuration, not settings
(:mod:`keelwork.spec.loader`). No I/O beyond reading the environment.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from keelwork.errors import ErrorDetail, SpecError

#: Every settings variable starts with this.
ENV_PREFIX: Final = "KEELWORK_"
#: Old variable name -> settings field; read when the new name is not set.
DEPRECATED_NAMES: Final[dict[str, str]] = {"KEEL_JIT": "jit"}

JitMode = Literal["auto", "on", "off"]


def env_name(field: str) -> str:
    """The environment variable of a settings field (``jit`` -> ``KEELWORK_JIT``)."""
    return ENV_PREFIX + field.upper()


class _DeprecatedNames(PydanticBaseSettingsSource):
    """Values under the old names of :data:`DEPRECATED_NAMES`, each with a deprecation warning."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # pragma: no cover - __call__ does the work

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for old, field in DEPRECATED_NAMES.items():
            value = os.environ.get(old)
            if value is None:
                continue
            new = env_name(field)
            wins = f" ({new} is set too and wins)" if os.environ.get(new) is not None else ""
            warnings.warn(f"The environment variable {old} is deprecated; set {new} instead"
                          f"{wins}.", DeprecationWarning, stacklevel=2)
            found[field] = value
        return found


class Settings(BaseSettings):
    """keelwork's settings, read from ``KEELWORK_*`` environment variables (see the module)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    storage_url: str | None = None
    """The storage URL of ``--project`` commands (``KEELWORK_STORAGE_URL``)."""
    user: str | None = None
    """Who acts, for the audit log and provenance (``KEELWORK_USER``)."""
    audit_anchor: Path | None = None
    """An extra audit anchor file (``KEELWORK_AUDIT_ANCHOR``)."""
    jit: JitMode = "auto"
    """When contract checks load their compiled kernels (``KEELWORK_JIT``)."""

    @field_validator("storage_url", "user", "audit_anchor", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip() or None
        return value

    @field_validator("jit", mode="before")
    @classmethod
    def _jit_words(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip().lower() or "auto"
        return value

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Arguments first, then KEELWORK_* variables, then the deprecated names; no .env file.
        return init_settings, env_settings, _DeprecatedNames(settings_cls)


def load_settings(**overrides: Any) -> Settings:
    """Read and check the settings from the environment (once, at start-up).

    Args:
        overrides: Field values that take precedence over the environment.

    Returns:
        The settings.

    Raises:
        SpecError: A variable holds a value its setting cannot take (every one is named).
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        details = []
        for err in exc.errors(include_url=False):
            field = str(err["loc"][0]) if err["loc"] else "?"
            details.append(ErrorDetail(env_name(field), str(err["type"]), err.get("input"),
                                       f"{env_name(field)}: {err['msg']}; got "
                                       f"{err.get('input')!r}."))
        raise SpecError("Invalid settings: " + " ".join(d.message for d in details),
                        details) from None


#: ``keel serve --workers N``'s message to its own worker processes (JSON: keel.yaml's path and
#: the log options). Not a setting a user sets: each worker reads its ``KEELWORK_*`` settings.
WORKER_HANDOFF = "_KEELWORK_SERVE_WORKER"


def worker_handoff() -> str | None:
    """What the parent ``keel serve`` handed this worker process (None: not a worker)."""
    return os.environ.get(WORKER_HANDOFF) or None


def handed_down(variable: str) -> str | None:
    """The value a parent process left this one in ``variable`` (an engine's worker reads what
    its ``keel serve`` handed down; None: not set)."""
    return os.environ.get(variable) or None


def hand_to_workers(message: str) -> None:
    """Leave ``message`` for the worker processes this process is about to start."""
    os.environ[WORKER_HANDOFF] = message


#: Where prometheus-client's processes keep their metric values, to be summed at a scrape
#: (its multi-process mode: the library reads this variable as it is imported).
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def share_metrics(folder: str) -> None:
    """Have the worker processes this process is about to start keep their Prometheus metric
    values in ``folder`` (prometheus-client's multi-process mode), so any one of them can
    answer a scrape with the whole fleet's counts."""
    os.environ[METRICS_DIR_VARIABLE] = folder


def child_environment(drop: tuple[str, ...] = (), **extra: str) -> dict[str, str]:
    """The environment for a process this one starts: its own, less ``drop``, plus
    ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(extra)
    return env


def settings_environment() -> dict[str, str]:
    """This process's ``KEELWORK_*`` variables, for processes started on other machines."""
    return {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}


__all__ = ["DEPRECATED_NAMES", "ENV_PREFIX", "METRICS_DIR_VARIABLE", "WORKER_HANDOFF", "JitMode",
           "Settings", "child_environment", "env_name", "hand_to_workers", "handed_down",
           "load_settings",
           "settings_environment", "share_metrics", "worker_handoff"]

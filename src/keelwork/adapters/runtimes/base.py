"""What every runtime shares: the base class, option parsing, optional imports, pickle safety.

Anything raised from inside the model becomes :class:`~keelwork.errors.PredictionError` with the
original exception chained (:meth:`BaseRuntime.model_errors`). Batch conversion (instances in,
one JSON-compatible output per instance out) lives in :mod:`keelwork.adapters.runtimes.convert`
and is re-exported here.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from keelwork.adapters.runtimes.convert import (
    as_batch,
    numeric_matrix,
    oip_dtype,
    one_per_instance,
    rows_from_instances,
    tensor_batch,
    text_batch,
    to_jsonable,
)
from keelwork.core.signature import Signature
from keelwork.errors import (
    ErrorDetail,
    KeelworkError,
    MissingExtraError,
    ModelLoadError,
    PredictionError,
    UnsafeArtifactError,
)
from keelwork.types import Instance, JSONValue

logger = logging.getLogger("keelwork.runtimes")

#: File suffixes of formats that execute arbitrary code when loaded.
PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".joblib", ".cloudpickle"})


class UnsafePickleWarning(UserWarning):
    """A pickle-based artifact is being loaded because ``allow_unsafe_pickle`` is on."""


class RuntimeConfig(BaseModel):
    """Base of every runtime's options model: frozen, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_options(config_model: type[RuntimeConfig], options: Mapping[str, Any],
                  kind: str) -> RuntimeConfig:
    """Validate ``models[].options`` against a runtime's config model.

    Args:
        config_model: The runtime's frozen pydantic model.
        options: The raw options from keel.yaml.
        kind: The runtime kind, for the message.

    Returns:
        The validated options.

    Raises:
        ModelLoadError: an option is unknown or has the wrong type; every problem is listed.
    """
    try:
        return config_model.model_validate(dict(options))
    except ValidationError as exc:
        valid = ", ".join(sorted(config_model.model_fields)) or "(none)"
        problems: list[str] = []
        details: list[ErrorDetail] = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]) or "options"
            if err["type"] == "extra_forbidden":
                problems.append(f"unknown option {name!r} (valid options: {valid})")
            else:
                problems.append(f"option {name!r} {err['msg'].lower()}; got {err['input']!r}")
            details.append(ErrorDetail(path=f"options.{name}", rule=err["type"],
                                       got=err.get("input"), message=err["msg"]))
        raise ModelLoadError(
            f"Invalid options for the {kind!r} runtime: " + "; ".join(problems) + ".",
            details,
        ) from None


def import_optional(module: str, extra: str, purpose: str) -> ModuleType:
    """Import an optional dependency or raise an install hint.

    Args:
        module: Dotted module name (its top-level package is named in the message).
        extra: The keelwork extra that installs it.
        purpose: What needs it, e.g. "The 'onnx' runtime".

    Returns:
        The imported module.

    Raises:
        MissingExtraError: the package is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".", 1)[0]
        raise MissingExtraError(package, extra, purpose) from exc


def refuse_or_warn_pickle(path: Path, allowed: bool, kind: str) -> None:
    """Gate every pickle-based load: refuse it unless the user opted in, then warn loudly.

    Args:
        path: The artifact about to be unpickled.
        allowed: The model's ``allow_unsafe_pickle`` setting.
        kind: The runtime kind, for the message.

    Raises:
        UnsafeArtifactError: ``allowed`` is false.
    """
    if not allowed:
        raise UnsafeArtifactError(
            f"The {kind!r} runtime refuses to load {str(path)!r}: it is a pickle-based file, and "
            "unpickling runs arbitrary code. Save the model in a safe format instead (skops for "
            "scikit-learn, ONNX, TorchScript or torch.export), or, only for an artifact you "
            "produced yourself, set 'allow_unsafe_pickle: true' on this model in keel.yaml."
        )
    message = (
        f"Loading the pickle-based artifact {str(path)!r} because allow_unsafe_pickle is true: "
        "this runs arbitrary code from the file. Only do this for artifacts you produced."
    )
    logger.warning(message)
    warnings.warn(message, UnsafePickleWarning, stacklevel=3)


def looks_like_pickle(path: Path) -> bool:
    """True for a file with a pickle suffix, or that is not a zip and starts like a pickle."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return True
    try:
        with path.open("rb") as fh:
            head = fh.read(2)
    except OSError:
        return False
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


class BaseRuntime:
    """Optional base class for runtimes: holds the artifact and options, no-op lifecycle hooks.

    Subclasses set ``kind`` and ``config_model``, override :meth:`load` and :meth:`predict`,
    and set ``self._signature`` once loaded.

    Args:
        artifact: Path of the artifact (or, for runtimes with ``artifact_is_path = False``,
            another reference such as ``module:function``).
        options: ``models[].options`` from keel.yaml, validated against ``config_model``.
        allow_unsafe_pickle: Allow pickle-based artifacts (they execute code on load).

    Raises:
        ModelLoadError: an option is unknown or invalid.
    """

    kind: str = "base"
    #: The frozen options model; unknown options are errors.
    config_model: ClassVar[type[RuntimeConfig]] = RuntimeConfig
    #: Whether ``artifact`` names a file or directory (checked before loading).
    artifact_is_path: ClassVar[bool] = True

    def __init__(self, artifact: Path | str, options: Mapping[str, Any] | None = None, *,
                 allow_unsafe_pickle: bool = False) -> None:
        self.artifact: Path | str = Path(artifact) if self.artifact_is_path else str(artifact)
        self.options: dict[str, Any] = dict(options or {})
        self.allow_unsafe_pickle = allow_unsafe_pickle
        self.config: RuntimeConfig = parse_options(self.config_model, self.options, self.kind)
        self._signature = Signature()
        self._loaded = False

    @property
    def path(self) -> Path:
        """The artifact as a path."""
        return Path(self.artifact)

    @classmethod
    def pickled_parts(cls, path: Path, options: Mapping[str, Any]) -> list[Path]:
        """The files of ``path`` that loading would unpickle, found without loading.

        Registration checks this even without ``--verify``, so that a pickle is refused when it
        is registered, not later when it is served. Default: the files with a pickle suffix or
        that start like a pickle stream; runtimes whose formats say more override it.
        """
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        return [p for p in files if looks_like_pickle(p)]

    def load(self) -> None:
        """Load the artifact; the base does nothing."""
        self._loaded = True

    def predict(self, instances: Sequence[Instance]) -> list[JSONValue]:
        """Predict one output per instance; subclasses must override.

        Raises:
            NotImplementedError: always, in the base class.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement predict()")

    def predict_proba(self, instances: Sequence[Instance]) -> list[list[float]] | None:
        """Class probabilities per instance, or None when the model has none."""
        return None

    @property
    def signature(self) -> Signature:
        """What the loaded model accepts and returns."""
        return self._signature

    def unload(self) -> None:
        """Release the model; the base does nothing."""
        self._loaded = False

    def _not_loaded(self) -> ModelLoadError:
        return ModelLoadError(
            f"The {self.kind!r} model {self._name()!r} is not loaded; call load() before "
            "predicting (it may have been unloaded)."
        )

    def _name(self) -> str:
        return self.path.name if self.artifact_is_path else str(self.artifact)

    @contextmanager
    def model_errors(self, action: str = "predicting") -> Iterator[None]:
        """Turn any non-keelwork exception raised inside the block into PredictionError."""
        try:
            yield
        except KeelworkError:
            raise
        except Exception as exc:
            raise PredictionError(
                f"The {self.kind!r} model {self._name()!r} raised {type(exc).__name__} while "
                f"{action}: {_first_line(exc)}"
            ) from exc

    def load_error(self, exc: BaseException, what: str = "load") -> ModelLoadError:
        """A ModelLoadError naming the artifact file and the cause (chain ``exc`` to it)."""
        return ModelLoadError(
            f"The {self.kind!r} runtime could not {what} {str(self.artifact)!r}: "
            f"{type(exc).__name__}: {_first_line(exc)}. Check that the file is a complete "
            f"{self.kind} artifact and was written by a compatible library version."
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or repr(exc)
    line = text.splitlines()[0]
    return line if len(line) <= 300 else line[:297] + "..."


__all__ = [
    "PICKLE_SUFFIXES",
    "BaseRuntime",
    "RuntimeConfig",
    "UnsafePickleWarning",
    "as_batch",
    "import_optional",
    "looks_like_pickle",
    "numeric_matrix",
    "oip_dtype",
    "one_per_instance",
    "parse_options",
    "refuse_or_warn_pickle",
    "rows_from_instances",
    "tensor_batch",
    "text_batch",
    "to_jsonable",
]

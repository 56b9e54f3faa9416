"""A plain Python function as a model: ``module:function``.

The function receives the batch (a list of instances) and must return a list with one output
per instance. It may raise :class:`keelwork.errors.InvalidInputError` to reject bad input (the
caller then gets a 4xx-style error); any other exception is a
:class:`keelwork.errors.PredictionError`.

``options.path`` names a directory to import the module from; it is on ``sys.path`` only while
the module is imported.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from keelwork.adapters.runtimes.base import (
    BaseRuntime,
    RuntimeConfig,
    as_batch,
    one_per_instance,
)
from keelwork.core.signature import Signature, TensorSignature
from keelwork.errors import (
    ErrorDetail,
    InvalidInputError,
    KeelworkError,
    ModelLoadError,
    PredictionError,
)
from keelwork.types import Instance, JSONValue

#: sys.path is process-wide: imports that change it take turns.
_IMPORT_LOCK = threading.Lock()


class PythonCallableConfig(RuntimeConfig):
    """Options of the ``python`` runtime."""

    #: ``module:function`` when the model's artifact does not name it.
    callable: str | None = None
    #: Directory to import the module from (resolved by the caller, e.g. next to keel.yaml).
    path: str | None = None
    #: ``module:function`` returning one list of class probabilities per instance.
    proba_callable: str | None = None
    #: When set, every instance reaches the function as a record with these fields
    #: (lists are mapped by position; a record missing one is rejected).
    feature_names: tuple[str, ...] | None = None
    #: Class labels in the column order of ``proba_callable``'s output.
    classes: tuple[str | int | bool, ...] | None = None


class PythonCallableRuntime(BaseRuntime):
    """A Python function called with each batch.

    Args:
        artifact: ``module:function`` (``module:Class.method`` works too); may be empty when
            ``options.callable`` names it.
        options: See :class:`PythonCallableConfig`.
        allow_unsafe_pickle: Unused.
    """

    kind = "python"
    config_model: ClassVar[type[RuntimeConfig]] = PythonCallableConfig
    artifact_is_path: ClassVar[bool] = False
    config: PythonCallableConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fn: Callable[[list[Any]], Any] | None = None
        self._proba_fn: Callable[[list[Any]], Any] | None = None

    @property
    def reference(self) -> str:
        """The ``module:function`` this runtime calls."""
        return self.config.callable or str(self.artifact)

    def load(self) -> None:
        """Import the function (and the probability function, when configured).

        Raises:
            ModelLoadError: the reference is malformed, the module cannot be imported, or the
                attribute is missing or not callable.
        """
        self._fn = resolve_callable(self.reference, self.config.path)
        if self.config.proba_callable is not None:
            self._proba_fn = resolve_callable(self.config.proba_callable, self.config.path)
        names = self.config.feature_names
        outputs = [TensorSignature("output", "BYTES", (-1,))]
        if self._proba_fn is not None:
            outputs.append(TensorSignature("proba", "FP64", (-1, len(self.config.classes or ())
                                                             or -1)))
        self._signature = Signature(
            inputs=tuple(TensorSignature(n, "BYTES", (-1,)) for n in names) if names
            else (TensorSignature("input", "BYTES", (-1,)),),
            outputs=tuple(outputs),
            feature_names=names,
            classes=self.config.classes,
            extra={"callable": self.reference},
        )
        self._loaded = True

    def unload(self) -> None:
        """Forget the function (the module stays imported)."""
        self._fn = None
        self._proba_fn = None
        self._loaded = False

    def predict(self, instances: Sequence[Instance]) -> list[JSONValue]:
        """Call the function with the batch.

        Raises:
            InvalidInputError: the batch is malformed, a record lacks a feature, or the
                function itself rejected the input.
            PredictionError: the function raised anything else, or returned the wrong number
                of outputs.
        """
        if self._fn is None:
            raise self._not_loaded()
        return self._call(self._fn, instances, "outputs")

    def predict_proba(self, instances: Sequence[Instance]) -> list[list[float]] | None:
        """Call ``options.proba_callable`` with the batch, or return None when there is none.

        Raises:
            InvalidInputError: the batch is malformed or rejected by the function.
            PredictionError: the function raised anything else or returned the wrong count.
        """
        if self._fn is None:
            raise self._not_loaded()
        if self._proba_fn is None:
            return None
        return self._call(self._proba_fn, instances, "probability rows")

    def _call(self, fn: Callable[[list[Any]], Any], instances: Sequence[Instance],
              what: str) -> list[Any]:
        batch = self._records(as_batch(instances))
        if not batch:
            return []
        with self.model_errors():
            out = fn(batch)
        if isinstance(out, (str, bytes, Mapping)) or not hasattr(out, "__len__"):
            raise PredictionError(
                f"The function {self.reference!r} returned a {type(out).__name__} for a batch "
                f"of {len(batch)} instances; it must return a list with one output per instance."
            )
        return one_per_instance(out, len(batch), kind=self.kind, what=what)

    def _records(self, batch: list[Any]) -> list[Any]:
        names = self.config.feature_names
        if not names:
            return batch
        records: list[Any] = []
        for i, inst in enumerate(batch):
            if isinstance(inst, Mapping):
                missing = [n for n in names if n not in inst]
                if missing:
                    raise InvalidInputError(
                        f"Instance {i} is missing the feature {missing[0]!r}; every record "
                        f"needs {', '.join(repr(n) for n in names)}.",
                        [ErrorDetail(path=f"instances[{i}].{n}", rule="required")
                         for n in missing],
                    )
                records.append(inst)
            elif isinstance(inst, Sequence) and not isinstance(inst, (str, bytes)):
                if len(inst) != len(names):
                    raise InvalidInputError(
                        f"Instance {i} must be a record or a list of {len(names)} values "
                        f"({', '.join(names)}); got {len(inst)} values.",
                        [ErrorDetail(path=f"instances[{i}]", rule="row_length", got=len(inst))],
                    )
                records.append(dict(zip(names, inst, strict=True)))
            else:
                raise InvalidInputError(
                    f"Instance {i} must be a record or a list of {len(names)} values; got "
                    f"{type(inst).__name__}.",
                    [ErrorDetail(path=f"instances[{i}]", rule="instance_type",
                                 got=type(inst).__name__)],
                )
        return records


def resolve_callable(reference: str, path: str | None = None) -> Callable[[list[Any]], Any]:
    """Import ``module:attr`` (``attr`` may be dotted) and return the callable.

    Args:
        reference: ``module:function``.
        path: A directory put on ``sys.path`` only while the module is imported.

    Returns:
        The callable.

    Raises:
        ModelLoadError: the reference is malformed, the import fails, or the attribute is
            missing or not callable.
    """
    module_name, sep, attr = reference.partition(":")
    if not sep or not module_name or not attr:
        raise ModelLoadError(
            "The 'python' runtime needs its artifact (or options.callable) in the form "
            f"'module:function'; got {reference!r}."
        )
    directory = str(Path(path).expanduser().resolve()) if path else None
    with _IMPORT_LOCK:
        if directory is not None:
            sys.path.insert(0, directory)
        try:
            module = importlib.import_module(module_name)
        except KeelworkError:
            raise
        except ModuleNotFoundError as exc:
            where = f" from {directory!r} or" if directory else ""
            raise ModelLoadError(
                f"Cannot import the module {module_name!r} named by {reference!r}: {exc}. It "
                f"must be importable{where} from the Python path; set options.path to the "
                "directory that holds it."
            ) from exc
        except Exception as exc:
            raise ModelLoadError(
                f"Importing the module {module_name!r} named by {reference!r} raised "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        finally:
            if directory is not None and directory in sys.path:
                sys.path.remove(directory)
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ModelLoadError(
                f"The module {module_name!r} has no attribute {attr!r} (from {reference!r})."
            ) from None
    if not callable(target):
        raise ModelLoadError(
            f"{reference!r} names a {type(target).__name__}, not a function."
        )
    fn: Callable[[list[Any]], Any] = target
    return fn


__all__ = ["PythonCallableConfig", "PythonCallableRuntime", "resolve_callable"]

"""The registry of feature transform functions, filled by the :func:`feature_transform` decorator.

A project's ``features.py`` (listed under ``features.modules`` in keel.yaml) registers its
functions by name; keel.yaml refers to them by that name (``transforms[].fn``)::

    from keelwork.core.features import feature_transform

    @feature_transform("text_length")
    def text_length(text: str | None) -> int | None:
        return None if text is None else len(text)

    @feature_transform("log1p", batch=True)          # one call per batch of rows
    def log1p(values: list[float | None]) -> list[float | None]:
        return [None if v is None else math.log1p(v) for v in values]

A *row* transform takes one value per input and returns one value. A *batch* transform takes one
list per input (the rows of a batch, in order) and returns one list of the same length; it must
be elementwise (output ``i`` depends on row ``i`` only), since training and serving cut rows into
batches differently. Both kinds see plain Python values (``None`` for missing) on both paths.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from keelwork.errors import ErrorDetail, SpecError

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class RegisteredTransform:
    """A transform function and how to call it.

    Attributes:
        name: The name keel.yaml refers to (``transforms[].fn``).
        fn: The function.
        batch: True: ``fn(*columns) -> list``; False: ``fn(*values) -> value``.
        origin: ``file:qualname`` of the function, for messages.
    """

    name: str
    fn: Callable[..., Any]
    batch: bool
    origin: str


def _origin(fn: Callable[..., Any]) -> str:
    # The defining file, not the module name: a features.py imported by a training script and
    # loaded by path from keel.yaml in the same process is one definition, not a conflict.
    code = getattr(fn, "__code__", None)
    where = getattr(code, "co_filename", None) or getattr(fn, "__module__", None) or "?"
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{where}:{qualname}"


class TransformRegistry:
    """Transform functions by name.

    Registering a name twice is an error, except from the same ``file:qualname`` (a module
    imported again, or under another name): then the newer function replaces the older one.
    """

    def __init__(self) -> None:
        self._items: dict[str, RegisteredTransform] = {}

    def register(self, name: str, fn: Callable[..., Any], *, batch: bool = False) -> None:
        """Register ``fn`` under ``name``.

        Args:
            name: The name keel.yaml uses in ``transforms[].fn``.
            fn: The function.
            batch: Whether ``fn`` takes whole columns (see the module docstring).

        Raises:
            SpecError: ``name`` is empty, ``fn`` is not callable, or another function already
                holds the name.
        """
        if not isinstance(name, str) or not name:
            raise SpecError(f"A feature transform needs a non-empty name; got {name!r}.",
                            [ErrorDetail("feature_transform", "name", name)])
        if not callable(fn):
            raise SpecError(f"The feature transform {name!r} must be a function; got "
                            f"{type(fn).__name__}.", [ErrorDetail(name, "callable", repr(fn))])
        origin = _origin(fn)
        old = self._items.get(name)
        if old is not None and old.origin != origin:
            raise SpecError(
                f"The feature transform name {name!r} is already registered by {old.origin}; "
                f"got another function, {origin}. Give one of them another name.",
                [ErrorDetail(name, "duplicate_transform", origin)])
        self._items[name] = RegisteredTransform(name, fn, batch, origin)

    def transform(self, name: str | None = None, *, batch: bool = False) -> Callable[[F], F]:
        """Decorator form of :meth:`register`; the name defaults to the function's name.

        Args:
            name: The registered name.
            batch: Whether the function takes whole columns.

        Returns:
            A decorator that registers the function and returns it unchanged.
        """
        def decorate(fn: F) -> F:
            self.register(name or fn.__name__, fn, batch=batch)
            return fn

        return decorate

    def get(self, name: str) -> RegisteredTransform:
        """The transform registered as ``name``.

        Raises:
            KeyError: no such name.
        """
        return self._items[name]

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)


#: The registry that :func:`feature_transform` writes to and pipelines read by default.
DEFAULT_REGISTRY = TransformRegistry()


def feature_transform(name: str | None = None, *, batch: bool = False,
                      registry: TransformRegistry | None = None) -> Callable[[F], F]:
    """Register a feature transform function under ``name`` (see the module docstring).

    Args:
        name: The name keel.yaml uses in ``transforms[].fn``; default: the function's name.
        batch: True when the function takes one list per input and returns a list.
        registry: Where to register; default: :data:`DEFAULT_REGISTRY`.

    Returns:
        A decorator that registers the function and returns it unchanged.

    Raises:
        SpecError: (when decorating) another function already holds the name.
    """
    target = registry if registry is not None else DEFAULT_REGISTRY  # an empty one is falsy
    return target.transform(name, batch=batch)


__all__ = ["DEFAULT_REGISTRY", "RegisteredTransform", "TransformRegistry", "feature_transform"]

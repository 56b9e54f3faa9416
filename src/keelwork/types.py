"""The seams of keelwork: Protocols and type aliases only.

Every extension point is a :class:`typing.Protocol` here. Adapters implement them; the optional
base classes in ``keelwork.adapters`` give no-op lifecycle hooks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

if TYPE_CHECKING:
    from keelwork.core.predictions import PredictionRecord
    from keelwork.core.signature import Signature

#: One input row: a mapping of field name -> value (a record), a sequence of values in
#: feature order, a scalar (e.g. one text), or a nested list for tensor models.
Instance: TypeAlias = Any
#: JSON-compatible value.
JSONValue: TypeAlias = Any
#: Free-form runtime options from ``models[].options`` in keel.yaml.
RuntimeOptions: TypeAlias = Mapping[str, Any]


@runtime_checkable
class ModelRuntime(Protocol):
    """A loaded model behind one uniform interface.

    Lifecycle: construct with the artifact path and options, ``load()`` once, call
    ``predict`` any number of times (possibly from several threads), ``unload()`` at the end.
    ``predict`` takes a *batch* and returns exactly one JSON-compatible output per instance.
    """

    kind: str

    def load(self) -> None: ...

    def predict(self, instances: Sequence[Instance]) -> list[JSONValue]: ...

    def predict_proba(self, instances: Sequence[Instance]) -> list[list[float]] | None: ...

    @property
    def signature(self) -> Signature: ...

    def unload(self) -> None: ...


class RuntimeFactory(Protocol):
    """What the ``keelwork.runtimes`` entry-point group must point at (usually the class)."""

    def __call__(
        self, artifact: Path, options: RuntimeOptions, *, allow_unsafe_pickle: bool = False
    ) -> ModelRuntime: ...


@runtime_checkable
class TextEmbedder(Protocol):
    """Turns texts into fixed-size vectors (text drift, out-of-distribution guards)."""

    #: Short identifier of the embedding model, stored with references built from it: vectors
    #: of different embedders must never be compared.
    name: str
    #: Length of every vector.
    dim: int

    def embed(self, texts: Sequence[str]) -> Any:
        """Return a float array of shape ``(len(texts), dim)``."""
        ...


@runtime_checkable
class AuditSink(Protocol):
    """Where admin actions are recorded (the hash-chained audit log)."""

    def append(self, *, actor: str, action: str, target: str,
               details: Mapping[str, Any] | None = None) -> Any:
        """Append one entry; returns the stored entry (its id and hash)."""
        ...


__all__ = ["AuditSink", "Instance", "JSONValue", "ModelRuntime", "RuntimeFactory",
           "RuntimeOptions", "TextEmbedder"]


# --------------------------------------------------------------------------- serving
class PredictionSink(Protocol):
    """Where the gateway's prediction records go (the durable prediction log)."""

    async def write(self, records: Sequence[PredictionRecord]) -> None: ...


class EntityLookup(Protocol):
    """The online feature store as serving-time features use it."""

    def lookup(self, entity: str, keys: Sequence[str | None], *, max_age_s: float | None = None,
               now: float | None = None) -> list[dict[str, Any] | None]:
        """The stored values of ``entity`` for each key, None where unknown or too old."""
        ...

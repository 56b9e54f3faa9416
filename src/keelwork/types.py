"""The seams of keelwork: Protocols and type aliases only.

Every extension point is a :class:`typing.Protocol` here. Adapters implement them; the optional
base classes in ``keelwork.adapters`` give no-op lifecycle hooks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from keelwork.core.ingest import Checkpoint, ChunkOutcome, DeadLetter, IngestCounts
    from keelwork.core.predictions import PredictionRecord
    from keelwork.core.signature import Signature

T = TypeVar("T")

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


# =========================================================================== Stores
# What the service layer calls on each store of ``keelwork.adapters.stores``. Every store
# passes one conformance suite on SQLite and PostgreSQL: tests/conformance/test_stores.py.


@runtime_checkable
class IngestLedger(Protocol):
    """Jobs, checkpoints and dead letters of file ingestion, with retried transactions
    (``keelwork.adapters.stores.ingest_ledger_store.Ledger``)."""

    engine: Engine

    def ensure_schema(self) -> None: ...

    def transaction(self, what: str, work: Callable[[Connection], T]) -> T: ...

    def start_job(self, file_sha: str, kind: str, target: str, path: str,
                  total_rows: int | None) -> Checkpoint: ...

    def commit(self, checkpoint: Checkpoint, rows: int, what: str,
               write: Callable[[Connection], tuple[IngestCounts, Sequence[DeadLetter]]],
               ) -> tuple[Checkpoint, IngestCounts]: ...

    def finish(self, checkpoint: Checkpoint) -> Checkpoint: ...

    def fail(self, file_sha: str, kind: str, target: str, path: str, error: str) -> None: ...

    def job(self, file_sha: str, kind: str, target: str = "") -> Any: ...

    def jobs(self, kind: str | None = None) -> list[Any]: ...

    def dead_letters(self, file_sha: str | None = None, kind: str | None = None,
                     target: str | None = None) -> list[DeadLetter]: ...


# =========================================================================== Ingestion
class IngestSource(Protocol):
    """A data file checked end to end before anything of it is written
    (``keelwork.service.ingest.files.SourceFile``)."""

    path: Path
    sha256: str
    rows: int
    columns: tuple[str, ...]
    types: Mapping[str, Any]

    def line_of(self, row: int) -> int | None:
        """The 1-based line where record ``row`` starts; None when the format has no lines."""
        ...


class ChunkHandler(Protocol):
    """What a kind of ingestion (labels, prediction records, scoring) plugs into the loop that
    ingests a file chunk by chunk (``keelwork.service.ingest.files.run_file``)."""

    kind: str
    target: str

    def read_types(self) -> Mapping[str, Any]:
        """Arrow types to read named CSV/TSV columns as (e.g. from the contract)."""
        ...

    def check_columns(self, file: IngestSource) -> None:
        """Raise DataFileError when the file lacks a column this kind needs."""
        ...

    def begin(self, file: IngestSource, ledger: IngestLedger, checkpoint: Checkpoint) -> None:
        """Called once before the first chunk of a run (not for finished files)."""
        ...

    def prepare(self, file: IngestSource, first_row: int, rows: list[dict[str, Any]],
                checkpoint: Checkpoint) -> Any:
        """Everything outside the transaction: parse, validate, predict."""
        ...

    def write(self, conn: Connection, chunk: Any, file: IngestSource) -> ChunkOutcome:
        """Write a prepared chunk inside the transaction; may run more than once."""
        ...

    def end(self, file: IngestSource, ledger: IngestLedger, checkpoint: Checkpoint) -> None:
        """Called once the whole file is committed, and for files finished earlier."""
        ...


# =========================================================================== Serving
class PredictionSink(Protocol):
    """Where the gateway's prediction records go (the durable prediction log)."""

    async def write(self, records: Sequence[PredictionRecord]) -> None: ...


class EntityLookup(Protocol):
    """The online feature store as serving-time features use it."""

    def lookup(self, entity: str, keys: Sequence[str | None], *, max_age_s: float | None = None,
               now: float | None = None) -> list[dict[str, Any] | None]:
        """The stored values of ``entity`` for each key, None where unknown or too old."""
        ...


__all__ = ["AuditSink", "ChunkHandler", "EntityLookup", "IngestLedger", "IngestSource",
           "Instance", "JSONValue", "ModelRuntime", "PredictionSink", "RuntimeFactory",
           "RuntimeOptions", "TextEmbedder"]

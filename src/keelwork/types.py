"""The seams of keelwork: Protocols and type aliases only.

Every extension point is a :class:`typing.Protocol` here. Adapters implement them; the optional
base classes in ``keelwork.adapters`` give no-op lifecycle hooks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

    from sqlalchemy.engine import Connection, Engine

    from keelwork.core.alerting.notification import AlertChange, Notification
    from keelwork.core.audit.chain import AuditEntry, ChainHead, VerifyResult
    from keelwork.core.auth import Principal
    from keelwork.core.datasets import DatasetVersion
    from keelwork.core.ingest import Checkpoint, ChunkOutcome, DeadLetter, IngestCounts
    from keelwork.core.pii.spans import Span
    from keelwork.core.predictions import PredictionRecord
    from keelwork.core.registry import AliasChange, ModelSummary, ModelVersion
    from keelwork.core.rollout.rollback import Setback
    from keelwork.core.rollout.state import Rollout, RolloutEvent
    from keelwork.core.signature import Signature
    from keelwork.core.slo.evaluate import SloCounts

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
class ModelRegistryStore(Protocol):
    """Model versions, aliases and their history (``adapters.stores.registry_store``).

    Registering checks and stores; verifying that the model loads is the register use-case's
    (``keelwork.service.registration.register_model``).
    """

    engine: Engine

    def register(self, name: str, artifact: str | Path, runtime: str, *,
                 dataset_version: str | None = None, metrics: Mapping[str, Any] | None = None,
                 options: Mapping[str, Any] | None = None, aliases: Sequence[str] = (),
                 created_by: str | None = None,
                 source_dir: Path | None = None) -> ModelVersion: ...

    def list_models(self) -> list[ModelSummary]: ...

    def list_versions(self, name: str) -> list[ModelVersion]: ...

    def get(self, name: str, version: int) -> ModelVersion: ...

    def resolve(self, ref: Any) -> ModelVersion: ...

    def artifact_path(self, model_version: ModelVersion) -> Path | None: ...

    def set_alias(self, name: str, version: int, alias: str, actor: str | None = None,
                  reason: str = "") -> AliasChange: ...

    def remove_alias(self, name: str, alias: str, actor: str | None = None,
                     reason: str = "") -> AliasChange: ...

    def alias_history(self, name: str) -> list[AliasChange]: ...

    def alias_revision(self) -> int: ...

    def close(self) -> None: ...


@runtime_checkable
class PredictionWriter(Protocol):
    """Where served predictions are written (``adapters.stores.prediction_log.PredictionLog``:
    batched in the background, spooled to disk while the store is down)."""

    def start(self) -> None: ...

    def write_blocking(self, records: Sequence[PredictionRecord]) -> None: ...

    def flush(self, timeout: float | None = None) -> bool: ...

    def close(self, timeout: float | None = None) -> None: ...


@runtime_checkable
class PredictionReaderStore(Protocol):
    """Reads of the prediction log (``adapters.stores.prediction_store.PredictionReader``)."""

    def has_log(self) -> bool: ...

    def iter_records(self, since: float | None = None, until: float | None = None, *,
                     model: str | None = None, tenant: str | None = None,
                     subject_id: str | None = None, limit: int | None = None,
                     batch_size: int = 1000) -> Iterator[PredictionRecord]: ...

    def tail(self, n: int = 20, *, model: str | None = None,
             status: str | None = None) -> list[PredictionRecord]: ...

    def count(self, since: float | None = None, until: float | None = None, *,
              model: str | None = None, tenant: str | None = None,
              subject_id: str | None = None) -> int: ...

    def slo_counts(self, since: float, until: float, *,
                   latency_ms: float | None = None) -> dict[str, SloCounts]:
        """Per model, its requests in ``[since, until)`` as the SLOs count them."""
        ...


@runtime_checkable
class LabelStoreProtocol(Protocol):
    """Ground-truth labels by prediction id (``adapters.stores.label_store.LabelStore``)."""

    def ensure_schema(self) -> None: ...

    def submit(self, records: Sequence[Mapping[str, Any]], *, source: str = "api",
               columns: Any = None, relabel_own_only: bool = False,
               check_labels: Callable[[list[Any]], list[Any]] | None = None,
               max_unknown: int | None = None) -> Any: ...

    def reconcile(self) -> int: ...

    def expire_unknown(self, older_than_s: float, now: datetime | None = None) -> int: ...

    def get(self, prediction_id: str) -> Any: ...

    def current(self, prediction_ids: Sequence[str]) -> dict[str, Any]: ...

    def has_labels(self) -> bool: ...

    def label_values(self, prediction_ids: Sequence[str]) -> dict[str, tuple[Any, float]]: ...

    def history(self, prediction_id: str) -> list[Any]: ...

    def count(self) -> dict[str, int]: ...


@runtime_checkable
class RolloutStoreProtocol(Protocol):
    """Rollouts, their event log and rollback setbacks
    (``adapters.stores.rollout_store.RolloutStore``)."""

    def ensure_schema(self) -> None: ...

    def revision(self) -> int: ...

    def get(self, rollout_id: int) -> Rollout: ...

    def latest(self, model: str) -> Rollout | None: ...

    def active(self) -> list[Rollout]: ...

    def events(self, rollout_id: int) -> list[RolloutEvent]: ...

    def create(self, rollout: Rollout, *, actor: str,
               reason: str = "started") -> tuple[Rollout, RolloutEvent]: ...

    def transition(self, rollout_id: int, action: str, *, actor: str, reason: str = "",
                   decision: dict[str, Any] | None = None,
                   expect_revision: int | None = None,
                   also: Any = None) -> tuple[Rollout, RolloutEvent]: ...

    def setbacks(self, model: str) -> list[Setback]: ...


@runtime_checkable
class FlagStoreProtocol(Protocol):
    """Feature flags set at run time (``adapters.stores.flag_store.FlagStore``)."""

    def ensure_schema(self) -> None: ...

    def revision(self) -> int: ...

    def bodies(self) -> list[dict[str, Any]]: ...

    def put(self, flag: Any, *, actor: str) -> Any: ...

    def delete(self, name: str, *, actor: str) -> bool: ...


@runtime_checkable
class AuditStore(AuditSink, Protocol):
    """The hash-chained audit log itself (``adapters.stores.audit_store.AuditLog``)."""

    def ensure_schema(self) -> None: ...

    def head(self) -> ChainHead: ...

    def get(self, seq: int) -> AuditEntry | None: ...

    def query(self, *, actor: str | None = None, action: str | None = None,
              target: str | None = None, since: datetime | None = None,
              until: datetime | None = None, limit: int | None = 100) -> list[AuditEntry]: ...

    def verify(self, anchor: ChainHead | None = None, *, kept: bool = True,
               page: int = ...) -> VerifyResult: ...


@runtime_checkable
class SubjectRequestsProtocol(Protocol):
    """A data subject's access and erasure requests (``service.subjects.SubjectRequests``)."""

    def export(self, subject: str) -> dict[str, Any]: ...

    def erase(self, subject: str, *, reason: str, actor: str) -> dict[str, Any]: ...


@runtime_checkable
class ApiKeyStoreProtocol(Protocol):
    """API keys: created once, verified by hash, revoked
    (``adapters.stores.api_keys.ApiKeyStore``)."""

    def ensure_schema(self) -> None: ...

    def create(self, *, scopes: Iterable[str], name: str, created_by: str) -> Any: ...

    def revoke(self, key_id: str, *, actor: str) -> Any: ...

    def list(self, *, include_revoked: bool = True) -> list[Any]: ...

    def has_active_keys(self) -> bool: ...

    def verify(self, key: str | None) -> Principal | None: ...

    def cached(self, key: str | None) -> Principal | None:
        """The principal of ``key`` if it was verified recently; never touches the store (an
        event loop calls it directly, and :meth:`verify` in a thread only on a miss)."""
        ...


@runtime_checkable
class DatasetStoreProtocol(Protocol):
    """Immutable dataset snapshots (``adapters.stores.datasets.DatasetStore``); reading the
    source file is the snapshot use-case's (``keelwork.service.datasets``)."""

    def snapshot_table(self, table: Any, name: str, subject_column: str | None = None, *,
                       source: str, created_by: str | None = None,
                       progress: Callable[[str, int, int | None], None] | None = None,
                       ) -> DatasetVersion: ...

    def list_versions(self, name: str | None = None) -> list[DatasetVersion]: ...

    def get(self, name: str, version: int) -> DatasetVersion: ...

    def latest(self, name: str) -> DatasetVersion | None: ...

    def resolve(self, ref: Any) -> DatasetVersion: ...

    def read(self, ref: Any, columns: list[str] | None = None) -> Any: ...

    def verify(self, ref: Any) -> DatasetVersion: ...

    def close(self) -> None: ...


@runtime_checkable
class MonitorStoreProtocol(Protocol):
    """Monitoring references and window results (``adapters.stores.monitor_store``)."""

    def ensure_schema(self) -> None: ...

    def put_reference(self, model: str, version: int | None, source: str,
                      body: dict[str, Any]) -> Any: ...

    def latest_reference(self, model: str, version: int | None = None) -> Any: ...

    def put_window(self, model: str, window: str, start: float, end: float,
                   version: int | None, predictions: int, body: dict[str, Any]) -> None: ...

    def windows(self, model: str, window: str | None = None, *, since: float | None = None,
                until: float | None = None, limit: int | None = None) -> list[Any]: ...

    def latest_windows(self) -> list[Any]: ...


@runtime_checkable
class AlertStateStore(Protocol):
    """Each alert's state per receiver and its delivery (``adapters.stores.alert_store``)."""

    def ensure_schema(self) -> None: ...

    def record(self, change: AlertChange, receiver: str) -> bool:
        """Keep ``change``; True when it changed the state (a notification is due)."""
        ...

    def due(self, now: float, limit: int = 100) -> list[Any]: ...

    def delivered(self, fingerprint: str, receiver: str, state: str, at: float) -> bool: ...

    def failed(self, fingerprint: str, receiver: str, state: str, error: str, at: float,
               retry_at: float) -> None: ...

    def get(self, fingerprint: str, receiver: str) -> Any: ...

    def alerts(self, *, state: str | None = None) -> list[Any]: ...

    def acknowledge(self, fingerprint: str, by: str, at: float) -> bool: ...

    def acks(self) -> dict[str, tuple[float, str]]: ...


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


@runtime_checkable
class Notifier(Protocol):
    """A sink that delivers alert notifications (``keelwork.adapters.notifiers``)."""

    #: The receiver's kind: webhook, email or slack.
    kind: str

    def send(self, notification: Notification) -> None:
        """Deliver one notification; raise NotificationError when it was not delivered."""
        ...


class EntityLookup(Protocol):
    """The online feature store as serving-time features use it."""

    def lookup(self, entity: str, keys: Sequence[str | None], *, max_age_s: float | None = None,
               now: float | None = None) -> list[dict[str, Any] | None]:
        """The stored values of ``entity`` for each key, None where unknown or too old."""
        ...


class BatchHandler(Protocol):
    """What a batching engine's workers call (``keelwork.adapters.engines.mosec_workers``)."""
    def admit(self, body: bytes) -> tuple[int, Any]: ...  # (200, item) or (status, error body)
    def answer(self, items: list[Any]) -> tuple[int, list[bytes]]: ...  # bodies, or [error]


class PiiRecogniser(Protocol):
    """Finds PII; see :mod:`keelwork.core.pii` (entry points: ``keelwork.pii_recognisers``)."""
    entities: tuple[str, ...]  # the entity names its spans carry
    def find(self, text: str) -> list[Span]: ...  # pure, linear-time, never logs the text


__all__ = [  # alphabetical; several a line (this module is at the 500-line limit)
    "AlertStateStore", "ApiKeyStoreProtocol", "AuditSink", "AuditStore", "BatchHandler",
    "ChunkHandler", "DatasetStoreProtocol", "EntityLookup", "FlagStoreProtocol", "IngestLedger",
    "IngestSource",
    "Instance", "JSONValue", "LabelStoreProtocol", "ModelRegistryStore", "ModelRuntime",
    "MonitorStoreProtocol", "Notifier", "PiiRecogniser", "PredictionReaderStore",
    "PredictionSink", "PredictionWriter", "RolloutStoreProtocol", "RuntimeFactory",
    "RuntimeOptions", "TextEmbedder",
]

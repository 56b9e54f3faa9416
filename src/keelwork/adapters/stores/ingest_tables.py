"""Tables of ingestion: the ledger of ingested files and the ground-truth labels.

One ``MetaData`` (schema kind ``ingest``), created together by
:meth:`keelwork.adapters.stores.ingest_ledger_store.Ledger.ensure_schema`::

    ingest_files    (file_sha, kind, target) PK, path, status (running / done / failed),
                    total_rows, committed_rows (the checkpoint), ingested, duplicates,
                    dead_lettered, unknown, relabelled, epoch_ms, started_at, updated_at,
                    finished_at, error
    dead_letters    id PK, (file_sha, kind, target, row_index) unique, path, line_no,
                    reasons (JSON list of {path, rule, got, message, line}), raw (JSON),
                    created_at
    ingest_keys     (scope, key) PK, prediction_id, file_sha, row_index, created_at -- the
                    explicit ids a model version has scored (``keel score --id-column``)
    labels          prediction_id (PK), label (canonical JSON text), ts, source, source_row,
                    ingested_at
    label_history   id (PK), prediction_id, label, ts, source, source_row, ingested_at,
                    replaced_at -- every label that a different later one replaced
    unknown_labels  prediction_id (PK), label, ts, source, source_row, first_seen, last_seen,
                    times_seen -- labels whose prediction is not (yet) in the prediction log

Labels are stored as canonical JSON text (sorted keys, compact) rather than a JSON column type:
PostgreSQL cannot compare ``json`` values, and equal labels must be recognised.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Double,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

INGEST_SCHEMA_KIND = "ingest"
INGEST_SCHEMA_VERSION = 1

metadata = MetaData()


def _utc() -> DateTime:
    return DateTime(timezone=True)


ingest_files = Table(
    "ingest_files", metadata,
    Column("file_sha", String(64), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("target", String(256), primary_key=True),
    Column("path", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("total_rows", BigInteger),
    Column("committed_rows", BigInteger, nullable=False),
    Column("ingested", BigInteger, nullable=False),
    Column("duplicates", BigInteger, nullable=False),
    Column("dead_lettered", BigInteger, nullable=False),
    Column("unknown", BigInteger, nullable=False),
    Column("relabelled", BigInteger, nullable=False),
    Column("epoch_ms", BigInteger, nullable=False),
    Column("started_at", _utc(), nullable=False),
    Column("updated_at", _utc(), nullable=False),
    Column("finished_at", _utc()),
    Column("error", Text),
    Index("ix_ingest_files_kind_started", "kind", "started_at"),
)

dead_letters = Table(
    "dead_letters", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("file_sha", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("target", String(256), nullable=False),
    Column("path", Text, nullable=False),
    Column("row_index", BigInteger, nullable=False),
    Column("line_no", BigInteger),
    Column("reasons", JSON, nullable=False),
    Column("raw", JSON),
    Column("created_at", _utc(), nullable=False),
    UniqueConstraint("file_sha", "kind", "target", "row_index", name="uq_dead_letters_row"),
)

ingest_keys = Table(
    "ingest_keys", metadata,
    Column("scope", String(256), primary_key=True),
    Column("key", String(300), primary_key=True),
    Column("prediction_id", String(64), nullable=False),
    Column("file_sha", String(64), nullable=False),
    Column("row_index", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


labels = Table(
    "labels", metadata,
    Column("prediction_id", String(256), primary_key=True),
    Column("label", Text, nullable=False),
    Column("ts", Double, nullable=False),
    Column("source", Text, nullable=False),
    Column("source_row", BigInteger),
    Column("ingested_at", DateTime(timezone=True), nullable=False),
    Index("ix_labels_ts", "ts"),
)

label_history = Table(
    "label_history", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("prediction_id", String(256), nullable=False),
    Column("label", Text, nullable=False),
    Column("ts", Double, nullable=False),
    Column("source", Text, nullable=False),
    Column("source_row", BigInteger),
    Column("ingested_at", DateTime(timezone=True), nullable=False),
    Column("replaced_at", DateTime(timezone=True), nullable=False),
    Index("ix_label_history_prediction", "prediction_id", "id"),
)

unknown_labels = Table(
    "unknown_labels", metadata,
    Column("prediction_id", String(256), primary_key=True),
    Column("label", Text, nullable=False),
    Column("ts", Double, nullable=False),
    Column("source", Text, nullable=False),
    Column("source_row", BigInteger),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("times_seen", Integer, nullable=False),
)



__all__ = [
    "INGEST_SCHEMA_KIND",
    "INGEST_SCHEMA_VERSION",
    "dead_letters",
    "ingest_files",
    "ingest_keys",
    "label_history",
    "labels",
    "metadata",
    "unknown_labels",
]

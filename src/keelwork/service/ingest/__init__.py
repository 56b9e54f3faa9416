"""Ingestion from files into the store: labels, prediction records and batch scoring.

One pipeline serves every kind (:func:`ingest_paths`): each file is first hashed and read end
to end, so that an unreadable or malformed one fails with its file, line and column *before*
anything of any file is written; then each is ingested from its checkpoint on, one transaction
per chunk that also advances the checkpoint (exactly-once across kill -9 and reruns; see
:mod:`keelwork.adapters.stores.ingest_ledger_store`). Records that break the contract become
dead letters with their line. The same content ingested again as the same kind into the same
target adds nothing.

Python API::

    from keelwork.adapters.stores.engine import make_engine
    from keelwork.service.ingest import ingest_labels

    results = ingest_labels(make_engine(url), [Path("labels.csv")])
    results[0].counts.ingested, results[0].counts.unknown, results[0].unknown_ids

``LabelStore(engine).submit(records)`` applies labels that do not come from a file (the
feedback API); :func:`score_files` runs a model over data files; :func:`watch` polls a
directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TypedDict, Unpack

from sqlalchemy import Engine

from keelwork.adapters.stores.ingest_ledger_store import JobRecord, Ledger
from keelwork.adapters.stores.label_store import LabelStore, StoredLabel
from keelwork.adapters.stores.label_writes import LabelResult
from keelwork.adapters.stores.transactions import is_transient
from keelwork.core.ingest import RetryPolicy
from keelwork.core.label_rows import LabelColumns
from keelwork.errors import JobConflict
from keelwork.service.ingest.files import (
    FileResult,
    ProgressHook,
    SourceFile,
    check_source,
    run_file,
)
from keelwork.service.ingest.labels import LabelsHandler
from keelwork.service.ingest.predictions import PredictionsHandler
from keelwork.service.ingest.scoring import (
    ScoreHandler,
    ScoringModel,
    load_scoring_model,
)
from keelwork.service.ingest.watcher import WatchStats, watch
from keelwork.types import ChunkHandler

#: Records per read batch.
BATCH_SIZE = 65536
#: Records per transaction (and per checkpoint).
COMMIT_EVERY = 1000


def check_sources(paths: Sequence[Path], handler: ChunkHandler,
                  batch_size: int = BATCH_SIZE) -> list[SourceFile]:
    """Hash and read every file, and check its columns; write nothing.

    Args:
        paths: The files.
        handler: The kind of ingestion (checks the columns).
        batch_size: Records per read batch.

    Returns:
        The checked files, in order.

    Raises:
        DataFileError: the first file that is unreadable, malformed, empty or lacks a column.
    """
    files = []
    for path in paths:
        file = check_source(Path(path), batch_size, handler.read_types())
        handler.check_columns(file)
        files.append(file)
    return files


def ingest_paths(engine: Engine, paths: Sequence[Path], handler: ChunkHandler, *,
                 batch_size: int = BATCH_SIZE, commit_every: int = COMMIT_EVERY,
                 retry: RetryPolicy | None = None, ledger: Ledger | None = None,
                 progress: ProgressHook | None = None) -> list[FileResult]:
    """Check every file, then ingest each one (resuming unfinished jobs).

    Args:
        engine: The store.
        paths: The files (CSV, TSV, JSON lines, Parquet).
        handler: The kind of ingestion: :class:`LabelsHandler`, :class:`PredictionsHandler`
            or :class:`ScoreHandler`.
        batch_size: Records per read batch.
        commit_every: Records per transaction.
        retry: Backoff for transient store errors.
        ledger: A ledger to use (default: a new one over ``engine``).
        progress: Called after every committed chunk.

    Returns:
        One result per file, in order.

    Raises:
        DataFileError: a file is bad; nothing was written.
        StoreError: the store failed; committed chunks stay and a rerun resumes after them.
        JobConflict: another process is ingesting one of the files.
    """
    files = check_sources(paths, handler, batch_size)
    ledger = ledger or Ledger(engine, retry=retry)
    ledger.ensure_schema()
    return [run_file(ledger, handler, f, batch_size=batch_size, commit_every=commit_every,
                     progress=progress) for f in files]


class IngestOptions(TypedDict, total=False):
    """The keyword options :func:`ingest_paths` takes, shared by the kinds' shortcuts."""

    #: Records per read batch.
    batch_size: int
    #: Records per transaction.
    commit_every: int
    #: Backoff for transient store errors.
    retry: RetryPolicy | None
    #: A ledger to use (default: a new one over the engine).
    ledger: Ledger | None
    #: Called after every committed chunk.
    progress: ProgressHook | None


def ingest_labels(engine: Engine, paths: Sequence[Path], *, columns: LabelColumns | None = None,
                  **options: Unpack[IngestOptions]) -> list[FileResult]:
    """Ingest labels files (duplicates, relabels and unknown ids: see
    :mod:`keelwork.adapters.stores.label_writes`).

    Args:
        engine: The store.
        paths: The files.
        columns: Column names of the id, the label and the optional time.
        **options: As :func:`ingest_paths` (:class:`IngestOptions`).

    Returns:
        One result per file.

    Raises:
        DataFileError: a file is bad; nothing was written.
        StoreError: the store failed.
    """
    return ingest_paths(engine, paths, LabelsHandler(columns), **options)


def import_predictions(engine: Engine, paths: Sequence[Path],
                       **options: Unpack[IngestOptions]) -> list[FileResult]:
    """Import prediction records (e.g. from ``keel log export``) into the prediction log.

    Args:
        engine: The store.
        paths: The files.
        **options: As :func:`ingest_paths` (:class:`IngestOptions`).

    Returns:
        One result per file.

    Raises:
        DataFileError: a file is bad; nothing was written.
        StoreError: the store failed.
    """
    return ingest_paths(engine, paths, PredictionsHandler(), **options)


def score_files(engine: Engine, paths: Sequence[Path], handler: ScoreHandler,
                **options: Unpack[IngestOptions]) -> list[FileResult]:
    """Score data files with ``handler``'s model into the prediction log.

    Args:
        engine: The store.
        paths: The files.
        handler: A :class:`ScoreHandler` (model, contract, id column, output file).
        **options: As :func:`ingest_paths` (:class:`IngestOptions`).

    Returns:
        One result per file.

    Raises:
        DataFileError: a file is bad; nothing was written.
        StoreError: the store failed.
    """
    return ingest_paths(engine, paths, handler, **options)


__all__ = [
    "BATCH_SIZE",
    "COMMIT_EVERY",
    "ChunkHandler",
    "FileResult",
    "IngestOptions",
    "JobConflict",
    "JobRecord",
    "LabelColumns",
    "LabelResult",
    "LabelStore",
    "LabelsHandler",
    "Ledger",
    "PredictionsHandler",
    "RetryPolicy",
    "ScoreHandler",
    "ScoringModel",
    "SourceFile",
    "StoredLabel",
    "WatchStats",
    "check_sources",
    "import_predictions",
    "ingest_labels",
    "ingest_paths",
    "is_transient",
    "load_scoring_model",
    "run_file",
    "score_files",
    "watch",
]

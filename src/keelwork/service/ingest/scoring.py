"""Batch scoring into the prediction log (kind ``score``).

Scoring (kind ``score``, target ``model:version``): every record of a data file is checked
against keel.yaml's contract (failures become dead letters with their line), valid ones go
through the model in batches (``load_runtime``), and each prediction is written as a
:class:`~keelwork.core.predictions.PredictionRecord` (status ``ok``, ``request_meta``
``{"source": "batch", "file": ..., "row": i}``) in the same transaction as the job's checkpoint.
Prediction ids are derived from each record's idempotency key, so a rerun after a crash
recomputes the same ids and nothing is stored twice. With an explicit id column the id value is
the key, and ``ingest_keys`` remembers which keys a model version has already scored, across
files. A record the model refuses (``InvalidInputError`` / ``PredictionError``) is isolated by
re-running its batch one record at a time and dead-lettered alone.

The optional output file (``--out``) is written at the end (see :mod:`.output`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

from keelwork.adapters.stores.ingest_ledger_store import remember_keys, scored_keys
from keelwork.adapters.stores.prediction_store import existing_ids, insert_records
from keelwork.core.ingest import Checkpoint, ChunkOutcome, DeadLetter, IngestCounts
from keelwork.core.ingest_values import (
    deterministic_prediction_id,
    explicit_key,
    json_safe,
    row_key,
)
from keelwork.core.predictions import PredictionRecord
from keelwork.errors import (
    DataFileError,
    ErrorDetail,
    InvalidId,
    InvalidInputError,
    PredictionError,
)
from keelwork.service.ingest.output import ScoredJob, check_out_path, write_scores
from keelwork.service.models import load_target, resolve_target
from keelwork.types import IngestLedger, IngestSource

if TYPE_CHECKING:
    from keelwork.adapters.stores.registry_store import SqlRegistry
    from keelwork.core.contracts.record import RecordValidator
    from keelwork.core.redaction import Redactor
    from keelwork.spec.model import ResolvedSpec
    from keelwork.types import ModelRuntime

# --------------------------------------------------------------------------- the model
@dataclass
class ScoringModel:
    """A loaded model version to score with."""

    name: str
    version: int
    runtime: ModelRuntime

    @property
    def target(self) -> str:
        """``name:version``: the ledger target of its scoring jobs."""
        return f"{self.name}:{self.version}"


def load_scoring_model(registry: SqlRegistry, ref: str,
                       resolved: ResolvedSpec | None = None) -> ScoringModel:
    """Resolve ``ref`` in the registry and load it, as ``keel serve`` would
    (:func:`keelwork.service.models.resolve_target` says how).

    Args:
        registry: The project's registry.
        ref: ``name``, ``name:3`` or ``name@alias``.
        resolved: The project's keel.yaml, if any.

    Returns:
        The loaded model.

    Raises:
        RegistryError: the reference is malformed or unknown.
        ModelLoadError: the model failed to load.
    """
    target = resolve_target(registry, ref, resolved)
    return ScoringModel(target.name, target.version, load_target(target))


# --------------------------------------------------------------------------- scoring
def contract_read_types(validator: RecordValidator | None,
                        id_column: str | None = None) -> dict[str, Any]:
    """Arrow types to read CSV columns as: the contract's, so one bad cell is one dead letter.

    Without them a CSV column with one stray word is read as text and every row breaks the
    contract; with them that column becomes *mixed* and only the stray cell does. Text fields
    stay text (a ``007`` zip code is not the integer 7); the id column is text.

    Args:
        validator: The compiled contract (None: no types).
        id_column: The id column, if any.

    Returns:
        Column name -> ``pyarrow.DataType``.
    """
    import pyarrow as pa

    types: dict[str, Any] = {}
    if validator is not None:
        arrow = {"float": pa.float64(), "integer": pa.int64(), "boolean": pa.bool_(),
                 "string": pa.string(), "text": pa.string()}
        types = {f.name: arrow[f.type] for f in validator.contract.inputs if f.type in arrow}
    if id_column is not None:
        types[id_column] = pa.string()
    return types


def check_columns(file: IngestSource, validator: RecordValidator | None,
                  id_column: str | None = None) -> None:
    """Refuse a data file whose columns cannot fit the contract, before anything is written.

    Args:
        file: The checked file.
        validator: The compiled contract (None: any columns).
        id_column: The column holding each record's id, if any.

    Raises:
        DataFileError: the id column or a required contract field is missing, or a column is
            not in the contract while ``extra_fields: reject``.
    """
    if id_column is not None and id_column not in file.columns:
        raise DataFileError(f"{file.path}: has no id column '{id_column}' (columns: "
                            f"{', '.join(file.columns)}).", path=str(file.path), line=1,
                            column=id_column)
    if validator is None:
        return
    contract = validator.contract
    data_columns = [c for c in file.columns if c != id_column]
    for spec in contract.inputs:
        if spec.required and spec.name not in data_columns:
            raise DataFileError(
                f"{file.path}: has no column '{spec.name}', which the contract requires "
                f"(columns: {', '.join(data_columns) or 'none'}).", path=str(file.path),
                line=1, column=spec.name)
    if contract.extra_fields == "reject":
        names = set(validator.field_names)
        for column in data_columns:
            if column not in names:
                raise DataFileError(
                    f"{file.path}: the column '{column}' is not in the contract "
                    "(extra_fields: reject); remove it, or name it with --id-column if it "
                    "identifies the records.", path=str(file.path), line=1, column=column)


@dataclass
class _Entry:
    row: int
    key: str
    record: dict[str, Any]
    id_value: Any = None


@dataclass
class _ScoreChunk:
    rows: int
    records: list[tuple[str, PredictionRecord]] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    repeats: int = 0


class ScoreHandler:
    """Scores data files with one model version (a ``ChunkHandler`` of kind ``score``).

    Args:
        model: The loaded model.
        validator: keel.yaml's compiled input contract (None: no validation).
        id_column: A column holding each record's own id (the idempotency key; not passed to
            the model).
        subject_field: Contract field naming the data subject (``contract.subject_field``).
        predict_batch_size: Records per call of the model.
        log_inputs: Store the inputs with each prediction (``storage.log_inputs``).
        out: Write the predictions to this file at the end (.csv, .jsonl or .parquet).
        redactor: keel.yaml's PII policy (:func:`keelwork.service.redaction.build_redactor`),
            applied as the server applies it: to the inputs and outputs stored, to dead
            letters and their problems, and to what the model sees when
            ``pii_redaction.model_sees`` is ``redacted``.
        model_redacted: The model gets the redacted records (``model_sees: redacted``).
    """

    kind = "score"

    def __init__(self, model: ScoringModel, validator: RecordValidator | None = None, *,
                 id_column: str | None = None, subject_field: str | None = None,
                 predict_batch_size: int = 256, log_inputs: bool = True,
                 out: Path | None = None, redactor: Redactor | None = None,
                 model_redacted: bool = False) -> None:
        if predict_batch_size < 1:
            raise ValueError(f"predict_batch_size must be >= 1; got {predict_batch_size}.")
        self.model = model
        self.target = model.target
        self.scope = f"score:{model.target}"
        self.validator = validator
        self.id_column = id_column
        self.subject_field = subject_field
        self.predict_batch_size = predict_batch_size
        self.log_inputs = log_inputs
        self.out = out
        self.redact = redactor if redactor is not None and redactor.active else None
        self.model_redacted = model_redacted and self.redact is not None
        if out is not None:
            check_out_path(out)

    def read_types(self) -> dict[str, Any]:
        """CSV columns as the contract types them (see :func:`contract_read_types`)."""
        return contract_read_types(self.validator, self.id_column)

    def check_columns(self, file: IngestSource) -> None:
        """Refuse a file whose columns cannot fit the contract (see :func:`check_columns`).

        Raises:
            DataFileError: a column is missing or not in the contract.
        """
        check_columns(file, self.validator, self.id_column)

    def begin(self, file: IngestSource, ledger: IngestLedger, checkpoint: Checkpoint) -> None:
        """Nothing to prepare: the model is loaded already."""

    def prepare(self, file: IngestSource, first_row: int, rows: list[dict[str, Any]],
                checkpoint: Checkpoint) -> _ScoreChunk:
        """Validate and predict one chunk (outside the transaction)."""
        chunk = _ScoreChunk(rows=len(rows))
        entries: list[_Entry] = []
        seen: set[str] = set()
        source = str(file.path)
        for offset, raw in enumerate(rows):
            row = first_row + offset
            record = dict(raw)
            id_value = record.pop(self.id_column, None) if self.id_column else None
            details: list[ErrorDetail] = []
            key = row_key(file.sha256, row)
            if self.id_column is not None:
                try:
                    key = explicit_key(id_value)
                except InvalidId as exc:
                    details.append(ErrorDetail(self.id_column, "required" if id_value is None
                                               else exc.rule, json_safe(id_value),
                                               f"The '{self.id_column}' column {exc}."))
            if self.validator is not None:
                details.extend(self.validator.validate(record))
            if details:
                chunk.letters.append(self._letter(source, row, file, details, raw))
            elif key in seen:
                chunk.repeats += 1
            else:
                seen.add(key)
                entries.append(_Entry(row, key, record, id_value))
        for start in range(0, len(entries), self.predict_batch_size):
            self._predict(file, entries[start:start + self.predict_batch_size], checkpoint,
                          chunk)
        return chunk

    def _predict(self, file: IngestSource, batch: list[_Entry], checkpoint: Checkpoint,
                 chunk: _ScoreChunk) -> None:
        started = time.perf_counter()
        try:
            records = [e.record for e in batch]
            if self.model_redacted and self.redact is not None:
                records = self.redact.instances(records)
            outputs = self.model.runtime.predict(records)
        except (InvalidInputError, PredictionError):
            if len(batch) > 1:  # find the records the model refuses; score the others
                for entry in batch:
                    self._predict(file, [entry], checkpoint, chunk)
                return
            entry = batch[0]
            exc = _last_error(self.model.runtime, records[0])
            chunk.letters.append(self._letter(str(file.path), entry.row, file, [exc],
                                              entry.record))
            return
        if len(outputs) != len(batch):
            raise PredictionError(f"The model {self.target} returned {len(outputs)} outputs for "
                                  f"{len(batch)} records.")
        per_record_ms = (time.perf_counter() - started) * 1000.0 / len(batch)
        now = time.time()
        for entry, output in zip(batch, outputs, strict=True):
            meta: dict[str, Any] = {"source": "batch", "file": str(file.path), "row": entry.row,
                                    "file_sha256": file.sha256}
            line = file.line_of(entry.row)
            if line is not None:
                meta["line"] = line
            if self.id_column is not None:
                meta["id"] = json_safe(entry.id_value)
            subject = entry.record.get(self.subject_field) if self.subject_field else None
            pid = deterministic_prediction_id(self.scope, entry.key, checkpoint.epoch_ms)
            chunk.records.append((entry.key, PredictionRecord(
                id=pid, ts=now, model=self.model.name, version=self.model.version,
                subject_id=None if subject is None else str(subject),
                inputs=json_safe(self._stored(entry.record)) if self.log_inputs else None,
                outputs=output if self.redact is None else self.redact.output(output),
                latency_ms=per_record_ms, model_latency_ms=per_record_ms,
                status="ok", request_meta=meta)))

    def _stored(self, record: dict[str, Any]) -> Any:
        return record if self.redact is None else self.redact.instance(record)

    def _letter(self, source: str, row: int, file: IngestSource, details: list[ErrorDetail],
                raw: Any) -> DeadLetter:
        """A dead letter, with keel.yaml's PII policy applied to the row and its problems."""
        if self.redact is not None:
            details = [self.redact.detail(d) if d.got is not None else ErrorDetail(
                d.path, d.rule, None, self.redact.message(d.message, [raw]), d.line)
                for d in details]
            raw = self.redact.instance(raw)
        return DeadLetter.of(source, row, file.line_of(row), details, raw)

    def write(self, conn: Connection, chunk: _ScoreChunk, file: IngestSource) -> ChunkOutcome:
        """Store the chunk's new predictions (and keys) inside the ledger's transaction."""
        fresh = chunk.records
        if self.id_column is not None and fresh:
            done = scored_keys(conn, self.scope, [k for k, _ in fresh])
            fresh = [(key, r) for key, r in fresh if key not in done]
            remember_keys(conn, self.scope, file.sha256,
                          [(key, r.id, r.request_meta["row"]) for key, r in fresh],
                          datetime.now(UTC))
        existing = existing_ids(conn, [r.id for _, r in fresh])
        new = [r for _, r in fresh if r.id not in existing]
        insert_records(conn, new)
        counts = IngestCounts(read=chunk.rows, ingested=len(new),
                              duplicates=chunk.rows - len(new) - len(chunk.letters),
                              dead_lettered=len(chunk.letters))
        return ChunkOutcome(counts, chunk.letters)

    def end(self, file: IngestSource, ledger: IngestLedger, checkpoint: Checkpoint) -> None:
        """Write the output file, when asked, from what the store holds."""
        if self.out is not None:
            job = ScoredJob(self.kind, self.target, self.scope, self.id_column)
            write_scores(ledger, job, file, checkpoint, self.out)


def _last_error(runtime: ModelRuntime, record: dict[str, Any]) -> ErrorDetail:
    """Run one refused record again to get its own error as a detail."""
    try:
        runtime.predict([record])
    except (InvalidInputError, PredictionError) as exc:
        rule = "invalid_input" if isinstance(exc, InvalidInputError) else "prediction"
        return ErrorDetail("", rule, None, exc.message)
    return ErrorDetail("", "prediction", None, "The model refused the record in a batch.")


__all__ = [
    "ScoreHandler",
    "ScoringModel",
    "check_columns",
    "contract_read_types",
    "load_scoring_model",
]

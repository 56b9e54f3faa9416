"""Batch scoring into the prediction log, and importing prediction records from files.

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

The optional output file (``--out``) is written at the end, from the store, so that it is
complete even when the job ran in several attempts: one line per input record (``row``,
``line``, the id column, ``prediction_id``, ``prediction``, ``error`` for dead letters), into a
temporary name renamed into place.

Importing (kind ``predictions``): records as ``keel log export`` writes them (CSV/Parquet with
JSON-text payloads, or JSON lines) are inserted by id; ids already in the log are duplicates.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Column, DateTime, String, Table, select
from sqlalchemy.engine import Connection

from keelwork.adapters.ingest.ledger import (
    ChunkOutcome,
    Ledger,
    SourceFile,
    among,
    batch_records,
    metadata,
)
from keelwork.adapters.stores.prediction_store import (
    META_COLUMNS,
    insert_statements,
    prediction_payloads,
    predictions,
    record_to_row,
)
from keelwork.core.ingest import (
    Checkpoint,
    DeadLetter,
    IngestCounts,
    InvalidId,
    deterministic_prediction_id,
    explicit_key,
    json_safe,
    parse_timestamp,
    row_key,
)
from keelwork.core.predictions import PredictionRecord
from keelwork.errors import (
    DataFileError,
    ErrorDetail,
    InvalidInputError,
    KeelworkError,
    PredictionError,
    StoreError,
)

if TYPE_CHECKING:
    from keelwork.adapters.stores.registry_store import SqlRegistry
    from keelwork.core.contracts.record import RecordValidator
    from keelwork.spec.model import ResolvedSpec
    from keelwork.types import ModelRuntime

ingest_keys = Table(
    "ingest_keys", metadata,
    Column("scope", String(256), primary_key=True),
    Column("key", String(300), primary_key=True),
    Column("prediction_id", String(64), nullable=False),
    Column("file_sha", String(64), nullable=False),
    Column("row_index", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def _existing_ids(conn: Connection, ids: list[str]) -> set[str]:
    out: set[str] = set()
    for clause in among(conn, predictions.c.id, ids):
        out.update(conn.execute(select(predictions.c.id).where(clause)).scalars())
    return out


def _insert_records(conn: Connection, records: list[PredictionRecord]) -> None:
    if not records:
        return
    ins_meta, ins_payload = insert_statements(conn.engine)
    rows = [record_to_row(r) for r in records]
    conn.execute(ins_meta, [{k: r[k] for k in META_COLUMNS} for r in rows])
    conn.execute(ins_payload, [{"id": r["id"], "inputs": r["inputs"], "outputs": r["outputs"],
                                "request_meta": r["request_meta"]} for r in rows])


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
    """Resolve ``ref`` in the registry and load it, as ``keel serve`` would.

    Options recorded with the version win over keel.yaml's (they were verified with it);
    ``allow_unsafe_pickle`` comes from keel.yaml.

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
    from keelwork.adapters.runtimes import load_runtime

    mv = registry.resolve(ref)
    path = registry.artifact_path(mv)
    artifact: Path | str = path if path is not None else (mv.callable_path or mv.artifact_uri)
    options: dict[str, Any] = {}
    unsafe = False
    if resolved is not None and any(m.name == mv.name for m in resolved.spec.models):
        from keelwork.adapters.gateway.wiring import spec_options

        options = spec_options(resolved, mv.name)
        unsafe = resolved.spec.model(mv.name).allow_unsafe_pickle
    options.update(mv.options)
    runtime = load_runtime(mv.runtime, artifact, options, allow_unsafe_pickle=unsafe)
    return ScoringModel(mv.name, mv.version, runtime)


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


def check_columns(file: SourceFile, validator: RecordValidator | None,
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


def check_out_path(out: Path) -> None:
    """Refuse an output file whose format is unknown.

    Raises:
        DataFileError: ``out`` does not end in .csv, .jsonl or .parquet.
    """
    if out.suffix.lower() not in _WRITERS:
        raise DataFileError(f"{out}: the output file must end in "
                            f"{', '.join(sorted(_WRITERS))}; got {out.suffix or 'no suffix'}.",
                            path=str(out))


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
    """

    kind = "score"

    def __init__(self, model: ScoringModel, validator: RecordValidator | None = None, *,
                 id_column: str | None = None, subject_field: str | None = None,
                 predict_batch_size: int = 256, log_inputs: bool = True,
                 out: Path | None = None) -> None:
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
        if out is not None:
            check_out_path(out)

    def read_types(self) -> dict[str, Any]:
        """CSV columns as the contract types them (see :func:`contract_read_types`)."""
        return contract_read_types(self.validator, self.id_column)

    def check_columns(self, file: SourceFile) -> None:
        """Refuse a file whose columns cannot fit the contract (see :func:`check_columns`).

        Raises:
            DataFileError: a column is missing or not in the contract.
        """
        check_columns(file, self.validator, self.id_column)

    def begin(self, file: SourceFile, ledger: Ledger, checkpoint: Checkpoint) -> None:
        """Nothing to prepare: the model is loaded already."""

    def prepare(self, file: SourceFile, first_row: int, rows: list[dict[str, Any]],
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
                chunk.letters.append(DeadLetter.of(source, row, file.line_of(row), details, raw))
            elif key in seen:
                chunk.repeats += 1
            else:
                seen.add(key)
                entries.append(_Entry(row, key, record, id_value))
        for start in range(0, len(entries), self.predict_batch_size):
            self._predict(file, entries[start:start + self.predict_batch_size], checkpoint,
                          chunk)
        return chunk

    def _predict(self, file: SourceFile, batch: list[_Entry], checkpoint: Checkpoint,
                 chunk: _ScoreChunk) -> None:
        started = time.perf_counter()
        try:
            outputs = self.model.runtime.predict([e.record for e in batch])
        except (InvalidInputError, PredictionError):
            if len(batch) > 1:  # find the records the model refuses; score the others
                for entry in batch:
                    self._predict(file, [entry], checkpoint, chunk)
                return
            entry = batch[0]
            exc = _last_error(self.model.runtime, entry.record)
            chunk.letters.append(DeadLetter.of(str(file.path), entry.row,
                                               file.line_of(entry.row), [exc], entry.record))
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
                inputs=json_safe(entry.record) if self.log_inputs else None,
                outputs=output, latency_ms=per_record_ms, model_latency_ms=per_record_ms,
                status="ok", request_meta=meta)))

    def write(self, conn: Connection, chunk: _ScoreChunk, file: SourceFile) -> ChunkOutcome:
        """Store the chunk's new predictions (and keys) inside the ledger's transaction."""
        fresh = chunk.records
        if self.id_column is not None and fresh:
            keys = [k for k, _ in fresh]
            done: set[str] = set()
            k = ingest_keys.c
            for clause in among(conn, k.key, keys):
                done.update(conn.execute(select(k.key).where(k.scope == self.scope, clause))
                            .scalars())
            fresh = [(key, r) for key, r in fresh if key not in done]
            now = datetime.now(UTC)
            if fresh:
                conn.execute(ingest_keys.insert(), [
                    {"scope": self.scope, "key": key, "prediction_id": r.id,
                     "file_sha": file.sha256, "row_index": r.request_meta["row"],
                     "created_at": now} for key, r in fresh])
        existing = _existing_ids(conn, [r.id for _, r in fresh])
        new = [r for _, r in fresh if r.id not in existing]
        _insert_records(conn, new)
        counts = IngestCounts(read=chunk.rows, ingested=len(new),
                              duplicates=chunk.rows - len(new) - len(chunk.letters),
                              dead_lettered=len(chunk.letters))
        return ChunkOutcome(counts, chunk.letters)

    def end(self, file: SourceFile, ledger: Ledger, checkpoint: Checkpoint) -> None:
        """Write the output file, when asked, from what the store holds."""
        if self.out is not None:
            write_scores(ledger, self, file, checkpoint, self.out)


def _last_error(runtime: ModelRuntime, record: dict[str, Any]) -> ErrorDetail:
    """Run one refused record again to get its own error as a detail."""
    try:
        runtime.predict([record])
    except (InvalidInputError, PredictionError) as exc:
        rule = "invalid_input" if isinstance(exc, InvalidInputError) else "prediction"
        return ErrorDetail("", rule, None, exc.message)
    return ErrorDetail("", "prediction", None, "The model refused the record in a batch.")


# --------------------------------------------------------------------------- output file
def write_scores(ledger: Ledger, handler: ScoreHandler, file: SourceFile,
                 checkpoint: Checkpoint, out: Path) -> int:
    """Write one line per record of ``file`` with its prediction or its error.

    Args:
        ledger: The ledger (for reading).
        handler: The handler that scored the file.
        file: The scored file.
        checkpoint: Its checkpoint (gives the time part of the prediction ids).
        out: The output file (.csv, .jsonl or .parquet), written as ``out.partial`` first.

    Returns:
        Lines written.

    Raises:
        StoreError: the store failed.
        DataFileError: the output file cannot be written.
    """
    from keelwork.adapters.data.readers import iter_batches

    errors: dict[int, str] = {}
    for letter in ledger.dead_letters(file.sha256, handler.kind, handler.target):
        errors[letter.row] = "; ".join(str(r.get("message") or r.get("rule"))
                                       for r in letter.reasons)
    partial = out.with_name(out.name + ".partial")
    written = 0
    try:
        writer = _WRITERS[out.suffix.lower()](partial, handler.id_column)
        try:
            row0 = 0
            for _start, batch in iter_batches(file.path, batch_size=5000, types=file.types):
                ids: list[Any] = ([r[handler.id_column] for r in batch_records(
                    batch.select([handler.id_column]))] if handler.id_column
                    else [None] * batch.num_rows)
                keys = [_key_of(file, handler, row0 + i, v) for i, v in enumerate(ids)]
                found = _outputs(ledger, handler, checkpoint,
                                 [k for k in keys if k is not None])
                for i, (id_value, key) in enumerate(zip(ids, keys, strict=True)):
                    row = row0 + i
                    error = errors.get(row)
                    pid, output = found.get(key, (None, None)) if key and not error else \
                        (None, None)
                    writer.write({"row": row, "line": file.line_of(row),
                                  "id": json_safe(id_value), "prediction_id": pid,
                                  "prediction": output, "error": error})
                    written += 1
                row0 += batch.num_rows
        finally:
            writer.close()
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise DataFileError(f"{out}: cannot be written: {exc.strerror or exc}.",
                            path=str(out)) from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(out)
    return written


def _key_of(file: SourceFile, handler: ScoreHandler, row: int, id_value: Any) -> str | None:
    if handler.id_column is None:
        return row_key(file.sha256, row)
    try:
        return explicit_key(id_value)
    except ValueError:
        return None


def _outputs(ledger: Ledger, handler: ScoreHandler, checkpoint: Checkpoint,
             keys: list[str]) -> dict[str, tuple[str, Any]]:
    """``key -> (prediction id, output)`` for the keys that have a stored prediction."""
    if not keys:
        return {}

    def work(conn: Connection) -> dict[str, tuple[str, Any]]:
        key_of: dict[str, str] = {}
        if handler.id_column is None:
            key_of = {deterministic_prediction_id(handler.scope, k, checkpoint.epoch_ms): k
                      for k in keys}
        else:
            k = ingest_keys.c
            for clause in among(conn, k.key, sorted(set(keys))):
                key_of.update({pid: key for key, pid in conn.execute(
                    select(k.key, k.prediction_id).where(k.scope == handler.scope, clause))})
        out: dict[str, tuple[str, Any]] = {}
        q = prediction_payloads.c
        for clause in among(conn, q.id, list(key_of)):
            for pid, text in conn.execute(select(q.id, q.outputs).where(clause)):
                out[key_of[pid]] = (pid, json.loads(text))
        return out

    return ledger.transaction("read the scored predictions", work)


def _cell(value: Any) -> Any:
    """A prediction in a CSV cell: scalars as they are, anything else as JSON text."""
    if value is None or isinstance(value, str | int | float | bool):
        return "" if value is None else value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class _CsvScores:
    def __init__(self, path: Path, id_column: str | None) -> None:
        import csv

        self._file = path.open("w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        self._id = id_column
        self._csv.writerow(["row", "line", *([id_column] if id_column else []),
                            "prediction_id", "prediction", "error"])

    def write(self, line: dict[str, Any]) -> None:
        self._csv.writerow([line["row"], _cell(line["line"]),
                            *([_cell(line["id"])] if self._id else []),
                            _cell(line["prediction_id"]), _cell(line["prediction"]),
                            _cell(line["error"])])

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


class _JsonlScores:
    def __init__(self, path: Path, id_column: str | None) -> None:
        self._file = path.open("w", encoding="utf-8")
        self._id = id_column

    def write(self, line: dict[str, Any]) -> None:
        out = {"row": line["row"], "line": line["line"]}
        if self._id:
            out[self._id] = line["id"]
        out.update(prediction_id=line["prediction_id"], prediction=line["prediction"],
                   error=line["error"])
        self._file.write(json.dumps(out, ensure_ascii=False, default=repr) + "\n")

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


class _ParquetScores:
    """Parquet, one row group per 50,000 lines; ``prediction`` as JSON text."""

    def __init__(self, path: Path, id_column: str | None) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        self._id = id_column
        fields = [("row", pa.int64()), ("line", pa.int64())]
        if id_column:
            fields.append((id_column, pa.string()))
        fields += [("prediction_id", pa.string()), ("prediction", pa.string()),
                   ("error", pa.string())]
        self._schema = pa.schema(fields, metadata={"keelwork.kind": "scores",
                                                   "keelwork.json_columns": "prediction"})
        self._writer = pq.ParquetWriter(str(path), self._schema)
        self._rows: list[dict[str, Any]] = []
        self._closed = False

    def write(self, line: dict[str, Any]) -> None:
        row = {"row": line["row"], "line": line["line"], "prediction_id": line["prediction_id"],
               "prediction": None if line["prediction"] is None else
               json.dumps(line["prediction"], separators=(",", ":"), ensure_ascii=False),
               "error": line["error"]}
        if self._id:
            row[self._id] = None if line["id"] is None else str(line["id"])
        self._rows.append(row)
        if len(self._rows) >= 50_000:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            self._writer.write_table(self._pa.Table.from_pylist(self._rows,
                                                                schema=self._schema))
            self._rows = []

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._flush()
            finally:
                self._writer.close()


_WRITERS: dict[str, Any] = {".csv": _CsvScores, ".jsonl": _JsonlScores,
                            ".parquet": _ParquetScores}


# --------------------------------------------------------------------------- importing
#: Columns a prediction-records file must have (``keel log export`` writes them all).
RECORD_COLUMNS = ("id", "ts", "model", "version", "inputs", "outputs", "latency_ms")
_PAYLOADS = ("inputs", "outputs", "request_meta")
_OPTIONAL_TEXT = ("tenant", "subject_id", "guard", "answered_by")


@dataclass
class _ImportChunk:
    rows: int
    records: list[PredictionRecord] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)


class PredictionsHandler:
    """Imports prediction records into the log, by id (a ``ChunkHandler`` of kind
    ``predictions``).

    In CSV and Parquet files the payload columns (inputs, outputs, request_meta) hold JSON text
    and empty optional text cells mean null, as ``keel log export`` writes them; in JSON lines
    they are values.
    """

    kind = "predictions"
    target = ""

    def read_types(self) -> dict[str, Any]:
        """Ids and payload columns as text, as ``keel log export`` writes them."""
        import pyarrow as pa

        return {name: pa.string() for name in ("id", *_PAYLOADS, *_OPTIONAL_TEXT)}

    def check_columns(self, file: SourceFile) -> None:
        """Refuse a file without the record columns.

        Raises:
            DataFileError: a required column is missing.
        """
        for name in RECORD_COLUMNS:
            if name not in file.columns:
                raise DataFileError(
                    f"{file.path}: a prediction-records file must have the columns "
                    f"{', '.join(RECORD_COLUMNS)} (as 'keel log export' writes them); there is "
                    f"no '{name}'.", path=str(file.path), line=1, column=name)

    def begin(self, file: SourceFile, ledger: Ledger, checkpoint: Checkpoint) -> None:
        """Nothing to prepare."""

    def prepare(self, file: SourceFile, first_row: int, rows: list[dict[str, Any]],
                checkpoint: Checkpoint) -> _ImportChunk:
        """Turn rows into records; the ones that do not fit become dead letters."""
        text_payloads = file.path.suffix.lower() not in (".jsonl", ".ndjson", ".json")
        chunk = _ImportChunk(rows=len(rows))
        for offset, raw in enumerate(rows):
            row = first_row + offset
            try:
                chunk.records.append(PredictionRecord.from_dict(
                    _record_dict(raw, text_payloads)))
            except (StoreError, ValueError) as exc:
                message = exc.message if isinstance(exc, KeelworkError) else str(exc)
                chunk.letters.append(DeadLetter.of(str(file.path), row, file.line_of(row), [
                    ErrorDetail("", "prediction_record", None, message)], raw))
        return chunk

    def write(self, conn: Connection, chunk: _ImportChunk, file: SourceFile) -> ChunkOutcome:
        """Insert the records whose ids are not in the log yet."""
        seen: set[str] = _existing_ids(conn, [r.id for r in chunk.records])
        new: list[PredictionRecord] = []
        for record in chunk.records:
            if record.id not in seen:
                seen.add(record.id)
                new.append(record)
        _insert_records(conn, new)
        counts = IngestCounts(read=chunk.rows, ingested=len(new),
                              duplicates=len(chunk.records) - len(new),
                              dead_lettered=len(chunk.letters))
        return ChunkOutcome(counts, chunk.letters)

    def end(self, file: SourceFile, ledger: Ledger, checkpoint: Checkpoint) -> None:
        """Nothing to do at the end."""


def _record_dict(raw: Mapping[str, Any], text_payloads: bool) -> dict[str, Any]:
    data = dict(raw)
    if data.get("ts") is not None:
        data["ts"] = parse_timestamp(data["ts"])
    for name in _PAYLOADS:
        value = data.get(name)
        if text_payloads and isinstance(value, str):
            try:
                data[name] = json.loads(value)
            except ValueError:
                raise ValueError(f"The '{name}' column must hold JSON text; got "
                                 f"{value[:80]!r}.") from None
    if data.get("request_meta") is None:
        data["request_meta"] = {}
    if text_payloads:
        for name in _OPTIONAL_TEXT:
            if data.get(name) == "":
                data[name] = None
    for name in ("version",):
        value = data.get(name)
        if isinstance(value, float) and value.is_integer():
            data[name] = int(value)
    if data.get("status") in (None, ""):
        data.pop("status", None)
    return data


__all__ = [
    "RECORD_COLUMNS",
    "PredictionsHandler",
    "ScoreHandler",
    "ScoringModel",
    "check_columns",
    "check_out_path",
    "contract_read_types",
    "ingest_keys",
    "load_scoring_model",
    "write_scores",
]

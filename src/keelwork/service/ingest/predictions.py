"""Importing prediction records from files (kind ``predictions``), and writing records.

Records as ``keel log export`` writes them (CSV/Parquet with JSON-text payloads and empty cells
for null, or JSON lines with values) are inserted into the prediction log by id; ids already in
the log are duplicates, rows that are not records are dead letters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.engine import Connection

from keelwork.adapters.stores.prediction_store import existing_ids, insert_records
from keelwork.core.ingest import Checkpoint, ChunkOutcome, DeadLetter, IngestCounts
from keelwork.core.ingest_values import parse_timestamp
from keelwork.core.predictions import PredictionRecord
from keelwork.core.redaction import Redactor
from keelwork.errors import DataFileError, ErrorDetail, KeelworkError, StoreError
from keelwork.types import IngestLedger, IngestSource

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

    Args:
        redactor: keel.yaml's PII policy (:func:`keelwork.service.redaction.build_redactor`):
            applied to each record's inputs and outputs before they are stored, as the server
            applies it, and to the rows kept as dead letters (every text scanned).
    """

    kind = "predictions"
    target = ""

    def __init__(self, redactor: Redactor | None = None) -> None:
        self.redact = redactor if redactor is not None and redactor.active else None

    def read_types(self) -> dict[str, Any]:
        """Ids and payload columns as text, as ``keel log export`` writes them."""
        import pyarrow as pa

        return {name: pa.string() for name in ("id", *_PAYLOADS, *_OPTIONAL_TEXT)}

    def check_columns(self, file: IngestSource) -> None:
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

    def begin(self, file: IngestSource, ledger: IngestLedger, checkpoint: Checkpoint) -> None:
        """Nothing to prepare."""

    def prepare(self, file: IngestSource, first_row: int, rows: list[dict[str, Any]],
                checkpoint: Checkpoint) -> _ImportChunk:
        """Turn rows into records; the ones that do not fit become dead letters."""
        text_payloads = file.path.suffix.lower() not in (".jsonl", ".ndjson", ".json")
        chunk = _ImportChunk(rows=len(rows))
        for offset, raw in enumerate(rows):
            row = first_row + offset
            try:
                record = PredictionRecord.from_dict(_record_dict(raw, text_payloads))
            except (StoreError, ValueError) as exc:
                message = exc.message if isinstance(exc, KeelworkError) else str(exc)
                if self.redact is not None:
                    message, raw = (self.redact.message(message),
                                    self.redact.loose(raw, "redact"))
                chunk.letters.append(DeadLetter.of(str(file.path), row, file.line_of(row), [
                    ErrorDetail("", "prediction_record", None, message)], raw))
                continue
            if self.redact is not None:
                record = replace(record, inputs=self.redact.instance(record.inputs),
                                 outputs=self.redact.output(record.outputs))
            chunk.records.append(record)
        return chunk

    def write(self, conn: Connection, chunk: _ImportChunk, file: IngestSource) -> ChunkOutcome:
        """Insert the records whose ids are not in the log yet."""
        seen: set[str] = existing_ids(conn, [r.id for r in chunk.records])
        new: list[PredictionRecord] = []
        for record in chunk.records:
            if record.id not in seen:
                seen.add(record.id)
                new.append(record)
        insert_records(conn, new)
        counts = IngestCounts(read=chunk.rows, ingested=len(new),
                              duplicates=len(chunk.records) - len(new),
                              dead_lettered=len(chunk.letters))
        return ChunkOutcome(counts, chunk.letters)

    def end(self, file: IngestSource, ledger: IngestLedger, checkpoint: Checkpoint) -> None:
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


__all__ = ["RECORD_COLUMNS", "PredictionsHandler"]

"""Prediction-log exports: Parquet and CSV files written in batches (constant memory).

Payload columns (inputs, outputs, request metadata, labels) hold JSON text; ``ts`` is a
``timestamp[us, UTC]`` in Parquet and ISO 8601 UTC text in CSV. Callers write to a partial file
(:mod:`keelwork.adapters.data.atomic`) and close the sink before renaming it.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from keelwork.errors import MissingExtraError

#: Columns of an export, in order; payload columns hold JSON text.
EXPORT_COLUMNS = ("id", "ts", "model", "version", "tenant", "subject_id", "status", "guard",
                  "answered_by", "latency_ms", "model_latency_ms", "inputs", "outputs",
                  "request_meta")
#: Columns ``with_labels`` adds: the current label (JSON text, as the outputs), when it
#: happened and where it came from; empty for predictions without a label yet.
LABEL_COLUMNS = ("label", "label_ts", "label_source")


class CsvSink:
    """CSV with a header; ``ts`` as ISO 8601 UTC, payloads as JSON text."""

    def __init__(self, path: Path, with_labels: bool = False) -> None:
        self._columns = EXPORT_COLUMNS + (LABEL_COLUMNS if with_labels else ())
        self._file = path.open("w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        self._csv.writerow(self._columns)

    def write(self, rows: list[dict[str, Any]]) -> None:
        self._csv.writerows(
            ["" if r[c] is None else _iso_us(r[c]) if c in ("ts", "label_ts") else r[c]
             for c in self._columns] for r in rows)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def _iso_us(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace(
        "+00:00", "Z")


class ParquetSink:
    """Parquet, one row group per batch; ``ts`` as timestamp[us, UTC], payloads as JSON text."""

    def __init__(self, path: Path, with_labels: bool = False) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise MissingExtraError("pyarrow", "all", "Exporting predictions to Parquet") \
                from None
        self._pa = pa
        text, num = pa.string(), pa.float64()
        self._schema = pa.schema(
            [("id", text), ("ts", pa.timestamp("us", tz="UTC")), ("model", text),
             ("version", pa.int64()), ("tenant", text), ("subject_id", text), ("status", text),
             ("guard", text), ("answered_by", text), ("latency_ms", num),
             ("model_latency_ms", num), ("inputs", text), ("outputs", text),
             ("request_meta", text),
             *([("label", text), ("label_ts", pa.timestamp("us", tz="UTC")),
                ("label_source", text)] if with_labels else [])],
            metadata={"keelwork.kind": "predictions", "keelwork.version": "1",
                      "keelwork.json_columns": "inputs,outputs,request_meta"
                      + (",label" if with_labels else "")})
        self._columns = EXPORT_COLUMNS + (LABEL_COLUMNS if with_labels else ())
        self._writer = pq.ParquetWriter(str(path), self._schema, compression="zstd")
        self._closed = False

    def write(self, rows: list[dict[str, Any]]) -> None:
        pa = self._pa
        columns: dict[str, Any] = {c: [r[c] for r in rows] for c in self._columns}
        for c in ("ts", "label_ts"):
            if c in columns:
                columns[c] = pa.array([None if t is None else round(t * 1_000_000)
                                       for t in columns[c]],
                                      pa.int64()).cast(pa.timestamp("us", tz="UTC"))
        self._writer.write_table(pa.Table.from_pydict(columns, schema=self._schema))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._writer.close()


__all__ = ["EXPORT_COLUMNS", "LABEL_COLUMNS", "CsvSink", "ParquetSink"]

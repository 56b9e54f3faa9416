"""The output file of a scoring job: one line per input record, its prediction or its error.

Written at the end of the job *from the store*, so that it is complete even when the job ran in
several attempts, into ``FILE.partial`` renamed into place. Columns: ``row`` (0-based),
``line`` (for CSV/JSON lines), the id column when there is one, ``prediction_id``,
``prediction`` (in CSV a scalar as is and anything else as JSON text; in Parquet always JSON
text) and ``error`` (the dead letter's reasons).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from keelwork.adapters.ingest.files import SourceFile, batch_records
from keelwork.adapters.ingest.ledger import Ledger, among, ingest_keys
from keelwork.adapters.stores.prediction_store import prediction_payloads
from keelwork.core.ingest import (
    Checkpoint,
    deterministic_prediction_id,
    explicit_key,
    json_safe,
    row_key,
)
from keelwork.errors import DataFileError

if TYPE_CHECKING:
    from keelwork.adapters.ingest.scoring import ScoreHandler


def check_out_path(out: Path) -> None:
    """Refuse an output file whose format is unknown.

    Raises:
        DataFileError: ``out`` does not end in .csv, .jsonl or .parquet.
    """
    if out.suffix.lower() not in _WRITERS:
        raise DataFileError(f"{out}: the output file must end in "
                            f"{', '.join(sorted(_WRITERS))}; got {out.suffix or 'no suffix'}.",
                            path=str(out))


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


__all__ = ["check_out_path", "write_scores"]

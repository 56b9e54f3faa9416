"""The output file of a scoring job: one line per input record, its prediction or its error.

Written at the end of the job *from the store*, so that it is complete even when the job ran in
several attempts, into ``FILE.partial`` renamed into place. Columns: ``row`` (0-based),
``line`` (for CSV/JSON lines), the id column when there is one, ``prediction_id``,
``prediction`` and ``error`` (the dead letter's reasons).

Types are kept: the id column has its type in the input (an integer id stays an integer), and
``prediction`` has the model's: in Parquet a column of strings, integers, floats or booleans
when the answers are scalars of one kind (integers and floats together make floats), JSON
text only for structured answers (lists, objects; the file's metadata names such columns in
``keelwork.json_columns``); in CSV a scalar as is and anything else as JSON text; in JSON lines
the value itself.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from keelwork.adapters.stores.ingest_ledger_store import scored_keys
from keelwork.adapters.stores.prediction_store import prediction_outputs
from keelwork.core.ingest import Checkpoint
from keelwork.core.ingest_values import (
    deterministic_prediction_id,
    explicit_key,
    json_safe,
    row_key,
)
from keelwork.errors import DataFileError
from keelwork.service.ingest.files import batch_records
from keelwork.types import IngestLedger, IngestSource


@dataclass(frozen=True, slots=True)
class ScoredJob:
    """What the output file needs to know of the scoring job that wrote the predictions.

    Attributes:
        kind: The job kind in the ledger (``score``).
        target: ``name:version`` of the scoring model (the ledger target).
        scope: The idempotency scope of its prediction ids and keys.
        id_column: The input's id column, if any.
    """

    kind: str
    target: str
    scope: str
    id_column: str | None = None


def check_out_path(out: Path) -> None:
    """Refuse an output file whose format is unknown.

    Raises:
        DataFileError: ``out`` does not end in .csv, .jsonl or .parquet.
    """
    if out.suffix.lower() not in _WRITERS:
        raise DataFileError(f"{out}: the output file must end in "
                            f"{', '.join(sorted(_WRITERS))}; got {out.suffix or 'no suffix'}.",
                            path=str(out))


def write_scores(ledger: IngestLedger, job: ScoredJob, file: IngestSource,
                 checkpoint: Checkpoint, out: Path) -> int:
    """Write one line per record of ``file`` with its prediction or its error.

    Args:
        ledger: The ledger (for reading).
        job: The scoring job that scored the file.
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
    for letter in ledger.dead_letters(file.sha256, job.kind, job.target):
        errors[letter.row] = "; ".join(str(r.get("message") or r.get("rule"))
                                       for r in letter.reasons)
    partial = out.with_name(out.name + ".partial")
    written = 0
    try:
        writer = _WRITERS[out.suffix.lower()](partial, job.id_column)
        try:
            row0 = 0
            as_int = False
            for _start, batch in iter_batches(file.path, batch_size=5000, types=file.types):
                ids: list[Any] = ([r[job.id_column] for r in batch_records(
                    batch.select([job.id_column]))] if job.id_column
                    else [None] * batch.num_rows)
                if job.id_column and row0 == 0:
                    read_as = batch.schema.field(job.id_column).type
                    writer.id_type = _id_type_of(file, job.id_column, read_as)
                    as_int = writer.id_type != read_as  # a CSV column of integers
                keys = [_key_of(file, job, row0 + i, v) for i, v in enumerate(ids)]
                if as_int:  # keys from the text (as scoring made them), output as numbers
                    ids = [int(v) if isinstance(v, str) else v for v in ids]
                found = _outputs(ledger, job, checkpoint,
                                 [k for k in keys if k is not None])
                for i, (id_value, key) in enumerate(zip(ids, keys, strict=True)):
                    row = row0 + i
                    error = errors.get(row)
                    pid, output = found.get(key, (None, None)) if key and not error else \
                        (None, None)
                    writer.write({"row": row, "line": file.line_of(row),
                                  "id": json_safe(id_value), "raw_id": id_value,
                                  "prediction_id": pid,
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


_INTEGER = re.compile(r"-?(0|[1-9][0-9]{0,17})")


def _id_type_of(file: IngestSource, column: str, read_as: Any) -> Any:
    """The id column's type in the input: Parquet/JSON lines say it; a CSV column (read as
    text, so that keys compare as text) is integers when every value is one, written
    canonically (``007`` stays text)."""
    import pyarrow as pa

    from keelwork.adapters.data.readers import iter_batches

    if column not in file.types or not pa.types.is_string(read_as):
        return read_as
    for _start, batch in iter_batches(file.path, batch_size=50_000, types=file.types):
        for v in batch.column(column).to_pylist():
            if v is not None and not _INTEGER.fullmatch(v):
                return read_as
    return pa.int64()


def _key_of(file: IngestSource, job: ScoredJob, row: int, id_value: Any) -> str | None:
    if job.id_column is None:
        return row_key(file.sha256, row)
    try:
        return explicit_key(id_value)
    except ValueError:
        return None


def _outputs(ledger: IngestLedger, job: ScoredJob, checkpoint: Checkpoint,
             keys: list[str]) -> dict[str, tuple[str, Any]]:
    """``key -> (prediction id, output)`` for the keys that have a stored prediction."""
    if not keys:
        return {}

    def work(conn: Connection) -> dict[str, tuple[str, Any]]:
        key_of: dict[str, str] = {}
        if job.id_column is None:
            key_of = {deterministic_prediction_id(job.scope, k, checkpoint.epoch_ms): k
                      for k in keys}
        else:
            key_of = {pid: key for key, pid in
                      scored_keys(conn, job.scope, sorted(set(keys))).items()}
        return {key_of[pid]: (pid, output)
                for pid, output in prediction_outputs(conn, list(key_of)).items()}

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

    id_type: Any = None  # CSV cells are text: only Parquet keeps the id's type

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

    id_type: Any = None  # JSON keeps each value's own type

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
    """Parquet, one row group per 50,000 lines, typed as the module docstring says.

    The schema is fixed by the first row group: the id column's type comes from the input
    file, the prediction's from the first 50,000 answers. A later answer that does not fit it
    (a model answering text after numbers) is written as null with the reason in ``error``;
    its prediction id still finds it in the prediction log.
    """

    def __init__(self, path: Path, id_column: str | None) -> None:
        self._path = path
        self._id = id_column
        self.id_type: Any = None
        self._schema: Any = None
        self._json = False
        self._writer: Any = None
        self._rows: list[dict[str, Any]] = []
        self._closed = False

    def write(self, line: dict[str, Any]) -> None:
        row = {"row": line["row"], "line": line["line"], "prediction_id": line["prediction_id"],
               "prediction": line["prediction"], "error": line["error"]}
        if self._id:  # as read, in the input's type (not the JSON-safe form)
            row[self._id] = line.get("raw_id", line["id"])
        self._rows.append(row)
        if len(self._rows) >= 50_000:
            self._flush()

    def _open(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        kind = _scalar_type([r["prediction"] for r in self._rows])
        self._json = kind is None
        fields = [("row", pa.int64()), ("line", pa.int64())]
        if self._id:
            fields.append((self._id, self.id_type if self.id_type is not None
                           else _id_type([r[self._id] for r in self._rows])))
        fields += [("prediction_id", pa.string()),
                   ("prediction", pa.string() if kind is None else kind),
                   ("error", pa.string())]
        meta = {"keelwork.kind": "scores"}
        if self._json:
            meta["keelwork.json_columns"] = "prediction"
        self._schema = pa.schema(fields, metadata=meta)
        self._writer = pq.ParquetWriter(str(self._path), self._schema)

    def _flush(self) -> None:
        import pyarrow as pa

        if self._writer is None:
            self._open()
        if not self._rows:
            return
        want = self._schema.field("prediction").type
        for r in self._rows:
            value = r["prediction"]
            if value is None:
                continue
            if self._json:
                r["prediction"] = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            elif not _fits(value, want):
                r["prediction"] = None
                note = (f"the prediction {value!r} does not fit the output's column type "
                        f"({want}); read it from the prediction log by its prediction_id")
                r["error"] = f"{r['error']}; {note}" if r["error"] else note
        self._writer.write_table(pa.Table.from_pylist(self._rows, schema=self._schema))
        self._rows = []

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._flush()
            finally:
                if self._writer is not None:
                    self._writer.close()


def _scalar_type(values: list[Any]) -> Any:
    """The Arrow type of scalar answers of one kind; None for structured or mixed ones."""
    import pyarrow as pa

    kinds = {bool if isinstance(v, bool) else int if isinstance(v, int) else
             float if isinstance(v, float) else str if isinstance(v, str) else object
             for v in values if v is not None}
    if not kinds:
        return pa.string()
    if kinds == {bool}:
        return pa.bool_()
    if kinds == {int}:
        return pa.int64()
    if kinds <= {int, float}:
        return pa.float64()
    if kinds == {str}:
        return pa.string()
    return None


def _id_type(values: list[Any]) -> Any:
    kind = _scalar_type(values)
    import pyarrow as pa

    return pa.string() if kind is None else kind


def _fits(value: Any, arrow_type: Any) -> bool:
    import pyarrow as pa

    if pa.types.is_boolean(arrow_type):
        return isinstance(value, bool)
    if pa.types.is_integer(arrow_type):
        return isinstance(value, int) and not isinstance(value, bool)
    if pa.types.is_floating(arrow_type):
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


_WRITERS: dict[str, Any] = {".csv": _CsvScores, ".jsonl": _JsonlScores,
                            ".parquet": _ParquetScores}


__all__ = ["ScoredJob", "check_out_path", "write_scores"]

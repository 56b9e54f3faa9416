"""A data file as ingestion sees it, and the loop that ingests one from its checkpoint on.

:func:`check_source` hashes a file and reads it through once (so a malformed file fails before
anything is written) and :func:`run_file` ingests it chunk by chunk, each chunk in one
transaction with its checkpoint (see :mod:`keelwork.adapters.stores.ingest_ledger_store`). What
a chunk *means* -- labels, scored records, imported predictions -- is the business of a
:class:`keelwork.types.ChunkHandler`.

Rows are read with :func:`keelwork.adapters.data.readers.iter_batches`; values of *mixed*
columns keep their own type (:func:`batch_records`). A JSON-lines record keeps the keys its line
had: a key the line leaves out is absent from the row, not null (:class:`LineKeys`), so the
contract tells an omitted field (``required``) from a ``null`` one (``nullable``), as it does
for a request; in CSV, TSV and Parquet an empty cell is null. Line numbers, for dead letters,
are counted only when a file has some (:meth:`SourceFile.line_of`).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, Any

from sqlalchemy.engine import Connection

from keelwork.core.ingest import ChunkOutcome, DeadLetter, IngestCounts, ProgressEvent
from keelwork.errors import DataFileError
from keelwork.types import ChunkHandler, IngestLedger


@dataclass
class SourceFile:
    """A data file checked end to end before anything of it is written.

    Attributes:
        path: The file, as given.
        sha256: sha256 of its bytes: its identity in the ledger.
        rows: How many records it holds.
        columns: Its column names (of the first batch).
        types: Arrow types the CSV/TSV columns were read as (see ``iter_batches``); every
            later read of the file uses them too.
    """

    path: Path
    sha256: str
    rows: int
    columns: tuple[str, ...]
    types: Mapping[str, Any] = field(default_factory=dict)
    _lines: list[int] | None = field(default=None, repr=False)
    _lines_done: bool = field(default=False, repr=False)

    def line_of(self, row: int) -> int | None:
        """The 1-based line where record ``row`` (0-based) starts; None without lines (Parquet).

        Computed on first use (only files with dead letters pay for it).
        """
        if not self._lines_done:
            self._lines_done = True
            self._lines = _record_lines(self.path)
        if self._lines is None or not 0 <= row < len(self._lines):
            return None
        return self._lines[row]


def _record_lines(path: Path) -> list[int] | None:
    """Start line of each record of a CSV / TSV / JSON-lines file, as the readers count them.

    Blank lines hold no record; a quoted CSV value may span lines.
    """
    from keelwork.adapters.data.readers import detect_format

    try:
        fmt = detect_format(path)
    except DataFileError:
        return None
    if fmt == "parquet":
        return None
    try:
        with _open_text(path) as fh:
            if fmt == "jsonl":
                return [n for n, text in enumerate(fh, 1) if text.strip()]
            reader = csv.reader(fh, delimiter="\t" if fmt == "tsv" else ",")
            starts: list[int] = []
            end = 0
            for record in reader:
                start, end = end + 1, reader.line_num
                if record:
                    starts.append(start)
            return starts[1:]  # the header is not a record
    except (OSError, EOFError, csv.Error):
        return None


def _open_text(path: Path) -> IO[str]:
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="replace", newline="")
    return path.open(encoding="utf-8-sig", errors="replace", newline="")


def batch_records(batch: Any) -> list[dict[str, Any]]:
    """The rows of a record batch as dicts of Python values.

    Values of *mixed* columns (a JSON-lines column whose values have different types) keep
    their own type: arrays and objects, which such a column holds as JSON text, are decoded.

    Args:
        batch: A ``pyarrow.RecordBatch`` from :func:`keelwork.adapters.data.readers.iter_batches`.

    Returns:
        One dict per row, keyed by column name.
    """
    import pyarrow as pa

    records: list[dict[str, Any]] = batch.to_pylist()
    for i, f in enumerate(batch.schema):
        if not pa.types.is_union(f.type):
            continue
        json_codes = [f.type.type_codes[k] for k in range(f.type.num_fields)
                      if f.type.field(k).name == "json"]
        if not json_codes:
            continue
        codes = batch.column(i).type_codes.to_pylist()
        for row, code in enumerate(codes):
            value = records[row][f.name]
            if code in json_codes and isinstance(value, str):
                records[row][f.name] = json.loads(value)
    return records


class LineKeys:
    """Which keys each record of a JSON-lines file really has, read from its lines on demand.

    Arrow gives every row every column of the file, so a key that a line leaves out comes back
    as null. :meth:`drop_absent` takes such keys out of the rows again. Only rows holding a null
    are looked up, and the file's lines are read (once, forwards) only when there is one, so a
    file without nulls costs nothing.

    Args:
        path: The JSON-lines file (optionally gzipped).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lines: Iterator[str] | None = None
        self._at = 0  # the record the next line read belongs to

    def drop_absent(self, records: list[dict[str, Any]], first: int) -> None:
        """Remove, in place, the null values whose key the record's line does not have.

        Args:
            records: Consecutive rows of the file, as :func:`batch_records` gives them.
            first: The 0-based record index of ``records[0]`` in the file; calls go forwards.
        """
        for i, record in enumerate(records):
            if None not in record.values():
                continue
            keys = self._keys(first + i)
            if keys is not None:
                for name in [k for k, v in record.items() if v is None and k not in keys]:
                    del record[name]

    def _keys(self, row: int) -> set[str] | None:
        if self._lines is None:
            self._lines = _record_texts(self.path)
        if row < self._at:  # pragma: no cover - run_file only goes forwards
            return None
        text = next(islice(self._lines, row - self._at, None), None)
        self._at = row + 1
        if text is None:
            return None
        try:
            value = json.loads(text)
        except ValueError:  # the reader parsed it; a changed file is caught by run_file
            return None
        return set(value) if isinstance(value, dict) else None


def _record_texts(path: Path) -> Iterator[str]:
    """The text of each record of a JSON-lines file: its non-blank lines, as the reader splits
    them (at line feeds only)."""
    from keelwork.adapters.data.files import open_binary

    with open_binary(path) as fh:
        for number, raw in enumerate(fh):
            text = raw.decode("utf-8", errors="replace")
            if number == 0:
                text = text.removeprefix("\ufeff")
            if text.strip():
                yield text


def hash_file(path: Path) -> str:
    """sha256 (hex) of a file's bytes, read in 1 MiB blocks.

    Raises:
        DataFileError: the file is missing, a directory or unreadable.
    """
    if path.is_dir():
        raise DataFileError(f"{path}: is a directory; give the data files themselves (or use "
                            "--watch DIR).", path=str(path))
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    except FileNotFoundError:
        raise DataFileError(f"{path}: no such file.", path=str(path)) from None
    except OSError as exc:
        raise DataFileError(f"{path}: cannot be read: {exc.strerror or exc}.",
                            path=str(path)) from None
    return digest.hexdigest()


def check_source(path: Path, batch_size: int = 65536,
                 types: Mapping[str, Any] | None = None) -> SourceFile:
    """Hash a data file and read it through once, so that a malformed one fails up front.

    Args:
        path: A CSV, TSV, JSON-lines or Parquet file.
        batch_size: Records per batch while reading.
        types: Arrow types for named CSV/TSV columns (see ``iter_batches``).

    Returns:
        The checked file.

    Raises:
        DataFileError: the file is unreadable, malformed (file, line and column named) or holds
            no records.
    """
    from keelwork.adapters.data.readers import iter_batches

    sha = hash_file(path)
    rows = 0
    columns: tuple[str, ...] | None = None
    for _first, batch in iter_batches(path, batch_size=batch_size, types=types):
        if columns is None:
            columns = tuple(batch.schema.names)
        rows += batch.num_rows
    if rows == 0:
        raise DataFileError(f"{path}: holds no records (an empty file, or a header without "
                            "rows); nothing to ingest.", path=str(path))
    return SourceFile(path=path, sha256=sha, rows=rows, columns=columns or (),
                      types=dict(types or {}))


#: ``progress(event)`` after every committed chunk.
ProgressHook = Callable[[ProgressEvent], None]
EXAMPLES = 5


@dataclass(slots=True)
class FileResult:
    """The outcome of ingesting one file in this run.

    Attributes:
        path: The file.
        kind: What it was ingested as.
        target: What it was ingested into.
        file_sha: sha256 of its bytes.
        status: ``ingested``, ``resumed`` (an earlier run had committed ``resumed_from`` rows)
            or ``already_ingested`` (an earlier run finished it: nothing new).
        rows: Records in the file.
        resumed_from: Rows committed before this run.
        counts: What this run did.
        unknown_ids: The first unknown prediction ids (labels).
        examples: The first dead letters of this run.
    """

    path: Path
    kind: str
    target: str
    file_sha: str
    status: str
    rows: int
    resumed_from: int = 0
    counts: IngestCounts = field(default_factory=IngestCounts)
    unknown_ids: list[str] = field(default_factory=list)
    examples: list[DeadLetter] = field(default_factory=list)


def run_file(ledger: IngestLedger, handler: ChunkHandler, file: SourceFile, *,
             batch_size: int = 65536, commit_every: int = 1000,
             progress: ProgressHook | None = None) -> FileResult:
    """Ingest one checked file from its checkpoint on, one transaction per chunk.

    Args:
        ledger: The ledger (its schema must exist).
        handler: The kind of ingestion.
        file: The file, from :func:`check_source`.
        batch_size: Records per read batch.
        commit_every: Records per transaction.
        progress: Called after every committed chunk.

    Returns:
        What this run did.

    Raises:
        StoreError: the store failed (committed chunks stay; a rerun resumes after them).
        JobConflict: another process is ingesting the same file.
        KeelworkError: the handler refused something (a model that cannot load...).
    """
    from keelwork.adapters.data.readers import iter_batches

    if commit_every < 1:
        raise ValueError(f"commit_every must be >= 1; got {commit_every}.")
    kind, target, name = handler.kind, handler.target, str(file.path)
    cp = ledger.start_job(file.sha256, kind, target, name, file.rows)
    result = FileResult(path=file.path, kind=kind, target=target, file_sha=file.sha256,
                        status="ingested", rows=file.rows, resumed_from=cp.committed_rows)
    if cp.done:
        result.status = "already_ingested"
        result.counts = IngestCounts(read=file.rows, duplicates=file.rows)
        handler.end(file, ledger, cp)
        return result
    if cp.committed_rows:
        result.status = "resumed"
    report = progress or (lambda _event: None)
    report(ProgressEvent(name, kind, cp.committed_rows, file.rows, result.counts))
    handler.begin(file, ledger, cp)
    keys = LineKeys(file.path) if _is_jsonl(file.path) else None
    first = 0
    for _start, batch in iter_batches(file.path, batch_size=batch_size, types=file.types):
        n = batch.num_rows
        skip = cp.skip_in(first, n)
        if skip < n:
            records = batch_records(batch.slice(skip) if skip else batch)
            if keys is not None:
                keys.drop_absent(records, first + skip)
            for offset in range(0, len(records), commit_every):
                rows = records[offset:offset + commit_every]
                row0 = first + skip + offset
                chunk = handler.prepare(file, row0, rows, cp)
                what = f"commit rows {row0}-{row0 + len(rows) - 1} of {name}"
                outcome: list[ChunkOutcome] = []

                def write(conn: Connection, chunk: Any = chunk,
                          outcome: list[ChunkOutcome] = outcome,
                          ) -> tuple[IngestCounts, Sequence[DeadLetter]]:
                    done = handler.write(conn, chunk, file)
                    outcome[:] = [done]
                    return done.counts, done.dead_letters

                cp, counts = ledger.commit(cp, len(rows), what, write)
                result.counts.add(counts)
                _collect(result, outcome[0])
                report(ProgressEvent(name, kind, cp.committed_rows, file.rows, result.counts))
        first += n
    if cp.committed_rows != file.rows:
        raise DataFileError(f"{name}: changed while it was being ingested ({file.rows} records "
                            f"when checked, {cp.committed_rows} now); ingest it again.",
                            path=name)
    cp = ledger.finish(cp)
    handler.end(file, ledger, cp)
    return result


def _is_jsonl(path: Path) -> bool:
    from keelwork.adapters.data.readers import detect_format

    try:
        return detect_format(path) == "jsonl"
    except DataFileError:  # pragma: no cover - check_source read it already
        return False


def _collect(result: FileResult, outcome: ChunkOutcome) -> None:
    room = EXAMPLES - len(result.examples)
    if room > 0:
        result.examples.extend(outcome.dead_letters[:room])
    room = 20 - len(result.unknown_ids)
    if room > 0:
        result.unknown_ids.extend(list(outcome.unknown_ids)[:room])


__all__ = [
    "EXAMPLES",
    "FileResult",
    "LineKeys",
    "ProgressHook",
    "SourceFile",
    "batch_records",
    "check_source",
    "hash_file",
    "run_file",
]

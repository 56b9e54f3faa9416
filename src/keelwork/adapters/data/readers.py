"""Reading data files as Arrow: CSV, TSV, Parquet and JSON lines, optionally gzip-compressed.

The format comes from the suffix (:func:`detect_format`): ``.csv``, ``.tsv``, ``.parquet`` /
``.pq``, ``.jsonl`` / ``.ndjson``, each optionally followed by ``.gz`` (not Parquet, which
compresses inside). :func:`read_table` reads a whole file; :func:`iter_batches` streams it.

Promises:

* every batch of one file has the same schema (CSV and JSON lines are read twice when they are
  larger than one block of 16 MiB: once to settle the column types, once to yield the rows);
* a malformed file raises :class:`~keelwork.errors.DataFileError` naming the file, the physical
  line (1-based, the header is line 1) and the column where that can be known: a CSV line with
  too many or too few fields, bytes that are not UTF-8 (with their byte offset), a line that is
  not a JSON object, an empty file ("no header") or a file without rows ("no rows");
* a CSV column that mixes numbers and text is read as text, as CSV means it; a JSON-lines column
  whose values do not share one type becomes a *mixed* column
  (:mod:`keelwork.core.contracts.columns`) that keeps each value's type, so the contract can judge
  every value;
* CSV: empty cells and ``NA``, ``N/A``, ``NULL``, ``null``, ``#N/A``, ``n/a`` are null (a
  quoted ``""`` is an empty string); ``NaN`` / ``inf`` are the float values; dates and times stay
  text (keel.yaml has no date type). ``types`` reads named columns as text, then converts them to
  the given Arrow type; a cell that does not convert ("abc" in an int64 column) makes the whole
  column mixed, in every batch.

The formats live in :mod:`~keelwork.adapters.data.delimited` (CSV, TSV),
:mod:`~keelwork.adapters.data.jsonl` and :mod:`~keelwork.adapters.data.files` (suffixes, errors).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from keelwork.adapters.data.delimited import CsvPlan, csv_header
from keelwork.adapters.data.files import Format, check_file, detect_format, wrap_error
from keelwork.adapters.data.jsonl import jsonl_tables
from keelwork.errors import DataFileError


def iter_batches(path: str | Path, *, batch_size: int = 65536,
                 types: Mapping[str, Any] | None = None,
                 dictionary: Sequence[str] = ()) -> Iterator[tuple[int, Any]]:
    """Stream a data file as record batches of at most ``batch_size`` rows.

    Args:
        path: A CSV, TSV, Parquet or JSON-lines file (see :func:`detect_format`).
        batch_size: The most rows in one batch.
        types: CSV/TSV only: Arrow types for named columns, read as text then converted (a cell
            that does not convert makes the column mixed). Ignored for typed formats.
        dictionary: Parquet only: text columns to read as Arrow dictionaries, as Parquet
            usually stores them (no decoding, and a category check per distinct value).

    Yields:
        ``(first_row, batch)``: the 0-based index in the file of the batch's first row, and a
        ``pyarrow.RecordBatch``; every batch has the same schema.

    Raises:
        DataFileError: The file is missing, unreadable, empty, has no rows or is malformed.
    """
    import pyarrow as pa

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}.")
    p = Path(path)
    fmt = detect_format(p)
    check_file(p)
    start = 0
    for table in _tables(p, fmt, batch_size, dict(types or {}), None, dictionary):
        for batch in pa.Table.from_batches([table] if isinstance(table, pa.RecordBatch)
                                           else table.to_batches()).to_batches(batch_size):
            if batch.num_rows:
                yield start, batch
                start += batch.num_rows


def _tables(path: Path, fmt: Format, batch_size: int, types: Mapping[str, Any],
            include: Sequence[str] | None, dictionary: Sequence[str] = ()) -> Iterator[Any]:
    """Tables or record batches of the file, in order, with one schema."""
    import pyarrow as pa

    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(str(path))
            if dictionary:
                schema = pf.schema_arrow
                text = [n for n in dict.fromkeys(dictionary) if n in schema.names and (
                    pa.types.is_string(schema.field(n).type)
                    or pa.types.is_large_string(schema.field(n).type))]
                if text:  # the footer already parsed is reused
                    pf = pq.ParquetFile(str(path), metadata=pf.metadata, read_dictionary=text)
            if pf.metadata.num_rows == 0:
                raise DataFileError(f"{path}: holds no rows.", path=str(path))
            yield from pf.iter_batches(batch_size=batch_size, columns=include)
        except (pa.ArrowInvalid, OSError) as exc:
            raise wrap_error(path, exc, "Parquet") from None
        return
    if fmt == "jsonl":
        yield from jsonl_tables(path, batch_size)
        return
    plan = CsvPlan(path, fmt, types, include)
    if plan.rows == 0:
        raise DataFileError(f"{path}: has a header but no rows.", path=str(path))
    yield from plan.blocks()


def read_table(path: str | Path, *, columns: Sequence[str] | None = None,
               types: Mapping[str, Any] | None = None) -> Any:
    """Read a whole data file.

    Args:
        path: A CSV, TSV, Parquet or JSON-lines file (see :func:`detect_format`).
        columns: Read only these columns, in this order.
        types: CSV/TSV only: see :func:`iter_batches`.

    Returns:
        A ``pyarrow.Table``.

    Raises:
        DataFileError: The file is missing, unreadable, empty, has no rows or is malformed, or
            lacks one of ``columns``.
    """
    import pyarrow as pa

    p = Path(path)
    fmt = detect_format(p)
    check_file(p)
    if columns is not None:
        names = read_header(p)
        missing = [c for c in columns if c not in names]
        if missing:
            raise DataFileError(f"{p}: has no column '{missing[0]}' (columns: "
                                f"{', '.join(names)}).", path=str(p), column=missing[0])
    include = list(columns) if columns is not None and fmt in ("csv", "tsv", "parquet") else None
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(str(p), columns=include)
        except (pa.ArrowInvalid, OSError) as exc:
            raise wrap_error(p, exc, "Parquet") from None
        if table.num_rows == 0:
            raise DataFileError(f"{p}: holds no rows.", path=str(p))
        return table
    parts = list(_tables(p, fmt, 1 << 20, dict(types or {}), include))
    table = pa.Table.from_batches([b for part in parts for b in (
        [part] if isinstance(part, pa.RecordBatch) else part.to_batches())])
    return table.select(list(columns)) if columns is not None else table


def read_header(path: str | Path) -> list[str]:
    """The column names of a data file (for JSON lines: the keys, in first-seen order).

    Args:
        path: A data file.

    Returns:
        The names.

    Raises:
        DataFileError: As :func:`iter_batches`.
    """
    import pyarrow as pa

    p = Path(path)
    fmt = detect_format(p)
    check_file(p)
    if fmt in ("csv", "tsv"):
        return csv_header(p, fmt)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(str(p)).names)
        except (pa.ArrowInvalid, OSError) as exc:
            raise wrap_error(p, exc, "Parquet") from None
    names: dict[str, None] = {}
    for table in jsonl_tables(p, 65536):
        names.update(dict.fromkeys(table.column_names))
        break
    return list(names)


def row_count(path: str | Path) -> int | None:
    """The number of rows when the file says it without being read (Parquet), else None."""
    p = Path(path)
    if detect_format(p) != "parquet":
        return None
    import pyarrow.parquet as pq

    try:
        return int(pq.read_metadata(str(p)).num_rows)
    except Exception:  # the real read reports the problem
        return None


__all__ = ["Format", "detect_format", "iter_batches", "read_header", "read_table", "row_count"]

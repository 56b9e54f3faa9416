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
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import IO, Any, Final, Literal, cast

from keelwork.core.contracts.columns import mixed_array, mixed_type, table_from_records
from keelwork.errors import DataFileError

Format = Literal["csv", "tsv", "parquet", "jsonl"]
_SUFFIXES: Final[dict[str, Format]] = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet",
                                       ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_BLOCK: Final = 16 << 20
_NULLS: Final = ["", "#N/A", "#N/A N/A", "#NA", "N/A", "NA", "NULL", "n/a", "null"]
_TRUE: Final = ["true", "True", "TRUE"]
_FALSE: Final = ["false", "False", "FALSE"]
_INT_RE: Final = r"^[+-]?[0-9]+$"
_FLOAT_RE: Final = (r"^[+-]?(?:[0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?"
                    r"|nan|NaN|NAN|inf|Inf|INF|infinity|Infinity|INFINITY)$")
_ENCODING_HINT: Final = ("save the file as UTF-8, e.g. `iconv -f latin1 -t utf-8 IN > OUT` for a "
                         "Latin-1 file")


# --------------------------------------------------------------------------- formats, files
def detect_format(path: str | Path) -> Format:
    """The format of a data file, from its suffix.

    Args:
        path: The file (it need not exist).

    Returns:
        ``"csv"``, ``"tsv"``, ``"parquet"`` or ``"jsonl"``.

    Raises:
        DataFileError: The suffix is not one of the known ones.
    """
    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    suffix = (suffixes[-2] if len(suffixes) > 1 else "") if gz else (suffixes[-1] if suffixes
                                                                      else "")
    fmt = _SUFFIXES.get(suffix)
    if fmt is None or (gz and fmt == "parquet"):
        got = "".join(p.suffixes[-2:] if gz else p.suffixes[-1:]) or "no suffix"
        raise DataFileError(
            f"{p}: the format must be one of .csv, .tsv, .parquet, .pq, .jsonl, .ndjson (the "
            f"text ones optionally .gz); got {got}.", path=str(p))
    return fmt


def _check_file(path: Path) -> None:
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise DataFileError(f"{path}: is a directory, not a data file.", path=str(path))
        with path.open("rb"):
            pass
    except FileNotFoundError:
        raise DataFileError(f"{path}: no such file.", path=str(path)) from None
    except PermissionError:
        raise DataFileError(f"{path}: cannot be read (permission denied).",
                            path=str(path)) from None
    except OSError as exc:
        raise DataFileError(f"{path}: cannot be read ({exc.strerror or exc}).",
                            path=str(path)) from None
    if size == 0:
        raise DataFileError(f"{path}: the file is empty (no header, no rows).", path=str(path))


def _open(path: Path) -> IO[bytes]:
    if path.suffix.lower() == ".gz":
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def _wrap(path: Path, exc: Exception, what: str) -> DataFileError:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return DataFileError(f"{path}: cannot be read as {what}: {text}.", path=str(path))


# --------------------------------------------------------------------------- locating problems
def _first_bad_utf8(path: Path) -> tuple[int, int, int] | None:
    """(byte offset, line, offset in line) of the first byte that is not UTF-8."""
    offset = 0
    with _open(path) as f:
        for number, line in enumerate(f, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return offset + exc.start, number, exc.start
            offset += len(line)
    return None


def _encoding_error(path: Path, fmt: Format, header: Sequence[str] = ()) -> DataFileError:
    found = _first_bad_utf8(path)
    if found is None:
        return DataFileError(f"{path}: is not valid UTF-8 text; {_ENCODING_HINT}.",
                             path=str(path))
    offset, line, in_line = found
    column = None
    if fmt in ("csv", "tsv") and header:
        with _open(path) as f:
            for _ in range(line - 1):
                f.readline()
            head = f.readline()[:in_line].decode("utf-8", "replace")
        fields = next(csv.reader([head], delimiter="\t" if fmt == "tsv" else ","), [""])
        if 0 < len(fields) <= len(header):
            column = header[len(fields) - 1]
    where = f", column '{column}'" if column else ""
    return DataFileError(
        f"{path}, line {line}{where}: the byte at offset {offset} is not UTF-8; "
        f"{_ENCODING_HINT}.",
        path=str(path), line=line, column=column)


def _ragged_error(path: Path, fmt: Format) -> DataFileError | None:
    """The first CSV record whose field count differs from the header's, by physical line."""
    with _open(path) as raw, io.TextIOWrapper(raw, encoding="utf-8", errors="replace",
                                             newline="") as text:
        reader = csv.reader(text, delimiter="\t" if fmt == "tsv" else ",")
        header = next(reader, [])
        start = reader.line_num + 1
        for row in reader:
            if row and len(row) != len(header):
                return DataFileError(
                    f"{path}, line {start}: a row must have {len(header)} fields like the "
                    f"header; got {len(row)}.", path=str(path), line=start)
            start = reader.line_num + 1
    return None


# --------------------------------------------------------------------------- CSV
def _csv_options(fmt: Format, column_types: Mapping[str, Any],
                 include: Sequence[str] | None = None) -> dict[str, Any]:
    import pyarrow.csv as pacsv

    return {
        "read_options": pacsv.ReadOptions(block_size=_BLOCK, use_threads=True),
        "parse_options": pacsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ",",
                                            newlines_in_values=True),
        "convert_options": pacsv.ConvertOptions(
            column_types=dict(column_types), null_values=_NULLS, strings_can_be_null=True,
            quoted_strings_can_be_null=False, true_values=_TRUE, false_values=_FALSE,
            timestamp_parsers=[], include_columns=list(include) if include else None),
    }


def _csv_failure(path: Path, fmt: Format, exc: Exception,
                 header: Sequence[str] = ()) -> DataFileError:
    text = str(exc)
    if "Empty CSV file" in text:
        return DataFileError(f"{path}: the file has no header (no rows either).", path=str(path))
    if "Expected" in text and "columns, got" in text:
        found = _ragged_error(path, fmt)
        if found is not None:
            return found
    if "UTF8" in text or "UTF-8" in text or isinstance(exc, UnicodeDecodeError):
        return _encoding_error(path, fmt, header)
    m = re.search(r"Column '([^']*)' in include_columns does not exist", text)
    if m:
        return DataFileError(f"{path}: has no column '{m.group(1)}' (columns: "
                             f"{', '.join(header)}).", path=str(path), column=m.group(1))
    return _wrap(path, exc, fmt.upper())


def _text_to(arr: Any, target: Any) -> Any | None:
    """Convert a text column to ``target``; None when some cell does not convert."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_string(target) or pa.types.is_large_string(target):
        return arr.cast(target)
    valid = arr.null_count
    if pa.types.is_boolean(target):
        yes, no = pc.is_in(arr, pa.array(_TRUE)), pc.is_in(arr, pa.array(_FALSE))
        if pc.sum(pc.or_(yes, no)).as_py() != len(arr) - valid:
            return None
        return pc.if_else(pc.is_null(arr), pa.scalar(None, pa.bool_()), yes)
    try:  # the fast path: every cell converts
        out = pc.cast(arr, target)
        # Arrow also reads "0x1f" as an integer, which a CSV number never is
        if not (pa.types.is_integer(target) and pc.any(
                pc.match_substring(arr, "x", ignore_case=True)).as_py()):
            return out
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    if not pa.types.is_integer(target):
        return None
    # "+3" is an integer too; Arrow refuses the sign
    if pc.sum(pc.match_substring_regex(arr, _INT_RE)).as_py() != len(arr) - valid:
        return None
    try:
        return pc.cast(pc.replace_substring_regex(arr, r"^\+", ""), target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _cell(text: str | None, target: Any) -> Any:
    """One CSV cell as the value it spells: the target type if it fits, else number or text."""
    import pyarrow as pa

    if text is None:
        return None
    if pa.types.is_boolean(target) and text in _TRUE + _FALSE:
        return text in _TRUE
    if re.match(_INT_RE, text):
        return int(text)
    if re.match(_FLOAT_RE, text):
        return float(text)
    return text


class _CsvPlan:
    """The settled column types of a CSV file (first pass), and its only block when small."""

    def __init__(self, path: Path, fmt: Format, types: Mapping[str, Any],
                 include: Sequence[str] | None) -> None:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        self.path, self.fmt, self.include = path, fmt, include
        overrides: dict[str, Any] = {}
        self.header = _csv_header(path, fmt)
        self.types = {k: v for k, v in types.items() if k in self.header}
        overrides.update(dict.fromkeys(self.types, pa.string()))
        for _attempt in range(len(self.header) + 2):
            try:
                reader = pacsv.open_csv(str(path), **_csv_options(fmt, overrides, include))
                schema = reader.schema
            except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
                raise _csv_failure(path, fmt, exc, self.header) from None
            if any(pa.types.is_binary(t) for t in schema.types):
                raise _encoding_error(path, fmt, self.header)
            temporal = [f.name for f in schema if pa.types.is_temporal(f.type)]
            if temporal:
                overrides.update(dict.fromkeys(temporal, pa.string()))
                continue
            self.mixed: set[str] = set()
            self.rows = 0
            self.only: Any = None
            try:
                for number, batch in enumerate(reader):
                    self.rows += batch.num_rows
                    for name, target in self.types.items():
                        if name not in self.mixed and _text_to(batch.column(name),
                                                               target) is None:
                            self.mixed.add(name)
                    self.only = batch if number == 0 else None
            except pa.ArrowInvalid as exc:
                m = re.match(r"In CSV column #(\d+): CSV conversion error", str(exc))
                if m and "UTF8" not in str(exc):
                    overrides[schema.names[int(m.group(1))]] = pa.string()
                    continue
                raise _csv_failure(path, fmt, exc, self.header) from None
            self.schema = schema
            self.column_types = {f.name: f.type for f in schema}
            return
        raise DataFileError(f"{path}: the column types do not settle.", path=str(path))

    def out_type(self, name: str, typ: Any) -> Any:
        if name in self.mixed:
            return mixed_type()
        return self.types.get(name, typ)

    def blocks(self) -> Iterator[Any]:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        if self.only is not None:
            yield self._convert(self.only)
            return
        try:
            reader = pacsv.open_csv(str(self.path), **_csv_options(self.fmt, self.column_types,
                                                                   self.include))
            for batch in reader:
                yield self._convert(batch)
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise _csv_failure(self.path, self.fmt, exc, self.header) from None

    def _convert(self, batch: Any) -> Any:
        import pyarrow as pa

        if not self.types:
            return batch
        columns = []
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            target = self.types.get(name)
            if target is None:
                columns.append(column)
            elif name in self.mixed:
                columns.append(mixed_array([_cell(v, target) for v in column.to_pylist()]))
            else:
                columns.append(_text_to(column, target))
        schema = pa.schema([pa.field(f.name, self.out_type(f.name, f.type))
                            for f in batch.schema])
        return pa.RecordBatch.from_arrays(columns, schema=schema)


def _csv_header(path: Path, fmt: Format) -> list[str]:
    with _open(path) as raw:
        first = raw.readline()
    try:
        line = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _encoding_error(path, fmt) from None
    header = next(csv.reader([line], delimiter="\t" if fmt == "tsv" else ","), [])
    if not header or header == [""]:
        raise DataFileError(f"{path}: the first line must be a header naming the columns; it "
                            "is empty.", path=str(path), line=1)
    seen: dict[str, int] = {}
    for i, name in enumerate(header, start=1):
        if name in seen:
            raise DataFileError(f"{path}, line 1: the column name '{name}' appears twice "
                                f"(columns {seen[name]} and {i}); names must be unique.",
                                path=str(path), line=1, column=name)
        seen[name] = i
    return header


# --------------------------------------------------------------------------- JSON lines
def _jsonl_chunks(path: Path, size: int) -> Iterator[tuple[int, int, list[bytes]]]:
    """(first line number, byte offset, lines) of ``size`` lines at a time."""
    line, offset = 1, 0
    with _open(path) as f:
        while True:
            lines = list(islice(f, size))
            if not lines:
                return
            yield line, offset, lines
            line += len(lines)
            offset += sum(map(len, lines))


def _jsonl_python(path: Path, first: int, offset: int, lines: list[bytes]) -> Any:
    """Parse line by line: exact errors, and mixed columns where types differ."""
    records: list[dict[str, Any]] = []
    for number, raw in enumerate(lines, start=first):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataFileError(f"{path}, line {number}: the byte at offset "
                                f"{offset + exc.start} is not UTF-8; {_ENCODING_HINT}.",
                                path=str(path), line=number) from None
        finally:
            offset += len(raw)
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataFileError(f"{path}, line {number}, character {exc.colno}: not valid JSON "
                                f"({exc.msg}).", path=str(path), line=number) from None
        if not isinstance(value, dict):
            kind = {list: "an array", str: "a string", bool: "a boolean"}.get(
                type(value), "null" if value is None else "a number")
            raise DataFileError(f"{path}, line {number}: each line must be a JSON object; got "
                                f"{kind}.", path=str(path), line=number)
        records.append(value)
    return _widen_numbers(table_from_records(records))


def _widen_numbers(table: Any) -> Any:
    """Mixed columns of only integers and floats become float64, as pyarrow's JSON reader does."""
    import numpy as np
    import pyarrow as pa

    from keelwork.core.contracts.columns import MIXED_CHILDREN, is_mixed

    numeric = {MIXED_CHILDREN.index(k) for k in ("null", "int", "float")}
    for i, f in enumerate(table.schema):
        if not is_mixed(f.type):
            continue
        column = table.column(i).combine_chunks()
        codes = np.frombuffer(column.buffers()[1], dtype=np.int8,
                              count=column.offset + len(column))[column.offset:]
        if set(np.unique(codes).tolist()) <= numeric:
            floats = pa.array([None if v is None else float(v) for v in column.to_pylist()],
                              pa.float64())
            table = table.set_column(i, f.name, floats)
    return table


def _jsonl_table(path: Path, first: int, offset: int, lines: list[bytes]) -> Any:
    import pyarrow as pa
    import pyarrow.json as pajson

    data = b"".join(lines)
    if not data.strip():
        return None
    block = max(1 << 20, 2 * max(map(len, lines)))
    try:
        data.decode("utf-8")  # pyarrow would take invalid UTF-8 into string columns as is
        return pajson.read_json(pa.BufferReader(data),
                                read_options=pajson.ReadOptions(block_size=block))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError):
        return _jsonl_python(path, first, offset, lines)


def _settle(types: list[Any]) -> Any:
    """One type for a JSON-lines column seen with ``types`` in different chunks."""
    import pyarrow as pa

    kinds = list(dict.fromkeys(t for t in types if not pa.types.is_null(t)))
    if not kinds:
        return pa.null()
    if len(kinds) == 1:
        return kinds[0]
    if all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in kinds):
        return pa.float64() if any(pa.types.is_floating(t) for t in kinds) else pa.int64()
    return mixed_type()


def _conform(table: Any, schema: Any) -> Any:
    import pyarrow as pa

    from keelwork.core.contracts.columns import to_mixed

    columns = []
    for f in schema:
        if f.name not in table.column_names:
            columns.append(pa.nulls(table.num_rows, f.type))
            continue
        column = table.column(f.name).combine_chunks()
        if column.type != f.type:
            column = to_mixed(column) if f.type == mixed_type() else column.cast(f.type)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


def _jsonl_tables(path: Path, size: int) -> Iterator[Any]:
    import pyarrow as pa

    seen: dict[str, list[Any]] = {}
    only, count = None, 0
    for first, offset, lines in _jsonl_chunks(path, size):
        table = _jsonl_table(path, first, offset, lines)
        if table is None or not table.num_rows:
            continue
        count += 1
        only = table if count == 1 else None
        for f in table.schema:
            seen.setdefault(f.name, []).append(f.type)
    if not count:
        raise DataFileError(f"{path}: holds no rows (only blank lines).", path=str(path))
    schema = pa.schema([(name, _settle(types)) for name, types in seen.items()])
    if only is not None:
        yield _conform(only, schema)
        return
    for first, offset, lines in _jsonl_chunks(path, size):
        table = _jsonl_table(path, first, offset, lines)
        if table is not None and table.num_rows:
            yield _conform(table, schema)


# --------------------------------------------------------------------------- public API
def iter_batches(path: str | Path, *, batch_size: int = 65536,
                 types: Mapping[str, Any] | None = None) -> Iterator[tuple[int, Any]]:
    """Stream a data file as record batches of at most ``batch_size`` rows.

    Args:
        path: A CSV, TSV, Parquet or JSON-lines file (see :func:`detect_format`).
        batch_size: The most rows in one batch.
        types: CSV/TSV only: Arrow types for named columns, read as text then converted (a cell
            that does not convert makes the column mixed). Ignored for typed formats.

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
    _check_file(p)
    start = 0
    for table in _tables(p, fmt, batch_size, dict(types or {}), None):
        for batch in pa.Table.from_batches([table] if isinstance(table, pa.RecordBatch)
                                           else table.to_batches()).to_batches(batch_size):
            if batch.num_rows:
                yield start, batch
                start += batch.num_rows


def _tables(path: Path, fmt: Format, batch_size: int, types: Mapping[str, Any],
            include: Sequence[str] | None) -> Iterator[Any]:
    """Tables or record batches of the file, in order, with one schema."""
    import pyarrow as pa

    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(str(path))
            if pf.metadata.num_rows == 0:
                raise DataFileError(f"{path}: holds no rows.", path=str(path))
            yield from pf.iter_batches(batch_size=batch_size, columns=include)
        except (pa.ArrowInvalid, OSError) as exc:
            raise _wrap(path, exc, "Parquet") from None
        return
    if fmt == "jsonl":
        yield from _jsonl_tables(path, batch_size)
        return
    plan = _CsvPlan(path, fmt, types, include)
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
    _check_file(p)
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
            raise _wrap(p, exc, "Parquet") from None
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
    _check_file(p)
    if fmt in ("csv", "tsv"):
        return _csv_header(p, fmt)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(str(p)).names)
        except (pa.ArrowInvalid, OSError) as exc:
            raise _wrap(p, exc, "Parquet") from None
    names: dict[str, None] = {}
    for table in _jsonl_tables(p, 65536):
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

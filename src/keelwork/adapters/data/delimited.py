"""CSV and TSV files: settled column types, conversions to the contract's types, exact errors.

A file is read in blocks of 16 MiB. The first pass settles every column's type (a column whose
later blocks hold text where the first held numbers becomes text; dates and times stay text;
a ``types`` column that holds a cell its type cannot take becomes mixed); the second pass reads
with those types fixed, so every batch has one schema. A file of one block is read once.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from keelwork.adapters.data.files import (
    Format,
    encoding_error,
    open_binary,
    wrap_error,
)
from keelwork.core.contracts.columns import mixed_array, mixed_type
from keelwork.errors import DataFileError

_BLOCK: Final = 16 << 20
_NULLS: Final = ["", "#N/A", "#N/A N/A", "#NA", "N/A", "NA", "NULL", "n/a", "null"]
_TRUE: Final = ["true", "True", "TRUE"]
_FALSE: Final = ["false", "False", "FALSE"]
_INT_RE: Final = r"^[+-]?[0-9]+$"
_FLOAT_RE: Final = (r"^[+-]?(?:[0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?"
                    r"|nan|NaN|NAN|inf|Inf|INF|infinity|Infinity|INFINITY)$")


def _ragged_error(path: Path, fmt: Format) -> DataFileError | None:
    """The first CSV record whose field count differs from the header's, by physical line."""
    with open_binary(path) as raw, io.TextIOWrapper(raw, encoding="utf-8", errors="replace",
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
        return encoding_error(path, fmt, header)
    m = re.search(r"Column '([^']*)' in include_columns does not exist", text)
    if m:
        return DataFileError(f"{path}: has no column '{m.group(1)}' (columns: "
                             f"{', '.join(header)}).", path=str(path), column=m.group(1))
    return wrap_error(path, exc, fmt.upper())


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


class CsvPlan:
    """The settled column types of a CSV file (first pass), and its only block when small."""

    def __init__(self, path: Path, fmt: Format, types: Mapping[str, Any],
                 include: Sequence[str] | None) -> None:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        self.path, self.fmt, self.include = path, fmt, include
        overrides: dict[str, Any] = {}
        self.header = csv_header(path, fmt)
        self.types = {k: v for k, v in types.items() if k in self.header}
        overrides.update(dict.fromkeys(self.types, pa.string()))
        for _attempt in range(len(self.header) + 2):
            try:
                reader = pacsv.open_csv(str(path), **_csv_options(fmt, overrides, include))
                schema = reader.schema
            except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
                raise _csv_failure(path, fmt, exc, self.header) from None
            if any(pa.types.is_binary(t) for t in schema.types):
                raise encoding_error(path, fmt, self.header)
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


def csv_header(path: Path, fmt: Format) -> list[str]:
    with open_binary(path) as raw:
        first = raw.readline()
    try:
        line = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise encoding_error(path, fmt) from None
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


__all__ = ["CsvPlan", "csv_header"]

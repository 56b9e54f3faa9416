"""JSON-lines files: one object per line, read in chunks of lines with exact line numbers.

pyarrow parses each chunk; a chunk it refuses (invalid JSON, bytes that are not UTF-8, a column
whose values change type) is parsed again line by line, which names the line and keeps every
value's type in a mixed column. Files larger than one chunk are read twice: once to settle every
column's type across chunks, once to yield the rows, so every batch has one schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from keelwork.adapters.data.files import ENCODING_HINT, open_binary
from keelwork.core.contracts.columns import mixed_type, table_from_records
from keelwork.errors import DataFileError


def _jsonl_chunks(path: Path, size: int) -> Iterator[tuple[int, int, list[bytes]]]:
    """(first line number, byte offset, lines) of ``size`` lines at a time."""
    line, offset = 1, 0
    with open_binary(path) as f:
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
                                f"{offset + exc.start} is not UTF-8; {ENCODING_HINT}.",
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


def jsonl_tables(path: Path, size: int) -> Iterator[Any]:
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


__all__ = ["jsonl_tables"]

"""Whole tables in and out of data files: the one reader and the one writer the commands share.

:func:`read_data` reads a file (any format of :mod:`keelwork.adapters.data.readers`) into one
``pyarrow.Table``, reporting progress to an optional callback. :func:`write_table` writes a
table in the format of the output's suffix (.csv, .tsv, .parquet, .jsonl, the text ones
optionally .gz); :func:`write_outputs` writes the passing and the quarantined rows of a contract
check. Every write goes through :mod:`keelwork.adapters.data.atomic`: a failure never leaves a
half file under the final name.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keelwork.adapters.data.atomic import atomic_path, atomic_paths, remove_quietly
from keelwork.errors import DataFileError

if TYPE_CHECKING:
    from keelwork.spec.contract import ContractSection

#: ``progress(rows_done, rows_total)``; the total is None when the file does not say it.
Progress = Callable[[int, int | None], None]


# --------------------------------------------------------------------------- reading
def read_data(path: Path, types: dict[str, Any] | None = None,
              dictionary: Sequence[str] = (), progress: Progress | None = None) -> Any:
    """Read a whole data file.

    Args:
        path: The data file.
        types: CSV/TSV column types (see :func:`keelwork.adapters.data.readers.iter_batches`).
        dictionary: Parquet text columns to keep dictionary-encoded (see ``iter_batches``).
        progress: Called after each batch with the rows read so far and the total.

    Returns:
        A ``pyarrow.Table``.

    Raises:
        DataFileError: The file cannot be read.
    """
    import pyarrow as pa

    from keelwork.adapters.data.readers import iter_batches, row_count

    total = row_count(path)
    batches = []
    for start, batch in iter_batches(path, batch_size=1 << 18, types=types,
                                     dictionary=dictionary):
        batches.append(batch)
        if progress is not None:
            progress(start + batch.num_rows, total)
    return pa.Table.from_batches(batches)


def parquet_text(path: Path, names: Sequence[str]) -> dict[str, Any]:
    """Those of ``names`` that a Parquet file holds as plain text, with their Arrow type
    (``{}`` for other formats): the columns worth reading as dictionaries."""
    import pyarrow as pa

    from keelwork.adapters.data.readers import detect_format

    if not names or detect_format(path) != "parquet":
        return {}
    import pyarrow.parquet as pq

    schema = pq.read_schema(str(path))
    return {n: schema.field(n).type for n in names if n in schema.names and (
        pa.types.is_string(schema.field(n).type) or pa.types.is_large_string(schema.field(n).type))}


def as_read(table: Any, text: dict[str, Any]) -> Any:
    """Columns read as dictionaries for speed back to the file's own text type (outputs keep
    the input's schema)."""
    for name, typ in text.items():
        i = table.column_names.index(name)
        table = table.set_column(i, table.schema.field(i).with_type(typ),
                                 table.column(i).cast(typ))
    return table


def contract_types(path: Path, contract: ContractSection) -> dict[str, Any] | None:
    """CSV/TSV only: read contract columns as their field type, every other column as text."""
    import pyarrow as pa

    from keelwork.adapters.data.readers import detect_format, read_header

    if detect_format(path) not in ("csv", "tsv"):
        return None
    specs = {f.name: f for f in contract.inputs}
    out: dict[str, Any] = {}
    for name in read_header(path):
        spec = specs.get(name)
        kind: str = spec.type if spec is not None else "string"
        if kind == "category" and spec is not None:
            kinds = {type(c) for c in spec.categories or []}
            kind = {frozenset({int}): "integer", frozenset({bool}): "boolean"}.get(
                frozenset(kinds), "string" if kinds == {str} else "")
        target = {"float": pa.float64(), "integer": pa.int64(), "boolean": pa.bool_(),
                  "string": pa.string(), "text": pa.string()}.get(kind)
        if target is not None:
            out[name] = target
    return out


# --------------------------------------------------------------------------- writing
def _writable(table: Any) -> Any:
    """Mixed (union) columns as one plain type; nested ones as JSON text for CSV."""
    import pyarrow as pa

    for i, f in enumerate(table.schema):
        if not pa.types.is_union(f.type):
            continue
        values = table.column(i).to_pylist()
        kinds = {type(v) for v in values if v is not None}
        if kinds <= {int, float} and kinds:
            column = pa.array([None if v is None else float(v) for v in values]
                              if float in kinds else values)
        elif len(kinds) == 1 and kinds <= {bool, str}:
            column = pa.array(values)
        else:
            column = pa.array([None if v is None else v if isinstance(v, str)
                               else json.dumps(v, allow_nan=True) for v in values], pa.string())
        table = table.set_column(i, f.name, column)
    return table


def _as_text(table: Any) -> Any:
    import pyarrow as pa

    for i, f in enumerate(table.schema):
        if pa.types.is_nested(f.type):
            values = [None if v is None else json.dumps(v, allow_nan=True, default=str)
                      for v in table.column(i).to_pylist()]
            table = table.set_column(i, f.name, pa.array(values, pa.string()))
        elif pa.types.is_dictionary(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(f.type.value_type))
    return table


def write_table(table: Any, target: Path, out: Path | None = None, *,
                failure: str = "cannot be written") -> None:
    """Write ``table`` to ``target`` in the format of ``out``'s suffix.

    Args:
        table: A ``pyarrow.Table``.
        target: Where the bytes go (a partial file of :mod:`~keelwork.adapters.data.atomic`).
        out: The final path, whose suffix says the format and which errors name (default:
            ``target``).
        failure: What the error message says went wrong.

    Raises:
        DataFileError: The suffix is unknown or the file cannot be written (``target`` is
            removed).
    """
    import gzip

    import pyarrow as pa

    from keelwork.adapters.data.readers import detect_format

    out = target if out is None else out
    fmt = detect_format(out)
    table = _writable(table)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, target)
        elif fmt == "jsonl":
            opener: Any = gzip.open if out.suffix.lower() == ".gz" else open
            with opener(target, "wt", encoding="utf-8") as f:
                for row in table.to_pylist():
                    f.write(json.dumps(row, allow_nan=True, default=str) + "\n")
        else:
            import pyarrow.csv as pacsv

            options = pacsv.WriteOptions(delimiter="\t" if fmt == "tsv" else ",")
            compression = "gzip" if out.suffix.lower() == ".gz" else None
            with pa.output_stream(str(target), compression=compression) as sink:
                pacsv.write_csv(_as_text(table), sink, options)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        remove_quietly(target)
        raise DataFileError(f"{out}: {failure}: {exc}", path=str(out)) from None
    except BaseException:
        remove_quietly(target)
        raise


def write_table_atomic(table: Any, out: Path, *, failure: str = "cannot be written") -> None:
    """Write ``table`` to ``out`` (format from its suffix) via ``OUT.partial``.

    Raises:
        DataFileError: As :func:`write_table`.
    """
    with atomic_path(out) as partial:
        write_table(table, partial, out, failure=failure)


def _unique(name: str, taken: Sequence[str]) -> str:
    while name in taken:
        name = "_" + name
    return name


def write_outputs(table: Any, report: Any, output: Path | None,
                  quarantine: Path | None) -> dict[str, int]:
    """Write the passing rows and the quarantined rows (with ``_row`` and ``_reasons``).

    Both files are written under partial names first and renamed only when both succeeded.

    Args:
        table: The checked ``pyarrow.Table``.
        report: Its :class:`~keelwork.core.contracts.batch.BatchReport`.
        output: Where the passing rows go, or None.
        quarantine: Where the failing rows go, or None.

    Returns:
        Rows written per output (``{"output": n, "quarantine": m}``).

    Raises:
        DataFileError: an output cannot be written (neither is left behind).
    """
    import pyarrow as pa

    written: dict[str, int] = {}
    finals = [p for p in (output, quarantine) if p is not None]
    with atomic_paths(*finals) as partials:
        targets = dict(zip(finals, partials, strict=True))
        if output is not None:
            passing = table.filter(pa.array(~report.failed))
            write_table(passing, targets[output], output)
            written["output"] = passing.num_rows
        if quarantine is not None:
            rows = report.failing_rows()
            failing = table.take(pa.array(rows, pa.int64()))
            names = failing.column_names
            failing = failing.append_column(_unique("_row", names), pa.array(rows, pa.int64()))
            failing = failing.append_column(_unique("_reasons", names),
                                            pa.array(report.reasons(), pa.string()))
            write_table(failing, targets[quarantine], quarantine)
            written["quarantine"] = failing.num_rows
        if output is not None and quarantine is not None:
            total = written["output"] + written["quarantine"]
            if total != table.num_rows:  # pragma: no cover - a broken invariant, not input
                raise RuntimeError(f"{total} rows written for {table.num_rows} read")
    return written


__all__ = ["Progress", "as_read", "contract_types", "parquet_text", "read_data", "write_outputs",
           "write_table", "write_table_atomic"]

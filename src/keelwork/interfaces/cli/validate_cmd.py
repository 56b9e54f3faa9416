"""``keel validate DATA --contract C``: check a whole data file against the contract.

Every row is checked (:func:`keelwork.core.contracts.batch.validate_table`) and the report lists,
per column and rule, how many rows fail, which share, and example rows with their values (a Rich
table, or JSON with ``--json``). ``--output`` receives the passing rows and ``--quarantine`` the
failing ones with two more columns, ``_row`` (0-based row in DATA) and ``_reasons``; nothing is
dropped: passing + quarantined = rows read. Outputs take the format of their suffix (.csv,
.tsv, .parquet, .jsonl, optionally .gz), are written to ``NAME.partial`` and renamed at the end,
so a failure never leaves a half file.

Exit codes: 0 every row passes, 1 some row fails, 2 bad input (unreadable data, a contract that
is invalid or contradicts itself, an unwritable output).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from keelwork.errors import DataFileError, ErrorDetail, SpecError
from keelwork.interfaces.cli.output import console, err_console, fit, handles_errors

if TYPE_CHECKING:
    from keelwork.spec.contract import ContractSection

#: Exit code when the data breaks the contract (bad input is 2).
EXIT_ROWS_FAIL = 1
PROGRESS_MIN_BYTES = 8 << 20


# --------------------------------------------------------------------------- the contract
def _line(node: Any, loc: Sequence[str | int]) -> int | None:
    """Line (1-based) of the deepest part of ``loc`` found in a ruamel round-trip node."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    line = None
    for part in loc:
        try:
            if isinstance(node, CommentedMap) and part in node:
                line = node.lc.key(part)[0] + 1
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
                line = node.lc.item(part)[0] + 1
            else:
                break
        except (KeyError, TypeError, AttributeError):
            break
        node = node[part]
    return line


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


def load_contract(path: Path) -> ContractSection:
    """Read a contract: a ``contract:`` section's content, or a file with a ``contract`` key.

    A whole keel.yaml works (only its ``contract`` section is read), and so does the output of
    ``keel contract infer``.

    Args:
        path: The YAML file.

    Returns:
        The contract.

    Raises:
        SpecError: The file is unreadable, not YAML, has no contract, or the contract is
            invalid or contradicts itself (every problem, with its line).
    """
    from pydantic import ValidationError
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    from keelwork.core.contracts.batch import check_contract
    from keelwork.spec.contract import ContractSection
    from keelwork.spec.loader import check_alias_expansion

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such contract file.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the contract ({exc}).") from None
    try:
        doc = YAML(typ="rt", pure=True).load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SpecError(f"{path}: not valid YAML{where}: "
                        f"{getattr(exc, 'problem', None) or exc}.") from None
    check_alias_expansion(doc, str(path))
    base: tuple[str, ...] = ()
    if isinstance(doc, dict) and isinstance(doc.get("contract"), dict):
        node, base = doc["contract"], ("contract",)
    elif isinstance(doc, dict) and ({"inputs", "outputs"} & set(doc)):
        node = doc
    else:
        raise SpecError(f"{path}: holds no contract; expected a 'contract:' section (as in "
                        "keel.yaml) or its content ('inputs:' ...).")
    problems: list[ErrorDetail] = []
    contract = None
    try:
        contract = ContractSection.model_validate(_plain(node))
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            got = err.get("input")
            shown = "" if isinstance(got, dict | list) else f"; got {got!r}"
            problems.append(ErrorDetail(
                ".".join(map(str, (*base, *loc))), str(err["type"]), None,
                f"{str(err['msg']).removeprefix('Value error, ')}{shown}", _line(node, loc)))
    if contract is not None:
        for detail in check_contract(contract):
            loc = tuple(int(p) if p.isdigit() else p
                        for p in detail.path.replace("[", ".").replace("]", "").split("."))
            problems.append(ErrorDetail(".".join(map(str, (*base, *loc))), detail.rule,
                                        detail.got, detail.message, _line(node, loc)))
    if problems or contract is None:
        lines = [f"  {d.path} (line {d.line}): {d.message}" for d in problems]
        raise SpecError(f"{path}: the contract has {len(problems)} problem(s):\n"
                        + "\n".join(lines), problems)
    if not contract.inputs:
        raise SpecError(f"{path}: the contract lists no inputs; nothing to validate.")
    return contract


def exclude_fields(contract: ContractSection, exclude: Sequence[str],
                   path: Path) -> ContractSection:
    """The contract without the input fields named in ``exclude`` (``--exclude``).

    Raises:
        SpecError: a name is not an input field of the contract, or nothing is left to check.
    """
    if not exclude:
        return contract
    names = [f.name for f in contract.inputs]
    unknown = [c for c in dict.fromkeys(exclude) if c not in names]
    if unknown:
        raise SpecError(f"--exclude names {', '.join(map(repr, unknown))}, which "
                        f"{'is not a field' if len(unknown) == 1 else 'are not fields'} of "
                        f"the contract in {path} (fields: {', '.join(names)}).")
    kept = [f for f in contract.inputs if f.name not in exclude]
    if not kept:
        raise SpecError(f"--exclude leaves no field of the contract in {path} to check.")
    return contract.model_copy(update={"inputs": kept})


# --------------------------------------------------------------------------- reading
@contextmanager
def _progress(path: Path) -> Iterator[Callable[[int, int | None], None] | None]:
    try:
        big = path.stat().st_size >= PROGRESS_MIN_BYTES
    except OSError:
        big = False  # the reader reports the real problem
    if not big or not err_console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn(f"[bold]reading {path.name}"), BarColumn(),
                  TextColumn("{task.completed:,} rows"), TimeElapsedColumn(),
                  console=err_console, transient=True) as bar:
        task = bar.add_task("reading", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def read_data(path: Path, types: dict[str, Any] | None = None,
              dictionary: Sequence[str] = ()) -> Any:
    """Read a whole data file, with a progress bar on a terminal for big files.

    Args:
        path: The data file.
        types: CSV/TSV column types (see :func:`keelwork.adapters.data.readers.iter_batches`).
        dictionary: Parquet text columns to keep dictionary-encoded (see ``iter_batches``).

    Returns:
        A ``pyarrow.Table``.

    Raises:
        DataFileError: The file cannot be read.
    """
    import pyarrow as pa

    from keelwork.adapters.data.readers import iter_batches, row_count

    total = row_count(path)
    batches = []
    with _progress(path) as update:
        for start, batch in iter_batches(path, batch_size=1 << 18, types=types,
                                         dictionary=dictionary):
            batches.append(batch)
            if update is not None:
                update(start + batch.num_rows, total)
    return pa.Table.from_batches(batches)


def _parquet_text(path: Path, names: Sequence[str]) -> dict[str, Any]:
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


def _as_read(table: Any, text: dict[str, Any]) -> Any:
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


def write_table(table: Any, out: Path) -> Path:
    """Write ``table`` to ``OUT.partial`` in the format of ``out``'s suffix.

    Args:
        table: A ``pyarrow.Table``.
        out: The final path; the caller renames the returned partial file to it.

    Returns:
        The partial file.

    Raises:
        DataFileError: The suffix is unknown or the file cannot be written.
    """
    import gzip

    import pyarrow as pa

    from keelwork.adapters.data.readers import detect_format

    fmt = detect_format(out)
    partial = out.with_name(out.name + ".partial")
    table = _writable(table)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, partial)
        elif fmt == "jsonl":
            opener: Any = gzip.open if out.suffix.lower() == ".gz" else open
            with opener(partial, "wt", encoding="utf-8") as f:
                for row in table.to_pylist():
                    f.write(json.dumps(row, allow_nan=True, default=str) + "\n")
        else:
            import pyarrow.csv as pacsv

            options = pacsv.WriteOptions(delimiter="\t" if fmt == "tsv" else ",")
            compression = "gzip" if out.suffix.lower() == ".gz" else None
            with pa.output_stream(str(partial), compression=compression) as sink:
                pacsv.write_csv(_as_text(table), sink, options)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        _remove(partial)
        raise DataFileError(f"{out}: cannot be written: {exc}", path=str(out)) from None
    except BaseException:
        _remove(partial)
        raise
    return partial


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def _unique(name: str, taken: Sequence[str]) -> str:
    while name in taken:
        name = "_" + name
    return name


def write_outputs(table: Any, report: Any, output: Path | None,
                  quarantine: Path | None) -> dict[str, int]:
    """Write the passing rows and the quarantined rows (with ``_row`` and ``_reasons``).

    Both files are written under partial names first and renamed only when both succeeded.

    Returns:
        Rows written per output (``{"output": n, "quarantine": m}``).
    """
    import pyarrow as pa

    written: dict[str, int] = {}
    partials: list[tuple[Path, Path]] = []
    try:
        if output is not None:
            passing = table.filter(pa.array(~report.failed))
            partials.append((write_table(passing, output), output))
            written["output"] = passing.num_rows
        if quarantine is not None:
            rows = report.failing_rows()
            failing = table.take(pa.array(rows, pa.int64()))
            names = failing.column_names
            failing = failing.append_column(_unique("_row", names), pa.array(rows, pa.int64()))
            failing = failing.append_column(_unique("_reasons", names),
                                            pa.array(report.reasons(), pa.string()))
            partials.append((write_table(failing, quarantine), quarantine))
            written["quarantine"] = failing.num_rows
        if output is not None and quarantine is not None:
            total = written["output"] + written["quarantine"]
            if total != table.num_rows:  # pragma: no cover - a broken invariant, not input
                raise RuntimeError(f"{total} rows written for {table.num_rows} read")
    except BaseException:
        for partial, _ in partials:
            _remove(partial)
        raise
    for partial, final in partials:
        partial.replace(final)
    return written


# --------------------------------------------------------------------------- the report
def _print_report(report: Any, data: Path, written: dict[str, int],
                  outputs: dict[str, Path | None]) -> None:
    from rich.markup import escape
    from rich.table import Table

    share = report.failed_rows / report.rows if report.rows else 0.0
    if report.ok:
        console.print(f"[green]valid:[/] all {report.rows:,} rows of {escape(str(data))} pass "
                      "the contract", highlight=False)
    else:
        table = Table(title=f"{escape(str(data))}: {report.failed_rows:,} of {report.rows:,} "
                      f"rows fail ({share:.2%})", title_justify="left")
        for head, justify in (("column", "left"), ("rule", "left"), ("rows", "right"),
                              ("share", "right"), ("requirement", "left"),
                              ("examples (row: value)", "left")):
            table.add_column(head, justify=justify)  # type: ignore[arg-type]
        for f in report.failures:
            shown = ", ".join(f"{e.row}: {json.dumps(e.value)}" for e in f.examples)
            more = ", ..." if f.count > len(f.examples) else ""
            table.add_row(escape(f.column), f.rule, f"{f.count:,}", f"{f.fraction:.2%}",
                          escape(f.message), escape(shown + more))
        console.print(fit(table, drop=("share",)))
    for key, n in written.items():
        console.print(f"{key}: {n:,} rows -> {escape(str(outputs[key]))}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the top-level ``validate`` command to ``app``."""

    @app.command("validate")
    @handles_errors
    def validate_cmd(
        data: Path = typer.Argument(..., help="The data file: .csv, .tsv, .parquet, .jsonl "
                                    "(optionally .gz)."),
        contract_file: Path = typer.Option(..., "--contract", "-c", help="The contract: "
                                           "keel.yaml, or a file holding its 'contract:' "
                                           "section (e.g. from `keel contract infer`)."),
        output: Path | None = typer.Option(None, "--output", "-o",
                                           help="Write the passing rows here."),
        quarantine: Path | None = typer.Option(None, "--quarantine", "-q", help="Write the "
                                               "failing rows here, with _row and _reasons."),
        examples: int = typer.Option(5, "--examples", min=0, help="Example rows per rule."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
        exclude: list[str] = typer.Option([], "--exclude", "-x", metavar="COLUMN",
                                          help="Do not check this contract field (repeat "
                                          "for more); its values pass through unchanged."),
    ) -> None:
        """Check every row of DATA against the contract; exit 1 when a row fails."""
        contract = exclude_fields(load_contract(contract_file), exclude, contract_file)
        from keelwork.adapters.data.readers import detect_format

        for out in (output, quarantine):
            if out is not None:
                detect_format(out)
                if out.resolve() == data.resolve():
                    raise DataFileError(f"{out}: is the input file; write elsewhere.",
                                        path=str(out))
        # Category columns stay dictionary-encoded from Parquet: each value checked once.
        text = _parquet_text(data, [f.name for f in contract.inputs if f.categories and f.type in (
            "category", "string", "text")])
        table = read_data(data, contract_types(data, contract), dictionary=list(text))
        from keelwork.core.contracts.batch import validate_table

        # excluded columns are not checked at all, not even as extra fields; they are written
        skipped = [c for c in dict.fromkeys(exclude) if c in table.column_names]
        report = validate_table(table.drop_columns(skipped) if skipped else table, contract,
                                examples=examples)
        written = write_outputs(_as_read(table, text), report, output, quarantine)
        outputs = {"output": output, "quarantine": quarantine}
        if as_json:
            payload = {"data": str(data), "contract": str(contract_file), "valid": report.ok,
                       "excluded": list(dict.fromkeys(exclude)),
                       **report.as_dict(),
                       "written": {k: {"path": str(outputs[k]), "rows": n}
                                   for k, n in written.items()}}
            typer.echo(json.dumps(payload, indent=2, allow_nan=False, default=str))
        else:
            _print_report(report, data, written, outputs)
        if not report.ok:
            raise typer.Exit(EXIT_ROWS_FAIL)


__all__ = ["EXIT_ROWS_FAIL", "contract_types", "exclude_fields", "load_contract", "read_data",
           "register", "write_outputs", "write_table"]

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

import json
from pathlib import Path
from typing import Any

import typer

from keelwork.interfaces.cli.output import (
    console,
    current_settings,
    fit,
    handles_errors,
    read_progress,
)

#: Exit code when the data breaks the contract (bad input is 2).
EXIT_ROWS_FAIL = 1


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
        from keelwork.service.validation import exclude_fields, load_contract, validate_file

        settings = current_settings()
        contract = exclude_fields(load_contract(contract_file), exclude, contract_file)
        with read_progress(data) as progress:
            done = validate_file(data, contract, exclude=exclude, examples=examples,
                                 output=output, quarantine=quarantine, jit=settings.jit,
                                 progress=progress)
        report, written = done.report, done.written
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


__all__ = ["EXIT_ROWS_FAIL", "register"]

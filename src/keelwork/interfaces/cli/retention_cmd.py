"""``keel retention apply``: delete what keel.yaml's ``retention`` keeps no longer, once.

``keel serve`` applies retention itself every ``retention.interval``; this command is for cron
and for a store no server runs on. ``--dry-run`` only counts; ``--vacuum`` afterwards makes
the deleted rows leave the database files (SQLite ``VACUUM``; PostgreSQL ``VACUUM FULL`` of the
tables deleted from, which locks them while it runs).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from keelwork.interfaces.cli.output import (
    JSON_OPTION,
    PROJECT_OPTION,
    console,
    current_settings,
    err_console,
    handles_errors,
    is_interactive,
)

app = typer.Typer(help="Retention: delete rows older than keel.yaml's retention periods.",
                  no_args_is_help=True)


@contextmanager
def _bars(totals: dict[str, int]) -> Iterator[Callable[[str, int], None] | None]:
    if not is_interactive() or not any(totals.values()):
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=err_console, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(table: str, done: int) -> None:
            if table not in tasks:
                tasks[table] = bar.add_task(f"deleting {table}", total=None)
            bar.update(tasks[table], completed=done)

        yield update


@app.command("apply")
@handles_errors
def apply(project: Path = PROJECT_OPTION,
          dry_run: bool = typer.Option(False, "--dry-run", help="Only count what would go."),
          vacuum: bool = typer.Option(False, "--vacuum", help="Afterwards reclaim the space, "
                                      "so deleted values leave the database files."),
          as_json: bool = JSON_OPTION) -> None:
    """Delete predictions, labels, dead letters and audit entries past their periods."""
    from keelwork.service import retention as use

    settings = current_settings()
    totals = use.apply_project(project, settings, dry_run=True).deleted if not dry_run else {}
    with _bars(totals) as progress:
        report = use.apply_project(project, settings, dry_run=dry_run, vacuum=vacuum,
                                   progress=progress)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    verb = "would delete" if dry_run else "deleted"
    for kind, n in report.deleted.items():
        console.print(f"{kind}: {verb} {n:,} (older than {report.cutoffs[kind]})",
                      highlight=False, markup=False)
    if report.keys_destroyed:
        console.print(f"subject keys: destroyed {report.keys_destroyed:,} (no prediction of "
                      "their subject left)", highlight=False, markup=False)
    if not report.deleted:
        console.print("nothing to do: the store is empty", markup=False)
    for stmt in report.vacuumed:
        console.print(f"reclaimed: {stmt}", highlight=False, markup=False)


__all__ = ["app"]

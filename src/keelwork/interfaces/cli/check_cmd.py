"""``keel check``: the launch checklist, checked for real (see
:mod:`keelwork.service.launch_check`). Exit code 1 when an item fails: a CI step."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from keelwork.interfaces.cli.output import (
    JSON_OPTION,
    PROJECT_OPTION,
    console,
    current_settings,
    handles_errors,
)

_MARK = {"pass": "[green]pass[/]", "fail": "[red]FAIL[/]", "not_checked": "[yellow]not checked[/]"}


@handles_errors
def check(
    project: Path = PROJECT_OPTION,
    as_json: bool = JSON_OPTION,
    strict: bool = typer.Option(False, "--strict", help="Fail on items not checked too."),
    no_drills: bool = typer.Option(False, "--no-drills", help="Skip the drills (rollback, "
                                   "kill -9, backup and restore, PII scan): not checked."),
    no_notify: bool = typer.Option(False, "--no-notify", help="Send no test notification to "
                                   "the alert routes: alert_routes is not checked."),
    html: Path | None = typer.Option(None, "--html", help="Also write the checklist as a "
                                     "self-contained HTML page to this file."),
) -> None:
    """The launch checklist: each item passes, fails with its fix, or says why it was not
    checked. The drills run on a scratch copy of the project (tens of seconds). Exit 1 when
    an item fails (or, with --strict, was not checked)."""
    from rich.markup import escape
    from rich.table import Table

    from keelwork.service.launch_check import run_checks, write_check_html
    from keelwork.spec import load_spec

    resolved = load_spec(project)
    items = run_checks(resolved, current_settings(), drills=not no_drills, notify=not no_notify)
    bad = [i for i in items if i.status == "fail" or (strict and i.status == "not_checked")]
    report = {"ok": not bad, "service": resolved.spec.service.name, "strict": strict,
              "items": [i.as_dict() for i in items]}
    if html is not None:
        write_check_html(report, html)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        table = Table("item", "result", "what was found", "fix")
        for i in items:
            table.add_row(i.name, _MARK[i.status], escape(i.detail), escape(i.fix))
        console.print(table)
        passed = sum(i.status == "pass" for i in items)
        console.print(f"{passed} of {len(items)} items pass; {len(bad)} "
                      f"{'fail' if not strict else 'fail or were not checked'}",
                      highlight=False)
    if bad:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("check")(check)

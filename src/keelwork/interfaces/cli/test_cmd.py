"""``keel test NAME@V``: run the behavioural tests keel.yaml declares for a model
(``models[].tests``) on a registered version and store the run with it
(:mod:`keelwork.service.model_tests`). Exit code 1 when a test fails: a CI step, and what
``keel rollout start`` and ``promote`` require first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from keelwork.interfaces.cli.output import (
    JSON_OPTION,
    PROJECT_OPTION,
    console,
    current_settings,
    handles_errors,
)

#: Failing cases printed per test (``--json``: the first 20 kept with the run).
SHOWN_FAILURES = 3


def print_run(run: dict[str, Any]) -> None:
    """A stored run as a table of tests, then each failing case (``keel models show`` too)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table("test", "kind", "result", "checked", "failed", title=(
        f"tests of {run['model']} version {run['version']} (run {run['run_at'][:19]} UTC by "
        f"{escape(run['actor'])})"))
    for r in run.get("results", []):
        table.add_row(escape(r["name"]), r["kind"],
                      "[green]pass[/]" if r["passed"] else "[red]FAIL[/]",
                      str(r["checked"]), str(r["failed"]) + (
                          f" ({r['allowed']} allowed)" if r.get("allowed") else ""))
    console.print(table)
    for r in run.get("results", []):
        mark = "[red]FAIL[/]" if not r["passed"] else "[yellow]tolerated[/]"
        for f in r["failures"][:SHOWN_FAILURES]:
            console.print(f"{mark} {escape(f['case'])}: expected {escape(f['expected'])}; "
                          f"got {escape(f['got'])}; input {escape(json.dumps(f['input']))}",
                          highlight=False)
        more = r["failed"] - min(len(r["failures"]), SHOWN_FAILURES)
        if more > 0:
            console.print(f"  ... and {more} more failing case(s) of {escape(r['name'])} "
                          f"(--json lists the first {len(r['failures'])})", highlight=False)
    passed = sum(1 for r in run.get("results", []) if r["passed"])
    console.print(f"{passed} of {len(run.get('results', []))} tests pass", highlight=False)


@handles_errors
def test(
    ref: str = typer.Argument(..., help="NAME@VERSION (or NAME:VERSION, NAME@ALIAS)."),
    project: Path = PROJECT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Run the model's declared behavioural tests on a registered version and store the
    result with it. Exit 1 when a test fails."""
    from keelwork.service.model_tests import run_version_tests
    from keelwork.service.projects import actor, project_spec

    settings = current_settings()
    resolved = project_spec(project, settings, needs="'keel test' runs the tests it declares")
    run = run_version_tests(resolved, ref, actor=actor(None, settings),
                            audit_anchor=settings.audit_anchor).as_dict()
    if as_json:
        typer.echo(json.dumps(run, indent=2, default=str))
    else:
        print_run(run)
    if not run["passed"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("test")(test)

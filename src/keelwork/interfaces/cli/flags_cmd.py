"""``keel flags``: list, put and delete model flags in a project's store.

Running servers on the same store pick a change up within their poll interval (one second by
default); every change is recorded in the audit log. keel.yaml's flags are the base, the store's
replace them by name; ``delete`` only removes a stored flag.
"""

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
    fit,
    handles_errors,
)
from keelwork.service import flag_admin as use

app = typer.Typer(help="Model flags: which version answers which requests.",
                  no_args_is_help=True)

_ACTOR = typer.Option(None, "--actor", help="Who makes the change (default: $KEELWORK_USER, "
                      "else the OS user).")


@app.command("list")
@handles_errors
def list_flags(project: Path = PROJECT_OPTION, as_json: bool = JSON_OPTION) -> None:
    """The flags in force (keel.yaml's, the store's on top) and any broken ones."""
    flags = use.flags_in_force(project, current_settings())
    if as_json:
        typer.echo(json.dumps({"flags": [f.model_dump(mode="json") for f in flags.flags],
                               "broken": [b.__dict__ for b in flags.broken]}, indent=2))
        return
    from rich.table import Table

    table = Table(title="model flags in force")
    for col in ("flag", "model", "enabled", "rules", "default"):
        table.add_column(col)
    for f in flags.flags:
        rules = "; ".join(_rule_text(r) for r in f.rules) or "-"
        table.add_row(f.name, f.model, "yes" if f.enabled else "no", rules,
                      f.default or "champion")
    for b in flags.broken:
        table.add_row(b.name, b.model or "?", "[red]broken[/red]", b.error, "-")
    console.print(fit(table))


def _rule_text(rule: Any) -> str:
    cond = []
    if rule.tenants is not None:
        cond.append(f"tenant in {rule.tenants}")
    for name, values in (rule.headers or {}).items():
        cond.append(f"{name} in {values}")
    if rule.percentage is not None:
        cond.append(f"{rule.percentage:g}% of users")
    return f"{' and '.join(cond)} -> {rule.serve}"


@app.command("put")
@handles_errors
def put(file: Path = typer.Argument(..., help="YAML or JSON: one flag or a list of flags."),
        project: Path = PROJECT_OPTION, actor: str | None = _ACTOR) -> None:
    """Create or replace flags from FILE (validated first; nothing is written if one is bad)."""
    flags = use.put_flags(project, file, by=actor, settings=current_settings())
    console.print(f"stored {len(flags)} flag(s): {', '.join(f.name for f in flags)}")


@app.command("delete")
@handles_errors
def delete(name: str = typer.Argument(..., help="The stored flag to remove."),
           project: Path = PROJECT_OPTION, actor: str | None = _ACTOR) -> None:
    """Remove a stored flag (keel.yaml's flag of that name, if any, applies again)."""
    use.delete_flag(project, name, by=actor, settings=current_settings())
    console.print(f"deleted flag {name}")

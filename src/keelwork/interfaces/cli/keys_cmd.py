"""``keel keys``: create, list and revoke the API keys of a project's store.

``create`` prints the new key on stdout exactly once (so ``keel keys create ... > key.txt``
captures only the key); the store keeps a hash of it, so a lost key cannot be shown again:
revoke it and create another. Creations and revocations are recorded in the audit log.
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
    err_console,
    fit,
    handles_errors,
)
from keelwork.service import keys as use

app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)

_ACTOR = typer.Option(None, "--actor", help="Who makes the change (default: $KEELWORK_USER, "
                      "else the OS user).")


@app.command("create")
@handles_errors
def create(scope: list[str] = typer.Option(..., "--scope", "-s", help="admin, predict, "
                                           "feedback, read (the dashboard) or review (the "
                                           "review page) (repeatable; "
                                           "admin implies the others)."),
           name: str = typer.Option(..., "--name", help="What the key is for (shown in "
                                    "listings and the audit log)."),
           project: Path = PROJECT_OPTION, actor: str | None = _ACTOR,
           as_json: bool = JSON_OPTION) -> None:
    """Create a key and print it once; only its hash is stored."""
    created = use.create_key(project, scope, name, by=actor, settings=current_settings())
    if as_json:
        typer.echo(json.dumps({**created.info.as_dict(), "key": created.plaintext}, indent=2))
    else:
        typer.echo(created.plaintext)
    err_console.print(f"created API key {created.info.key_id} ({name}; scopes "
                      f"{', '.join(sorted(created.info.scopes))}). It is shown only now: store it "
                      "in a secret manager.", highlight=False, markup=False, soft_wrap=True)


@app.command("list")
@handles_errors
def list_keys(project: Path = PROJECT_OPTION,
              active: bool = typer.Option(False, "--active", help="Hide revoked keys."),
              as_json: bool = JSON_OPTION) -> None:
    """Every key: id, name, scopes, who created it, when last used, whether revoked."""
    infos = use.list_keys(project, include_revoked=not active, settings=current_settings())
    if as_json:
        typer.echo(json.dumps([i.as_dict() for i in infos], indent=2))
        return
    if not infos:
        console.print("no API keys")
        return
    from rich.table import Table

    table = Table(title="API keys")
    for col in ("id", "name", "scopes", "created", "by", "last used", "revoked"):
        table.add_column(col)
    for i in infos:
        table.add_row(i.key_id, i.name, ",".join(sorted(i.scopes)), _when(i.created_at),
                      i.created_by, _when(i.last_used_at) or "never",
                      f"{_when(i.revoked_at)} by {i.revoked_by}" if i.revoked_at else "")
    console.print(fit(table, drop=("by",)))


@app.command("revoke")
@handles_errors
def revoke(key_id: str = typer.Argument(..., metavar="ID", help="The key's id (keel keys "
                                        "list)."),
           project: Path = PROJECT_OPTION, actor: str | None = _ACTOR) -> None:
    """Revoke a key: servers refuse it at once (others within their few-second cache)."""
    info = use.revoke_key(project, key_id, by=actor, settings=current_settings())
    console.print(f"revoked API key {info.key_id} ({info.name})", highlight=False)


def _when(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment is not None else ""

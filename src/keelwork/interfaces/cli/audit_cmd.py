"""``keel audit``: verify the hash-chained audit log, show its entries, print its head, prove
one entry's inclusion.

``verify`` exits 0 when the whole chain checks out and 1 when it does not, printing the first
bad entry and what is wrong with it (edited, deleted, reordered, truncated). It checks the
anchors the project keeps outside the database (``.keel/audit-anchor.json`` and
``$KEELWORK_AUDIT_ANCHOR``, updated after every append), so a tail cut off together with the
``audit_head`` row, or an emptied log, is found without options. ``head`` prints the latest
entry's number and hash as JSON: keep a copy elsewhere (another system, a git commit) and pass
it to ``verify --anchor`` later to detect even a rewrite of the whole database and of the
project up to that entry. ``prove SEQ`` prints an RFC 6962 inclusion proof of one entry
and the Merkle root it checks against.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
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
from keelwork.service import audit as use
from keelwork.service.logs import parse_when

app = typer.Typer(help="The audit log: who changed what, verifiably.", no_args_is_help=True)

#: Exit code of ``verify`` when the chain is broken.
EXIT_TAMPERED = 1


@app.command("verify")
@handles_errors
def verify(project: Path = PROJECT_OPTION,
           anchor: Path | None = typer.Option(None, "--anchor", dir_okay=False, help="A head "
                                              "saved earlier with 'keel audit head' (JSON), or "
                                              "a copy of .keel/audit-anchor.json; checked on "
                                              "top of the anchors the project keeps."),
           as_json: bool = JSON_OPTION) -> None:
    """Check the whole chain and the anchors; exit 1 and name the first bad entry if broken."""
    result, bad_entry = use.verify(project, anchor, current_settings())
    if as_json:
        typer.echo(json.dumps({**result.as_dict(), "entry": bad_entry}, indent=2,
                              ensure_ascii=False))
    elif result.ok:
        console.print(f"[green]ok[/green] {result.message}", highlight=False)
    else:
        err_console.print(f"[bold red]audit log broken[/] at entry {result.first_bad_seq} "
                          f"({result.reason}): {result.message}", highlight=False,
                          markup=True, soft_wrap=True)
        if bad_entry is not None:
            err_console.print(_entry_line(bad_entry), highlight=False, markup=False,
                              soft_wrap=True)
        else:
            err_console.print(f"entry {result.first_bad_seq} is not in the log", markup=False)
    if not result.ok:
        raise typer.Exit(EXIT_TAMPERED)


@app.command("show")
@handles_errors
def show(project: Path = PROJECT_OPTION,
         actor: str | None = typer.Option(None, "--actor", help="Only this actor."),
         action: str | None = typer.Option(None, "--action", help="Only this action, or a "
                                           "prefix ending in '*' (flag.*)."),
         target: str | None = typer.Option(None, "--target", help="Only this target."),
         since: str | None = typer.Option(None, "--since", help="From this time: ISO date/time "
                                          "(UTC unless an offset is given) or a duration (1h)."),
         until: str | None = typer.Option(None, "--until", help="Before this time."),
         limit: int = typer.Option(50, "--limit", "-n", min=0, help="The latest N entries "
                                   "(0: all)."),
         as_json: bool = JSON_OPTION) -> None:
    """The latest entries matching every filter given, oldest first."""
    since_at = _when(since, "--since")
    until_at = _when(until, "--until")
    entries = use.query(project, actor=actor, action=action, target=target, since=since_at,
                        until=until_at, limit=limit or None, settings=current_settings())
    if as_json:
        typer.echo(json.dumps([e.as_dict() for e in entries], indent=2, ensure_ascii=False))
        return
    if not entries:
        console.print("no audit entries match")
        return
    from rich.table import Table

    table = Table(title="audit log")
    for col in ("seq", "time (UTC)", "actor", "action", "target", "details"):
        table.add_column(col, overflow="fold")
    for e in entries:
        table.add_row(str(e.seq), e.ts, e.actor, e.action, e.target,
                      json.dumps(dict(e.details), ensure_ascii=False, sort_keys=True)
                      if e.details else "")
    console.print(fit(table))


@app.command("head")
@handles_errors
def head(project: Path = PROJECT_OPTION) -> None:
    """Print the latest entry's number and hash (JSON): save it elsewhere as an anchor."""
    current = use.head(project, current_settings())
    typer.echo(json.dumps(current.as_dict()))


@app.command("prove")
@handles_errors
def prove(seq: int = typer.Argument(..., min=1, help="The entry to prove."),
          size: int | None = typer.Option(None, "--size", min=1, help="Prove against the tree "
                                          "of the first SIZE entries (default: all)."),
          project: Path = PROJECT_OPTION) -> None:
    """Print an RFC 6962 inclusion proof of entry SEQ and the Merkle root it checks against."""
    proof = use.prove(project, seq, size, current_settings())
    typer.echo(json.dumps(proof, indent=2))


def _when(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromtimestamp(parse_when(text, time.time()), UTC)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=f"'{option}'") from None


def _entry_line(entry: dict[str, Any]) -> str:
    details = json.dumps(entry["details"], ensure_ascii=False, sort_keys=True)
    return (f"entry {entry['seq']}: {entry['ts']} actor={entry['actor']} "
            f"action={entry['action']} target={entry['target']} details={details}")

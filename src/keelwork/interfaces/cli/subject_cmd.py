"""``keel export --subject`` and ``keel erase --subject``: a data subject's access and erasure
requests (GDPR Art. 15 and 17).

``export`` prints (or writes, readable by its owner only) everything the project holds about
the subject as JSON. ``erase`` removes it from the prediction log, the labels and the dataset
snapshots, records a tombstone and an audit entry that never name the subject, and lists the
model versions trained on snapshots that held it (a model cannot forget: retrain if needed).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from keelwork.interfaces.cli.output import (
    JSON_OPTION,
    PROJECT_OPTION,
    console,
    current_settings,
    handles_errors,
)

_SUBJECT = typer.Option(..., "--subject", help="The data subject's identifier, as logged "
                        "(X-Subject-Id or contract.subject_field) and in snapshot subject "
                        "columns.")


@handles_errors
def export_cmd(subject: str = _SUBJECT, project: Path = PROJECT_OPTION,
               out: Path | None = typer.Option(None, "--out", dir_okay=False, help="Write the "
                                               "JSON here (mode 0600) instead of printing it.")
               ) -> None:
    """Everything held about one data subject, as JSON (an access request)."""
    from keelwork.service import subjects as use

    data = use.export_project(project, current_settings(), subject)
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    if out is None:
        typer.echo(text)
        return
    tmp = out.with_name(f".{out.name}.partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    tmp.replace(out)
    console.print(f"wrote {out}: {len(data['predictions'])} predictions, "
                  f"{sum(len(r) for r in data['snapshot_rows'].values())} snapshot rows",
                  highlight=False, markup=False)


@handles_errors
def erase_cmd(subject: str = _SUBJECT, project: Path = PROJECT_OPTION,
              reason: str = typer.Option(..., "--reason", help="Why (e.g. the request's "
                                         "ticket); recorded. Do not put the subject in it."),
              rewrite: bool = typer.Option(False, "--rewrite", help="PostgreSQL: rewrite the "
                                           "tables (VACUUM FULL) so erased rows leave the "
                                           "files at once (SQLite always does)."),
              as_json: bool = JSON_OPTION) -> None:
    """Erase one data subject from the log, labels and snapshots (an erasure request)."""
    from keelwork.service import subjects as use

    report = use.erase_project(project, current_settings(), subject, reason=reason,
                               rewrite=rewrite)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    console.print(f"erased: {report.predictions} predictions, {report.labels} labels, "
                  f"{sum(report.snapshots.values())} snapshot rows "
                  f"({report.seconds:.2f} s); tombstone {report.digest[:16]}",
                  highlight=False, markup=False)
    if report.key_destroyed:
        console.print("payload key destroyed: copies of its payloads (backups) no longer "
                      "open", highlight=False, markup=False)
    if report.snapshot_key_destroyed:
        console.print("snapshot key destroyed: its sealed snapshot rows, in every copy of the "
                      "files, no longer open", highlight=False, markup=False)
    for ref in report.unsearchable:
        console.print(f"not searched: snapshot {ref} has no subject column", markup=False)
    if report.models:
        console.print("trained on erased rows (a model cannot forget; retrain if needed): "
                      + ", ".join(report.models), highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    """Add ``export`` and ``erase`` to ``app``."""
    app.command("export")(export_cmd)
    app.command("erase")(erase_cmd)


__all__ = ["erase_cmd", "export_cmd", "register"]

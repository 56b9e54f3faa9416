"""``keel init``: scaffold a working project from a template, train it, register a champion."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from keelwork.interfaces.cli.output import (
    console,
    current_settings,
    handles_errors,
    say_reference,
)
from keelwork.service.projects import TEMPLATES, init_project, template_named


@handles_errors
def init(
    directory: Path = typer.Argument(..., help="Directory of the new project."),
    template: str = typer.Option("text", help="Example to start from: text (review "
                                 "sentiment) or tabular (credit scoring, mixed columns)."),
    force: bool = typer.Option(False, help="Overwrite an existing keel.yaml."),
    train: bool = typer.Option(True, help="Train and register the example model."),
) -> None:
    """Scaffold a working project: keel.yaml, a training script on real data, a champion."""
    settings = current_settings()
    done = init_project(directory, template, force=force, train=train, status=console.status,
                        user=settings.user, audit_anchor=settings.audit_anchor)
    console.print(f"[green]created[/] {done['directory']}")
    if done["registered"]:
        console.print(f"registered [bold]{done['registered']}[/] as champion; metrics: "
                      f"{json.dumps(done['metrics'])}")
        say_reference(done)
    console.print(f"next: [bold]keel serve {Path(done['directory']) / 'keel.yaml'}[/]")


def register(app: typer.Typer) -> None:
    app.command("init")(init)


__all__ = ["TEMPLATES", "init", "init_project", "register", "template_named"]

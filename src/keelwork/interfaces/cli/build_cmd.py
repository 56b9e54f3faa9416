"""``keel build NAME@V``: write the container build context of one registered model version
(:mod:`keelwork.service.build`): Dockerfile, pinned lock, model, reduced keel.yaml."""

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


@handles_errors
def build(
    ref: str = typer.Argument(..., help="NAME@VERSION (or NAME:VERSION, NAME@ALIAS)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="The context folder (default: "
                                    "build/NAME-VERSION in the project)."),
    force: bool = typer.Option(False, "--force", help="Replace the build context in an --out "
                               "folder that has files."),
    base: str | None = typer.Option(None, "--base", help="Base image (default: python:X.Y.Z-"
                                    "slim of the Python recorded with the version)."),
    project: Path = PROJECT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Write a container build context (Dockerfile, pinned lock, model, keel.yaml) for one
    registered model version; build it with podman or docker."""
    from rich.markup import escape

    from keelwork.service.build import build_context

    done = build_context(project, ref, out, settings=current_settings(), force=force, base=base)
    if as_json:
        typer.echo(json.dumps(done.as_dict(), indent=2))
        return
    console.print(f"build context of [bold]{escape(done.model)}[/] version {done.version} in "
                  f"{escape(str(done.directory))}: base {escape(done.base)}, {done.pins} "
                  f"packages pinned with hashes, {escape(done.artifact)}", highlight=False)
    for note in done.notes:
        console.print(f"  note: {escape(note)}", highlight=False)
    image = f"{done.model}:{done.version}".lower()
    console.print(f"build it: podman build --format docker -t {escape(image)} "
                  f"{escape(str(done.directory))}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("build")(build)

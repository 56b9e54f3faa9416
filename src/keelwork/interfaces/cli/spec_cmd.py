"""``keel spec``: print the JSON Schema of keel.yaml, validate a spec."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from keelwork.interfaces.cli.output import console, err_console, handles_errors

app = typer.Typer(help="The keel.yaml spec: JSON Schema and validation.", no_args_is_help=True)


@app.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of keel.yaml (point your editor's YAML language server at it)."""
    from keelwork.spec import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


@app.command("validate")
@handles_errors
def validate_cmd(
    file: Path = typer.Argument(Path("keel.yaml"), help="The keel.yaml to check."),
    as_json: bool = typer.Option(False, "--json", help="Print problems as JSON."),
) -> None:
    """Check a keel.yaml: exit 0 when valid, 2 with every problem (path and line) otherwise."""
    from keelwork.errors import SpecError
    from keelwork.spec import load_spec

    try:
        resolved = load_spec(file)
    except SpecError as exc:
        if as_json:
            typer.echo(json.dumps({"valid": False, "problems": [d.as_dict() for d in exc.details]},
                                  indent=2, default=str))
        else:
            from rich.markup import escape

            err_console.print(f"[bold red]invalid:[/] {escape(exc.message)}", soft_wrap=True)
        raise typer.Exit(2) from None
    spec = resolved.spec
    misfits = _gate_misfits(resolved)
    if misfits:
        if as_json:
            typer.echo(json.dumps({"valid": False, "problems": misfits}, indent=2))
        else:
            from rich.markup import escape

            for m in misfits:
                err_console.print(f"[bold red]invalid:[/] {escape(m['message'])}",
                                  soft_wrap=True)
        raise typer.Exit(2)
    if as_json:
        typer.echo(json.dumps({"valid": True, "service": spec.service.name,
                               "models": [m.name for m in spec.models]}))
    else:
        console.print(f"[green]valid:[/] {resolved.path} (service '{spec.service.name}', "
                      f"{len(spec.models)} model(s), {len(spec.contract.inputs)} input field(s))")


def _gate_misfits(resolved: Any) -> list[dict[str, Any]]:
    """Label gates that do not fit a model's task when only its runtime tells the task.

    (When the output contract tells it, loading the spec already refused a misfit.)
    """
    from keelwork.core.rollout.analysis import LABEL_GATES
    from keelwork.spec.model import (
        CLASSIFICATION_GATES,
        REGRESSION_GATES,
        misfit_gates,
        output_task,
    )

    spec = resolved.spec
    gates = spec.rollout.gates
    if output_task(spec.contract) is not None or not any(
            getattr(gates, g) is not None for g in LABEL_GATES):
        return []
    from keelwork.service.models import model_task

    out = []
    for m in spec.models:
        task = model_task(resolved, m.name)
        for gate in misfit_gates(gates, task):
            fits = CLASSIFICATION_GATES if task == "classification" else REGRESSION_GATES
            out.append({"path": f"rollout.gates.{gate}", "rule": "gate_task", "got": gate,
                        "message": f"rollout.gates.{gate} does not fit model {m.name!r}, a "
                                   f"{task} model (as its runtime tells); use "
                                   f"{', '.join(fits)}."})
    return out

"""``keel slo``: Prometheus rules and OpenSLO documents from keel.yaml's SLOs; ``keel runbook``.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from keelwork.interfaces.cli.output import PROJECT_OPTION, console, handles_errors

app = typer.Typer(help="SLOs: Prometheus burn-rate rules (with promtool tests), OpenSLO.",
                  no_args_is_help=True)


def _labels(values: list[str]) -> dict[str, str]:
    out = {}
    for v in values:
        key, sep, value = v.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"must be NAME=VALUE; got {v!r}", param_hint="--label")
        out[key.strip()] = value.strip().strip('"')
    return out


@app.command("rules")
@handles_errors
def rules_cmd(
    project: Path = PROJECT_OPTION,
    out: Path | None = typer.Option(None, "--out", help="Write <slo>.rules.yml, its promtool "
                                    "test <slo>.test.yml and inhibit_rules.yml here (default: "
                                    "print the rules)."),
    label: list[str] = typer.Option([], "--label", help="NAME=VALUE matcher added to every "
                                    "metric selector, e.g. job=keel (repeatable)."),
    runbook_url: str = typer.Option("runbooks", "--runbook-url", help="Folder or URL of the "
                                    "runbooks (keel runbook); alerts link <it>/<Alert>.md."),
) -> None:
    """Prometheus recording and alerting rules for every SLO (multiwindow burn rates)."""
    from keelwork.service.slos import slo_rules
    from keelwork.spec import load_spec

    made = slo_rules(load_spec(project), out, labels=_labels(label), runbook_base=runbook_url)
    if made.note is not None and out is not None:
        console.print(f"note: {made.note}", highlight=False)
    if out is None:
        typer.echo(made.text, nl=False)
        return
    for path in made.files:
        console.print(f"wrote {path}", highlight=False)
    console.print("check them: promtool check rules *.rules.yml; promtool test rules "
                  "*.test.yml", highlight=False)


class ExportFormat(StrEnum):
    openslo = "openslo"


@app.command("export")
@handles_errors
def export_cmd(
    project: Path = PROJECT_OPTION,
    fmt: ExportFormat = typer.Option(ExportFormat.openslo, "--format", help="Document format."),
    out: Path | None = typer.Option(None, "--out", help="Write here (default: print)."),
) -> None:
    """The SLOs as OpenSLO v1 documents (Service, SLI, SLO, AlertPolicy)."""
    from keelwork.service.slos import openslo
    from keelwork.spec import load_spec

    text = openslo(load_spec(project), out)
    if out is None:
        typer.echo(text, nl=False)
    else:
        console.print(f"wrote {out}", highlight=False)


@handles_errors
def runbook(
    project: Path = PROJECT_OPTION,
    out: Path = typer.Option(Path("runbooks"), "--out", help="Folder of the runbooks."),
) -> None:
    """Write one Markdown runbook per SLO alert: what fired, first commands, who owns it."""
    from keelwork.service.slos import write_runbooks
    from keelwork.spec import load_spec

    for path in write_runbooks(load_spec(project), out):
        console.print(f"wrote {path}", highlight=False)


def register(main: typer.Typer) -> None:
    main.add_typer(app, name="slo")
    main.command("runbook")(runbook)

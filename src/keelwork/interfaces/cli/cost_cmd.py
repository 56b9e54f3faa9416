"""``keel cost``: the monthly budget's Prometheus rules (with promtool tests) and runbooks,
and the month's cost per model and version."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import typer

from keelwork.interfaces.cli.output import JSON_OPTION, PROJECT_OPTION, console, handles_errors
from keelwork.interfaces.cli.slo_cmd import _labels

app = typer.Typer(help="Cost: the month's spend per model and version, budget alert rules.",
                  no_args_is_help=True)


@app.command("rules")
@handles_errors
def rules_cmd(
    project: Path = PROJECT_OPTION,
    out: Path | None = typer.Option(None, "--out", help="Write cost_budget.rules.yml and its "
                                    "promtool test cost_budget.test.yml here (default: print "
                                    "the rules)."),
    label: list[str] = typer.Option([], "--label", help="NAME=VALUE matcher added to every "
                                    "metric selector, e.g. job=keel (repeatable)."),
    runbook_url: str = typer.Option("runbooks", "--runbook-url", help="Folder or URL of the "
                                    "runbooks (keel cost runbook); alerts link <it>/<Alert>.md."),
) -> None:
    """Prometheus rules for cost.monthly_budget: alert_at shares spent, month-end forecast."""
    from keelwork.service.budget import cost_rules
    from keelwork.spec import load_spec

    made = cost_rules(load_spec(project), out, labels=_labels(label), runbook_base=runbook_url)
    if out is None:
        typer.echo(made.text, nl=False)
        return
    for path in made.files:
        console.print(f"wrote {path}", highlight=False)
    console.print("check them: promtool check rules cost_budget.rules.yml; promtool test "
                  "rules cost_budget.test.yml", highlight=False)


@app.command("runbook")
@handles_errors
def runbook_cmd(
    project: Path = PROJECT_OPTION,
    out: Path = typer.Option(Path("runbooks"), "--out", help="Folder of the runbooks "
                             "(relative to the project)."),
) -> None:
    """One Markdown runbook per budget alert (the alerts' runbook_url)."""
    from keelwork.service.budget import write_budget_runbooks
    from keelwork.spec import load_spec

    resolved = load_spec(project)
    folder = out if out.is_absolute() else resolved.project_dir / out
    for path in write_budget_runbooks(resolved, folder):
        console.print(f"wrote {path}", highlight=False)


@app.command("report")
@handles_errors
def report_cmd(project: Path = PROJECT_OPTION, as_json: bool = JSON_OPTION) -> None:
    """The calendar month's (UTC) cost so far per model and version, and the budget."""
    from keelwork.service.budget import project_cost
    from keelwork.spec import load_spec

    report = project_cost(load_spec(project))
    b, cur = report.budget, report.currency
    if as_json:
        typer.echo(json.dumps({
            "currency": cur, "month_start": b.month_start, "spent": b.spent,
            "forecast": b.forecast, "budget": b.budget, "share": b.share,
            "exhausted_at": b.exhausted_at,
            "versions": [{"model": v.model, "version": v.version, "cost": v.cost,
                          "cpu_seconds": v.cpu_seconds, "gpu_seconds": v.gpu_seconds,
                          "predictions": v.predictions, "input_tokens": v.input_tokens,
                          "output_tokens": v.output_tokens} for v in report.versions]}))
        return
    month = dt.datetime.fromtimestamp(b.month_start, dt.UTC)
    console.print(f"{month:%B %Y} (UTC) so far: {b.spent:.4f} {cur}; forecast for the month "
                  f"{b.forecast:.4f} {cur}", highlight=False)
    if b.budget is not None:
        console.print(f"budget {b.budget:g} {cur}: {100 * (b.share or 0):.1f}% spent",
                      highlight=False)
    for v in report.versions:
        console.print(f"  {v.model}:{v.version}  {v.cost:.4f} {cur}  ({v.predictions} "
                      f"answers, {v.cpu_seconds:.2f} CPU s, {v.gpu_seconds:.2f} GPU s, "
                      f"{v.input_tokens}+{v.output_tokens} tokens)", highlight=False)

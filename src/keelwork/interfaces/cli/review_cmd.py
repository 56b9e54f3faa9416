"""``keel review``: the human review queue (keel.yaml's ``review`` section).

``fill`` queues the day's guard-flagged, uncertain and random predictions within the budget
(``keel serve`` does it every ``review.interval``); ``next`` shows the next item to judge;
``label`` records a verdict, which becomes the prediction's label at once; ``skip`` passes;
``stats`` counts the queue and measures reviewers' agreement; ``export`` writes the queue as
Label Studio tasks or Argilla records, and ``import`` reads back the verdicts completed there.
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
    handles_errors,
)

app = typer.Typer(help="The human review queue: predictions a person should judge.",
                  no_args_is_help=True)
_REVIEWER = typer.Option(None, "--reviewer", help="Who judges (default: the user setting, "
                         "else the OS user).")


def _who(reviewer: str | None) -> str:
    from keelwork.service.projects import actor

    return actor(reviewer, current_settings())


def _label(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


@app.command("fill")
@handles_errors
def fill_cmd(project: Path = PROJECT_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Queue today's predictions worth a look, within review.budget_per_day."""
    from keelwork.service import review as use

    with use.project_review(project, current_settings()) as (resolved, engine, _):
        report = use.fill(resolved, engine)
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
        return
    queued = ", ".join(f"{n} {why}" for why, n in sorted(report.queued.items())) or "nothing"
    console.print(f"queued {queued}; {report.budget_left} left of today's budget",
                  highlight=False, markup=False)


@app.command("next")
@handles_errors
def next_cmd(project: Path = PROJECT_OPTION, reviewer: str | None = _REVIEWER,
             as_json: bool = JSON_OPTION) -> None:
    """Show the next item to judge (exit 1 when there is none)."""
    from keelwork.service import review as use

    with use.project_review(project, current_settings()) as (_, engine, _audit):
        item = use.next_item(engine, _who(reviewer))
    if item is None:
        console.print("the queue is empty for you", markup=False)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(item, default=str))
        return
    console.print(f"{item['prediction_id']}  {item['model']}:{item['version']}  "
                  f"({item['reason']})", highlight=False, markup=False)
    console.print(f"  inputs:  {json.dumps(item['inputs'], default=str)}", markup=False)
    console.print(f"  answer:  {json.dumps(item['outputs'], default=str)}", markup=False)
    console.print(f"judge it: keel review label {item['prediction_id']} LABEL", markup=False)


@app.command("label")
@handles_errors
def label_cmd(prediction_id: str = typer.Argument(..., help="The item's prediction id."),
              label: str = typer.Argument(..., help="The true label (JSON, or text)."),
              project: Path = PROJECT_OPTION, reviewer: str | None = _REVIEWER) -> None:
    """Record a verdict: it becomes the prediction's label (audited)."""
    from keelwork.service import review as use

    with use.project_review(project, current_settings()) as (resolved, engine, audit):
        done = use.verdict(resolved, engine, audit, prediction_id, _who(reviewer),
                           _label(label))
    console.print(f"labelled {prediction_id}: {json.dumps(done['label'])}", highlight=False,
                  markup=False)


@app.command("skip")
@handles_errors
def skip_cmd(prediction_id: str = typer.Argument(..., help="The item's prediction id."),
             project: Path = PROJECT_OPTION, reviewer: str | None = _REVIEWER) -> None:
    """Pass on an item (other reviewers still get it)."""
    from keelwork.service import review as use

    with use.project_review(project, current_settings()) as (_, engine, _audit):
        use.skip(engine, prediction_id, _who(reviewer))
    console.print(f"skipped {prediction_id}", markup=False)


@app.command("stats")
@handles_errors
def stats_cmd(project: Path = PROJECT_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Items per state, and reviewers' agreement on double-labelled items."""
    from keelwork.service import review as use

    with use.project_review(project, current_settings()) as (_, engine, _audit):
        got = use.stats(engine)
    if as_json:
        typer.echo(json.dumps(got))
        return
    console.print("items: " + (", ".join(f"{n} {s}" for s, n in sorted(got["items"].items()))
                               or "none"), markup=False)
    for a in got["agreement"]:
        kappa = "n/a" if a["kappa"] is None else f"{a['kappa']:.2f}"
        console.print(f"{' & '.join(a['reviewers'])}: {a['items']} items, "
                      f"{100 * a['agreement']:.0f}% agree, kappa {kappa}", markup=False)


@app.command("export")
@handles_errors
def export_cmd(fmt: str = typer.Option(..., "--format", help="label-studio or argilla."),
               project: Path = PROJECT_OPTION,
               out: Path | None = typer.Option(None, "--out", dir_okay=False)) -> None:
    """The queue as Label Studio tasks or Argilla records (JSON)."""
    from keelwork.service import review as use

    if fmt not in ("label-studio", "argilla"):
        raise typer.BadParameter("--format must be label-studio or argilla")
    with use.project_review(project, current_settings()) as (_, engine, _audit):
        rows = use.export(engine, fmt)
    text = json.dumps(rows, indent=1, default=str)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        console.print(f"wrote {len(rows)} items to {out}", markup=False)


@app.command("import")
@handles_errors
def import_cmd(file: Path = typer.Argument(..., exists=True, dir_okay=False,
                                           help="Label Studio tasks or Argilla records (JSON "
                                           "or JSON Lines), as exported from the tool."),
               fmt: str = typer.Option(..., "--format", help="label-studio or argilla."),
               project: Path = PROJECT_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Verdicts completed in Label Studio or Argilla become labels (one line per record;
    exit 1 when any is refused)."""
    from keelwork.service import review as use
    from keelwork.service.review_import import import_verdicts

    if fmt not in ("label-studio", "argilla"):
        raise typer.BadParameter("--format must be label-studio or argilla")
    text = file.read_text(encoding="utf-8")
    with use.project_review(project, current_settings()) as (resolved, engine, audit):
        done = import_verdicts(resolved, engine, audit, fmt, text, imported_by=_who(None))
    if as_json:
        typer.echo(json.dumps([d.as_dict() for d in done]))
    else:
        for d in done:
            who = f" by {d.reviewer}" if d.reviewer else ""
            why = f": {d.message}" if d.message else ""
            console.print(f"{d.where} ({d.prediction_id or '?'}{who}): {d.outcome}{why}",
                          highlight=False, markup=False)
        counts: dict[str, int] = {}
        for d in done:
            counts[d.outcome] = counts.get(d.outcome, 0) + 1
        console.print(", ".join(f"{n} {o}" for o, n in sorted(counts.items())) or "no records",
                      markup=False)
    if any(d.outcome == "refused" for d in done):
        raise typer.Exit(1)


__all__ = ["app"]

"""``keel drift``: a current data file against reference data or a saved reference profile."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from keelwork.interfaces.cli.output import console, fit, handles_errors
from keelwork.service.monitoring import write_report


@handles_errors
def drift(
    reference: Path = typer.Argument(..., help="Reference data (CSV/Parquet/JSONL) or a saved "
                                     "reference profile (.json)."),
    current: Path = typer.Argument(..., help="Current data to compare (CSV/Parquet/JSONL)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    out: Path | None = typer.Option(None, "--out", help="Also write the JSON report here."),
    html: Path | None = typer.Option(
        None, "--html", help="Also write a self-contained HTML report here (charts of every "
        "column's reference and current distributions; no script, no external URL)."),
    save_reference: Path | None = typer.Option(
        None, "--save-reference", help="Save the reference profile (JSON) to reuse: profiling "
        "the reference is the expensive part and needs doing once."),
    fail_on_drift: bool = typer.Option(False, help="Exit 1 when any column drifts."),
    text: list[str] = typer.Option(
        [], "--text", help="A free-text column (repeatable): compared by descriptors (length, "
        "words, out-of-vocabulary rate, ...) and, with the [text] extra, by the drift of "
        "WordLlama embeddings (MMD). Needs the reference as a data file."),
    embed: bool = typer.Option(True, "--embed/--no-embed", help="Compare text embeddings "
                               "too (needs keelwork[text])."),
    threshold: float | None = typer.Option(
        None, "--threshold", min=0.0, help="Minimum effect size that counts as drift, for "
        "every column (as keel.yaml's monitoring.drift.threshold; default: each method's "
        "own floor). Scores must also exceed the sampling noise."),
) -> None:
    """Per-column drift of CURRENT against REFERENCE, with calibrated thresholds.

    Numeric columns: normalised Wasserstein (also KS, PSI, Jensen-Shannon); categorical:
    Jensen-Shannon (also chi-square as Cohen's w, PSI), new and missing categories named. A column
    drifts when its score exceeds both a minimum effect size and the sampling noise at these
    sample sizes, so large files do not flag everything and tiny ones do not flag noise.
    """
    from keelwork.service.monitoring.compare import compare_files

    def save(profile: Any) -> None:
        if save_reference is not None:
            write_report(save_reference, json.dumps(profile.as_dict()))

    def note(text: str) -> None:
        console.print(f"[yellow]note:[/] {text}", highlight=False)

    with console.status("profiling the reference") as status:
        run = compare_files(reference, current, text=text, embed=embed, threshold=threshold,
                            on_phase=status.update, on_reference=save, on_note=note)
    report, how = run.report, run.how
    body = json.dumps(report.to_dict(), indent=2)
    if out is not None:
        write_report(out, body)
    if html is not None:
        write_report(html, report.to_html(
            title=f"Drift of {current.name}", reference_name=f"{reference.name} ({how})",
            current_name=current.name))
    if as_json:
        typer.echo(body)
    else:
        _print(report.to_dict(), reference, how, current)
    if fail_on_drift and report.drifted:
        raise typer.Exit(1)


def _print(report: dict[str, Any], reference: Path, how: str, current: Path) -> None:
    from rich.table import Table

    rows = report["rows"]
    table = Table(title=f"drift of {current.name} ({rows['current']} rows) against "
                        f"{reference.name} ({rows['reference']} rows, {how})")
    for col in ("column", "kind", "verdict", "method", "score", "threshold", "detail"):
        table.add_column(col, justify="right" if col in ("score", "threshold") else "left")
    for c in report["columns"]:
        verdict = {True: "[red]drift[/]", False: "[green]ok[/]"}.get(c.get("drift"),
                                                                     f"[yellow]{c['status']}[/]")
        score = "" if c.get("score") is None else f"{c['score']:.4g}"
        threshold = "" if c.get("threshold") is None else f"{c['threshold']:.3g}"
        detail = []
        if c.get("new_categories"):
            detail.append("new: " + ", ".join(str(n["category"]) for n in
                                              c["new_categories"][:5]))
        if c.get("missing_categories"):
            detail.append("missing: " + ", ".join(map(str, c["missing_categories"][:5])))
        if not detail and c.get("drift") is None:
            detail.append(c.get("reason", ""))
        table.add_row(c["column"], c.get("kind", ""), verdict, c.get("method") or "", score,
                      threshold, "; ".join(detail))
    console.print(fit(table, drop=("kind", "method")))
    s = report["summary"]
    schema = s.get("schema") or {}
    if schema.get("missing"):
        console.print(f"[red]schema change:[/] missing from {current.name}: "
                      f"{', '.join(schema['missing'])}", highlight=False, soft_wrap=True)
    if schema.get("added"):
        console.print(f"[yellow]schema change:[/] new in {current.name} (not in the "
                      f"reference, not compared): {', '.join(schema['added'])}", highlight=False,
                      soft_wrap=True)
    console.print(f"{len(s['drifted'])} of {s['columns']} column(s) drifted"
                  + (f": {', '.join(s['drifted'])}" if s["drifted"] else ""))


def register(app: typer.Typer) -> None:
    app.command("drift")(drift)

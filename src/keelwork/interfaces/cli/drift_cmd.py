"""``keel drift``: a current data file against reference data or a saved reference profile."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from keelwork.errors import DataFileError, MonitorError
from keelwork.interfaces.cli.output import console, fit, handles_errors


def _load_reference(path: Path) -> tuple[Any, str]:
    """A saved profile (JSON with the profile kind) or a data file profiled now."""
    from keelwork.adapters.data import read_table
    from keelwork.core.monitors import PROFILE_KIND, TableProfile, profile_table

    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataFileError(f"{path}: not a readable JSON profile ({exc}).",
                                path=str(path)) from None
        if not isinstance(data, dict) or data.get("kind") != PROFILE_KIND:
            raise MonitorError(f"{path} is JSON but not a keelwork reference profile (kind "
                               f"{PROFILE_KIND!r}); save one with --save-reference.")
        return TableProfile.from_dict(data), "saved profile"
    return profile_table(read_table(path)), "profiled now"


def _write_atomic(path: Path, text: str) -> None:
    from keelwork.adapters.data.atomic import write_text_atomic

    write_text_atomic(path, text)


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
    from keelwork.adapters.data import read_table
    from keelwork.core.monitors import drift_report, profile_table

    if text and reference.suffix == ".json":
        raise MonitorError("--text needs the reference texts: give the reference as a data "
                           "file (CSV/Parquet/JSONL), not a saved profile.")
    with console.status("profiling the reference"):
        if text:
            ref_table = read_table(reference)
            _check_text_columns(text, ref_table, reference)
            ref_profile, how = profile_table(ref_table.drop_columns(text)), "profiled now"
        else:
            ref_profile, how = _load_reference(reference)
    if save_reference is not None:
        _write_atomic(save_reference, json.dumps(ref_profile.as_dict()))
    with console.status("comparing"):
        cur_table = read_table(current)
        # Profiled here rather than inside drift_report so the HTML can chart the same counts.
        cur_profile = profile_table(cur_table, reference=ref_profile)
        added = [c for c in cur_table.column_names
                 if c not in ref_profile.columns and c not in text]
        report = drift_report(ref_profile, cur_profile, floor=threshold, added=added)
    if text:
        with console.status("comparing text columns"):
            _add_text_drift(report, text, ref_table, cur_table, embed)
    body = json.dumps(report, indent=2)
    if out is not None:
        _write_atomic(out, body)
    if html is not None:
        from keelwork.interfaces.reports import render_drift_html

        _write_atomic(html, render_drift_html(
            report, title=f"Drift of {current.name}", reference_name=f"{reference.name} ({how})",
            current_name=current.name, reference_profile=ref_profile,
            current_profile=cur_profile))
    if as_json:
        typer.echo(body)
    else:
        _print(report, reference, how, current)
    if fail_on_drift and report["summary"]["drifted"]:
        raise typer.Exit(1)


def _check_text_columns(columns: list[str], table: Any, path: Path) -> None:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise MonitorError(f"--text names {', '.join(map(repr, missing))}, not a column of "
                           f"{path} (columns: {', '.join(table.column_names)}).")


def _embedder(embed: bool) -> Any:
    if not embed:
        return None
    from keelwork.errors import MissingExtraError

    try:
        from keelwork.adapters.embedders import WordLlamaEmbedder

        return WordLlamaEmbedder()
    except MissingExtraError as exc:
        console.print(f"[yellow]note:[/] no embedding drift: {exc.message}", highlight=False)
        return None


def _add_text_drift(report: dict[str, Any], columns: list[str], ref_table: Any,
                    cur_table: Any, embed: bool) -> None:
    """Append the text verdicts to ``report`` and recount its summary."""
    from keelwork.core.monitors import build_text_reference, text_drift

    embedder = _embedder(embed)
    for col in columns:
        ref = build_text_reference(col, ref_table.column(col), embedder=embedder)
        if col in cur_table.column_names:
            verdicts = [v.as_dict() for v in text_drift(ref, cur_table.column(col),
                                                        embedder=embedder)]
        else:
            verdicts = [{"column": col, "kind": "text", "status": "missing", "drift": True,
                         "score": None, "reason": f"Text column {col!r} is in the reference "
                         "but not in the current data: a schema change, counted as drift."}]
            report["summary"]["schema"]["missing"].append(col)
        report["columns"].extend(verdicts)
    cols = report["columns"]
    compared = [c for c in cols if c.get("drift") is not None]
    drifted = [c["column"] for c in cols if c.get("drift")]
    report["summary"].update(
        columns=len(cols), drifted=drifted,
        detectable=[c["column"] for c in cols if c.get("detectable")],
        not_compared=[c["column"] for c in cols if c.get("drift") is None],
        share_drifted=len(drifted) / len(compared) if compared else 0.0)


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

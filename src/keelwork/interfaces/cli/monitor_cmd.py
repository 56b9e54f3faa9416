"""``keel monitor``: build the monitoring reference, run the monitor over the log, show results.

- ``keel monitor reference``: profile ``monitoring.reference`` (and the registered model's
  predictions on it) once and store it; every run compares with it.
- ``keel monitor run``: the prediction log of one model over ``--since``/``--until`` in windows
  (``--window 1h``, ``15m``, ``1d`` or ``1000p``): drift of inputs, predictions and labels,
  per segment, realised quality with label coverage, and CBPE's estimate. Each window is
  stored (a rerun replaces it), which is what ``/metrics`` exports.
- ``keel monitor show``: the stored windows, newest first.

The store is found as for every command (``--project``, ``$KEELWORK_STORAGE_URL``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

from keelwork.errors import MonitorError
from keelwork.interfaces.cli.output import (
    JSON_OPTION,
    PROJECT_OPTION,
    console,
    current_settings,
    err_console,
    fit,
    handles_errors,
)
from keelwork.service.monitoring import write_report
from keelwork.service.projects import project_spec

app = typer.Typer(help="Drift and quality monitoring over the prediction log.",
                  no_args_is_help=True)

_MODEL = typer.Option(None, "--model", "-m", help="The model (default: the first in "
                      "keel.yaml).")


@app.command("reference")
@handles_errors
def reference_cmd(
    model: str | None = _MODEL,
    data: Path | None = typer.Option(None, "--data", help="Reference data (CSV/Parquet/JSONL); "
                                     "default monitoring.reference of keel.yaml."),
    version: int | None = typer.Option(None, "--version", min=1, help="The model version "
                                       "whose predictions are profiled (default: the "
                                       "champion); each version has its own reference."),
    project: Path = PROJECT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Profile the reference data and a model version's predictions on it; store the result."""
    from rich.markup import escape

    from keelwork.service.monitoring.runs import build_and_store_reference, monitored_model

    resolved = project_spec(project, current_settings())
    name = monitored_model(resolved, model)
    with console.status(f"profiling the reference of {name}"):
        ref, stored = build_and_store_reference(resolved, name, data=data, version=version)
    summary = {"model": ref.model, "model_version": ref.model_version, "rows": ref.rows,
               "source": ref.source, "created_at": stored.created_at.isoformat(),
               "columns": list(ref.profile.columns), "text_columns": list(ref.text),
               "label_column": ref.label_column, "cbpe": ref.cbpe is not None,
               "cbpe_task": (ref.cbpe or {}).get("task", "binary") if ref.cbpe else None,
               "cbpe_reason": ref.cbpe_reason,
               "segments": {f: len(v) for f, v in ref.segments.items()},
               "warnings": list(ref.warnings)}
    for w in ref.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(w)}", soft_wrap=True)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    console.print(f"[green]stored[/] the monitoring reference of {ref.model}"
                  f"{'' if ref.model_version is None else f':{ref.model_version}'}: "
                  f"{ref.rows} rows of {ref.source}", highlight=False)
    console.print(f"  columns: {', '.join(summary['columns'])}", highlight=False)
    if ref.text:
        console.print(f"  free text (descriptor drift): {', '.join(ref.text)}", highlight=False)
    cbpe = (f"yes ({summary['cbpe_task']})" if ref.cbpe
            else f"no: {ref.cbpe_reason or 'unknown'}")
    console.print(f"  ground truth: {ref.label_column or 'none'}; performance estimation "
                  f"(CBPE): {escape(cbpe)}", highlight=False, soft_wrap=True)


@app.command("run")
@handles_errors
def run_cmd(
    model: str | None = _MODEL,
    window: str | None = typer.Option(None, "--window", "-w", help="1h, 15m, 1d or 1000p "
                                      "(every 1000 predictions); default the first of "
                                      "monitoring.windows."),
    since: str = typer.Option("-24h", "--since", help="ISO time or a duration before now "
                              "(24h, -24h, 7d)."),
    until: str | None = typer.Option(None, "--until", help="ISO time or a duration before "
                                     "now; default now."),
    as_json: bool = JSON_OPTION,
    out: Path | None = typer.Option(None, "--out", help="Also write the JSON report here."),
    html: Path | None = typer.Option(None, "--html", help="Also write an HTML report here."),
    fail_on_drift: bool = typer.Option(False, "--fail-on-drift", help="Exit 1 when a window "
                                       "(or a segment of one) drifts."),
    fail_on_fairness: bool = typer.Option(False, "--fail-on-fairness", help="Exit 1 when a "
                                          "window's fairness alerts (keel.yaml's fairness)."),
    version: int | None = typer.Option(
        None, "--version", min=1, help="Monitor this model version's predictions (e.g. the "
        "canary's during a rollout) against its own reference; such runs are shown, not "
        "stored. Default: the champion's, stored."),
    rescore: bool = typer.Option(True, "--rescore/--no-rescore", help="Score logged inputs "
                                 "again when the log holds labels but no probabilities."),
    rollups: bool = typer.Option(True, "--rollups/--no-rollups", help="Serve time windows "
                                 "from the rollups 'keel serve' keeps (same results); "
                                 "--no-rollups reads every window from the log."),
    project: Path = PROJECT_OPTION,
) -> None:
    """Monitor the prediction log in windows against the stored reference."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from keelwork.service.monitoring.runs import monitored_model, open_monitor, window_spec

    render = _renderer() if html is not None else None  # before the run, not after it
    resolved = project_spec(project, current_settings())
    name = monitored_model(resolved, model)
    spec = window_spec(resolved, window)
    now = time.time()
    lo, hi = _when(since, now, "--since"), _when(until, now, "--until") if until else now
    # Each version is compared with its own reference: the champion's unless --version.
    with open_monitor(resolved, name, version=version, rescore=rescore,
                      ahead=(spec, lo, hi) if rollups else None) as session:
        if session.reference.note and not as_json:  # --json: the report's reference.note
            err_console.print(f"[yellow]note:[/] {session.reference.note}", highlight=False)
        for warning in session.warnings:
            err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
        total = len(spec.time_windows(lo, hi)) if spec.is_time and hi > lo else None
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                      MofNCompleteColumn(), console=err_console, transient=True,
                      disable=as_json) as progress:
            task = progress.add_task(f"{name} {spec.text} windows", total=total)
            report = session.run(spec, lo, hi, now=now, rollups=rollups,
                                 on_window=lambda _w: progress.advance(task))
    text = json.dumps(report.to_dict(), indent=2)
    if out is not None:
        write_report(out, text)
    if html is not None and render is not None:
        write_report(html, str(render(report)))
    if as_json:
        typer.echo(text)
    else:
        _print(report.to_dict())
    if fail_on_drift and report.drifted:
        raise typer.Exit(1)
    if fail_on_fairness and any((w.get("fairness") or {}).get("alerts")
                                for w in report.windows):
        raise typer.Exit(1)


@app.command("show")
@handles_errors
def show_cmd(
    model: str | None = _MODEL,
    window: str | None = typer.Option(None, "--window", "-w", help="Only this window spec."),
    limit: int = typer.Option(24, "--limit", "-n", min=1, help="Most windows shown."),
    project: Path = PROJECT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """The latest stored window results (what /metrics exports), newest first."""
    from keelwork.service.monitoring.runs import monitored_model, stored_windows

    resolved = project_spec(project, current_settings())
    name = monitored_model(resolved, model)
    stored = stored_windows(resolved, name, window, limit=limit)
    if as_json:
        typer.echo(json.dumps([{"window": w.window, "version": w.version,
                                "computed_at": w.computed_at.isoformat(), **w.body}
                               for w in stored], indent=2))
        return
    if not stored:
        console.print(f"no stored monitoring results for {name}; run 'keel monitor run'",
                      highlight=False)
        return
    _print({"model": name, "window": window or "all", "windows": [w.body for w in stored]})


@app.command("fields")
@handles_errors
def fields_cmd(
    model: str | None = _MODEL,
    since: str = typer.Option("-30d", "--since", help="ISO time or a duration before now "
                              "(30d, -24h)."),
    until: str | None = typer.Option(None, "--until", help="ISO time or a duration before "
                                     "now; default now."),
    version: int | None = typer.Option(None, "--version", min=1, help="Only this version's "
                                       "answers (default: every version's)."),
    project: Path = PROJECT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Per-field accuracy of a model that answers records of fields (an extraction model),
    from the labels its predictions got."""
    from rich.table import Table

    from keelwork.service.monitoring.field_accuracy import field_accuracy
    from keelwork.service.monitoring.runs import monitored_model

    resolved = project_spec(project, current_settings())
    name = monitored_model(resolved, model)
    now = time.time()
    lo, hi = _when(since, now, "--since"), _when(until, now, "--until") if until else now
    got = field_accuracy(resolved, name, since=lo, until=hi, version=version)
    if as_json:
        typer.echo(json.dumps(got, indent=2))
        return
    console.print(f"{name}: {got['predictions']} answers, {got['labelled']} labelled",
                  highlight=False, markup=False)
    table = Table("field", "labelled", "right", "accuracy")
    for field, row in [*got["fields"].items(), ("all fields", got["overall"])]:
        table.add_row(field, str(row["labelled"]), str(row["right"]),
                      _fmt(row["accuracy"]))
    console.print(table)


# --------------------------------------------------------------------------- output
def _when(text: str, now: float, option: str) -> float:
    from keelwork.service.logs import parse_when

    try:
        return parse_when(text.lstrip("-"), now)
    except ValueError as exc:
        raise MonitorError(f"{option} {exc}.") from None


def _renderer() -> Any:
    """The page renderer, imported before the run so that a missing one fails at once."""
    import keelwork.core.reports  # noqa: F401
    from keelwork.core.monitors.report import MonitorReport

    return MonitorReport.to_html


def _fmt(value: Any, spec: str = ".3f") -> str:
    return "" if value is None else format(value, spec)


def _print(report: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from keelwork.core.monitors.report import window_drifted

    version = report.get("model_version")
    ref = report.get("reference") or {}
    against = (f" against reference #{ref['id']} (version {ref.get('model_version')})"
               if ref.get("id") is not None else "")
    table = Table(title=f"{report['model']}{'' if version is None else f':{version}'}: "
                        f"{report['window']} windows{against}")
    for col in ("start", "predictions", "status", "drifted", "segments drifted", "quality",
                "estimated", "labels"):
        table.add_column(col, justify="right" if col == "predictions" else "left")
    empty = [w for w in report["windows"] if not w.get("predictions")]
    for w in report["windows"]:
        if not w.get("predictions") and len(empty) < len(report["windows"]):
            continue  # counted below: a day of hourly windows is mostly quiet hours
        status = {"ok": "[green]ok[/]", "drift": "[red]drift[/]"}.get(
            w.get("status", ""), f"[yellow]{w.get('status', '')}[/]")
        drifted = ", ".join(w["drift"]["summary"]["drifted"][:6])
        segs = ", ".join(f"{s['field']}={s['value']}" for s in w.get("segments", [])
                         if s["summary"]["drifted"])
        q = w.get("quality") or {}
        real, est = q.get("realised"), q.get("estimated")
        quality = labels = estimate = ""
        if real:
            if real.get("accuracy") is not None:
                quality = f"acc {_fmt(real['accuracy'])} f1 {_fmt(real.get('f1'))}"
            elif real.get("mae") is not None:
                quality = f"mae {_fmt(real['mae'])} rmse {_fmt(real.get('rmse'))}"
            cov = real.get("coverage")
            labels = f"{_fmt(cov, '.0%')} {real.get('state', '')}" if cov is not None else ""
        if est and est.get("accuracy") is not None:
            estimate = f"acc {_fmt(est['accuracy'])}"
        table.add_row(w["start"][:16].replace("T", " "), str(w["predictions"]), status,
                      escape(drifted), escape(segs), quality, estimate, labels)
    console.print(fit(table, drop=("estimated",)))
    windows = report["windows"]
    n_drift = sum(1 for w in windows if window_drifted(w))
    hidden = f"; {len(empty)} without predictions not shown" if 0 < len(empty) < len(
        windows) else ""
    console.print(f"{n_drift} of {len(windows)} window(s) drifted{hidden}", highlight=False)
    _print_fairness(windows)
    _print_attributions(windows)
    served = sum(1 for w in windows if w.get("computed_from", "log") != "log")
    if served:
        console.print(f"{served} of {len(windows)} window(s) computed from rollups",
                      highlight=False)


def _print_attributions(windows: list[dict[str, Any]]) -> None:
    """The global view of the stored explanations: mean |attribution| per feature, per window
    that holds any (the five largest)."""
    for w in windows:
        got = w.get("attributions")
        if not got:
            continue
        top = ", ".join(f"{k} {v:.4g}" for k, v in list(got["mean_abs"].items())[:5])
        ref = got.get("reference")
        moved = ("no reference baseline (the model has no exact explainer)" if ref is None
                 else "vs reference: not comparable" if ref.get("distance") is None
                 else f"vs reference: {ref['distance']:.2f} of the reliance moved"
                 + (" (shifted)" if ref.get("shifted") else ""))
        console.print(f"{w['start'][:16].replace('T', ' ')}: mean |attribution| of "
                      f"{got['explained']} explained: {top}; {moved}", highlight=False)


def _print_fairness(windows: list[dict[str, Any]]) -> None:
    """The latest labelled window's fairness (keel.yaml's ``fairness``), and how many alert."""
    from rich.markup import escape
    from rich.table import Table

    fair = [w["fairness"] for w in windows if (w.get("fairness") or {}).get("labelled")]
    if not fair:
        if any("fairness" in w for w in windows):
            console.print("fairness: no labelled answers in these windows yet", highlight=False)
        return
    latest = fair[-1]
    table = Table(title=f"fairness of the latest labelled window ({latest['labelled']} "
                        f"labelled; favourable class {latest['positive_label']!r}; "
                        f"{latest['confidence']:.0%} intervals)")
    for col in ("field", "groups (selection rate, labelled)", "measure", "value", "interval",
                "threshold", "verdict"):
        table.add_column(col)
    for f in latest["fields"]:
        groups = ", ".join(f"{g['value']} {g['selection_rate']:.3f} ({g['labelled']})"
                           for g in f["groups"][:6])
        if f["skipped_groups"]:
            groups += f"; {f['skipped_groups']} too small"
        for i, m in enumerate(f["measures"]):
            iv = m["interval"]
            verdict = {"alert": "[red]alert[/]", "ok": "[green]ok[/]"}.get(
                m["status"], f"[yellow]{m['status']}[/]")
            table.add_row(escape(f["field"]) if i == 0 else "", escape(groups) if i == 0 else "",
                          m["measure"], _fmt(m["value"]),
                          f"{iv[0]:.3f}-{iv[1]:.3f}" if iv else "", f"{m['threshold']:g}",
                          verdict)
    console.print(fit(table, drop=("interval",)))
    alerting = sum(1 for f in fair if f["alerts"])
    console.print(f"fairness alerts in {alerting} of {len(fair)} labelled window(s)"
                  + "".join(f"\n  {escape(a)}" for a in latest["alerts"]), highlight=False)


__all__ = ["app"]

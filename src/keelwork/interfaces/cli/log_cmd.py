"""``keel log``: read the prediction log -- follow it, export it to Parquet or CSV.

The store is found from ``--project DIR`` (default: the current directory): the
``KEELWORK_STORAGE_URL`` environment variable, else ``storage.url`` of ``DIR/keel.yaml``, else
``sqlite:///DIR/.keel/keel.db``. Reading never creates a database or a table.

Exports stream in batches (constant memory) into ``FILE.partial`` and rename it to ``FILE`` at
the end, so an interrupted export never leaves a truncated file under the final name. Times are
UTC unless an offset is given.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from keelwork.interfaces.cli.output import (
    PROJECT_OPTION,
    console,
    current_settings,
    err_console,
    handles_errors,
)
from keelwork.service.logs import parse_when

if TYPE_CHECKING:
    from keelwork.core.predictions import PredictionRecord

app = typer.Typer(help="The prediction log: tail it, follow it, export it.",
                  no_args_is_help=True)


_PROJECT = PROJECT_OPTION
_MODEL = typer.Option(None, "--model", "-m", help="Only this model.")


class ExportFormat(StrEnum):
    parquet = "parquet"
    csv = "csv"


@app.command("tail")
@handles_errors
def tail_cmd(
    lines: int = typer.Option(20, "-n", "--lines", min=1, help="How many of the latest."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new predictions "
                                "(Ctrl-C stops)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    model: str | None = _MODEL,
    status: str | None = typer.Option(None, "--status", help="Only records of this status: "
                                      "ok, fallback, rejected, error (requests that got no "
                                      "answer: timeouts, model errors, load failures)."),
    interval: float = typer.Option(1.0, "--interval", min=0.05, help="Seconds between polls "
                                   "with --follow."),
    project: Path = _PROJECT,
) -> None:
    """Print the latest predictions, oldest first; --follow keeps printing new ones.

    Following polls for rows newer than the last one shown: a record replayed from a spool
    with an older time is in the log but not printed.
    """
    from keelwork.service.logs import follow as newer
    from keelwork.service.logs import open_log

    with open_log(project, current_settings()) as reader:
        records = reader.tail(lines, model=model, status=status)
        for record in records:
            _print_record(record, as_json)
        if not follow:
            return
        after = (records[-1].ts, records[-1].id) if records else None
        while True:
            time.sleep(interval)
            for record in newer(reader, after, model=model, status=status):
                _print_record(record, as_json)
                after = (record.ts, record.id)


def _print_record(record: PredictionRecord, as_json: bool) -> None:
    if as_json:
        import orjson

        typer.echo(orjson.dumps(record.to_dict(), default=repr).decode())
        return
    import orjson
    from rich.text import Text

    status_style = {"ok": "green", "fallback": "yellow", "rejected": "magenta"}.get(
        record.status, "red")
    line = Text()
    line.append(_iso(record.ts), "dim")
    line.append(f"  {record.id}  {record.model}@{record.version}  ")
    line.append(f"{record.status:<8}", status_style)
    line.append(f" {record.latency_ms:8.2f} ms")
    if record.guard:
        line.append(f"  guard={record.guard}", "yellow")
    if record.answered_by:
        line.append(f"  by={record.answered_by}")
    if record.tenant:
        line.append(f"  tenant={record.tenant}")
    if record.subject_id:
        line.append(f"  subject={record.subject_id}")
    for label, value in (("in", record.inputs), ("out", record.outputs)):
        text = orjson.dumps(value, default=repr).decode()
        line.append(f"  {label}={text if len(text) <= 60 else text[:57] + '...'}", "cyan")
    error = record.request_meta.get("error") if isinstance(record.request_meta, dict) else None
    if error:
        line.append(f"  error={str(error)[:200]}", "red")
    console.print(line, soft_wrap=True, highlight=False)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


@app.command("show")
@handles_errors
def show_cmd(
    prediction_id: str = typer.Argument(..., help="The prediction's id (x-prediction-ids)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object: the record and its "
                                 "explanation."),
    project: Path = _PROJECT,
) -> None:
    """Print one prediction and, when one is stored, its explanation (POST :explain)."""
    from keelwork.service.logs import open_log, show_prediction

    with open_log(project, current_settings()) as reader:
        record, explanation = show_prediction(reader, prediction_id)
    if as_json:
        import orjson

        typer.echo(orjson.dumps({**record.to_dict(), "explanation": explanation},
                                default=repr).decode())
        return
    _print_record(record, False)
    if explanation is None:
        console.print("no explanation stored (POST /v1/models/NAME:explain with "
                      '{"prediction_ids": [...]} makes one)', highlight=False)
        return
    from rich.table import Table

    cls = explanation.get("output_class")
    console.print(f"explanation: {explanation['method']}, output {explanation['output']}"
                  + (f" of class {cls!r}" if cls is not None else "")
                  + f": expected {explanation['expected_value']:.6g} -> "
                  f"{explanation['output_value']:.6g}", highlight=False)
    table = Table("feature", "attribution")
    ranked = sorted(explanation["attributions"].items(), key=lambda kv: -abs(kv[1]))
    for name, value in ranked:
        table.add_row(str(name), f"{value:+.6g}")
    console.print(table)


@app.command("export")
@handles_errors
def export_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="File to write.", dir_okay=False),
    fmt: ExportFormat = typer.Option(ExportFormat.parquet, "--format", "-f",
                                     case_sensitive=False, help="parquet or csv."),
    since: str | None = typer.Option(None, "--since", help="From this time: ISO date/time "
                                     "(UTC unless an offset is given) or a duration (1h, 2d)."),
    until: str | None = typer.Option(None, "--until", help="Up to this time (exclusive); "
                                     "default: now."),
    model: str | None = _MODEL,
    with_labels: bool = typer.Option(False, "--with-labels", help="Join each prediction to "
                                     "its current label (ground truth): adds the columns "
                                     "label, label_ts and label_source."),
    batch_size: int = typer.Option(5000, "--batch-size", min=1, hidden=True),
    project: Path = _PROJECT,
) -> None:
    """Export predictions (with inputs, outputs and metadata) to Parquet or CSV."""
    now = time.time()
    since_ts = _when(since, now, "--since")
    until_ts = _when(until, now, "--until") if until is not None else now
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from keelwork.service.logs import count, export_log, open_log

    with open_log(project, current_settings()) as reader:
        total = count(reader, since_ts, until_ts, model)
        with Progress(TextColumn("[bold]exporting"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err_console) as progress:
            task = progress.add_task("export", total=total)
            written, labelled = export_log(
                reader, out, fmt.value, since=since_ts, until=until_ts, model=model,
                with_labels=with_labels, batch_size=batch_size,
                progress=lambda n: progress.update(task, completed=n, total=max(total, n)))
    joined = f", {labelled} with a label" if with_labels else ""
    console.print(f"exported {written} prediction(s){joined} to {out} ({fmt.value})",
                  highlight=False)


def _when(text: str | None, now: float, option: str) -> float | None:
    if text is None:
        return None
    try:
        return parse_when(text, now)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=f"'{option}'") from None

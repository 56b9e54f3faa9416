"""``keel ingest`` (labels and prediction records from files) and ``keel score`` (batch scoring).

The store is found as for ``keel log``: ``$KEELWORK_STORAGE_URL``, else ``storage.url`` of
``DIR/keel.yaml`` (``--project DIR``), else ``sqlite:///DIR/.keel/keel.db``.

Every file is read end to end before anything is written: a malformed one (unreadable, wrong
encoding, ragged CSV line, mixed types, empty) stops the command with its file, line and column
and exit code 2, and nothing of any file is stored. Records that break the contract are
dead-lettered (``--dead-letters FILE`` also writes them as JSON lines) and the rest is
ingested. Each chunk commits with its checkpoint: after a crash or Ctrl-C the same command
resumes where it stopped, and ingesting the same content again adds nothing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from keelwork.errors import KeelworkError
from keelwork.interfaces.cli.output import (
    PROJECT_OPTION,
    console,
    current_settings,
    err_console,
    fail,
    handles_errors,
)

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from keelwork.core.ingest import ProgressEvent
    from keelwork.service.ingest import ChunkHandler, FileResult, Ledger
    from keelwork.service.ingest.files import ProgressHook

_PROJECT = PROJECT_OPTION
_JSON = typer.Option(False, "--json", help="Print the summary as JSON: one object per file.")
_COMMIT_EVERY = typer.Option(1000, "--commit-every", min=1,
                             help="Records per transaction (and per checkpoint).")
_DEAD_LETTERS = typer.Option(None, "--dead-letters", dir_okay=False,
                             help="Also write the dead letters of these files to this "
                             "JSON-lines file.")


class FileKind(StrEnum):
    labels = "labels"
    predictions = "predictions"


def register(app: typer.Typer) -> None:
    """Add ``ingest`` and ``score`` to the ``keel`` app."""
    app.command("ingest")(ingest)
    app.command("score")(score)


# --------------------------------------------------------------------------- keel ingest
@handles_errors
def ingest(
    files: list[Path] = typer.Argument(None, help="CSV, TSV, JSON-lines or Parquet files.",
                                       show_default=False),
    labels: bool = typer.Option(False, "--labels", help="The files hold labels (the default; "
                                "same as --kind labels)."),
    kind: FileKind | None = typer.Option(None, "--kind", case_sensitive=False,
                                         help="labels: ground truth for prediction ids; "
                                         "predictions: prediction records, e.g. from 'keel log "
                                         "export'."),
    watch_dir: Path | None = typer.Option(None, "--watch", file_okay=False,
                                          help="Keep ingesting new files that appear in this "
                                          "directory (Ctrl-C stops)."),
    id_column: str = typer.Option("prediction_id", "--id-column",
                                  help="Labels: the column holding the prediction id."),
    label_column: str = typer.Option("label", "--label-column",
                                     help="Labels: the column holding the label."),
    ts_column: str = typer.Option("ts", "--ts-column", help="Labels: the optional column "
                                  "saying when the truth was observed (unix seconds or ISO)."),
    interval: float = typer.Option(1.0, "--interval", min=0.05,
                                   help="Seconds between polls with --watch."),
    dead_letters: Path | None = _DEAD_LETTERS,
    commit_every: int = _COMMIT_EVERY,
    as_json: bool = _JSON,
    project: Path = _PROJECT,
) -> None:
    """Load labels (or prediction records) from files into the store, exactly once.

    Labels attach ground truth to prediction ids, late and in any order: a repeated label is a
    no-op, a different one replaces it (the old one is kept in the label history), and labels
    of ids the prediction log does not hold are kept aside and reported.
    """
    if labels and kind is FileKind.predictions:
        raise fail("--labels and --kind predictions contradict each other; give one.")
    files = list(files or [])
    if not files and watch_dir is None:
        raise fail("Give the files to ingest, or --watch DIR.")
    from keelwork.service.ingest import check_sources, run_file
    from keelwork.service.logs import file_handler, load_project_spec, open_ledger

    settings = current_settings()
    handler = file_handler(kind or FileKind.labels, id_column, label_column, ts_column,
                           load_project_spec(None, project))
    checked = check_sources(files, handler)  # every file, before anything is written
    with open_ledger(project, settings=settings) as ledger:
        results: list[FileResult] = []
        if checked:
            ledger.ensure_schema()
            with _progress() as (_bar, hook):
                for file in checked:
                    results.append(run_file(ledger, handler, file, commit_every=commit_every,
                                            progress=hook))
            _report(results, as_json)
            _write_dead_letters(ledger, results, dead_letters)
        if watch_dir is not None:
            _watch(watch_dir, handler, ledger, interval, commit_every, as_json)


@contextmanager
def _progress() -> Iterator[tuple[Progress, ProgressHook]]:
    """A rich progress bar per file on stderr, and the hook that moves it."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    tasks: dict[str, TaskID] = {}
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=err_console) as bar:

        def hook(event: ProgressEvent) -> None:
            task = tasks.get(event.path)
            if task is None:
                task = tasks[event.path] = bar.add_task(Path(event.path).name,
                                                        total=event.rows_total)
            bar.update(task, completed=event.rows_done, total=event.rows_total)

        yield bar, hook


def _watch(directory: Path, handler: ChunkHandler, ledger: Ledger, interval: float,
           commit_every: int, as_json: bool) -> None:
    from keelwork.service.ingest import watch

    stop = threading.Event()
    err_console.print(f"watching {directory} for new {handler.kind} files every "
                      f"{interval:g}s (Ctrl-C stops)", highlight=False)

    def on_error(path: Path, exc: KeelworkError) -> None:
        err_console.print(f"[bold red]error:[/] {_escape(exc.message)}", soft_wrap=True)

    try:
        watch(directory, handler, ledger, interval=interval, stop=stop,
              commit_every=commit_every, on_result=lambda r: _report([r], as_json),
              on_error=on_error)
    except KeyboardInterrupt:
        stop.set()
        err_console.print("stopped watching")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


# --------------------------------------------------------------------------- reports
def result_dict(result: FileResult) -> dict[str, Any]:
    """A JSON-able summary of one file (what ``--json`` prints)."""
    return {"path": str(result.path), "kind": result.kind, "target": result.target or None,
            "sha256": result.file_sha, "status": result.status, "rows": result.rows,
            "resumed_from": result.resumed_from, **result.counts.as_dict(),
            "unknown_ids": result.unknown_ids,
            "dead_letters": [d.to_dict() for d in result.examples]}


def _report(results: list[FileResult], as_json: bool) -> None:
    if as_json:
        for r in results:
            typer.echo(json.dumps(result_dict(r), default=str))
        return
    labels = any(r.kind == "labels" for r in results)
    heads = ["read", "ingested", "duplicate", "dead-lettered"]
    if labels:
        heads += ["unknown ids", "relabelled"]
    rows = []
    for r in results:
        c = r.counts
        status = (f"resumed at row {r.resumed_from}" if r.status == "resumed"
                  else r.status.replace("_", " "))
        values = [c.read, c.ingested, c.duplicates, c.dead_lettered, c.unknown, c.relabelled]
        rows.append((str(r.path), status, [str(v) for v in values[:len(heads)]]))
    if console.width >= 100:
        from rich.table import Table

        table = Table(show_edge=False, pad_edge=False)
        table.add_column("file", overflow="fold")
        table.add_column("status", no_wrap=True)
        for head in heads:
            table.add_column(head, justify="right", no_wrap=True)
        for path, status, cells in rows:
            table.add_row(_escape(path), status, *cells)
        console.print(table)
    else:  # a narrow terminal or a log: one line per file reads better than a crushed table
        for path, status, cells in rows:
            counts = ", ".join(f"{h} {v}" for h, v in zip(heads, cells, strict=True))
            console.print(f"{_escape(path)}: {status}; {counts}", soft_wrap=True,
                          highlight=False)
    for r in results:
        for d in r.examples:
            where = f"{r.path}:{d.line}" if d.line is not None else f"{r.path} row {d.row}"
            reasons = "; ".join(str(x.get("message") or x.get("rule")) for x in d.reasons)
            console.print(f"[yellow]dead letter[/] {_escape(where)}: {_escape(reasons)}",
                          soft_wrap=True)
        if r.counts.dead_lettered > len(r.examples):
            console.print(f"... {r.counts.dead_lettered - len(r.examples)} more dead letter(s) "
                          f"in {r.path}; see --dead-letters FILE", highlight=False)
        if r.unknown_ids:
            shown = ", ".join(r.unknown_ids[:5]) + (f" and {r.counts.unknown - 5} more"
                                                    if r.counts.unknown > 5 else "")
            console.print(f"[yellow]unknown prediction ids[/] in {_escape(str(r.path))} "
                          f"(kept; attached once the predictions arrive): {shown}",
                          soft_wrap=True, highlight=False)


def _write_dead_letters(ledger: Ledger, results: list[FileResult], out: Path | None) -> None:
    """All dead letters of the given files, as JSON lines, via a temporary name."""
    if out is None:
        return
    from keelwork.service.logs import write_dead_letters

    written = write_dead_letters(ledger, results, out)
    err_console.print(f"wrote {written} dead letter(s) to {out}", highlight=False)


# --------------------------------------------------------------------------- keel score
@handles_errors
def score(
    data: list[Path] = typer.Argument(..., help="Data files to score (CSV, TSV, JSON lines, "
                                      "Parquet).", show_default=False),
    model: str = typer.Option(..., "--model", "-m", help="NAME, NAME:VERSION or NAME@ALIAS "
                              "(NAME alone: its champion, else its latest version)."),
    out: Path | None = typer.Option(None, "--out", "-o", dir_okay=False,
                                    help="Also write the predictions to this file (.csv, "
                                    ".jsonl or .parquet): one line per record."),
    spec: Path | None = typer.Option(None, "--spec", dir_okay=False,
                                     help="keel.yaml whose contract the records must meet "
                                     "(default: DIR/keel.yaml when it exists)."),
    id_column: str | None = typer.Option(None, "--id-column", help="A column holding each "
                                         "record's id: the idempotency key, not a model input."),
    predict_batch_size: int = typer.Option(256, "--batch-size", min=1,
                                           help="Records per model call."),
    dead_letters: Path | None = _DEAD_LETTERS,
    commit_every: int = _COMMIT_EVERY,
    as_json: bool = _JSON,
    project: Path = _PROJECT,
) -> None:
    """Score data files with a registered model; predictions go to the prediction log.

    Records that break keel.yaml's contract (or that the model refuses) are dead-lettered with
    their line. Scoring the same file with the same model version again adds nothing; after a
    crash the same command resumes where it stopped.
    """
    if out is not None and len(data) != 1:
        raise fail(f"--out takes the predictions of one data file; got {len(data)} files.")
    from keelwork.service.ingest import run_file
    from keelwork.service.logs import load_project_spec, open_ledger, prepare_score

    job = prepare_score(data, model, load_project_spec(spec, project), project,
                        spec_given=spec is not None, id_column=id_column,
                        predict_batch_size=predict_batch_size, out=out,
                        settings=current_settings())
    try:
        with open_ledger(job.project_dir, job.url, settings=current_settings()) as ledger:
            ledger.ensure_schema()
            results = []
            with _progress() as (_bar, hook):
                for file in job.files:
                    results.append(run_file(ledger, job.handler, file,
                                            commit_every=commit_every, progress=hook))
            _report(results, as_json)
            _write_dead_letters(ledger, results, dead_letters)
    finally:
        job.close()
    if out is not None and not as_json:
        console.print(f"wrote the predictions of {job.target} to {out}", highlight=False)


__all__ = ["FileKind", "ingest", "register", "result_dict", "score"]

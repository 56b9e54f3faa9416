"""``keel log``: read the prediction log -- follow it, export it to Parquet or CSV.

The store is found from ``--project DIR`` (default: the current directory): the
``KEELWORK_STORAGE_URL`` environment variable, else ``storage.url`` of ``DIR/keel.yaml``, else
``sqlite:///DIR/.keel/keel.db``. Reading never creates a database or a table.

Exports stream in batches (constant memory) into ``FILE.partial`` and rename it to ``FILE`` at
the end, so an interrupted export never leaves a truncated file under the final name. Times are
UTC unless an offset is given.
"""

from __future__ import annotations

import csv
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from keelwork.errors import MissingExtraError, StoreError
from keelwork.interfaces.cli.output import console, err_console, handles_errors
from keelwork.interfaces.cli.store_url import PROJECT_OPTION, STORAGE_URL_ENV, storage_url
from keelwork.spec.durations import UNIT_SECONDS

if TYPE_CHECKING:
    from keelwork.adapters.stores.prediction_store import PredictionReader
    from keelwork.core.predictions import PredictionRecord

app = typer.Typer(help="The prediction log: tail it, follow it, export it.",
                  no_args_is_help=True)


#: Columns of an export, in order; payload columns hold JSON text.
EXPORT_COLUMNS = ("id", "ts", "model", "version", "tenant", "subject_id", "status", "guard",
                  "answered_by", "latency_ms", "model_latency_ms", "inputs", "outputs",
                  "request_meta")
#: Columns ``--with-labels`` adds: the current label (JSON text, as the outputs), when it
#: happened and where it came from; empty for predictions without a label yet.
LABEL_COLUMNS = ("label", "label_ts", "label_source")

_PROJECT = PROJECT_OPTION
_MODEL = typer.Option(None, "--model", "-m", help="Only this model.")
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")


class ExportFormat(StrEnum):
    parquet = "parquet"
    csv = "csv"


def parse_when(text: str, now: float) -> float:
    """Turn ``--since`` / ``--until`` into unix seconds.

    Args:
        text: An ISO 8601 date or time (``2024-05-01``, ``2024-05-01T12:30:00+02:00``; UTC when
            no offset is given) or a duration before ``now`` (``90s``, ``30m``, ``1h``, ``2d``,
            ``1w``).
        now: Unix seconds that durations count back from.

    Returns:
        Unix seconds.

    Raises:
        ValueError: ``text`` is neither.
    """
    m = _RELATIVE.match(text)
    if m:
        return now - float(m.group(1)) * UNIT_SECONDS[m.group(2)]
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"must be an ISO date or time (2024-05-01, 2024-05-01T12:30:00+02:00) "
                         f"or a duration before now (30m, 1h, 2d); got {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


@contextmanager
def _open_log(project: Path) -> Iterator[PredictionReader]:
    from sqlalchemy.engine import make_url

    from keelwork.adapters.stores.engine import make_engine
    from keelwork.adapters.stores.prediction_store import PredictionReader

    url = storage_url(project)
    parsed = make_url(url) if "://" in url else None
    shown = parsed.render_as_string(hide_password=True) if parsed else url
    if parsed is not None and parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:" and not Path(db).exists():
            raise StoreError(f"No prediction log at {db}: the file does not exist. Serve the "
                             f"project first, pass --project DIR or set {STORAGE_URL_ENV}.")
    engine = make_engine(url)
    try:
        reader = PredictionReader(engine)
        if not reader.has_log():
            raise StoreError(f"The store {shown} holds no prediction log (no 'predictions' "
                             "table); is this the project's storage URL?")
        yield reader
    finally:
        engine.dispose()


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
    from keelwork.adapters.stores.prediction_store import row_to_record

    with _open_log(project) as reader:
        records = reader.tail(lines, model=model, status=status)
        for record in records:
            _print_record(record, as_json)
        if not follow:
            return
        after = (records[-1].ts, records[-1].id) if records else None
        while True:
            time.sleep(interval)
            for rows in reader.iter_row_batches(model=model, after=after, status=status):
                for row in rows:
                    _print_record(row_to_record(row), as_json)
                after = (rows[-1]["ts"], rows[-1]["id"])


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

    partial = out.with_name(out.name + ".partial")
    with _open_log(project) as reader:
        total = reader.count(since_ts, until_ts, model=model)
        sink = (_ParquetSink(partial, with_labels) if fmt is ExportFormat.parquet
                else _CsvSink(partial, with_labels))
        labels = _label_reader(reader) if with_labels else None
        written = labelled = 0
        try:
            with Progress(TextColumn("[bold]exporting"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=err_console) as progress:
                task = progress.add_task("export", total=total)
                for rows in reader.iter_row_batches(since_ts, until_ts, model=model,
                                                    batch_size=batch_size):
                    if labels is not None:
                        labelled += _join_labels(rows, labels)
                    sink.write(rows)
                    written += len(rows)
                    progress.update(task, completed=written, total=max(total, written))
            sink.close()
        except BaseException:
            sink.close()
            partial.unlink(missing_ok=True)
            raise
    partial.replace(out)
    joined = f", {labelled} with a label" if with_labels else ""
    console.print(f"exported {written} prediction(s){joined} to {out} ({fmt.value})",
                  highlight=False)


def _label_reader(reader: PredictionReader) -> Any:
    from keelwork.adapters.stores.label_store import LabelStore

    return LabelStore(reader.engine)


def _join_labels(rows: list[dict[str, Any]], labels: Any) -> int:
    """Add the label columns to ``rows`` in place; returns how many rows have a label."""
    import json

    found = labels.current([r["id"] for r in rows])
    for r in rows:
        label = found.get(r["id"])
        r["label"] = None if label is None else json.dumps(label.label)
        r["label_ts"] = None if label is None else label.ts
        r["label_source"] = None if label is None else label.source
    return len(found)


def _when(text: str | None, now: float, option: str) -> float | None:
    if text is None:
        return None
    try:
        return parse_when(text, now)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=f"'{option}'") from None


class _CsvSink:
    """CSV with a header; ``ts`` as ISO 8601 UTC, payloads as JSON text."""

    def __init__(self, path: Path, with_labels: bool = False) -> None:
        self._columns = EXPORT_COLUMNS + (LABEL_COLUMNS if with_labels else ())
        self._file = path.open("w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        self._csv.writerow(self._columns)

    def write(self, rows: list[dict[str, Any]]) -> None:
        self._csv.writerows(
            ["" if r[c] is None else _iso_us(r[c]) if c in ("ts", "label_ts") else r[c]
             for c in self._columns] for r in rows)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def _iso_us(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace(
        "+00:00", "Z")


class _ParquetSink:
    """Parquet, one row group per batch; ``ts`` as timestamp[us, UTC], payloads as JSON text."""

    def __init__(self, path: Path, with_labels: bool = False) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise MissingExtraError("pyarrow", "all", "Exporting predictions to Parquet") \
                from None
        self._pa = pa
        text, num = pa.string(), pa.float64()
        self._schema = pa.schema(
            [("id", text), ("ts", pa.timestamp("us", tz="UTC")), ("model", text),
             ("version", pa.int64()), ("tenant", text), ("subject_id", text), ("status", text),
             ("guard", text), ("answered_by", text), ("latency_ms", num),
             ("model_latency_ms", num), ("inputs", text), ("outputs", text),
             ("request_meta", text),
             *([("label", text), ("label_ts", pa.timestamp("us", tz="UTC")),
                ("label_source", text)] if with_labels else [])],
            metadata={"keelwork.kind": "predictions", "keelwork.version": "1",
                      "keelwork.json_columns": "inputs,outputs,request_meta"
                      + (",label" if with_labels else "")})
        self._columns = EXPORT_COLUMNS + (LABEL_COLUMNS if with_labels else ())
        self._writer = pq.ParquetWriter(str(path), self._schema, compression="zstd")
        self._closed = False

    def write(self, rows: list[dict[str, Any]]) -> None:
        pa = self._pa
        columns: dict[str, Any] = {c: [r[c] for r in rows] for c in self._columns}
        for c in ("ts", "label_ts"):
            if c in columns:
                columns[c] = pa.array([None if t is None else round(t * 1_000_000)
                                       for t in columns[c]],
                                      pa.int64()).cast(pa.timestamp("us", tz="UTC"))
        self._writer.write_table(pa.Table.from_pydict(columns, schema=self._schema))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._writer.close()

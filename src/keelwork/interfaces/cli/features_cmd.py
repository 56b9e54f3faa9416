"""``keel features``: build training sets, materialise entity features online, look them up.

The commands read keel.yaml's ``features`` section (``--spec``, default ``./keel.yaml``) and
import its ``features.modules``. The online store is ``$KEELWORK_STORAGE_URL``, else the spec's
``storage.url``, else ``sqlite:///<project>/.keel/keel.db``.

``build`` joins each entity's history point-in-time (no value from after a row's
``features.event_timestamp``) and applies the transforms, exactly as serving will; it writes
``OUT.partial`` and renames it to ``OUT`` at the end, so a failed build leaves no half file.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from keelwork.errors import ErrorDetail, SpecError
from keelwork.interfaces.cli.output import (
    JSON_OPTION,
    console,
    current_settings,
    err_console,
    handles_errors,
)

app = typer.Typer(help="Features: training sets (point-in-time) and the online feature store.",
                  no_args_is_help=True)

_SPEC = typer.Option(Path("keel.yaml"), "--spec", "-s", help="The keel.yaml (or its directory).")
_JSON = JSON_OPTION


def _status(message: str) -> Any:
    return console.status(message, spinner="dots")


def _iso(micros: int) -> str:
    when = datetime.fromtimestamp(micros // 1_000_000, UTC).replace(
        microsecond=micros % 1_000_000)
    return when.isoformat().replace("+00:00", "Z")


@app.command("build")
@handles_errors
def build_cmd(
    data: Path = typer.Option(..., "--data", "-d", help="Raw training rows (Parquet, CSV, "
                              "JSONL) with the entity keys and features.event_timestamp."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the training set "
                             "(.parquet or .csv)."),
    spec: Path = _SPEC,
    batch_rows: int = typer.Option(65_536, "--batch-rows", min=1, help="Rows per batch."),
) -> None:
    """Build a training set: entity features as of each row's time, then the transforms."""
    from keelwork.service.features import (
        TRAINING_SET_SUFFIXES,
        read_rows,
        training_set_builder,
        write_training_set,
    )
    from keelwork.spec import load_spec

    if out.suffix.lower() not in TRAINING_SET_SUFFIXES:
        raise typer.BadParameter(f"must end in .parquet or .csv; got {out.name!r}",
                                 param_hint="'--out'")
    resolved = load_spec(spec)
    section = resolved.spec.features
    builder = training_set_builder(resolved, _status)
    rows = read_rows(data)
    started = time.perf_counter()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]building"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console, transient=True) as bar:
        task = bar.add_task("build", total=rows.num_rows)
        table = builder.build(rows, source=str(data), batch_rows=batch_rows,
                              progress=lambda n: bar.advance(task, n))
    write_training_set(table, out)
    seconds = time.perf_counter() - started
    console.print(f"built {table.num_rows:,} row(s) x {table.num_columns} column(s) -> "
                  f"{escape(str(out))} in {seconds:.1f}s", highlight=False)
    for e in section.entities:
        have = table.num_rows - table.column(e.outputs[0]).null_count if table.num_rows else 0
        share = f"{100.0 * have / table.num_rows:.1f}%" if table.num_rows else "-"
        console.print(f"  {escape(e.name)}: {have:,} row(s) with a value ({share})",
                      highlight=False)


@app.command("materialize")
@handles_errors
def materialize_cmd(
    spec: Path = _SPEC,
    up_to: str | None = typer.Option(None, "--up-to", help="Use history up to this time (ISO "
                                     "8601, UTC unless an offset is given); default: now."),
    entity: list[str] = typer.Option([], "--entity", "-e", help="Only this entity "
                                     "(repeatable); default: all."),
    as_json: bool = _JSON,
) -> None:
    """Write each entity's latest values (as of --up-to) from its history to the online store."""
    from keelwork.core.features import micros_of
    from keelwork.service.features import find_entity, materialize
    from keelwork.spec import load_spec

    settings = current_settings()
    when: float | str = time.time()
    if up_to is not None:
        try:
            micros_of(up_to)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="'--up-to'") from None
        when = up_to
    resolved = load_spec(spec)
    chosen = ([find_entity(resolved, name) for name in entity] if entity
              else list(resolved.spec.features.entities))
    if not chosen:
        raise SpecError(f"{resolved.path} declares no entities under features.entities; "
                        "nothing to materialise.", [ErrorDetail("features.entities", "empty")])
    results = materialize(resolved, chosen, when, settings=settings, status=_status)
    if as_json:
        typer.echo(json.dumps([{"entity": r.entity, "rows_read": r.rows_read,
                                "keys_written": r.keys_written, "up_to": _iso(r.up_to_us)}
                               for r in results]))
        return
    for r in results:
        console.print(f"{escape(r.entity)}: {r.rows_read:,} history row(s) -> "
                      f"{r.keys_written:,} key(s) as of {_iso(r.up_to_us)}", highlight=False)


@app.command("lookup")
@handles_errors
def lookup_cmd(
    entity: str = typer.Argument(..., help="Entity name (features.entities[].name)."),
    key: str = typer.Argument(..., help="Entity key (keys compare as text)."),
    spec: Path = _SPEC,
    as_json: bool = _JSON,
) -> None:
    """Print what serving would see for one key: its latest stored values and their age."""
    from keelwork.core.features import micros_of
    from keelwork.service.features import find_entity, lookup
    from keelwork.spec import load_spec

    settings = current_settings()
    resolved = load_spec(spec)
    e = find_entity(resolved, entity)
    stored = lookup(resolved, e, key, settings=settings)
    if stored is None:
        if as_json:
            typer.echo(json.dumps({"entity": e.name, "key": key, "found": False}))
        else:
            err_console.print(f"no value for {escape(e.name)} key {escape(repr(key))} in the "
                              "online store (run 'keel features materialize')", highlight=False)
        raise typer.Exit(1)
    age_s = (micros_of(time.time()) - stored.event_us) / 1e6
    ttl = e.ttl_seconds
    expired = ttl is not None and age_s > ttl
    values = {out: stored.values.get(f) for f, out in zip(e.features, e.outputs, strict=True)}
    if as_json:
        typer.echo(json.dumps({"entity": e.name, "key": key, "found": True, "values": values,
                               "event_time": _iso(stored.event_us), "age_s": round(age_s, 3),
                               "expired": expired}, allow_nan=True))
        return
    state = " [red](older than ttl: served as missing)[/]" if expired else ""
    console.print(f"[bold]{escape(e.name)}[/] {escape(repr(key))} as of "
                  f"{_iso(stored.event_us)}{state}", highlight=False)
    for name, value in values.items():
        console.print(f"  {escape(name)} = {escape(repr(value))}", highlight=False)

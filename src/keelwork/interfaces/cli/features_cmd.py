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
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from keelwork.errors import DataFileError, ErrorDetail, SpecError
from keelwork.interfaces.cli.output import console, err_console, handles_errors
from keelwork.interfaces.cli.store_url import JSON_OPTION, STORAGE_URL_ENV

if TYPE_CHECKING:
    from keelwork.adapters.stores.features import FeatureStore
    from keelwork.spec.features import EntitySpec
    from keelwork.spec.model import ResolvedSpec

app = typer.Typer(help="Features: training sets (point-in-time) and the online feature store.",
                  no_args_is_help=True)

_SPEC = typer.Option(Path("keel.yaml"), "--spec", "-s", help="The keel.yaml (or its directory).")
_JSON = JSON_OPTION
_OUT_KINDS = (".parquet", ".pq", ".csv")


def _store_url(resolved: ResolvedSpec) -> str:
    return os.environ.get(STORAGE_URL_ENV, "").strip() or resolved.storage_url


def _open_store(resolved: ResolvedSpec) -> FeatureStore:
    from keelwork.adapters.stores.features import open_feature_store

    return open_feature_store(_store_url(resolved))


def _entity(resolved: ResolvedSpec, name: str) -> EntitySpec:
    for e in resolved.spec.features.entities:
        if e.name == name:
            return e
    known = ", ".join(e.name for e in resolved.spec.features.entities) or "none"
    raise SpecError(f"{resolved.path} declares no entity named {name!r} under features.entities "
                    f"(entities: {known}).", [ErrorDetail("features.entities", "unknown_entity",
                                                          name)])


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
    from keelwork.adapters.data.feature_modules import compile_features, read_history, read_source
    from keelwork.core.features import TrainingSetBuilder
    from keelwork.spec import load_spec

    if out.suffix.lower() not in _OUT_KINDS:
        raise typer.BadParameter(f"must end in .parquet or .csv; got {out.name!r}",
                                 param_hint="'--out'")
    resolved = load_spec(spec)
    section = resolved.spec.features
    if not section.entities and not section.transforms:
        raise SpecError(f"{resolved.path} declares no features (features.entities and "
                        "features.transforms are empty); nothing to build.",
                        [ErrorDetail("features", "empty")])
    pipeline = compile_features(resolved)
    histories: dict[str, Any] = {}
    sources: dict[str, str] = {}
    with console.status("reading entity histories", spinner="dots"):
        for e in section.entities:
            histories[e.name], sources[e.name] = read_history(resolved, e)
        builder = TrainingSetBuilder(section, pipeline, histories, sources=sources)
    rows = read_source(data)
    started = time.perf_counter()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]building"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console, transient=True) as bar:
        task = bar.add_task("build", total=rows.num_rows)
        table = builder.build(rows, source=str(data), batch_rows=batch_rows,
                              progress=lambda n: bar.advance(task, n))
    _write(table, out)
    seconds = time.perf_counter() - started
    console.print(f"built {table.num_rows:,} row(s) x {table.num_columns} column(s) -> "
                  f"{escape(str(out))} in {seconds:.1f}s", highlight=False)
    for e in section.entities:
        have = table.num_rows - table.column(e.outputs[0]).null_count if table.num_rows else 0
        share = f"{100.0 * have / table.num_rows:.1f}%" if table.num_rows else "-"
        console.print(f"  {escape(e.name)}: {have:,} row(s) with a value ({share})",
                      highlight=False)


def _write(table: Any, out: Path) -> None:
    import pyarrow as pa

    partial = out.with_name(out.name + ".partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if out.suffix.lower() == ".csv":
            import pyarrow.csv as pcsv

            pcsv.write_csv(table, partial)
        else:
            import pyarrow.parquet as pq

            pq.write_table(table, partial)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise DataFileError(f"{out}: cannot write the training set: {exc}",
                            path=str(out)) from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(out)


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
    from keelwork.adapters.data.feature_modules import read_history
    from keelwork.core.features import micros_of
    from keelwork.spec import load_spec

    when: float | str = time.time()
    if up_to is not None:
        try:
            micros_of(up_to)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="'--up-to'") from None
        when = up_to
    resolved = load_spec(spec)
    chosen = ([_entity(resolved, name) for name in entity] if entity
              else list(resolved.spec.features.entities))
    if not chosen:
        raise SpecError(f"{resolved.path} declares no entities under features.entities; "
                        "nothing to materialise.", [ErrorDetail("features.entities", "empty")])
    store = _open_store(resolved)
    results = []
    try:
        for e in chosen:
            with console.status(f"materialising {e.name}", spinner="dots"):
                table, source = read_history(resolved, e)
                results.append(store.materialize(e, table, up_to=when, source=source))
    finally:
        store.close()
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
    from keelwork.spec import load_spec

    resolved = load_spec(spec)
    e = _entity(resolved, entity)
    store = _open_store(resolved)
    try:
        stored = store.lookup_stored(e.name, [key])[0]
    finally:
        store.close()
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

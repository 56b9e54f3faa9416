"""``keel data``: snapshot data files as immutable versions; list, show and diff them.

The store is found like every ``--project`` command finds it
(:func:`keelwork.service.projects.storage_url`): ``KEELWORK_STORAGE_URL``, else ``storage.url``
of ``DIR/keel.yaml``, else
``sqlite:///DIR/.keel/keel.db``. Snapshots live in ``DIR/.keel/datasets``. Reading never creates
a database.

A model version whose ``dataset_version`` is ``NAME:VERSION`` points at a snapshot: ``keel
models show`` prints that lineage (:func:`keelwork.service.projects.dataset_lineage`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from keelwork.errors import RegistryError
from keelwork.interfaces.cli.output import (
    JSON_OPTION,
    PROJECT_OPTION,
    console,
    current_settings,
    err_console,
    fit,
    handles_errors,
)

if TYPE_CHECKING:
    from keelwork.core.datasets import ColumnProfile, DatasetDiff, DatasetVersion

app = typer.Typer(help="Dataset snapshots: immutable, content-addressed versions of data files.",
                  no_args_is_help=True)

#: Files at least this big get a progress bar.
PROGRESS_MIN_BYTES = 8 << 20

_PROJECT = PROJECT_OPTION
_JSON = JSON_OPTION


def _store(project: Path, *, create: bool = False) -> AbstractContextManager[Any]:
    """Open the project's snapshot store; ``None`` when reading a default store that is absent."""
    from keelwork.service.projects import dataset_store

    return dataset_store(project, create=create, settings=current_settings())


def _no_snapshots(ref: str) -> RegistryError:
    return RegistryError(f"No snapshot '{ref}': this project has no snapshots yet. Take one with "
                         "'keel data snapshot PATH --name NAME'.")


# --------------------------------------------------------------------------- commands
@app.command("snapshot")
@handles_errors
def snapshot_cmd(
    path: Path = typer.Argument(..., help="CSV, Parquet or JSON Lines file."),
    name: str = typer.Option(..., "--name", "-n", help="Dataset name (created on first "
                             "snapshot)."),
    subject_column: str | None = typer.Option(None, "--subject-column", help="Column naming "
                                              "the data subject of each row (lays the rows out "
                                              "so that one subject can be erased later)."),
    project: Path = _PROJECT,
    as_json: bool = _JSON,
) -> None:
    """Store PATH as the next immutable version of dataset NAME (same content: no new version)."""
    from keelwork.service.datasets import snapshot_file

    with _store(project, create=True) as store:
        assert store is not None  # create=True always opens
        before = store.latest(name)
        with _progress(path) as progress:
            dv = snapshot_file(store, path, name, subject_column, progress=progress)
        same = [v.ref for v in store.list_versions(name)
                if v.sha256 == dv.sha256 and v.version != dv.version]
    unchanged = before is not None and before.version == dv.version
    if as_json:
        typer.echo(json.dumps({**dv.as_dict(profile=False), "created": not unchanged,
                               "same_content_as": same}, indent=2))
        return
    if unchanged:
        console.print(f"unchanged: {dv.ref} already holds this content (sha256 "
                      f"{dv.sha256[:12]}); no new version", highlight=False)
        return
    console.print(f"[green]snapshot[/] {dv.ref} ({dv.rows:,} rows, {len(dv.schema)} columns, "
                  f"sha256 {dv.sha256[:12]}, {_size(dv.size)})", highlight=False)
    if same:
        console.print(f"  same content as {', '.join(same)}: stored once", highlight=False)


@contextmanager
def _progress(path: Path) -> Iterator[Any]:
    """A progress callback for big files (on stderr), else ``None``."""
    try:
        big = path.stat().st_size >= PROGRESS_MIN_BYTES
    except OSError:
        big = False  # the reader reports the real problem
    if not big:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                  TextColumn("{task.completed:,} {task.fields[unit]}"), TimeElapsedColumn(),
                  console=err_console, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                unit = "rows" if stage == "reading" else "parts"
                tasks[stage] = bar.add_task(stage, total=total, unit=unit)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


@app.command("list")
@handles_errors
def list_cmd(
    name: str | None = typer.Argument(None, help="Only this dataset."),
    project: Path = _PROJECT,
    as_json: bool = _JSON,
) -> None:
    """List snapshots: every version of every dataset, oldest first."""
    with _store(project) as store:
        if store is None and name is not None:
            raise _no_snapshots(name)
        versions = store.list_versions(name) if store is not None else []
    if as_json:
        typer.echo(json.dumps([v.as_dict(profile=False) for v in versions], indent=2))
        return
    if not versions:
        console.print("No snapshots. Take one with 'keel data snapshot PATH --name NAME'.",
                      highlight=False)
        return
    from rich.table import Table

    table = Table("snapshot", "rows", "columns", "sha256", "subject", "created (UTC)", "by",
                  "source")
    for v in versions:
        table.add_row(v.ref, f"{v.rows:,}", str(len(v.schema)), v.sha256[:12],
                      _e(v.subject_column or "-"), _when(v), _e(v.created_by), _e(v.source))
    console.print(fit(table, drop=("sha256", "subject", "by")))


@app.command("show")
@handles_errors
def show_cmd(
    ref: str = typer.Argument(..., help="NAME (its latest version) or NAME:VERSION."),
    project: Path = _PROJECT,
    as_json: bool = _JSON,
) -> None:
    """Show one snapshot: provenance, schema and the profile of every column."""
    from keelwork.core.datasets import parse_dataset_ref

    parsed = parse_dataset_ref(ref)
    with _store(project) as store:
        if store is None:
            raise _no_snapshots(str(parsed))
        dv = store.resolve(parsed)
    if as_json:
        typer.echo(json.dumps(dv.as_dict(), indent=2))
        return
    from rich.table import Table

    head = Table(show_header=False, box=None, pad_edge=False)
    head.add_column(style="bold")
    head.add_column(overflow="fold")
    for key, value in (("snapshot", dv.ref), ("sha256", dv.sha256), ("rows", f"{dv.rows:,}"),
                       ("size", _size(dv.size)), ("created", f"{_when(dv)} UTC by "
                                                             f"{dv.created_by}"),
                       ("source", dv.source), ("subject column", dv.subject_column or "-")):
        head.add_row(key, _e(value))
    console.print(head)
    table = Table("column", "type", "kind", "nulls", "distinct", "min", "mean ± std", "max",
                  "top values / lengths", title="schema and profile")
    for c in dv.profile.columns:
        table.add_row(*_profile_cells(c))
    console.print(fit(table, drop=("distinct",)))


@app.command("diff")
@handles_errors
def diff_cmd(
    before: str = typer.Argument(..., help="The earlier snapshot: NAME or NAME:VERSION."),
    after: str = typer.Argument(..., help="The later snapshot: NAME or NAME:VERSION."),
    project: Path = _PROJECT,
    as_json: bool = _JSON,
) -> None:
    """Compare two snapshots: schema changes, row counts and each column's distribution."""
    from keelwork.core.datasets import diff, parse_dataset_ref

    refs = parse_dataset_ref(before), parse_dataset_ref(after)
    with _store(project) as store:
        if store is None:
            raise _no_snapshots(str(refs[0]))
        a, b = store.resolve(refs[0]), store.resolve(refs[1])
    result = diff(a, b)
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2))
        return
    _print_diff(result)


# --------------------------------------------------------------------------- rendering
def _profile_cells(c: ColumnProfile) -> list[str]:
    nulls = f"{c.nulls:,} ({c.null_rate:.0%})" if c.nulls else "0"
    distinct = f"{c.categories.distinct:,}" if c.categories is not None else "-"
    low = mid = high = "-"
    if c.numeric is not None:
        s, fmt = c.numeric, (_iso if c.kind == "temporal" else _g)
        low, high = fmt(s.min), fmt(s.max)
        mid = fmt(s.mean) if c.kind == "temporal" else f"{_g(s.mean)} ± {_g(s.std)}"
    tail = "-"
    if c.categories is not None and c.kind not in ("text", "redacted"):
        count = max(c.count, 1)
        tail = ", ".join(f"{v} {n / count:.0%}" for v, n in c.categories.top[:3])
    elif c.lengths is not None:
        s = c.lengths
        tail = f"length {s.min:.0f}..{s.max:.0f}, mean {s.mean:.1f}"
    return [_e(x) for x in (c.name, c.type, c.kind, nulls, distinct, low, mid, high, tail)]


def _print_diff(d: DatasetDiff) -> None:
    from rich.table import Table

    change = d.rows_after - d.rows_before
    pct = f" ({change / d.rows_before:+.1%})" if d.rows_before else ""
    console.print(f"[bold]{d.before} -> {d.after}[/]"
                  + ("  same content" if d.same_content else ""), highlight=False)
    console.print(f"rows: {d.rows_before:,} -> {d.rows_after:,} ({change:+,}){pct}",
                  highlight=False)
    if d.schema_changes:
        schema = Table("column", "change", "before", "after", title="schema changes")
        for s in d.schema_changes:
            schema.add_row(_e(s.column), s.change.replace("_", " "), _e(s.before or "-"),
                           _e(s.after or "-"))
        console.print(fit(schema))
    else:
        console.print("schema: unchanged", highlight=False)
    table = Table("column", "kind", "nulls", "mean", "std", "shift (std)", "PSI", "JS",
                  "categories", "", title="distributions")
    for c in d.columns:
        cats = " ".join([*(f"+{v}" for v in c.new_categories[:3]),
                         *(f"-{v}" for v in c.missing_categories[:3])]) or "-"
        table.add_row(
            _e(c.column), c.kind, f"{c.null_rate_before:.0%} -> {c.null_rate_after:.0%}",
            _pair(c.mean_before, c.mean_after), _pair(c.std_before, c.std_after),
            _g(c.mean_shift), _g(c.psi), _g(c.js), _e(cats),
            "[yellow]shifted[/]" if c.shifted else "")
    console.print(fit(table, drop=("std", "JS")))


def _e(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _pair(a: float | None, b: float | None) -> str:
    return "-" if a is None and b is None else f"{_g(a)} -> {_g(b)}"


def _g(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _iso(seconds: float) -> str:
    from datetime import UTC, datetime

    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return _g(seconds)


def _when(dv: DatasetVersion) -> str:
    return dv.created_at.isoformat().replace("T", " ")[:19]


def _size(size: int) -> str:
    amount = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if amount < 1000 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    return f"{size} B"  # pragma: no cover


__all__ = ["app"]

"""``keel models``: register, list, show, alias and audit model versions.

The store is found from ``--project DIR`` (default: the current directory): the
``KEELWORK_STORAGE_URL`` environment variable, else ``storage.url`` of ``DIR/keel.yaml``, else
``sqlite:///DIR/.keel/keel.db``. Artifacts live in ``DIR/.keel/artifacts``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from keelwork.errors import KeelworkError, RegistryError, UnsafeArtifactError
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
    from keelwork.core.datasets import DatasetVersion
    from keelwork.core.registry import AliasChange, ModelVersion

app = typer.Typer(help="The model registry: versions, aliases and their history.",
                  no_args_is_help=True)


_PROJECT = PROJECT_OPTION
_JSON = JSON_OPTION


def _registry(project: Path, *, create: bool = False) -> AbstractContextManager[Any]:
    """Open the project's registry; ``None`` when reading a default store that does not exist."""
    from keelwork.service.projects import registry

    return registry(project, create=create, settings=current_settings())


def _who() -> str:
    """Who acts: the ``user`` setting (``KEELWORK_USER``), else the OS user."""
    from keelwork.service.projects import actor

    return actor(None, current_settings())


@contextmanager
def _existing_registry(project: Path, name: str) -> Iterator[Any]:
    """Open the project's registry to read NAME; a project with no registry yet has no NAME."""
    with _registry(project) as registry:
        if registry is None:
            raise _nothing_registered(name)
        yield registry


def _nothing_registered(name: str) -> KeelworkError:
    from keelwork.errors import ModelNotFoundError

    return ModelNotFoundError(f"No model named '{name}' is registered (this project has no "
                              "registry yet). Register it with 'keel models register NAME PATH "
                              "--runtime KIND'.")


def _parse_json_object(value: str | None, option: str) -> dict[str, Any] | None:
    if value is None:
        return None
    text = value
    if value.startswith("@"):
        source = Path(value[1:])
        try:
            text = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise RegistryError(f"{option} names the file '{source}', which cannot be read: "
                                f"{exc.strerror or exc}.") from None
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RegistryError(f"{option} must be a JSON object (or @file.json), e.g. "
                            f"'{{\"accuracy\": 0.93}}'; got {value!r}, which is not valid JSON "
                            f"({exc.msg} at character {exc.pos}).") from None
    if not isinstance(parsed, dict):
        raise RegistryError(f"{option} must be a JSON object, e.g. '{{\"accuracy\": 0.93}}'; "
                            f"got a JSON {type(parsed).__name__}.")
    return parsed


# --------------------------------------------------------------------------- commands
def _reference_for(project: Path, name: str, version: int) -> None:
    """Compute and store the monitoring reference of a new version (keel.yaml's
    ``monitoring.reference``), once, so drift runs reuse it; a failure only warns."""
    from keelwork.service.projects import store_reference

    warn = store_reference(project, name, version, current_settings())
    if warn:
        err_console.print(f"[yellow]warning:[/] {escape(warn)}", soft_wrap=True)


@app.command("register")
@handles_errors
def register_cmd(
    name: str = typer.Argument(..., help="Model name (created on first registration)."),
    path: str = typer.Argument(..., help="Artifact file or directory; for --runtime python, "
                               "'module:function'."),
    runtime: str = typer.Option(..., "--runtime", "-r", help="Runtime kind: sklearn, onnx, "
                                "torch, hf, mlflow, python or a plug-in."),
    dataset_version: str | None = typer.Option(None, "--dataset-version",
                                               help="Identifier of the training data."),
    metrics: str | None = typer.Option(None, "--metrics", help="JSON object of metrics, e.g. "
                                       "'{\"accuracy\": 0.93}', or @file.json."),
    options: str | None = typer.Option(None, "--options", help="JSON object of runtime options "
                                       "(or @file.json)."),
    alias: list[str] = typer.Option([], "--alias", "-a", help="Point this alias at the new "
                                    "version (repeatable)."),
    allow_unsafe_pickle: bool = typer.Option(False, "--allow-unsafe-pickle", help="Allow "
                                             "pickle/joblib files (they run code when loaded)."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Load the model once "
                                "before registering it."),
    project: Path = _PROJECT,
    as_json: bool = _JSON,
) -> None:
    """Store an artifact (content-addressed) and record it as the next version of NAME."""
    from keelwork.service.projects import check_dataset_reference
    from keelwork.service.registration import register_model

    settings = current_settings()
    metric_values = _parse_json_object(metrics, "--metrics")
    option_values = _parse_json_object(options, "--options")
    check_dataset_reference(project, dataset_version, settings)  # NAME:VERSION: a snapshot
    with _registry(project, create=True) as registry:
        assert registry is not None  # create=True always opens
        try:
            # Library warnings while verifying (an opted-in pickle, a version mismatch) are
            # shown as one line each rather than as Python warning dumps.
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                mv = register_model(
                    registry, name, path, runtime, dataset_version=dataset_version,
                    metrics=metric_values, options=option_values, aliases=alias,
                    source_dir=project, created_by=_who(),
                    allow_unsafe_pickle=allow_unsafe_pickle, verify=verify)
        except UnsafeArtifactError as exc:
            if "allow-unsafe-pickle" not in exc.message:
                exc.message += (" On the command line the opt-in is --allow-unsafe-pickle "
                                "(only for files you produced yourself).")
            raise
        for warning in {str(w.message): w for w in caught}.values():
            err_console.print(f"[yellow]warning:[/] {escape(str(warning.message))}",
                              soft_wrap=True)
        same = [v.version for v in registry.list_versions(name)
                if v.sha256 is not None and v.sha256 == mv.sha256 and v.version != mv.version]
    _reference_for(project, mv.name, mv.version)
    if as_json:
        typer.echo(json.dumps({**mv.as_dict(), "same_content_as": same}, indent=2))
        return
    what = (f"reference {mv.callable_path}" if mv.is_reference
            else f"sha256 {(mv.sha256 or '')[:12]}, {_size(mv.size)}")
    console.print(f"[green]registered[/] {mv.name}:{mv.version} ({mv.runtime}, {what})",
                  highlight=False)
    if same:
        console.print(f"  same content as version(s) {', '.join(map(str, same))}: stored once",
                      highlight=False)
    for a in mv.aliases:
        console.print(f"  alias {a} -> {mv.version}", highlight=False)


@app.command("list")
@handles_errors
def list_cmd(project: Path = _PROJECT, as_json: bool = _JSON) -> None:
    """List registered models with their latest version and aliases."""
    with _registry(project) as registry:
        summaries = registry.list_models() if registry is not None else []
    if as_json:
        typer.echo(json.dumps([s.as_dict() for s in summaries], indent=2))
        return
    if not summaries:
        console.print("No models registered. Add one with 'keel models register NAME PATH "
                      "--runtime KIND'.", highlight=False)
        return
    from rich.table import Table

    table = Table("model", "latest", "versions", "aliases", "updated (UTC)")
    for s in summaries:
        aliases = ", ".join(f"{a} -> {v}" for a, v in s.aliases.items()) or "-"
        table.add_row(s.name, str(s.latest_version), str(s.version_count), aliases,
                      _when(s.updated_at.isoformat()))
    console.print(fit(table))


@app.command("versions")
@handles_errors
def versions_cmd(
    name: str = typer.Argument(..., help="Model name."),
    project: Path = _PROJECT,
    as_json: bool = _JSON,
) -> None:
    """List every version of a model, oldest first."""
    with _existing_registry(project, name) as registry:
        versions = registry.list_versions(name)
    if as_json:
        typer.echo(json.dumps([v.as_dict() for v in versions], indent=2))
        return
    from rich.table import Table

    table = Table("version", "runtime", "artifact", "created (UTC)", "by", "dataset", "aliases")
    for v in versions:
        artifact = v.callable_path if v.is_reference else (v.sha256 or "")[:12]
        table.add_row(str(v.version), v.runtime, artifact, _when(v.created_at.isoformat()),
                      v.created_by, v.dataset_version or "-", ", ".join(v.aliases) or "-")
    console.print(fit(table, drop=("by",)))


@app.command("show")
@handles_errors
def show_cmd(
    ref: str = typer.Argument(..., help="NAME, NAME:VERSION or NAME@ALIAS (NAME alone: its "
                              "champion, else its latest version)."),
    project: Path = _PROJECT,
    as_json: bool = _JSON,
) -> None:
    """Show one model version: artifact, provenance, metrics, environment, aliases."""
    from keelwork.core.registry import parse_model_ref
    from keelwork.service.model_tests import stored_run
    from keelwork.service.projects import dataset_lineage, lineage_dict

    parsed = parse_model_ref(ref)
    with _existing_registry(project, parsed.name) as registry:
        mv = registry.resolve(parsed)
        path = registry.artifact_path(mv) if not mv.is_reference else None
        run = stored_run(registry.engine, mv.name, mv.version)
    tests = run.as_dict() if run is not None else None
    # a NAME:VERSION snapshot, if any
    dataset = dataset_lineage(project, mv.dataset_version, current_settings())
    if as_json:
        typer.echo(json.dumps({**mv.as_dict(), "artifact_path": str(path) if path else None,
                               "lineage": lineage_dict(mv, dataset), "tests": tests},
                              indent=2, default=str))
        return
    _print_version(mv, path, tests)
    if dataset is not None:
        _print_lineage(mv, dataset)


@app.command("alias")
@handles_errors
def alias_cmd(
    name: str = typer.Argument(..., help="Model name."),
    version: int = typer.Argument(..., help="Version the alias should point at."),
    alias: str = typer.Argument(..., help="Alias, e.g. champion or challenger."),
    reason: str = typer.Option("", "--reason", "-m", help="Why (kept in the history)."),
    project: Path = _PROJECT,
    as_json: bool = _JSON,
) -> None:
    """Point ALIAS of NAME at VERSION; the move is kept in the alias history."""
    with _existing_registry(project, name) as registry:
        change = registry.set_alias(name, version, alias, actor=_who(), reason=reason)
    _print_change(change, as_json)


@app.command("unalias")
@handles_errors
def unalias_cmd(
    name: str = typer.Argument(..., help="Model name."),
    alias: str = typer.Argument(..., help="Alias to remove."),
    reason: str = typer.Option("", "--reason", "-m", help="Why (kept in the history)."),
    project: Path = _PROJECT,
    as_json: bool = _JSON,
) -> None:
    """Remove ALIAS from NAME; the removal is kept in the alias history."""
    with _existing_registry(project, name) as registry:
        change = registry.remove_alias(name, alias, actor=_who(), reason=reason)
    _print_change(change, as_json)


@app.command("history")
@handles_errors
def history_cmd(
    name: str = typer.Argument(..., help="Model name."),
    project: Path = _PROJECT,
    as_json: bool = _JSON,
) -> None:
    """Show every alias change of NAME: who, when, from which version to which, and why."""
    with _existing_registry(project, name) as registry:
        changes = registry.alias_history(name)
    if as_json:
        typer.echo(json.dumps([c.as_dict() for c in changes], indent=2))
        return
    if not changes:
        console.print(f"No alias of '{name}' has been set yet.", highlight=False)
        return
    from rich.table import Table

    table = Table("when (UTC)", "alias", "from", "to", "by", "reason")
    for c in changes:
        table.add_row(_when(c.changed_at.isoformat()), c.alias, _num(c.from_version),
                      _num(c.to_version), c.actor, c.reason or "-")
    console.print(fit(table))


# --------------------------------------------------------------------------- rendering
def _print_change(change: AliasChange, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(change.as_dict(), indent=2))
        return
    label = f"{change.name}@{change.alias}"
    if change.from_version == change.to_version:
        console.print(f"{label} already points at version {change.to_version}; nothing changed",
                      highlight=False)
    elif change.to_version is None:
        console.print(f"[green]removed[/] {label} (was {change.from_version})", highlight=False)
    else:
        console.print(f"[green]{label}[/]: {_num(change.from_version)} -> {change.to_version}",
                      highlight=False)


def _tests_line(run: dict[str, Any] | None) -> str:
    """The latest ``keel test`` run of a version, in one line ("-": never run)."""
    if run is None:
        return "-"
    results = run.get("results", [])
    failed = [r["name"] for r in results if not r["passed"]]
    verdict = "passed" if run["passed"] else f"FAILED ({', '.join(failed)})"
    return (f"{verdict}: {len(results) - len(failed)} of {len(results)} tests pass "
            f"({_when(run['run_at'])} UTC by {run['actor']})")


def _print_version(mv: ModelVersion, path: Path | None,
                   tests: dict[str, Any] | None = None) -> None:
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    dirty = "" if mv.git_dirty is None else (" (dirty)" if mv.git_dirty else " (clean)")
    packages = mv.environment.get("packages", {})
    rows = [
        ("model", f"{mv.name}:{mv.version}"),
        ("runtime", mv.runtime),
        ("aliases", ", ".join(mv.aliases) or "-"),
        ("artifact", mv.callable_path if mv.is_reference else str(path)),
        ("sha256", mv.sha256 or "-"),
        ("size", _size(mv.size)),
        ("created", f"{_when(mv.created_at.isoformat())} UTC by {mv.created_by}"),
        ("git commit", f"{mv.git_commit}{dirty}" if mv.git_commit else "-"),
        ("dataset", mv.dataset_version or "-"),
        ("metrics", ", ".join(f"{k}={v}" for k, v in mv.metrics.items()) or "-"),
        ("options", json.dumps(dict(mv.options)) if mv.options else "-"),
        ("python", str(mv.environment.get("python", "-"))),
        ("packages", ", ".join(f"{k} {v}" for k, v in packages.items()) or "-"),
        ("tests", _tests_line(tests)),
    ]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


def _print_lineage(mv: ModelVersion, dataset: DatasetVersion) -> None:
    """Print the lineage tree model -> dataset snapshot -> code commit."""
    from rich.tree import Tree

    tree = Tree("[bold]lineage[/]")
    model = tree.add(f"model {escape(mv.name)}:{mv.version}")
    created = dataset.created_at.isoformat().replace("T", " ")[:19]
    data = model.add(f"dataset {escape(dataset.ref)}  sha256 {dataset.sha256[:12]}  "
                     f"{dataset.rows:,} rows  created {created} UTC")
    dirty = "" if mv.git_dirty is None else (" (dirty)" if mv.git_dirty else " (clean)")
    data.add(f"code commit {mv.git_commit}{dirty}" if mv.git_commit else "code commit -")
    console.print(tree, highlight=False)


def _when(iso: str) -> str:
    return iso.replace("T", " ")[:19]


def _num(value: int | None) -> str:
    return "-" if value is None else str(value)


def _size(size: int | None) -> str:
    if size is None:
        return "-"
    amount = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if amount < 1000 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    return f"{size} B"  # pragma: no cover

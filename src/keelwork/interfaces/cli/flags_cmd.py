"""``keel flags``: list, put and delete model flags in a project's store.

Running servers on the same store pick a change up within their poll interval (one second by
default); every change is recorded in the audit log. keel.yaml's flags are the base, the store's
replace them by name; ``delete`` only removes a stored flag.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from keelwork.errors import DataFileError, SpecError
from keelwork.interfaces.cli.output import console, fit, handles_errors
from keelwork.interfaces.cli.store_url import JSON_OPTION, PROJECT_OPTION, storage_url
from keelwork.spec.loader import check_alias_expansion

app = typer.Typer(help="Model flags: which version answers which requests.",
                  no_args_is_help=True)

_ACTOR = typer.Option(None, "--actor", help="Who makes the change (default: $KEELWORK_USER, "
                      "else the OS user).")


def _actor() -> str:
    from keelwork.adapters.stores.provenance import default_actor

    return default_actor()


def _spec(project: Path) -> Any:
    """The project's keel.yaml, or None when it has none."""
    spec_file = project / "keel.yaml"
    if not spec_file.is_file():
        return None
    from keelwork.spec import load_spec

    return load_spec(spec_file).spec


@contextmanager
def _store(project: Path) -> Iterator[Any]:
    from keelwork.adapters.stores.audit_store import project_audit_log
    from keelwork.adapters.stores.engine import make_engine
    from keelwork.adapters.stores.flag_store import FlagStore

    engine = make_engine(storage_url(project))
    try:
        audit = project_audit_log(engine, project)
        audit.ensure_schema()
        store = FlagStore(engine, audit)
        store.ensure_schema()
        yield store
    finally:
        engine.dispose()


@app.command("list")
@handles_errors
def list_flags(project: Path = PROJECT_OPTION, as_json: bool = JSON_OPTION) -> None:
    """The flags in force (keel.yaml's, the store's on top) and any broken ones."""
    from keelwork.service.flags.source import FlagSource

    with _store(project) as store:
        spec = _spec(project)
        flags = FlagSource(spec.flags if spec else [], store).reload()
    if as_json:
        typer.echo(json.dumps({"flags": [f.model_dump(mode="json") for f in flags.flags],
                               "broken": [b.__dict__ for b in flags.broken]}, indent=2))
        return
    from rich.table import Table

    table = Table(title="model flags in force")
    for col in ("flag", "model", "enabled", "rules", "default"):
        table.add_column(col)
    for f in flags.flags:
        rules = "; ".join(_rule_text(r) for r in f.rules) or "-"
        table.add_row(f.name, f.model, "yes" if f.enabled else "no", rules,
                      f.default or "champion")
    for b in flags.broken:
        table.add_row(b.name, b.model or "?", "[red]broken[/red]", b.error, "-")
    console.print(fit(table))


def _rule_text(rule: Any) -> str:
    cond = []
    if rule.tenants is not None:
        cond.append(f"tenant in {rule.tenants}")
    for name, values in (rule.headers or {}).items():
        cond.append(f"{name} in {values}")
    if rule.percentage is not None:
        cond.append(f"{rule.percentage:g}% of users")
    return f"{' and '.join(cond)} -> {rule.serve}"


@app.command("put")
@handles_errors
def put(file: Path = typer.Argument(..., help="YAML or JSON: one flag or a list of flags."),
        project: Path = PROJECT_OPTION, actor: str | None = _ACTOR) -> None:
    """Create or replace flags from FILE (validated first; nothing is written if one is bad)."""
    from pydantic import ValidationError

    from keelwork.spec.flags import FlagSpec

    bodies = _read(file)
    spec = _spec(project)
    models = {m.name for m in spec.models} if spec else set()
    flags = []
    for i, body in enumerate(bodies):
        try:
            flag = FlagSpec.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise SpecError(f"{file}: flag #{i + 1}: {where}: {first['msg']}") from None
        if models and flag.model not in models:
            raise SpecError(f"{file}: flag {flag.name!r} is for model {flag.model!r}, which "
                            f"keel.yaml does not serve (models: {', '.join(sorted(models))}).")
        flags.append(flag)
    who = actor or _actor()
    from keelwork.adapters.stores.registry_store import open_registry
    from keelwork.service.flags.source import check_refs

    with open_registry(project, storage_url(project), audit=False) as registry:
        check_refs(flags, registry, str(file))
    with _store(project) as store:
        for flag in flags:
            store.put(flag, actor=who)
    console.print(f"stored {len(flags)} flag(s): {', '.join(f.name for f in flags)}")


@app.command("delete")
@handles_errors
def delete(name: str = typer.Argument(..., help="The stored flag to remove."),
           project: Path = PROJECT_OPTION, actor: str | None = _ACTOR) -> None:
    """Remove a stored flag (keel.yaml's flag of that name, if any, applies again)."""
    with _store(project) as store:
        existed = store.delete(name, actor=actor or _actor())
    if not existed:
        raise SpecError(f"No stored flag is named {name!r}.")
    console.print(f"deleted flag {name}")


def _read(file: Path) -> list[Any]:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataFileError(f"{file}: cannot be read ({exc.strerror}).", path=str(file)) from None
    try:
        if file.suffix == ".json":
            data = json.loads(text)
        else:
            from ruamel.yaml import YAML

            data = YAML(typ="safe").load(text)
    except Exception as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        line = line + 1 if isinstance(line, int) else getattr(exc, "lineno", None)
        where = f"{file}, line {line}" if line else str(file)
        raise DataFileError(f"{where}: not valid {'JSON' if file.suffix == '.json' else 'YAML'}"
                            f": {str(exc).splitlines()[0]}", path=str(file), line=line) from None
    check_alias_expansion(data, str(file))
    if isinstance(data, dict) and "flags" in data:
        data = data["flags"]
    items = data if isinstance(data, list) else [data]
    if not items or not all(isinstance(x, dict) for x in items):
        raise DataFileError(f"{file}: must hold a flag object or a list of them.", path=str(file))
    return items

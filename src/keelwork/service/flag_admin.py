"""Model flags as use-cases: list the flags in force, put and delete stored flags.

keel.yaml's flags are the base, the store's replace them by name; every change is recorded in
the audit log. Running servers on the same store pick a change up within their poll interval.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keelwork.errors import DataFileError, SpecError
from keelwork.service.projects import actor, optional_spec, storage_url
from keelwork.spec.loader import check_alias_expansion

if TYPE_CHECKING:
    from keelwork.adapters.stores.flag_store import FlagStore
    from keelwork.spec.flags import FlagSpec
    from keelwork.spec.settings import Settings


@contextmanager
def flag_store(project: Path, settings: Settings) -> Iterator[FlagStore]:
    """The project's flag store (created if needed), recording changes in its audit log."""
    from keelwork.adapters.stores.audit_store import project_audit_log
    from keelwork.adapters.stores.engine import make_engine
    from keelwork.adapters.stores.flag_store import FlagStore

    engine = make_engine(storage_url(project, settings))
    try:
        audit = project_audit_log(engine, project, settings.audit_anchor)
        audit.ensure_schema()
        store = FlagStore(engine, audit)
        store.ensure_schema()
        yield store
    finally:
        engine.dispose()


def flags_in_force(project: Path, settings: Settings) -> Any:
    """keel.yaml's flags with the store's on top, and any broken ones."""
    from keelwork.service.flags.source import FlagSource

    with flag_store(project, settings) as store:
        resolved = optional_spec(project)
        return FlagSource(resolved.spec.flags if resolved else [], store).reload()


def read_flags(file: Path) -> list[Any]:
    """The flag bodies of a YAML or JSON file: one flag, a list, or ``flags:`` with a list.

    Raises:
        DataFileError: the file is unreadable, not valid YAML/JSON, or holds no flag objects.
    """
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


def put_flags(project: Path, file: Path, *, by: str | None = None,
              settings: Settings) -> list[FlagSpec]:
    """Create or replace the flags of ``file`` (all validated first: nothing is written if one
    is bad).

    Returns:
        The flags stored.

    Raises:
        DataFileError: the file cannot be read.
        SpecError: a flag is invalid, or names a model keel.yaml does not serve.
        RegistryError: a flag names a version that is not registered.
    """
    from pydantic import ValidationError

    from keelwork.spec.flags import FlagSpec

    bodies = read_flags(file)
    resolved = optional_spec(project)
    models = {m.name for m in resolved.spec.models} if resolved else set()
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
    who = actor(by, settings)
    from keelwork.adapters.stores.registry_store import open_registry
    from keelwork.service.flags.source import check_refs

    with open_registry(project, storage_url(project, settings), audit=False) as registry:
        check_refs(flags, registry, str(file))
    with flag_store(project, settings) as store:
        for flag in flags:
            store.put(flag, actor=who)
    return flags


def delete_flag(project: Path, name: str, *, by: str | None = None,
                settings: Settings) -> None:
    """Remove a stored flag (keel.yaml's flag of that name, if any, applies again).

    Raises:
        SpecError: no stored flag has that name.
    """
    with flag_store(project, settings) as store:
        existed = store.delete(name, actor=actor(by, settings))
    if not existed:
        raise SpecError(f"No stored flag is named {name!r}.")


__all__ = ["delete_flag", "flag_store", "flags_in_force", "put_flags", "read_flags"]

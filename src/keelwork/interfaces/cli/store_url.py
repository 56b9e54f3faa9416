"""Which store a CLI command talks to: one rule for every command that takes ``--project``.

``$KEELWORK_STORAGE_URL``, else ``storage.url`` of ``DIR/keel.yaml``, else the embedded default
``sqlite:///DIR/.keel/keel.db``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, TypeVar

import typer

from keelwork.errors import KeelworkError

STORAGE_URL_ENV = "KEELWORK_STORAGE_URL"

#: The ``--project DIR`` option every store-backed command takes.
PROJECT_OPTION = typer.Option(Path(), "--project", "-p", help="Project directory (holds "
                              "keel.yaml and .keel/).", file_okay=False)
#: The ``--json`` option of commands that print a result.
JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON.")


def storage_url_for(project: Path) -> str | None:
    """The configured storage URL of a project, or ``None`` for the default SQLite file.

    Raises:
        SpecError: ``DIR/keel.yaml`` exists but is invalid.
    """
    env = os.environ.get(STORAGE_URL_ENV, "").strip()
    if env:
        return env
    spec_file = project / "keel.yaml"
    if spec_file.is_file():
        from keelwork.spec import load_spec

        return load_spec(spec_file).storage_url
    return None


def storage_url(project: Path) -> str:
    """The storage URL of a project, the embedded default included."""
    return storage_url_for(project) or f"sqlite:///{project.absolute() / '.keel' / 'keel.db'}"


class _Closable(Protocol):
    def close(self) -> None: ...


S = TypeVar("S", bound=_Closable)


@contextmanager
def project_store(project: Path, opener: Callable[[Path, str | None], S], *,
                  create: bool = False) -> Iterator[S | None]:
    """Open one of a project's stores with ``opener(project, url)``, closing it afterwards.

    Yields ``None`` when only reading and the project has no database yet: reading must not
    create an empty database as a side effect.

    Raises:
        KeelworkError: the project directory does not exist.
    """
    if not project.is_dir():
        raise KeelworkError(f"The project directory '{project}' does not exist; pass an "
                            "existing directory with --project.")
    url = storage_url_for(project)
    if url is None and not create and not (project / ".keel" / "keel.db").exists():
        yield None
        return
    store = opener(project, url)
    try:
        yield store
    finally:
        store.close()

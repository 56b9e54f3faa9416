"""Which store a CLI command talks to: one rule for every command that takes ``--project``.

``$KEELWORK_STORAGE_URL``, else ``storage.url`` of ``DIR/keel.yaml``, else the embedded default
``sqlite:///DIR/.keel/keel.db``.
"""

from __future__ import annotations

import os
from pathlib import Path

STORAGE_URL_ENV = "KEELWORK_STORAGE_URL"


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

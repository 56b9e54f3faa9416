"""API keys as use-cases: create (shown once), list and revoke a project's keys.

Creations and revocations are recorded in the project's audit log, in the same store.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keelwork.errors import AuthError
from keelwork.service.projects import actor, project_store

if TYPE_CHECKING:
    from keelwork.adapters.stores.api_keys import ApiKeyStore
    from keelwork.spec.settings import Settings


def _open(project: Path, url: str | None, extra_anchor: Path | None) -> ApiKeyStore:
    from keelwork.adapters.stores.api_keys import ApiKeyStore
    from keelwork.adapters.stores.audit_store import project_audit_log
    from keelwork.adapters.stores.engine import make_engine

    engine = make_engine(url or f"sqlite:///{project.absolute() / '.keel' / 'keel.db'}")
    try:
        audit = project_audit_log(engine, project, extra_anchor)
        audit.ensure_schema()
        keys = ApiKeyStore(engine, audit)
        keys.ensure_schema()
    except BaseException:
        engine.dispose()
        raise
    return keys


def key_store(project: Path, *, create: bool = False,
              settings: Settings) -> AbstractContextManager[ApiKeyStore | None]:
    """The project's key store, recording in the project's audit log (its anchors: the
    project's and the ``audit_anchor`` setting's); ``None`` when reading a default store that
    does not exist."""
    def opener(directory: Path, url: str | None) -> ApiKeyStore:
        return _open(directory, url, settings.audit_anchor)

    return project_store(project, opener, create=create, settings=settings)


def create_key(project: Path, scopes: list[str], name: str, *, by: str | None = None,
               settings: Settings) -> Any:
    """Create a key; the result holds its plaintext, shown only now (only its hash is kept)."""
    with key_store(project, create=True, settings=settings) as keys:
        assert keys is not None  # create=True always opens the store
        return keys.create(scopes=scopes, name=name, created_by=actor(by, settings))


def list_keys(project: Path, *, include_revoked: bool = True,
              settings: Settings) -> list[Any]:
    """Every key's information (never the key itself)."""
    with key_store(project, settings=settings) as keys:
        return [] if keys is None else list(keys.list(include_revoked=include_revoked))


def revoke_key(project: Path, key_id: str, *, by: str | None = None,
               settings: Settings) -> Any:
    """Revoke a key.

    Raises:
        AuthError: no key has that id.
    """
    with key_store(project, settings=settings) as keys:
        if keys is None:
            raise AuthError(f"No API key has the id {key_id!r}: this project has no store yet.")
        return keys.revoke(key_id, actor=actor(by, settings))


__all__ = ["create_key", "key_store", "list_keys", "revoke_key"]

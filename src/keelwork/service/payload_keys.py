"""Where a project's per-subject payload keys live (crypto-shredding), and the project's
subject key.

The key store is never the data store, so that no backup of the database holds a key:
keel.yaml's ``storage.subject_keys_url`` (a SQLite file or a PostgreSQL database apart from
``storage.url``; a fleet on several machines shares one), else ``subject_keys.db`` beside a
SQLite store (any process finds it from the store alone), else -- a PostgreSQL store -- the
project's ``.keel/subject_keys.db``. :func:`project_keys` attaches it to the store's URL in this
process (:func:`keelwork.adapters.stores.subject_keys.attach`): the server, ``keel ingest``,
``keel score`` and every command that resolves the project's store call it, so every reader
opens sealed payloads and every writer seals them.

The project's subject key (``.keel/subject.key``, HMAC-SHA256 of subject ids into digests
and key ids) is made on first use, mode 0600.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from keelwork.errors import ErrorDetail, SpecError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from keelwork.adapters.stores.subject_keys import SubjectKeys

KEY_FILE = Path(".keel") / "subject.key"
#: The per-subject key file's name (beside a SQLite store, or in ``.keel/``).
KEY_FILE_NAME = "subject_keys.db"


def subject_key(project: Path) -> bytes:
    """The project's secret for subject digests, created (mode 0600) on first use."""
    from keelwork.service.redaction import project_secret

    return project_secret(project, KEY_FILE)


def key_store_location(project: Path, store_url: str,
                       configured: str | None = None) -> Path | str:
    """Where the per-subject keys of a project's store live: keel.yaml's
    ``storage.subject_keys_url`` (``configured``; a relative SQLite path is the project's),
    else beside a SQLite file store (``.keel/subject_keys.db`` by default, found from the
    store alone), else -- a PostgreSQL store -- the project's ``.keel/subject_keys.db``. Never
    the data store itself, so that a backup of the database holds no key.

    Raises:
        SpecError: ``configured`` names the data store's own database.
    """
    from keelwork.adapters.stores.engine import normalize_url

    u = normalize_url(store_url)
    if configured:
        if "://" not in configured and "@" not in configured:
            path = Path(configured).expanduser()
            return path if path.is_absolute() else project.absolute() / path
        k = normalize_url(configured)
        if (k.get_backend_name(), k.host, k.port, k.database) == (
                u.get_backend_name(), u.host, u.port, u.database):
            raise SpecError(
                "storage.subject_keys_url must name a database apart from storage.url: keys "
                "kept in the data store would be in every backup of it, and erasing a subject "
                "could not reach those copies.",
                [ErrorDetail("storage.subject_keys_url", "apart_from_store", None,
                             "a database other than storage.url")])
        return configured
    if u.get_backend_name() == "sqlite" and u.database not in (None, "", ":memory:"):
        return Path(u.database).expanduser().absolute().parent / KEY_FILE_NAME
    return project.absolute() / ".keel" / KEY_FILE_NAME


def configured_key_store(project: Path) -> str | None:
    """keel.yaml's ``storage.subject_keys_url`` of ``project`` (None: the default), read
    again only when the file changes."""
    spec_file = project / "keel.yaml"
    try:
        stamp = (str(spec_file.absolute()), spec_file.stat().st_mtime_ns)
    except OSError:
        return None
    if _CONFIGURED.get(stamp[0], (None, None))[0] != stamp[1]:
        from keelwork.spec import load_spec

        _CONFIGURED[stamp[0]] = (stamp[1], load_spec(spec_file).spec.storage.subject_keys_url)
    return _CONFIGURED[stamp[0]][1]


_CONFIGURED: dict[str, tuple[int | None, str | None]] = {}


def project_keys(project: Path, store: Engine | str, *, seal: bool,
                 configured: str | None = None, known: bool = False) -> SubjectKeys | None:
    """The project's key store, attached to ``store`` (an engine or a storage URL) so that
    this process's readers of that store open sealed payloads with it.

    Args:
        project: The project directory.
        store: The data store.
        seal: Whether the caller seals (or cleans up keys): the project's subject key is
            loaded, made on first use; otherwise the key store is attached for reading only.
        configured: ``storage.subject_keys_url`` (default: read from the project's keel.yaml).
        known: ``configured`` is keel.yaml's value, None included (not read again).

    Returns:
        The attached key store; None for an in-memory store (nothing to keep keys apart from).

    Raises:
        SpecError: ``storage.subject_keys_url`` names the data store itself.
    """
    from keelwork.adapters.stores.engine import normalize_url
    from keelwork.adapters.stores.subject_keys import SubjectKeys, attach

    url = store if isinstance(store, str) else store.url.render_as_string(hide_password=False)
    u = normalize_url(url)
    if u.get_backend_name() == "sqlite" and u.database in (None, "", ":memory:"):
        return None
    where = key_store_location(project, url, configured if configured is not None or known
                               else configured_key_store(project))
    keys = SubjectKeys(where, subject_key(project) if seal else None)
    return attach(store, keys)


def payload_keys(project: Path, engine: Engine,
                 configured: str | None = None) -> SubjectKeys | None:
    """The key store that seals what ``engine``'s prediction log stores (the server's log
    writer), attached to the store (see :func:`project_keys`)."""
    return project_keys(project, engine, seal=True, configured=configured)


__all__ = ["KEY_FILE", "KEY_FILE_NAME", "configured_key_store", "key_store_location",
           "payload_keys", "project_keys", "subject_key"]

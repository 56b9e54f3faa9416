"""SQLAlchemy engines for the embedded default (SQLite, WAL) and for PostgreSQL.

Every store in keelwork goes through :func:`make_engine` so that pragmas, pool settings and
driver hints live in one place.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import NoSuchModuleError

from keelwork.errors import MissingExtraError, StoreError

_URL_HINT = ("use postgresql://user:password@host:5432/database (also postgres:// or "
             "postgresql+psycopg://), sqlite:///relative/keel.db, sqlite:////absolute/keel.db "
             "or a file path")
_PASSWORD = re.compile(r"(?<=:)[^:@/]*(?=@)")


def safe_url(url: str) -> str:
    """``url`` for a message: its password replaced by ``***``, even when it does not parse."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return _PASSWORD.sub("***", url)


def normalize_url(url: str) -> URL:
    """The SQLAlchemy URL for a storage URL as people write it.

    Accepted: ``postgresql://``, ``postgres://`` (and ``postgres+driver://``), which use the
    psycopg 3 driver unless one is named; ``sqlite:///relative.db``, ``sqlite:////abs.db``,
    ``sqlite://`` (in memory); a plain file path (SQLite).

    Raises:
        StoreError: anything else, with the accepted spellings; the password is never shown.
    """
    text = url.strip()
    if "://" not in text and "@" not in text and text:
        # A plain path: the SQLite file (the spelling most people try first).
        return URL.create("sqlite", database=str(Path(text).expanduser().absolute()))
    try:
        parsed = make_url(text)
    except Exception:
        raise StoreError(f"The storage URL {safe_url(text)!r} is not a valid URL; "
                         f"{_URL_HINT}.") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgres", "postgresql"):
        return parsed.set(drivername=f"postgresql+{driver or 'psycopg'}")
    if backend == "sqlite":
        if parsed.host:  # sqlite://keel.db: the file name taken as a host, the data in memory
            meant = "/".join(p for p in (parsed.host, parsed.database) if p)
            raise StoreError(f"The storage URL {safe_url(text)!r} names no file (a SQLite URL "
                             f"has three slashes before a relative path): use sqlite:///{meant}.")
        return parsed
    raise StoreError(f"The storage URL {safe_url(text)!r} is for {backend!r}; keelwork stores "
                     f"support SQLite and PostgreSQL: {_URL_HINT}.")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` (any spelling :func:`normalize_url` accepts).

    SQLite: the parent directory is created, WAL journal, ``synchronous=NORMAL`` (durable in WAL
    mode against process crashes), a busy timeout so concurrent writers wait instead of failing.
    PostgreSQL: ``postgresql://`` and ``postgres://`` are mapped to the psycopg 3 driver.

    Raises:
        StoreError: the URL is malformed, for another database, or names a driver that is not
            installed (the password is never in the message).
        MissingExtraError: the PostgreSQL driver is not installed.
    """
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        db = parsed.database
        if db and db != ":memory:":
            Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30},
                               **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if parsed.drivername == "postgresql+psycopg":
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise MissingExtraError("psycopg", "postgres", "A PostgreSQL store") from None
    kwargs.setdefault("pool_pre_ping", True)
    # A store that hangs must fail fast (the prediction log then spools) instead of
    # blocking its writer for the OS's TCP timeout.
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("connect_timeout", 5)
    kwargs["connect_args"] = connect_args
    try:
        return create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"The storage URL {safe_url(url)!r} names the driver "
                         f"{parsed.drivername!r}, which is not installed ({exc}); use "
                         "postgresql+psycopg:// (pip install 'keelwork[postgres]').") from None


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"

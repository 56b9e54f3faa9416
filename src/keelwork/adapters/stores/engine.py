"""SQLAlchemy engines for the embedded default (SQLite, WAL) and for PostgreSQL.

Every store in keelwork goes through :func:`make_engine` so that pragmas, pool settings and
driver hints live in one place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from keelwork.errors import MissingExtraError, StoreError


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url``.

    SQLite: the parent directory is created, WAL journal, ``synchronous=NORMAL`` (durable in WAL
    mode against process crashes), a busy timeout so concurrent writers wait instead of failing.
    PostgreSQL: ``postgresql://`` is mapped to the psycopg 3 driver.

    Raises:
        StoreError: the URL is malformed.
        MissingExtraError: the PostgreSQL driver is not installed.
    """
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise StoreError(f"The storage URL {url!r} is not a valid SQLAlchemy URL: {exc}") from None
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
    if backend == "postgresql":
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
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
        return create_engine(parsed, **kwargs)
    return create_engine(parsed, **kwargs)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"

"""Copies of a store for the drills of ``keel check``: backups through SQLite's online backup
API or ``pg_dump``/``pg_restore``, scratch PostgreSQL databases on the project's server, and
what the drills read: row counts, prediction ids, the logged payloads (the PII scan). The
user's store is only ever read."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from sqlalchemy import MetaData, Table, func, inspect, select, text
from sqlalchemy.engine import make_url

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.prediction_store import prediction_payloads, predictions
from keelwork.errors import StoreError
from keelwork.spec.settings import child_environment


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None: not SQLite, or in memory)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database \
            or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def is_postgres(url: str) -> bool:
    """Whether ``url`` names a PostgreSQL database."""
    return make_url(url).drivername.startswith("postgresql")


class _TooSlow(Exception):
    pass


def sqlite_backup(source: Path, dest: Path, timeout_s: float | None = None) -> None:
    """Copy the SQLite database ``source`` into ``dest`` with the online backup API: a
    consistent copy (the WAL's committed pages included) while other processes keep writing.

    Raises:
        StoreError: ``source`` cannot be read or ``dest`` written, or the copy ran past
            ``timeout_s``.
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s

    def progress(_status: int, _remaining: int, _total: int) -> None:
        if deadline is not None and time.monotonic() > deadline:
            raise _TooSlow

    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        src = sqlite3.connect(f"{source.absolute().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            out = sqlite3.connect(dest, timeout=30)
            try:
                src.backup(out, pages=4096, progress=progress)
            finally:
                out.close()
        finally:
            src.close()
    except _TooSlow:
        raise StoreError(f"Backing up '{source}' ran past {timeout_s} s.") from None
    except sqlite3.Error as exc:
        raise StoreError(f"Backing up '{source}' into '{dest}' failed: {exc}.") from None


def table_counts(url: str) -> dict[str, int]:
    """Rows per table of the store at ``url`` (every table it holds)."""
    engine = make_engine(url)
    try:
        meta = MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            return {name: int(conn.execute(select(func.count()).select_from(
                Table(name, meta))).scalar_one()) for name in sorted(meta.tables)}
    finally:
        engine.dispose()


def stored_prediction_ids(url: str, ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` the prediction log of ``url`` holds."""
    wanted = list(dict.fromkeys(ids))
    found: set[str] = set()
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            for i in range(0, len(wanted), 500):
                found |= set(conn.execute(select(predictions.c.id).where(
                    predictions.c.id.in_(wanted[i:i + 500]))).scalars())
    finally:
        engine.dispose()
    return found


def payload_texts(url: str, chunk: int = 500) -> Iterator[str]:
    """The logged inputs and outputs of every prediction of ``url`` (JSON text as stored;
    sealed payloads stay sealed), read ``chunk`` rows at a time in id order."""
    engine = make_engine(url)
    t = prediction_payloads
    try:
        if not inspect(engine).has_table(t.name):
            return
        last = ""
        while True:
            with engine.connect() as conn:
                rows = conn.execute(select(t.c.id, t.c.inputs, t.c.outputs).where(
                    t.c.id > last).order_by(t.c.id).limit(chunk)).all()
            for row in rows:
                yield row.inputs
                yield row.outputs
            if len(rows) < chunk:
                return
            last = rows[-1].id
    finally:
        engine.dispose()


def create_scratch_database(url: str, prefix: str = "keel_check") -> str:
    """A new, empty database beside the PostgreSQL database of ``url`` (same server and
    credentials); returns its URL. Drop it with :func:`drop_database`.

    Raises:
        StoreError: the server refuses (the role may not create databases, say).
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    _admin(url, f'CREATE DATABASE "{name}"')
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop the database of ``url`` (a scratch one), its open connections closed first."""
    name = make_url(url).database
    _admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin(url: str, statement: str) -> None:
    engine = make_engine(make_url(url).set(database="postgres").render_as_string(
        hide_password=False))
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(statement))
    except Exception as exc:  # the driver's errors: which one depends on the driver
        raise StoreError(f"The PostgreSQL server refused '{statement.split(' ')[0]} "
                         f"DATABASE': {str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()


def pg_dump_restore(source: str, dump: Path, dest: str, timeout_s: float) -> None:
    """Back ``source`` up with ``pg_dump -Fc`` into ``dump`` and restore it into ``dest``.

    Raises:
        StoreError: a tool is missing, fails or runs past ``timeout_s``.
    """
    tools = {t: shutil.which(t) for t in ("pg_dump", "pg_restore")}
    missing = [t for t, p in tools.items() if p is None]
    if missing:
        raise StoreError(f"{' and '.join(missing)} not on PATH (Debian: postgresql-client).")
    for argv in ([str(tools["pg_dump"]), "-Fc", "-f", str(dump), "--dbname", _libpq(source)],
                 [str(tools["pg_restore"]), "--no-owner", "--exit-on-error", "--dbname",
                  _libpq(dest), str(dump)]):
        try:  # the password goes by the environment: an argv is visible to every user
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s,
                                  check=False, env=_pg_env(
                                      source if argv[0] == tools["pg_dump"] else dest))
        except subprocess.TimeoutExpired:
            raise StoreError(f"{Path(argv[0]).name} ran past {timeout_s:.0f} s.") from None
        if done.returncode != 0:
            raise StoreError(f"{Path(argv[0]).name} failed: {done.stderr.strip()[-300:]}")


def _libpq(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as libpq takes it (no ``+driver``, no password)."""
    return make_url(url).set(drivername="postgresql", password=None).render_as_string(
        hide_password=False)


def _pg_env(url: str) -> dict[str, str]:
    """The tools' environment: this process's, with the URL's password as ``PGPASSWORD``
    (a URL without one leaves libpq its own ``PGPASSWORD`` or password file)."""
    password = make_url(url).password
    return child_environment() if password is None else child_environment(
        PGPASSWORD=str(password))


__all__ = ["create_scratch_database", "drop_database", "is_postgres", "payload_texts",
           "pg_dump_restore",
           "sqlite_backup", "sqlite_file", "stored_prediction_ids", "table_counts"]

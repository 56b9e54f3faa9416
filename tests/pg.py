"""A throw-away PostgreSQL server for tests: initdb + pg_ctl in a temp dir, on loopback.

Used by the ``pg_url`` / ``pg_database`` / ``store_url`` fixtures in ``tests/conftest.py``;
usable on its own::

    with TempPostgres.start() as pg:
        url = pg.create_database()      # postgresql+psycopg://postgres@127.0.0.1:PORT/t_...

Finding the binaries: ``$KEELWORK_TEST_PG_BIN`` (a directory), then ``initdb``/``pg_ctl`` on
``PATH``, then ``/usr/lib/postgresql/*/bin`` (Debian/Ubuntu). As root, PostgreSQL refuses to run,
so the server runs as the ``postgres`` user through ``runuser`` and owns its temp dir.

The server is tuned for tests (fsync off, no TCP outside 127.0.0.1, a unix socket inside the temp
dir, trust authentication for the local superuser ``postgres``) and is stopped and deleted on
:meth:`TempPostgres.stop`.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_PG_USER = "postgres"


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries (or a user to run them as) cannot be found."""


def find_pg_bin() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``.

    Raises:
        PostgresUnavailable: they are not installed.
    """
    explicit = os.environ.get("KEELWORK_TEST_PG_BIN")
    candidates: list[Path] = [Path(explicit)] if explicit else []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    candidates.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True))
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH, in "
        "/usr/lib/postgresql/*/bin or in $KEELWORK_TEST_PG_BIN; install the 'postgresql' "
        "package to run the PostgreSQL tests")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class TempPostgres:
    """A running throw-away server. Create it with :meth:`start`."""

    bin_dir: Path
    base_dir: Path
    port: int
    run_as: str | None
    durable: bool = False

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def admin_url(self) -> str:
        """URL of the ``postgres`` maintenance database, as the superuser."""
        return self.url("postgres")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{_PG_USER}@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls, bin_dir: Path | None = None, *, durable: bool = False) -> TempPostgres:
        """initdb a cluster in a new temp dir and start it on a free loopback port.

        ``durable``: keep PostgreSQL's own durability (fsync, synchronous commit, full-page
        writes), as a production server runs; a benchmark of write rates wants it, the tests
        do not.

        Raises:
            PostgresUnavailable: no binaries, or running as root without a ``postgres`` user.
            RuntimeError: initdb or the server start failed (the server log is in the message).
        """
        bin_dir = bin_dir or find_pg_bin()
        run_as: str | None = None
        base = Path(tempfile.mkdtemp(prefix="keel-pg-"))
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam(_PG_USER)
            except KeyError:
                shutil.rmtree(base, ignore_errors=True)
                raise PostgresUnavailable(
                    "running as root and there is no 'postgres' user to run the server as"
                ) from None
            os.chown(base, entry.pw_uid, entry.pw_gid)
            run_as = _PG_USER
        server = cls(bin_dir=bin_dir, base_dir=base, port=0, run_as=run_as, durable=durable)
        try:
            server._run(["initdb", "-D", str(server.data_dir), "-U", _PG_USER, "--auth=trust",
                         "--encoding=UTF8", "--locale=C", "--no-sync"])
            last_error = ""
            for _attempt in range(5):  # the free port can be taken before the server binds it
                server.port = free_port()
                try:
                    server._pg_ctl_start()
                    return server
                except RuntimeError as exc:
                    last_error = str(exc)
            raise RuntimeError(f"PostgreSQL did not start: {last_error}")
        except BaseException:
            shutil.rmtree(base, ignore_errors=True)
            raise

    def _pg_ctl_start(self) -> None:
        opts = " ".join([
            f"-p {self.port}", "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.base_dir}", "-c max_connections=100",
            *([] if self.durable else ["-c fsync=off", "-c synchronous_commit=off",
                                       "-c full_page_writes=off"]),
        ])
        log = self.base_dir / "server.log"
        try:
            self._run(["pg_ctl", "-D", str(self.data_dir), "-l", str(log), "-o", opts, "-w",
                       "-t", "30", "start"])
        except RuntimeError as exc:
            server_log = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{exc}\n{server_log}") from None

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its directory."""
        with contextlib.suppress(RuntimeError):
            self._run(["pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop"])
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def create_database(self, name: str | None = None) -> str:
        """Create a fresh, empty database; return its URL."""
        return create_database(self.admin_url, name)

    def _run(self, argv: Sequence[str]) -> None:
        cmd = [str(self.bin_dir / argv[0]), *argv[1:]]
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False,
                              cwd=self.base_dir)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:1])} failed ({done.returncode}): "
                               f"{(done.stderr or done.stdout).strip()[-2000:]}")

    def __enter__(self) -> TempPostgres:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def table_file_bytes(engine: Any, *tables: str) -> bytes:
    """The raw bytes of ``tables`` (and their TOAST) in a PostgreSQL data directory, after a
    checkpoint wrote every dirty page: what a scan of the store's files sees."""
    from sqlalchemy import text

    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("CHECKPOINT"))
        data_dir = Path(conn.execute(text("SHOW data_directory")).scalar_one())
        rels = [conn.execute(text("SELECT pg_relation_filepath(:t)"), {"t": t}).scalar_one()
                for t in tables]
        rels += conn.execute(text(
            "SELECT pg_relation_filepath(reltoastrelid) FROM pg_class WHERE relname = ANY(:t) "
            "AND reltoastrelid <> 0"), {"t": list(tables)}).scalars().all()
    return b"".join(part.read_bytes() for rel in rels
                    for part in sorted((data_dir / rel).parent.glob(Path(rel).name + "*")))


def create_database(admin_url: str, name: str | None = None) -> str:
    """Create a fresh, empty database on the server of ``admin_url``; return its URL.

    Works with any server where the ``admin_url`` user may ``CREATE DATABASE`` (a
    :class:`TempPostgres`, or a CI service container given in ``$KEELWORK_TEST_POSTGRES_URL``).
    """
    from sqlalchemy.engine import make_url

    name = name or f"t_{uuid.uuid4().hex[:16]}"
    _admin(admin_url, f'CREATE DATABASE "{name}"')
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    """Drop the database ``url`` names, disconnecting anyone still attached (PostgreSQL 13+)."""
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin(admin_url: str, sql: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    parsed = make_url(admin_url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(parsed, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


@contextlib.contextmanager
def temp_postgres() -> Iterator[TempPostgres]:
    """Start a :class:`TempPostgres`, yield it, stop it."""
    server = TempPostgres.start()
    try:
        yield server
    finally:
        server.stop()

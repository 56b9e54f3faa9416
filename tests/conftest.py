"""Shared fixtures for the whole test suite.

Database fixtures (for every store: the registry, the prediction log, ...):

``pg_url`` (session)
    SQLAlchemy URL of a REAL PostgreSQL server's maintenance database, as a superuser. By default
    the tests start a throw-away server on 127.0.0.1 (see ``tests/pg.py``) and stop it at the end
    of the session; set ``KEELWORK_TEST_POSTGRES_URL`` to use an existing server instead (a CI
    service container). Without PostgreSQL binaries the dependent tests are skipped with the
    reason, unless ``$CI`` is set: then they fail, because CI must install them.
``pg_database`` (function)
    URL of a fresh, empty database on that server, created for one test and dropped after it.
``serve_engine`` (function, parametrized ``uvicorn`` / ``ray`` / ``granian``)
    ``(engine, storage URL)`` for the serving and releases suites that run on every engine of
    ``keel serve``: uvicorn on the project's own SQLite (URL None), Ray Serve's replicas on a
    ``pg_database`` (the ``ray`` case carries the ``postgres`` marker), or ``--engine granian``
    on the project's own SQLite (``live_server.served`` says which port takes what).
``store_url`` (function, parametrized ``sqlite`` / ``postgres``)
    The storage URL a store test should use: a SQLite file in ``tmp_path``, or a ``pg_database``.
    A test that takes it runs once per backend; the ``postgres`` case carries the ``postgres``
    marker (``pytest -m "not postgres"`` runs the SQLite half only).

Dispose of your engines at the end of a test (the per-test database is dropped WITH (FORCE)
anyway, so a forgotten connection does not hang the suite).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pg import PostgresUnavailable, TempPostgres, create_database, drop_database


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a real PostgreSQL server's ``postgres`` database (superuser); see module doc."""
    external = os.environ.get("KEELWORK_TEST_POSTGRES_URL", "").strip()
    if external:
        yield external
        return
    try:
        server = TempPostgres.start()
    except PostgresUnavailable as exc:
        if _in_ci():
            pytest.fail(f"CI is set but PostgreSQL is unavailable: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL is unavailable: {exc}")
    try:
        yield server.admin_url
    finally:
        server.stop()


@pytest.fixture
def pg_database(pg_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    url = create_database(pg_url)
    try:
        yield url
    finally:
        drop_database(pg_url, url)


@pytest.fixture(params=["uvicorn", pytest.param("ray", marks=pytest.mark.postgres), "granian"])
def serve_engine(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """``keel serve``'s engine and the storage URL it needs; see module doc."""
    if request.param == "uvicorn":
        return "uvicorn", None
    if request.param == "granian":
        pytest.importorskip("granian", reason="granian is not installed: pip install "
                            "'keelwork[granian]'")
        return "granian", None
    pytest.importorskip("ray.serve", reason="ray[serve] is not installed: pip install "
                        "'keelwork[ray]'")
    url: str = request.getfixturevalue("pg_database")
    return "ray", url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A storage URL per backend: SQLite in ``tmp_path``, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'keel.db'}"
    url: str = request.getfixturevalue("pg_database")
    return url

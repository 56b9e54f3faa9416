"""Storage URLs: the spellings people write are accepted, the rest refused with a hint, and a
password never appears in a message (issue 13 item 12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from keelwork.adapters.stores.engine import make_engine, safe_url
from keelwork.errors import StoreError

SECRET = "S3cretPW_pg"


@pytest.mark.parametrize("url", [f"postgres://admin:{SECRET}@db.example:5433/keel",
                                 f"postgresql://admin:{SECRET}@db.example:5433/keel",
                                 f"postgresql+psycopg://admin:{SECRET}@db.example:5433/keel"])
def test_postgres_spellings_use_psycopg(url: str) -> None:
    engine = make_engine(url)  # no connection is made
    try:
        assert engine.url.drivername == "postgresql+psycopg"
        assert (engine.url.host, engine.url.port, engine.url.database) == ("db.example", 5433,
                                                                            "keel")
    finally:
        engine.dispose()


@pytest.mark.parametrize("spelling", ["{p}", "sqlite:///{p}", "sqlite+pysqlite:///{p}"])
def test_sqlite_paths(tmp_path: Path, spelling: str) -> None:
    path = tmp_path / "sub" / "keel.db"
    engine = make_engine(spelling.format(p=path))
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        assert path.is_file()
    finally:
        engine.dispose()


@pytest.mark.parametrize(("url", "hint"), [
    (f"admin:{SECRET}@db/keel", "postgresql://user:password@host:5432/database"),
    ("sqlite://keel.db", "sqlite:///keel.db"),
    (f"mysql://admin:{SECRET}@db/keel", "SQLite and PostgreSQL"),
    (f"postgresql+nosuchdriver://admin:{SECRET}@db/keel", "postgresql+psycopg"),
])
def test_other_spellings_are_refused_with_a_hint_and_no_password(url: str, hint: str) -> None:
    with pytest.raises(StoreError) as info:
        make_engine(url)
    assert hint in info.value.message
    assert SECRET not in info.value.message
    assert ("***" in info.value.message) == (SECRET in url)


def test_safe_url_hides_the_password_even_when_unparseable() -> None:
    assert safe_url(f"postgresql://admin:{SECRET}@db/keel") == "postgresql://admin:***@db/keel"
    assert SECRET not in safe_url(f"admin:{SECRET}@db/keel")
    assert safe_url("sqlite:///keel.db") == "sqlite:///keel.db"

"""Tables of the model registry (SQLAlchemy Core) and the shared schema-version stamp.

Tables::

    schema_meta     kind (PK), version, updated_at     one row per store module ("registry", ...)
    models          id (PK), name (unique), created_at, created_by
    model_versions  id (PK), model_id -> models, version, runtime, artifact_uri, sha256, size,
                    provenance (git, dataset, metrics, environment, options, who, when);
                    unique (model_id, version): two concurrent registers cannot share a number
    model_aliases   (model_id, alias) PK -> (model_id, version), updated_at, updated_by
    alias_history   id (PK), model_id, alias, from_version, to_version, actor, reason, changed_at

Other stores (the prediction log, ...) keep their tables in their own module with their own
``MetaData`` and stamp their own ``schema_meta`` row through :func:`stamp_schema` (which creates
``schema_meta`` when missing), so each can be migrated on its own.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Engine,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from keelwork.adapters.stores.transactions import is_busy
from keelwork.errors import StoreError

#: ``schema_meta.kind`` of the registry tables.
REGISTRY_SCHEMA_KIND = "registry"
#: Current version of the registry tables; bump it with a migration in :func:`ensure_schema`.
REGISTRY_SCHEMA_VERSION = 1

metadata = MetaData()


def _utc() -> Any:
    return DateTime(timezone=True)


schema_meta = Table(
    "schema_meta",
    metadata,
    Column("kind", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", _utc(), nullable=False),
)

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("created_at", _utc(), nullable=False),
    Column("created_by", String(256), nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("runtime", String(64), nullable=False),
    Column("artifact_uri", Text, nullable=False),
    Column("sha256", String(64), nullable=True),
    Column("size", BigInteger, nullable=True),
    Column("created_at", _utc(), nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("git_commit", String(64), nullable=True),
    Column("git_dirty", Boolean, nullable=True),
    Column("dataset_version", String(256), nullable=True),
    Column("metrics", JSON, nullable=False),
    Column("environment", JSON, nullable=False),
    Column("options", JSON, nullable=False),
    UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
    Index("ix_model_versions_sha256", "sha256"),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
    Column("alias", String(128), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", _utc(), nullable=False),
    Column("updated_by", String(256), nullable=False),
    ForeignKeyConstraint(
        ["model_id", "version"],
        ["model_versions.model_id", "model_versions.version"],
        name="fk_model_aliases_version",
        ondelete="CASCADE",
    ),
)

alias_history = Table(
    "alias_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("alias", String(128), nullable=False),
    Column("from_version", Integer, nullable=True),
    Column("to_version", Integer, nullable=True),
    Column("actor", String(256), nullable=False),
    Column("reason", Text, nullable=False),
    Column("changed_at", _utc(), nullable=False),
    Index("ix_alias_history_model", "model_id", "id"),
)


def ensure_schema(engine: Engine) -> None:
    """Create the registry tables if missing and check/stamp their schema version.

    Safe to call on every start and from several processes at once.

    Raises:
        StoreError: the database is unreachable, or it was written by a newer keelwork whose
            registry schema this version does not know.
    """
    create_tables(engine, metadata, "registry")
    stamp_schema(engine, REGISTRY_SCHEMA_KIND, REGISTRY_SCHEMA_VERSION)


def create_tables(engine: Engine, meta: MetaData, what: str,
                  tables: Sequence[Table] | None = None) -> None:
    """``meta.create_all`` that tolerates other processes creating the same tables meanwhile.

    Store modules with their own ``MetaData`` call it too. ``tables`` limits it to some tables.

    Two processes starting on a fresh database both see a table missing and both create it; the
    loser's "already exists" is harmless, so it checks again (a few times, for tables created
    one after another) before reporting a failure.

    Raises:
        StoreError: the tables still cannot be created (unreachable or read-only database).
    """
    for attempt in range(8):
        try:
            meta.create_all(engine, tables=tables, checkfirst=True)
            return
        except SQLAlchemyError as exc:
            if attempt == 7 or not _looks_like_a_race(exc):
                raise StoreError(
                    f"Could not create the {what} tables in {_safe_url(engine)}: "
                    f"{_short(exc)}. Check that the database is reachable and writable."
                ) from None
            time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))


def _looks_like_a_race(exc: SQLAlchemyError) -> bool:
    # Another process creating tables: "already exists", or (SQLite) the database locked by
    # its DDL transaction for longer than the busy timeout.
    if isinstance(exc, OperationalError) and is_busy(exc):
        return True
    text = str(getattr(exc, "orig", exc)).lower()
    return "already exists" in text or "duplicate" in text or isinstance(exc, IntegrityError)


def stamp_schema(engine: Engine, kind: str, version: int) -> int:
    """Record that the tables of ``kind`` are at ``version``; return the version found before.

    Returns 0 when there was no row (a fresh database). Store modules run their migrations,
    then stamp, when the stored version is smaller. Creates ``schema_meta`` when missing.

    Raises:
        StoreError: the stored version is newer than ``version`` (a newer keelwork wrote it), or
            the database failed.
    """
    create_tables(engine, metadata, "schema_meta", tables=[schema_meta])
    try:
        for _attempt in range(3):
            try:
                with engine.begin() as conn:
                    return _stamp(conn, kind, version)
            except IntegrityError:  # another process stamped the same kind just now
                continue
        raise StoreError(f"Could not stamp the '{kind}' schema version: it kept changing.")
    except SQLAlchemyError as exc:
        raise StoreError(f"Could not read the schema version in {_safe_url(engine)}: "
                         f"{_short(exc)}.") from None


def _stamp(conn: Connection, kind: str, version: int) -> int:
    found = conn.execute(
        select(schema_meta.c.version).where(schema_meta.c.kind == kind)
    ).scalar_one_or_none()
    now = datetime.now(UTC)
    if found is None:
        conn.execute(schema_meta.insert().values(kind=kind, version=version, updated_at=now))
        return 0
    if found > version:
        raise StoreError(
            f"The '{kind}' tables in this database are at schema version {found}, newer than "
            f"this keelwork understands ({version}); upgrade keelwork."
        )
    if found < version:
        conn.execute(schema_meta.update().where(schema_meta.c.kind == kind)
                     .values(version=version, updated_at=now))
    return int(found)


def _safe_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _short(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).strip().splitlines()[0]


__all__ = [
    "REGISTRY_SCHEMA_KIND",
    "REGISTRY_SCHEMA_VERSION",
    "alias_history",
    "create_tables",
    "ensure_schema",
    "metadata",
    "model_aliases",
    "model_versions",
    "models",
    "schema_meta",
    "stamp_schema",
]

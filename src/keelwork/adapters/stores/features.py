"""The online feature store: the latest values of each entity, by key (SQLite or PostgreSQL).

Tables (own ``MetaData``, schema kind ``features``)::

    feature_values  (entity, entity_key) PK, event_us (when the value became known, microseconds
                    since the epoch, UTC), payload (JSON object: feature -> value),
                    materialized_at (Unix seconds)

:meth:`FeatureStore.materialize` writes, for each key of an entity's history, its latest row as
of a time (the same choice the training join makes, see
:class:`~keelwork.core.features.EntityIndex`). A stored value is only replaced by one at least as
recent, so materialising again, or an older window, never moves a key back in time.
:meth:`FeatureStore.lookup` answers a batch of keys with one query.

Payloads are JSON written by the standard library with NaN and Infinity allowed, so every float
(NaN included) reads back exactly as it was trained on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    select,
)
from sqlalchemy.exc import SQLAlchemyError

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.schema import create_tables, stamp_schema
from keelwork.core.features import EntityIndex, micros_of
from keelwork.errors import DataFileError, StoreError
from keelwork.spec.features import EntitySpec

FEATURES_SCHEMA_KIND = "features"
FEATURES_SCHEMA_VERSION = 1
#: Keys per ``IN (...)`` query and rows per insert round trip.
CHUNK = 1_000
_MAX_KEY = 512

metadata = MetaData()

feature_values = Table(
    "feature_values", metadata,
    Column("entity", String(128), primary_key=True),
    Column("entity_key", String(_MAX_KEY), primary_key=True),
    Column("event_us", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),
    Column("materialized_at", Double, nullable=False),
)


@dataclass(frozen=True, slots=True)
class StoredValue:
    """One key's stored values.

    Attributes:
        values: ``{feature: value}``.
        event_us: When the values became known (microseconds since the epoch, UTC).
        materialized_at: When they were written (Unix seconds).
    """

    values: dict[str, Any]
    event_us: int
    materialized_at: float


@dataclass(frozen=True, slots=True)
class MaterializeResult:
    """What one :meth:`FeatureStore.materialize` did."""

    entity: str
    rows_read: int
    keys_written: int
    up_to_us: int


def _storable_key(key: str) -> bool:
    return len(key) <= _MAX_KEY and "\x00" not in key


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _short(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class FeatureStore:
    """The online store of entity features.

    Args:
        engine: The store (:func:`~keelwork.adapters.stores.engine.make_engine`); call
            :meth:`ensure_schema` once before use (:func:`open_feature_store` does).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._upsert = _upsert_statement(engine)

    def ensure_schema(self) -> None:
        """Create the table when missing and stamp its schema version.

        Raises:
            StoreError: the store failed, or holds a newer schema than this keelwork knows.
        """
        create_tables(self.engine, metadata, "feature store")
        stamp_schema(self.engine, FEATURES_SCHEMA_KIND, FEATURES_SCHEMA_VERSION)

    def close(self) -> None:
        """Release the engine's connections."""
        self.engine.dispose()

    # ------------------------------------------------------------------ writing
    def materialize(self, entity: EntitySpec, table: Any, *,
                    up_to: datetime | str | float | None = None,
                    source: str | None = None) -> MaterializeResult:
        """Write each key's latest values as of ``up_to`` from an entity's history.

        Reading the history from its file is the caller's (the CLI reads it with
        :func:`keelwork.adapters.data.feature_modules.read_source`): a store reads no data files.

        Args:
            entity: The entity's section of keel.yaml.
            table: Its history, a ``pyarrow.Table``.
            up_to: Ignore history rows after this time (datetime, ISO 8601 string or Unix
                seconds; naive = UTC). Default: now.
            source: The history's name in messages (default: the entity's source).

        Returns:
            How many rows were read and keys written.

        Raises:
            DataFileError: the history lacks a column, has a wrong type, or a key is longer
                than 512 characters or holds NUL.
            StoreError: the store failed (nothing is written then).
            ValueError: ``up_to`` is not a time.
        """
        name = source or entity.source
        up_to_us = micros_of(time.time() if up_to is None else up_to)
        index = EntityIndex(entity, table, source=name)
        keys, event_us, values = index.latest(up_to_us)
        bad = next((k for k in keys if not _storable_key(k)), None)
        if bad is not None:
            raise DataFileError(f"{name}: the key column {entity.key!r} must hold keys of at "
                                f"most {_MAX_KEY} characters without NUL; got {bad[:40]!r}.",
                                path=name, column=entity.key)
        now = time.time()
        rows = [{"entity": entity.name, "entity_key": k, "event_us": int(t),
                 "payload": json.dumps(v, allow_nan=True, separators=(",", ":")),
                 "materialized_at": now}
                for k, t, v in zip(keys, event_us.tolist(), values, strict=True)]
        try:
            with self.engine.begin() as conn:
                for start in range(0, len(rows), CHUNK):
                    conn.execute(self._upsert, rows[start:start + CHUNK])
        except SQLAlchemyError as exc:
            raise StoreError(f"Could not write the features of {entity.name!r} to "
                             f"{_url(self.engine)}: {_short(exc)}.") from None
        return MaterializeResult(entity.name, table.num_rows, len(rows), up_to_us)

    # ------------------------------------------------------------------ reading
    def lookup_stored(self, entity: str,
                      keys: Sequence[str | None]) -> list[StoredValue | None]:
        """The stored values of ``entity`` for each key, however old (one query per 1,000 keys).

        Args:
            entity: The entity name.
            keys: Canonical keys (:func:`~keelwork.core.features.canonical_key`); None: no key.

        Returns:
            One entry per key, in order; None where the store holds nothing.

        Raises:
            StoreError: the store failed.
        """
        # A key the store cannot hold is unknown: no query, no error on the request path.
        wanted = sorted({k for k in keys if k is not None and _storable_key(k)})
        found: dict[str, StoredValue] = {}
        t = feature_values
        try:
            with self.engine.connect() as conn:
                for start in range(0, len(wanted), CHUNK):
                    chunk = wanted[start:start + CHUNK]
                    query = (select(t.c.entity_key, t.c.event_us, t.c.payload,
                                    t.c.materialized_at)
                             .where(t.c.entity == entity, t.c.entity_key.in_(chunk)))
                    for key, event_us, payload, materialized_at in conn.execute(query):
                        found[key] = StoredValue(json.loads(payload), int(event_us),
                                                 float(materialized_at))
        except SQLAlchemyError as exc:
            raise StoreError(f"Could not look up the features of {entity!r} in "
                             f"{_url(self.engine)}: {_short(exc)}.") from None
        return [None if k is None else found.get(k) for k in keys]

    def lookup(self, entity: str, keys: Sequence[str | None], *, max_age_s: float | None = None,
               now: float | None = None) -> list[dict[str, Any] | None]:
        """The latest values of ``entity`` for each key (one query per batch of up to 1,000 keys).

        Args:
            entity: The entity name.
            keys: Canonical keys (:func:`~keelwork.core.features.canonical_key`); None: no key.
            max_age_s: Values older than this many seconds (before ``now``) count as missing,
                as in the training join (the entity's ``ttl``).
            now: Unix seconds ``max_age_s`` counts back from; default: the current time.

        Returns:
            ``{feature: value}`` per key, in order; None where unknown or too old.

        Raises:
            StoreError: the store failed.
        """
        stored = self.lookup_stored(entity, keys)
        if max_age_s is None:
            return [None if s is None else s.values for s in stored]
        oldest = micros_of(time.time() if now is None else now) - int(max_age_s) * 1_000_000
        return [None if s is None or s.event_us < oldest else s.values for s in stored]

    def entities(self) -> dict[str, int]:
        """How many keys each entity holds.

        Raises:
            StoreError: the store failed.
        """
        from sqlalchemy import func

        t = feature_values
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(select(t.c.entity, func.count()).group_by(t.c.entity))
                return {str(e): int(n) for e, n in rows}
        except SQLAlchemyError as exc:
            raise StoreError(f"Could not read the feature store {_url(self.engine)}: "
                             f"{_short(exc)}.") from None


def _upsert_statement(engine: Engine) -> Any:
    """Insert, or replace a stored value that is not newer (never move a key back in time)."""
    t = feature_values
    name = engine.dialect.name
    stmt: Any
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(t)
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(t)
    else:
        raise StoreError(f"The feature store supports SQLite and PostgreSQL; got {name!r}.")
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[t.c.entity, t.c.entity_key],
        set_={"event_us": new.event_us, "payload": new.payload,
              "materialized_at": new.materialized_at},
        where=t.c.event_us <= new.event_us,
    )


def open_feature_store(url: str) -> FeatureStore:
    """A :class:`FeatureStore` on ``url`` with its table created when missing.

    Args:
        url: A SQLAlchemy URL (``sqlite:///...``, ``postgresql://...``).

    Returns:
        The store; :meth:`FeatureStore.close` releases it.

    Raises:
        StoreError: the URL is malformed or the store failed.
        MissingExtraError: the PostgreSQL driver is not installed.
    """
    store = FeatureStore(make_engine(url))
    try:
        store.ensure_schema()
    except BaseException:
        store.close()
        raise
    return store


__all__ = [
    "CHUNK",
    "FEATURES_SCHEMA_KIND",
    "FEATURES_SCHEMA_VERSION",
    "FeatureStore",
    "MaterializeResult",
    "StoredValue",
    "feature_values",
    "metadata",
    "open_feature_store",
]

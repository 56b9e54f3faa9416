"""API keys in the store: create (the plaintext is returned once), verify, revoke, list.

Table::

    api_keys  id (PK, the key's public id), hash (SHA-256, see keelwork.core.auth), scopes
              (comma-separated), name, created_at, created_by, revoked_at, revoked_by,
              last_used_at

Neither the plaintext nor the hash ever leaves this module in a listing, a message or an audit
entry. :meth:`ApiKeyStore.verify` runs on every keyed request, so a verified key is remembered
in memory for ``cache_seconds`` (5 by default): a revocation takes effect at once in the process
that revoked it and within that time in every other server. ``last_used_at`` is written at
most once per ``touch_seconds`` per key, so verification is not a database write per request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, Engine, MetaData, String, Table, select
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import SQLAlchemyError

from keelwork.adapters.stores.schema import create_tables, stamp_schema
from keelwork.adapters.stores.transactions import connection, retrying_transaction
from keelwork.core.auth import (
    Principal,
    check_key_name,
    check_scopes,
    generate_key,
    hash_secret,
    parse_key,
    secret_matches,
)
from keelwork.errors import AuthError, StoreError
from keelwork.types import AuditSink

API_KEYS_SCHEMA_KIND = "api_keys"
API_KEYS_SCHEMA_VERSION = 1
_STORE = "API key store"
_CACHE_MAX = 4096

metadata = MetaData()
api_keys = Table(
    "api_keys", metadata,
    Column("id", String(32), primary_key=True),
    Column("hash", String(64), nullable=False),
    Column("scopes", String(128), nullable=False),
    Column("name", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("revoked_by", String(256), nullable=True),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
)


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """What may be shown about a key: never its secret or hash."""

    key_id: str
    name: str
    scopes: frozenset[str]
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    last_used_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def as_dict(self) -> dict[str, Any]:
        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment else None

        return {"kind": "keelwork.api_key", "version": 1, "id": self.key_id, "name": self.name,
                "scopes": sorted(self.scopes), "created_at": iso(self.created_at),
                "created_by": self.created_by, "revoked_at": iso(self.revoked_at),
                "revoked_by": self.revoked_by, "last_used_at": iso(self.last_used_at),
                "active": self.active}


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key: ``plaintext`` exists only here, once."""

    plaintext: str
    info: ApiKeyInfo

    def __repr__(self) -> str:  # never print the secret by accident
        return f"CreatedKey(plaintext='***', info={self.info!r})"


class ApiKeyStore:
    """API keys of a project's store.

    Args:
        engine: The store.
        audit: Where creations and revocations are recorded, if anywhere.
        cache_seconds: How long a verified key is trusted without reading the store again.
        touch_seconds: How often ``last_used_at`` is written per key at most.
    """

    def __init__(self, engine: Engine, audit: AuditSink | None = None, *,
                 cache_seconds: float = 5.0, touch_seconds: float = 60.0) -> None:
        self.engine = engine
        self.audit = audit
        self.cache_seconds = cache_seconds
        self.touch_seconds = touch_seconds
        self._lock = threading.Lock()
        # hash of the presented key -> (principal, trusted until); hashes, never plaintexts.
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._touched: dict[str, float] = {}
        self._any_active: tuple[bool, float] = (False, -1.0)

    def ensure_schema(self) -> None:
        """Create the table if missing (safe to repeat)."""
        create_tables(self.engine, metadata, "API key", tables=[api_keys])
        stamp_schema(self.engine, API_KEYS_SCHEMA_KIND, API_KEYS_SCHEMA_VERSION)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    # ------------------------------------------------------------------ writing
    def create(self, *, scopes: Iterable[str], name: str, created_by: str) -> CreatedKey:
        """Create a key; its plaintext is in the result and nowhere else, ever.

        Raises:
            AuthError: an unknown scope or a malformed name.
            StoreError: the store failed.
        """
        granted = check_scopes(scopes)
        check_key_name(name)
        now = datetime.now(UTC)

        def work(conn: Connection) -> CreatedKey:
            # A fresh key per attempt: an id collision (48 random bits) retries with another.
            key = generate_key()
            conn.execute(api_keys.insert().values(
                id=key.key_id, hash=key.hash, scopes=",".join(sorted(granted)), name=name,
                created_at=now, created_by=created_by))
            return CreatedKey(key.plaintext, ApiKeyInfo(key.key_id, name, granted, now,
                                                        created_by))

        created = retrying_transaction(self.engine, work, store=_STORE,
                                       what="creating an API key")
        with self._lock:
            self._any_active = (True, time.monotonic() + self.cache_seconds)
        if self.audit is not None:
            self.audit.append(actor=created_by, action="key.create", target=created.info.key_id,
                              details={"name": name, "scopes": sorted(granted)})
        return created

    def revoke(self, key_id: str, *, actor: str) -> ApiKeyInfo:
        """Revoke a key (again is harmless: the first revocation is kept).

        Raises:
            AuthError: no key has that id.
            StoreError: the store failed.
        """
        now = datetime.now(UTC)

        def work(conn: Connection) -> tuple[ApiKeyInfo, bool]:
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)
                               .with_for_update()).mappings().first()
            if row is None:
                raise AuthError(f"No API key has the id {key_id!r}; 'keel keys list' shows "
                                "the ids.")
            if row["revoked_at"] is not None:
                return _info(row), False
            conn.execute(api_keys.update().where(api_keys.c.id == key_id)
                         .values(revoked_at=now, revoked_by=actor))
            return _info({**row, "revoked_at": now, "revoked_by": actor}), True

        info, changed = retrying_transaction(self.engine, work, store=_STORE,
                                             what=f"revoking API key {key_id!r}")
        with self._lock:
            self._cache = {h: v for h, v in self._cache.items() if v[0].key_id != key_id}
        if changed and self.audit is not None:
            self.audit.append(actor=actor, action="key.revoke", target=key_id,
                              details={"name": info.name})
        return info

    # ------------------------------------------------------------------ reading
    def list(self, *, include_revoked: bool = True) -> list[ApiKeyInfo]:
        """Every key, oldest first (secrets and hashes are never read)."""
        query = select(*[c for c in api_keys.c if c.name != "hash"])
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        with connection(self.engine, _STORE, "listing API keys") as conn:
            rows = conn.execute(query.order_by(api_keys.c.created_at, api_keys.c.id)
                                ).mappings().all()
        return [_info(r) for r in rows]

    def has_active_keys(self) -> bool:
        """Whether the store holds any unrevoked key, remembered for ``cache_seconds``.

        Raises:
            StoreError: the store failed.
        """
        now = time.monotonic()
        with self._lock:
            known, until = self._any_active
        if until > now:
            return known
        with connection(self.engine, _STORE, "looking for API keys") as conn:
            found = conn.execute(select(api_keys.c.id).where(api_keys.c.revoked_at.is_(None))
                                 .limit(1)).first() is not None
        with self._lock:
            self._any_active = (found, now + self.cache_seconds)
        return found

    def cached(self, key: str | None) -> Principal | None:
        """The principal of ``key`` if it was verified within ``cache_seconds``, else ``None``.

        Never touches the database, so an event loop may call it directly and fall back to
        :meth:`verify` in a thread only on a miss.
        """
        parsed = parse_key(key)
        if parsed is None:
            return None
        presented = hash_secret(*parsed)
        with self._lock:
            hit = self._cache.get(presented)
        return hit[0] if hit is not None and hit[1] > time.monotonic() else None

    def verify(self, key: str | None) -> Principal | None:
        """The principal of a valid, unrevoked key; ``None`` for anything else.

        Raises:
            StoreError: the store failed (a caller answers 503, not 401: the key may be fine).
        """
        parsed = parse_key(key)
        if parsed is None:
            return None
        key_id, secret = parsed
        presented = hash_secret(key_id, secret)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(presented)
        if hit is not None and hit[1] > now:
            self._touch(key_id, now)
            return hit[0]
        with connection(self.engine, _STORE, "verifying an API key") as conn:
            row = conn.execute(select(api_keys.c.hash, api_keys.c.name, api_keys.c.scopes,
                                      api_keys.c.revoked_at)
                               .where(api_keys.c.id == key_id)).first()
        if row is None or row[3] is not None or not secret_matches(row[0], key_id, secret):
            return None
        principal = Principal(key_id, row[1], _scopes(row[2]))
        with self._lock:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[presented] = (principal, now + self.cache_seconds)
        self._touch(key_id, now)
        return principal

    def _touch(self, key_id: str, now: float) -> None:
        with self._lock:
            if now - self._touched.get(key_id, -1e18) < self.touch_seconds:
                return
            self._touched[key_id] = now
        try:
            with self.engine.begin() as conn:
                conn.execute(api_keys.update().where(api_keys.c.id == key_id)
                             .values(last_used_at=datetime.now(UTC)))
        except SQLAlchemyError:  # best effort: a busy store must not refuse a valid key
            with self._lock:
                self._touched.pop(key_id, None)


def _scopes(text: str) -> frozenset[str]:
    return frozenset(s for s in (text or "").split(",") if s)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands timestamps back without a zone; they were written in UTC.
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _info(r: RowMapping | dict[str, Any]) -> ApiKeyInfo:
    created = _aware(r["created_at"])
    if created is None:  # pragma: no cover - the column is NOT NULL
        raise StoreError("An API key row has no created_at.")
    return ApiKeyInfo(key_id=r["id"], name=r["name"], scopes=_scopes(r["scopes"]),
                      created_at=created, created_by=r["created_by"],
                      revoked_at=_aware(r["revoked_at"]), revoked_by=r["revoked_by"],
                      last_used_at=_aware(r["last_used_at"]))


__all__ = [
    "API_KEYS_SCHEMA_KIND",
    "API_KEYS_SCHEMA_VERSION",
    "ApiKeyInfo",
    "ApiKeyStore",
    "CreatedKey",
    "api_keys",
]

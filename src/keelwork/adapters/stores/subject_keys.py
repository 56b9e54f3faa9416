"""Per-subject data keys (crypto-shredding) for the prediction log's payload columns (and,
under scoped ids, for snapshot rows: :mod:`.dataset_sealing`).

Every prediction that names a data subject has its payloads (``inputs``, ``outputs``,
``request_meta``) sealed with AES-256-GCM under that subject's own key, made on first sight of
the subject. The keys live in their own key store, never in the data store: erasing a subject
deletes its key, which makes every copy of its payloads -- backups, replicas, dumps -- unreadable.

A sealed payload is a text column value (the columns keep their type)::

    ~k1:<key id: 32 hex>:<base64(nonce 12 bytes || ciphertext || GCM tag)>

JSON text never starts with ``~``, so sealed and plain values tell themselves apart (rows
logged before sealing, rows without a subject). The key id is the first 128 bits of the
subject's keyed digest (HMAC-SHA256 under the project's subject key), the same digest the
erasure tombstone names: the data store never holds a key, and the key file never holds a
subject. The associated data binds a ciphertext to its key id and column (an ``outputs`` value
moved into ``inputs`` fails to open).

Reading: :func:`open_payloads` opens the sealed values of a batch of rows with one key-file
query. A value whose key is gone (erased) or that fails authentication reads as erased --
``null`` for ``inputs``/``outputs``, ``{"payload_erased": true}`` for ``request_meta`` -- never
as an error: a monitoring run over a log with erased subjects keeps going.

Which key file goes with a store: the one attached to the store's URL (:func:`attach`, done by
the server and the CLI commands that know the project), else, for a SQLite file store, the
``subject_keys.db`` beside it (the default layout: both in ``.keel/``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import SQLAlchemyError

from keelwork.adapters.stores.subject_key_paths import error as _error
from keelwork.adapters.stores.subject_key_paths import location as _location
from keelwork.errors import StoreError

#: Marks a sealed payload value.
PREFIX = "~k1:"
#: Hex characters of the key id in a sealed value (128 bits of the subject digest).
KEY_ID_HEX = 32
#: The payload columns that are sealed.
SEALED_COLUMNS = ("inputs", "outputs", "request_meta")
#: What a payload whose key is gone reads as, per column (JSON text).
ERASED = {"inputs": "null", "outputs": "null", "request_meta": '{"payload_erased":true}'}
#: The key file's name beside a SQLite store (and in ``.keel/``).
KEY_FILE_NAME = "subject_keys.db"

#: How long the writer reuses a key it has read, and how many it keeps. Only sealing uses them
#: (a reader always asks the key store). Each batch sealed first reads the key store's erasure
#: generation (``subject_key_epoch``, moved by every destruction of keys, in any process) and
#: drops the cache when it moved, so a key destroyed elsewhere seals nothing after it.
SEAL_CACHE_SECONDS, SEAL_CACHE_KEYS = 30.0, 10_000

_HEAD = len(PREFIX) + KEY_ID_HEX + 1
metadata = MetaData()
subject_keys = Table(
    "subject_keys", metadata,
    Column("key_id", String(KEY_ID_HEX), primary_key=True),
    Column("key", LargeBinary, nullable=False),
    Column("created_at", Double, nullable=False),
)
subject_key_epoch = Table("subject_key_epoch", metadata, Column("id", Integer, primary_key=True),
                          Column("generation", BigInteger, nullable=False))
_BUMP = ("INSERT INTO subject_key_epoch (id, generation) VALUES (1, 1) ON CONFLICT (id) "
         "DO UPDATE SET generation = subject_key_epoch.generation + 1")


_AESGCM: Any = None


def _aesgcm(key: bytes) -> Any:
    global _AESGCM
    if _AESGCM is None:  # imported on first use: `import keelwork` stays light
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        _AESGCM = AESGCM
    return _AESGCM(key)


def seal(key: bytes, key_id: str, column: str, plain: str) -> str:
    """``plain`` (JSON text) sealed under ``key`` as a column value (see the module text)."""
    return _seal(_aesgcm(key), key_id, column, plain)


def _seal(aead: Any, key_id: str, column: str, plain: str) -> str:
    nonce = os.urandom(12)
    body = aead.encrypt(nonce, plain.encode("utf-8", "surrogatepass"),
                        f"{key_id}:{column}".encode())
    return f"{PREFIX}{key_id}:{base64.b64encode(nonce + body).decode('ascii')}"


def unseal(key: bytes, column: str, value: str) -> str:
    """The JSON text of a sealed value.

    Raises:
        ValueError: ``value`` is not sealed, or fails authentication under ``key`` (a wrong
            key, a changed byte, or a value moved from another column).
    """
    key_id = sealed_key_id(value)
    if key_id is None:
        raise ValueError("not a sealed payload value")
    from cryptography.exceptions import InvalidTag

    try:
        raw = base64.b64decode(value[_HEAD:], validate=True)
        plain = _aesgcm(key).decrypt(raw[:12], raw[12:], f"{key_id}:{column}".encode())
    except (InvalidTag, ValueError) as exc:
        raise ValueError("the sealed payload does not open with this key") from exc
    return bytes(plain).decode("utf-8", "surrogatepass")


def sealed_key_id(value: Any) -> str | None:
    """The key id of a sealed value, or None for anything else."""
    if isinstance(value, str) and value.startswith(PREFIX) and len(value) > _HEAD \
            and value[_HEAD - 1] == ":":
        return value[len(PREFIX):_HEAD - 1]
    return None


class SubjectKeys:
    """The key store: make, find and destroy per-subject keys.

    Args:
        location: The key store: a SQLite key file (a path; created, mode 0600, with the
            first key) or a storage URL (``sqlite:///...`` or ``postgresql://...``: a
            database apart from the data store, shared by a fleet of servers).
        secret: The project's subject key (HMAC of subject ids into key ids); only sealing
            and retention's key clean-up need it; reading and erasing do not.
    """

    def __init__(self, location: Path | str, secret: bytes | None = None) -> None:
        self.url, self.path = _location(location)
        self.secret = secret
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[float, _Sealer]] = OrderedDict()
        self._ids: dict[str, str] = {}
        self._epoch: int | None = None

    @property
    def shown(self) -> str:
        """The key store for a message (a path, or the URL without its password)."""
        from keelwork.adapters.stores.engine import safe_url

        return str(self.path) if self.path is not None else safe_url(self.url)

    def same_store(self, other: SubjectKeys) -> bool:
        """Whether ``other`` is this key store (the same file or database)."""
        return (self.path, self.url if self.path is None else "") == \
            (other.path, other.url if other.path is None else "")

    def key_id(self, subject: str) -> str:
        """The key id of ``subject`` (see :func:`key_id`)."""
        if self.secret is None:
            raise StoreError("internal: these subject keys were opened without the project's "
                             "subject key; they can read and erase, not seal.")
        return key_id(self.secret, subject)

    def _db(self, create: bool) -> Engine | None:
        with self._lock:
            if self._engine is None:
                from keelwork.adapters.stores.engine import make_engine

                if self.path is not None:
                    if not create and not self.path.exists():
                        return None
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    if not self.path.exists():  # its owner only, like the other key files
                        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
                engine = make_engine(self.url)
                try:
                    if not create and self.path is None and \
                            not inspect(engine).has_table(subject_keys.name):
                        engine.dispose()
                        return None  # reading creates nothing
                    metadata.create_all(engine, checkfirst=True)
                except SQLAlchemyError as exc:
                    engine.dispose()
                    raise _error("open", self.shown, exc) from None
                self._engine = engine
            return self._engine

    def keys(self, key_ids: Iterable[str]) -> dict[str, bytes]:
        """The keys of ``key_ids`` that exist (erased ones are missing)."""
        wanted = sorted(set(key_ids))
        db = self._db(create=False) if wanted else None
        if db is None:
            return {}
        out: dict[str, bytes] = {}
        try:
            with db.connect() as conn:
                for i in range(0, len(wanted), 900):
                    out.update(self._select(conn, wanted[i:i + 900]))
        except SQLAlchemyError as exc:
            raise _error("read", self.shown, exc) from None
        return out

    def ensure(self, subjects: Iterable[str]) -> dict[str, tuple[str, bytes]]:
        """Per subject, its ``(key id, key)``: the existing key, or a new random one."""
        return {s: (k, e[0]) for s, (k, e) in self._entries(subjects).items()}

    def _entries(self, subjects: Iterable[str]) -> dict[str, tuple[str, _Sealer]]:
        """Per subject, its key id and sealer, from the cache or the key store (made when
        missing)."""
        ids = self._ids
        if len(ids) > SEAL_CACHE_KEYS:  # a pure function of the subject: just bound it
            ids.clear()
        by_subject = {s: ids.get(s) or ids.setdefault(s, self.key_id(s)) for s in set(subjects)}
        epoch = self.generation()
        now = time.monotonic()
        with self._lock:
            if epoch != self._epoch:  # keys were destroyed somewhere since: read them again
                self._cache.clear()
                self._epoch = epoch
            found = {k: hit[1] for k in set(by_subject.values())
                     if (hit := self._cache.get(k)) is not None and hit[0] > now}
        wanted = sorted(set(by_subject.values()) - set(found))
        if wanted:
            found.update(self._remember(self._insert({k: os.urandom(32) for k in wanted}), now))
        return {s: (k, found[k]) for s, k in by_subject.items()}

    def generation(self) -> int:
        """How many times keys were destroyed in this key store (by any process)."""
        db = self._db(create=True)
        assert db is not None
        try:
            with db.connect() as conn:
                found = conn.execute(select(subject_key_epoch.c.generation)).scalar()
        except SQLAlchemyError as exc:
            raise _error("read", self.shown, exc) from None
        return int(found or 0)

    def _insert(self, new: dict[str, bytes]) -> dict[str, bytes]:
        """Insert the keys of ``new`` not stored yet; return the stored key of each (a key
        another process made meanwhile wins: read back)."""
        db = self._db(create=True)
        assert db is not None
        insert = _INSERT[db.dialect.name == "postgresql"]  # the driver's SQL: no per-row
        read: dict[str, bytes] = {}                        # parameter processing
        wanted = sorted(new)
        try:
            with db.begin() as conn:
                for i in range(0, len(wanted), 900):
                    part = wanted[i:i + 900]
                    read.update(self._select(conn, part))
                    fresh = [k for k in part if k not in read]
                    if fresh:
                        at = time.time()
                        conn.exec_driver_sql(insert, [
                            {"key_id": k, "key": new[k], "created_at": at} for k in fresh])
                        read.update(self._select(conn, fresh))
        except SQLAlchemyError as exc:
            raise _error("write", self.shown, exc) from None
        return read

    def _remember(self, read: dict[str, bytes], now: float) -> dict[str, _Sealer]:
        made = {k: _sealer(k, key) for k, key in read.items()}
        with self._lock:
            for k, entry in made.items():
                self._cache[k] = (now + SEAL_CACHE_SECONDS, entry)
                self._cache.move_to_end(k)
            while len(self._cache) > SEAL_CACHE_KEYS:
                self._cache.popitem(last=False)
        return made

    def restore(self, keys: dict[str, bytes]) -> None:
        """Put back keys taken away by :meth:`forget_many` (retention's clean-up, when the
        subject came back meanwhile); a key made since for the same id wins."""
        if keys:
            self._insert(keys)

    @staticmethod
    def _select(conn: Any, key_ids: list[str]) -> dict[str, bytes]:
        return {r[0]: bytes(r[1]) for r in conn.execute(
            select(subject_keys.c.key_id, subject_keys.c.key)
            .where(subject_keys.c.key_id.in_(key_ids)))}

    def forget(self, key_id: str) -> bool:
        """Destroy the key ``key_id``; returns whether there was one (see
        :meth:`forget_many`)."""
        return self.forget_many([key_id]) > 0

    def forget_many(self, key_ids: Iterable[str]) -> int:
        """Destroy keys so that their bytes leave the key store: in a SQLite key file by a
        secure delete, then the WAL is checkpointed and truncated; in a PostgreSQL key store
        the table is rewritten (``VACUUM FULL``), so no dead tuple keeps them. Returns how
        many there were."""
        wanted = sorted(set(key_ids))
        with self._lock:
            for k in wanted:
                self._cache.pop(k, None)
        db = self._db(create=False) if wanted else None
        if db is None:
            return 0
        sqlite = db.dialect.name == "sqlite"
        gone = 0
        try:
            with db.begin() as conn:
                if sqlite:
                    conn.exec_driver_sql("PRAGMA secure_delete = ON")
                for i in range(0, len(wanted), 900):
                    gone += conn.execute(subject_keys.delete().where(
                        subject_keys.c.key_id.in_(wanted[i:i + 900]))).rowcount
                if gone:  # every writer's seal cache drops on its next batch
                    conn.exec_driver_sql(_BUMP)
            if gone:
                with db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)" if sqlite
                                      else f"VACUUM FULL {subject_keys.name}"))
        except SQLAlchemyError as exc:
            raise _error("erase a key in", self.shown, exc) from None
        return gone

    def seal_rows(self, rows: Sequence[dict[str, Any]]) -> int:
        """Seal, in place, the payloads of the rows that name a subject (rows sealed already
        are left as they are). Returns how many rows were sealed."""
        # A row is sealed whole (its inputs are always text): its inputs say whether it is.
        todo = [r for r in rows if r.get("subject_id") and not (
            isinstance(v := r.get("inputs"), str) and v.startswith(PREFIX))]
        if not todo:
            return 0
        entries = self._entries(str(r["subject_id"]) for r in todo)
        # The writer's hot loop: one urandom call per batch for every nonce (random 96-bit
        # nonces as before, without a system call per value), key objects and associated
        # data made once per key and kept with it.
        nonces = os.urandom(12 * len(SEALED_COLUMNS) * len(todo))
        at, b64 = 0, binascii.b2a_base64
        for r in todo:
            _, (_, aead, head, ads) = entries[str(r["subject_id"])]
            for c in SEALED_COLUMNS:
                value = r.get(c)
                if isinstance(value, str):
                    nonce = nonces[at:at + 12]
                    at += 12
                    body = aead.encrypt(nonce, value.encode("utf-8", "surrogatepass"), ads[c])
                    r[c] = head + b64(nonce + body, newline=False).decode("ascii")
        return len(todo)

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None


#: A key, ready to seal with: ``(key, AESGCM, value head "~k1:<id>:", associated data by
#: column)``.
_Sealer = tuple[bytes, Any, str, dict[str, bytes]]


def _sealer(key_id: str, key: bytes) -> _Sealer:
    return (key, _aesgcm(key), f"{PREFIX}{key_id}:",
            {c: f"{key_id}:{c}".encode() for c in SEALED_COLUMNS})


#: Insert-or-ignore of new keys in the driver's parameter style: SQLite, PostgreSQL (psycopg).
_INSERT = tuple(f"INSERT INTO subject_keys (key_id, key, created_at) VALUES ({v}) "
                "ON CONFLICT (key_id) DO NOTHING" for v in (
                    ":key_id, :key, :created_at", "%(key_id)s, %(key)s, %(created_at)s"))


def key_id(secret: bytes, subject: str) -> str:
    """The key id of ``subject``: the first 128 bits (hex) of its keyed digest, HMAC-SHA256
    under the project's subject key (the digest the erasure tombstone records)."""
    return hmac.digest(secret, subject.encode("utf-8", "surrogatepass"),
                       hashlib.sha256).hex()[:KEY_ID_HEX]


def key_file(engine: Engine) -> Path | None:
    """The key file beside a SQLite file store (the default: both in ``.keel/``); None for
    other stores (the project's key store is attached to them, :func:`attach`)."""
    u = engine.url
    if u.get_backend_name() != "sqlite" or u.database in (None, "", ":memory:"):
        return None
    return Path(u.database).expanduser().absolute().parent / KEY_FILE_NAME


# --------------------------------------------------------------------------- reading rows
_ATTACHED: dict[tuple[str, str, int | None, str], SubjectKeys] = {}
_ATTACH_LOCK = threading.Lock()


def _url_key(url: Any) -> tuple[str, str, int | None, str]:
    from keelwork.adapters.stores.engine import normalize_url

    u = normalize_url(url) if isinstance(url, str) else url
    return (u.get_backend_name(), u.host or "", u.port, u.database or "")


def attach(store: Engine | str, keys: SubjectKeys) -> SubjectKeys:
    """Make ``keys`` the key store of every engine on ``store``'s database (an engine or a
    storage URL) in this process, and return the one now attached: a key store attached
    already to the same place is kept (its seal cache is the writer's) unless ``keys`` can
    seal and it cannot."""
    url = _url_key(store.url if isinstance(store, Engine) else store)
    with _ATTACH_LOCK:
        old = _ATTACHED.get(url)
        if old is not None and old.same_store(keys) and (
                old.secret is not None or keys.secret is None):
            if old is not keys:
                keys.close()
            return old
        _ATTACHED[url] = keys
    if old is not None and old is not keys:
        old.close()  # its connections; it reopens them if still used
    return keys


def keys_for(engine: Engine) -> SubjectKeys | None:
    """The key store of ``engine``'s database: the attached one, else for a SQLite file the
    ``subject_keys.db`` beside it when it exists; None when there is none."""
    url = _url_key(engine.url)
    with _ATTACH_LOCK:
        found = _ATTACHED.get(url)
        if found is None and (beside := key_file(engine)) is not None and beside.exists():
            found = _ATTACHED[url] = SubjectKeys(beside)
        return found


def seal_for(engine: Engine) -> SubjectKeys | None:
    """The key store that seals what is written to ``engine``'s database: the attached one
    when it holds the project's subject key, else None (the caller attaches the project's
    key store first: :func:`keelwork.service.subjects.project_keys`)."""
    found = keys_for(engine)
    return found if found is not None and found.secret is not None else None


def open_payloads(engine: Engine, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Open, in place, the sealed payload values of ``rows`` (dicts with any of
    :data:`SEALED_COLUMNS`); values whose key is gone read as :data:`ERASED`. Rows with
    nothing sealed cost one scan and no key-file query. Returns ``rows``."""
    sealed = {k for r in rows for c in SEALED_COLUMNS if (k := sealed_key_id(r.get(c)))}
    if not sealed:
        return rows
    store = keys_for(engine)
    found = store.keys(sealed) if store is not None else {}
    ciphers = {k: _aesgcm(v) for k, v in found.items()}
    from cryptography.exceptions import InvalidTag

    for r in rows:
        for c in SEALED_COLUMNS:
            value = r.get(c)
            key_id = sealed_key_id(value)
            if key_id is None:
                continue
            aead = ciphers.get(key_id)
            try:
                if aead is None:
                    raise ValueError(key_id)
                raw = base64.b64decode(value[_HEAD:], validate=True)  # type: ignore[index]
                r[c] = aead.decrypt(raw[:12], raw[12:], f"{key_id}:{c}".encode()).decode(
                    "utf-8", "surrogatepass")
            except (InvalidTag, ValueError):
                r[c] = ERASED[c]
    return rows


def open_value(engine: Engine, column: str, value: str | None) -> str | None:
    """One payload value opened as :func:`open_payloads` does."""
    return open_payloads(engine, [{column: value}])[0][column]  # type: ignore[no-any-return]


__all__ = ["ERASED", "KEY_FILE_NAME", "PREFIX", "SEALED_COLUMNS", "SubjectKeys", "attach",
           "key_file", "key_id", "keys_for", "open_payloads", "open_value", "seal", "seal_for",
           "sealed_key_id", "subject_key_epoch", "subject_keys", "unseal"]

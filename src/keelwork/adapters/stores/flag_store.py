"""Model flags changed at run time (admin API, ``keel flags``), kept in the store.

Tables::

    model_flags           name (PK), body (canonical JSON text), updated_at, updated_by, revision
    model_flags_revision  id (PK, one row), revision

The revision grows by one on every change of any flag (one read tells a server whether to
reload); a deleted flag keeps its row with ``body`` NULL and the revision of its deletion.
Bodies are stored as given after validation; a body edited by hand into something invalid is
reported by :func:`keelwork.core.flags.parse_flags` as broken, never fatal.

The flags in force are keel.yaml's, then the store's on top, by name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Engine, MetaData, String, Table, Text
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection

from keelwork.adapters.stores.revision import (
    bump_revision,
    read_revision,
    revision_table,
    seed_revision,
)
from keelwork.adapters.stores.schema import create_tables, stamp_schema
from keelwork.adapters.stores.transactions import connection, retrying_transaction
from keelwork.spec.flags import FlagSpec
from keelwork.types import AuditSink

FLAGS_SCHEMA_KIND = "flags"
FLAGS_SCHEMA_VERSION = 1
_STORE = "flag store"

metadata = MetaData()
model_flags = Table(
    "model_flags", metadata,
    Column("name", String(128), primary_key=True),
    Column("body", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(256), nullable=False),
    Column("revision", BigInteger, nullable=False),
)
flag_revision = revision_table("model_flags_revision", metadata)


class FlagStore:
    """Read and change the stored flags.

    Args:
        engine: The store.
        audit: Where flag changes are recorded (the audit log), if anywhere.
    """

    def __init__(self, engine: Engine, audit: AuditSink | None = None) -> None:
        self.engine = engine
        self.audit = audit

    def ensure_schema(self) -> None:
        """Create the table if missing (safe to repeat)."""
        create_tables(self.engine, metadata, "flag", tables=[model_flags, flag_revision])
        stamp_schema(self.engine, FLAGS_SCHEMA_KIND, FLAGS_SCHEMA_VERSION)
        seed_revision(self.engine, flag_revision, store=_STORE)

    def revision(self) -> int:
        """The latest change's number (0: never changed)."""
        return read_revision(self.engine, flag_revision, store=_STORE)

    def bodies(self) -> list[dict[str, Any]]:
        """Every stored flag body (invalid ones too), by name."""
        with connection(self.engine, _STORE, "reading the flags") as conn:
            rows = conn.execute(sa_select(model_flags.c.name, model_flags.c.body)
                                .where(model_flags.c.body.is_not(None))
                                .order_by(model_flags.c.name)).all()
        out = []
        for name, body in rows:
            try:
                value = json.loads(body)
            except ValueError:
                value = {"name": name, "model": None, "body": body}
            out.append(value if isinstance(value, dict) else {"name": name, "body": value})
        return out

    def put(self, flag: FlagSpec | Mapping[str, Any], *, actor: str) -> FlagSpec:
        """Create or replace one flag (validated first).

        Raises:
            pydantic.ValidationError: the flag is invalid (nothing is written).
            StoreError: the store failed.
        """
        spec = flag if isinstance(flag, FlagSpec) else FlagSpec.model_validate(flag)
        body = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        self._write(spec.name, body, actor, "put")
        if self.audit is not None:
            self.audit.append(actor=actor, action="flag.put", target=spec.name,
                              details={"flag": spec.model_dump(mode="json")})
        return spec

    def delete(self, name: str, *, actor: str) -> bool:
        """Remove a stored flag (keel.yaml's of the same name applies again).

        Returns:
            Whether there was one.
        """
        existed = self._write(name, None, actor, "delete")
        if existed and self.audit is not None:
            self.audit.append(actor=actor, action="flag.delete", target=name)
        return existed

    def _write(self, name: str, body: str | None, actor: str, what: str) -> bool:
        def work(conn: Connection) -> bool:
            rev = bump_revision(conn, flag_revision)
            old = conn.execute(sa_select(model_flags.c.body)
                               .where(model_flags.c.name == name)).first()
            values = {"body": body, "updated_at": datetime.now(UTC), "updated_by": actor,
                      "revision": rev}
            if old is None:
                if body is None:
                    return False
                conn.execute(model_flags.insert().values(name=name, **values))
                return True
            conn.execute(model_flags.update().where(model_flags.c.name == name)
                         .values(**values))
            return old[0] is not None

        return retrying_transaction(self.engine, work, store=_STORE,
                                    what=f"{what} of flag {name!r}")

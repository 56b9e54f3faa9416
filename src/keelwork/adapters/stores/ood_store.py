"""Fitted out-of-distribution detectors, one per model version.

Table::

    ood_detectors   model, version (PK), created_at, body (the detector as JSON:
                    :meth:`keelwork.core.ood.OodDetector.to_dict`)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    select,
)

from keelwork.adapters.stores.schema import create_tables
from keelwork.adapters.stores.transactions import connection, retrying_transaction

_STORE = "out-of-distribution store"

metadata = MetaData()
ood_detectors = Table(
    "ood_detectors", metadata,
    Column("model", String(256), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("body", Text, nullable=False),
)


class OodStore:
    """Stores and reads detectors.

    Args:
        engine: The project's store.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def ensure_schema(self) -> None:
        create_tables(self.engine, metadata, "out-of-distribution", tables=[ood_detectors])

    def put(self, model: str, version: int, body: dict[str, Any]) -> None:
        """Store (or replace) the detector of ``model`` version ``version``."""
        def work(conn: Any) -> None:
            conn.execute(delete(ood_detectors).where(ood_detectors.c.model == model,
                                                     ood_detectors.c.version == version))
            conn.execute(ood_detectors.insert().values(
                model=model, version=version, created_at=datetime.now(UTC),
                body=orjson.dumps(body).decode()))

        retrying_transaction(self.engine, work, store=_STORE, what="storing a detector")

    def get(self, model: str, version: int) -> dict[str, Any] | None:
        """The stored detector, or None."""
        with connection(self.engine, _STORE, "reading a detector") as conn:
            if not conn.dialect.has_table(conn, ood_detectors.name):
                return None
            row = conn.execute(select(ood_detectors.c.body).where(
                ood_detectors.c.model == model, ood_detectors.c.version == version)).first()
        return None if row is None else dict(orjson.loads(row[0]))


__all__ = ["OodStore", "ood_detectors"]

"""Monitoring's tables: stored references and per-window results.

Tables (own ``MetaData``, schema kind ``monitoring``)::

    monitor_references  id (PK), model, version, created_at, source, body (JSON text)
                        index (model, version, id): the latest per model/version is the one used
    monitor_results     model, window, start (PK together), end, version, computed_at,
                        predictions, body (JSON text); index (model, end)

References are appended (a new one for the same model wins, older ones stay for the record).
A window's result is *replaced* when it is computed again (same model, window spec and start),
so re-running a period recomputes it: late labels change quality, never duplicate a window.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Double,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    delete,
    func,
    select,
)
from sqlalchemy.engine import Connection

from keelwork.adapters.stores.schema import create_tables, stamp_schema
from keelwork.adapters.stores.transactions import connection, retrying_transaction
from keelwork.errors import StoreError

MONITORING_SCHEMA_KIND = "monitoring"
MONITORING_SCHEMA_VERSION = 1
_STORE = "monitoring store"

metadata = MetaData()
monitor_references = Table(
    "monitor_references", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("model", String(256), nullable=False),
    Column("version", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("source", Text, nullable=False),
    Column("body", Text, nullable=False),
    Index("ix_monitor_references_model", "model", "version", "id"),
)
monitor_results = Table(
    "monitor_results", metadata,
    Column("model", String(256), primary_key=True),
    Column("window", String(32), primary_key=True),
    Column("start", Double, primary_key=True),
    Column("end", Double, nullable=False),
    Column("version", Integer),
    Column("computed_at", DateTime(timezone=True), nullable=False),
    Column("predictions", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
    Index("ix_monitor_results_model_end", "model", "end"),
)


@dataclass(frozen=True, slots=True)
class StoredReference:
    """One stored reference row; ``body`` is the reference's ``as_dict``."""

    id: int
    model: str
    version: int | None
    created_at: datetime
    source: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredWindow:
    """One stored window result; ``body`` is the report's window entry."""

    model: str
    window: str
    start: float
    end: float
    version: int | None
    computed_at: datetime
    predictions: int
    body: dict[str, Any]


class MonitorStore:
    """Read and write references and window results.

    Args:
        engine: The store (SQLite or PostgreSQL).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def ensure_schema(self) -> None:
        """Create the tables if missing (safe to repeat, from several processes)."""
        create_tables(self.engine, metadata, "monitoring")
        stamp_schema(self.engine, MONITORING_SCHEMA_KIND, MONITORING_SCHEMA_VERSION)

    # ------------------------------------------------------------------ references
    def put_reference(self, model: str, version: int | None, source: str,
                      body: dict[str, Any]) -> StoredReference:
        """Store a reference for ``model`` (and the version it was profiled with).

        Raises:
            StoreError: the store failed.
        """
        now = datetime.now(UTC)
        text = json.dumps(body, separators=(",", ":"), allow_nan=False)

        def work(conn: Connection) -> int:
            result = conn.execute(monitor_references.insert().values(
                model=model, version=version, created_at=now, source=source, body=text))
            key = result.inserted_primary_key
            return int(key[0]) if key else 0

        ident = retrying_transaction(self.engine, work, store=_STORE,
                                     what=f"storing the reference of {model!r}")
        return StoredReference(ident, model, version, now, source, body)

    def latest_reference(self, model: str, version: int | None = None) -> StoredReference | None:
        """The newest reference of ``model`` (of ``version`` when given, else any version)."""
        r = monitor_references.c
        stmt = select(monitor_references).where(r.model == model)
        if version is not None:
            stmt = stmt.where(r.version == version)
        stmt = stmt.order_by(r.id.desc()).limit(1)
        with connection(self.engine, _STORE, f"reading the reference of {model!r}") as conn:
            row = conn.execute(stmt).mappings().first()
        if row is None:
            return None
        return StoredReference(int(row["id"]), row["model"], row["version"],
                               _aware(row["created_at"]), row["source"], _load(row["body"]))

    # ------------------------------------------------------------------ results
    def put_window(self, model: str, window: str, start: float, end: float,
                   version: int | None, predictions: int, body: dict[str, Any]) -> None:
        """Store one window's result, replacing an earlier computation of the same window.

        Raises:
            StoreError: the store failed.
        """
        text = json.dumps(body, separators=(",", ":"), allow_nan=False)
        t = monitor_results.c

        def work(conn: Connection) -> None:
            conn.execute(delete(monitor_results).where(and_(
                t.model == model, t.window == window, t.start == start)))
            conn.execute(monitor_results.insert().values(
                model=model, window=window, start=start, end=end, version=version,
                computed_at=datetime.now(UTC), predictions=predictions, body=text))

        retrying_transaction(self.engine, work, store=_STORE,
                             what=f"storing the {window} window of {model!r}")

    def windows(self, model: str, window: str | None = None, *, since: float | None = None,
                until: float | None = None, limit: int | None = None) -> list[StoredWindow]:
        """Stored windows of ``model``, newest first."""
        t = monitor_results.c
        stmt = select(monitor_results).where(t.model == model)
        if window is not None:
            stmt = stmt.where(t.window == window)
        if since is not None:
            stmt = stmt.where(t.end > since)
        if until is not None:
            stmt = stmt.where(t.start < until)
        stmt = stmt.order_by(t.start.desc(), t.window)
        if limit is not None:
            stmt = stmt.limit(limit)
        with connection(self.engine, _STORE, f"reading the windows of {model!r}") as conn:
            rows = conn.execute(stmt).mappings().all()
        return [_window(r) for r in rows]

    def latest_windows(self) -> list[StoredWindow]:
        """For each model, its stored window with the latest end (``/metrics`` reads these).

        Windows still holding no predictions are passed over when an earlier one has some:
        an hour that has just begun says nothing yet.
        """
        t = monitor_results.c
        newest = (select(t.model, func.max(t.end).label("end"))
                  .where(t.predictions > 0).group_by(t.model).subquery())
        stmt = (select(monitor_results)
                .join(newest, and_(t.model == newest.c.model, t.end == newest.c.end))
                .order_by(t.model, t.window))
        with connection(self.engine, _STORE, "reading the latest windows") as conn:
            rows = conn.execute(stmt).mappings().all()
        seen: set[str] = set()
        out = []
        for r in rows:  # several window specs may end at the same time: keep one per model
            if r["model"] not in seen:
                seen.add(r["model"])
                out.append(_window(r))
        return out


def _window(r: Any) -> StoredWindow:
    return StoredWindow(r["model"], r["window"], float(r["start"]), float(r["end"]),
                        r["version"], _aware(r["computed_at"]), int(r["predictions"]),
                        _load(r["body"]))


def _load(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise StoreError(f"A stored monitoring body is not JSON: {exc}.") from None
    if not isinstance(value, dict):
        raise StoreError(f"A stored monitoring body must be an object; got "
                         f"{type(value).__name__}.")
    return value


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


__all__ = [
    "MONITORING_SCHEMA_KIND",
    "MONITORING_SCHEMA_VERSION",
    "MonitorStore",
    "StoredReference",
    "StoredWindow",
    "monitor_references",
    "monitor_results",
]

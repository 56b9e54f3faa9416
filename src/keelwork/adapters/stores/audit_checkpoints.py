"""Checkpoints of the audit chain: where it starts once its oldest entries have expired.

``retention.audit_days`` deletes audit entries older than the retention period. A hash chain
that lost its first entries no longer verifies from genesis, so before deleting entries
``1..K`` the expiry (:func:`keelwork.adapters.stores.retention_store.expire_audit`) records a
checkpoint: entry ``K``'s sequence number and hash. Verification then starts from the latest
checkpoint instead of genesis, and everything after it is checked as before.

The checkpoint is vouched for by the chain itself: the same transaction appends an
``audit.expire`` entry whose details name ``through_seq`` and ``through_hash``, and that entry
lives after the checkpoint, so it is never expired by the same run. A checkpoint row that does
not match the latest ``audit.expire`` entry fails verification (``checkpoint_mismatch``): an
attacker who deletes old entries and writes a checkpoint must also forge a chained entry, which
breaks the chain and the anchors outside the database.

Table::

    audit_checkpoints   seq (PK: the last expired entry), hash, expired (entries deleted by
                        that run), recorded_in (seq of the audit.expire entry), created_at
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, DateTime, Engine, MetaData, String, Table, select
from sqlalchemy.engine import Connection

from keelwork.adapters.stores.schema import create_tables
from keelwork.adapters.stores.transactions import connection
from keelwork.core.audit.chain import AuditEntry, ChainHead

#: Action of the audit entry that records a checkpoint.
EXPIRE_ACTION = "audit.expire"

metadata = MetaData()
audit_checkpoints = Table(
    "audit_checkpoints", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
    Column("expired", BigInteger, nullable=False),
    Column("recorded_in", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def ensure_checkpoints(engine: Engine) -> None:
    """Create the checkpoint table when missing."""
    create_tables(engine, metadata, "audit checkpoint", tables=[audit_checkpoints])


def latest_checkpoint(conn: Connection) -> tuple[ChainHead, int] | None:
    """The newest checkpoint as the head the chain continues from, and the seq of the
    ``audit.expire`` entry that recorded it; None when nothing ever expired."""
    if not conn.dialect.has_table(conn, "audit_checkpoints"):
        return None
    row = conn.execute(select(audit_checkpoints.c.seq, audit_checkpoints.c.hash,
                              audit_checkpoints.c.recorded_in)
                       .order_by(audit_checkpoints.c.seq.desc()).limit(1)).first()
    if row is None:
        return None
    return ChainHead(int(row[0]), str(row[1]), 0), int(row[2])


def checkpoint_of(engine: Engine) -> tuple[ChainHead, int] | None:
    """:func:`latest_checkpoint` on a connection of its own."""
    with connection(engine, "audit log", "reading the audit checkpoint") as conn:
        return latest_checkpoint(conn)


def record_checkpoint(conn: Connection, head: ChainHead, *, expired: int,
                      recorded_in: int) -> None:
    """Insert the checkpoint ``head`` (inside the expiry's transaction)."""
    conn.execute(audit_checkpoints.insert().values(
        seq=head.seq, hash=head.hash, expired=expired, recorded_in=recorded_in,
        created_at=datetime.now(UTC)))


def checkpoint_problem(checkpoint: ChainHead, entry: AuditEntry | None) -> str | None:
    """Why the checkpoint is not the one the chain recorded (None: it is).

    Args:
        checkpoint: The latest checkpoint.
        entry: The entry the checkpoint row says recorded it (None: missing).
    """
    if entry is None or entry.action != EXPIRE_ACTION:
        return (f"The audit checkpoint at entry {checkpoint.seq} is not recorded by an "
                f"'{EXPIRE_ACTION}' entry of the chain: the checkpoint was forged or its entry "
                "removed.")
    if (entry.details.get("through_seq") != checkpoint.seq
            or entry.details.get("through_hash") != checkpoint.hash):
        return (f"The audit checkpoint (entry {checkpoint.seq}, {checkpoint.hash[:12]}...) "
                f"differs from what entry {entry.seq} recorded "
                f"({entry.details.get('through_seq')}, "
                f"{str(entry.details.get('through_hash'))[:12]}...): it was rewritten.")
    return None


__all__ = ["EXPIRE_ACTION", "audit_checkpoints", "checkpoint_of", "checkpoint_problem",
           "ensure_checkpoints",
           "latest_checkpoint", "record_checkpoint"]

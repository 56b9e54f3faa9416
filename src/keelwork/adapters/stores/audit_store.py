"""The hash-chained audit log in the store (SQLite or PostgreSQL).

Tables::

    audit_log   seq (PK), ts (canonical UTC text), actor, action, target, details (canonical
                JSON text), prev_hash, hash; indexed by actor, action and ts
    audit_head  id (PK, one row), seq, hash, count, updated_at: the chain's latest entry

Appending is one transaction: a no-op update of the ``audit_head`` row first takes the write
lock (PostgreSQL locks the row, SQLite takes its database write lock), then the head is read,
the next entry is computed from it (:func:`keelwork.core.audit.make_entry`), inserted, and the
head moved. Concurrent appenders, threads or processes, therefore queue on the head and never
share a sequence number or fork the chain; the primary key on ``seq`` backs this up and a busy
database or a conflict is retried. Entries are ordered by ``seq``, not by ``ts``: clocks of two
hosts may disagree, the chain may not.

What each check detects (see :mod:`keelwork.core.audit.chain` for the chain itself):

* the chain: an edited, deleted (in the middle) or reordered entry;
* ``audit_head``: a truncated tail, when the tamperer deleted rows but did not also move the
  head (it lives in the same database, so someone with full write access can move it too);
* an anchor, the head copied *outside* the database: any rewrite of the entries up to the
  anchored one, and truncation below it, even by someone who can rewrite every row and the
  head. An :class:`AuditLog` opened for a project keeps one itself, updated after every append
  (:mod:`keelwork.adapters.stores.audit_anchor`), and :meth:`AuditLog.verify` checks it by
  default; ``keel audit head > anchor.json`` copied to another system adds one more;
* an emptied log while the store holds models or API keys, whose creation was audited.

Prediction ids can be audited cheaply with :meth:`AuditLog.append_predictions`: one entry per
batch holds the ids' count, first and last, and the SHA-256 of the ids joined by newlines; the
full ids stay in the prediction log, and whether a given set of ids is the audited batch is
checked by hashing them again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Index,
    MetaData,
    String,
    Table,
    Text,
    func,
    inspect,
    select,
    table,
)
from sqlalchemy.engine import Connection, RowMapping

from keelwork.adapters.stores.audit_anchor import AnchorFile, project_anchors
from keelwork.adapters.stores.audit_checkpoints import checkpoint_of, checkpoint_problem
from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.schema import create_tables, stamp_schema
from keelwork.adapters.stores.transactions import connection, retrying_transaction
from keelwork.core.audit.chain import (
    GENESIS_HASH,
    AuditEntry,
    ChainHead,
    VerifyResult,
    dumps_canonical,
    format_ts,
    make_entry,
    verify_chain,
)
from keelwork.core.audit.merkle import inclusion_proof, merkle_root
from keelwork.errors import AuditError

AUDIT_SCHEMA_KIND = "audit"
AUDIT_SCHEMA_VERSION = 1
#: Action of the entries that cover a batch of prediction ids.
PREDICTIONS_ACTION = "predictions.batch"
_STORE = "audit log"
_PAGE = 5_000
#: Tables whose every row was created by an audited action: a store holding some cannot have
#: an empty audit log.
_AUDITED_TABLES = {"models": "model(s)", "api_keys": "API key(s)"}

log = logging.getLogger(__name__)

metadata = MetaData()
audit_log = Table(
    "audit_log", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("ts", String(32), nullable=False),
    Column("actor", String(256), nullable=False),
    Column("action", String(128), nullable=False),
    Column("target", String(512), nullable=False),
    Column("details", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_log_actor", "actor"),
    Index("ix_audit_log_action", "action"),
    Index("ix_audit_log_ts", "ts"),
)
audit_head = Table(
    "audit_head", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


class AuditLog:
    """Append to, query and verify the audit log; implements :class:`keelwork.types.AuditSink`.

    Args:
        engine: The store (the same database as the registry's, so that registry changes and
            their audit entries commit together).
        anchors: Files outside the database to copy the head to after each append and to
            verify against (see :func:`project_audit_log`).
    """

    def __init__(self, engine: Engine, anchors: Sequence[AnchorFile] = ()) -> None:
        self.engine = engine
        self.anchors = list(anchors)

    @property
    def store_key(self) -> str:
        """The store's URL without its password: what anchors record heads under."""
        return self.engine.url.render_as_string(hide_password=True)

    def ensure_schema(self) -> None:
        """Create the tables and the head row if missing (safe to repeat, from many processes).

        Raises:
            StoreError: the store is unreachable or written by a newer keelwork.
        """
        create_tables(self.engine, metadata, "audit", tables=[audit_log, audit_head])
        stamp_schema(self.engine, AUDIT_SCHEMA_KIND, AUDIT_SCHEMA_VERSION)

        def seed(conn: Connection) -> None:
            if conn.execute(select(audit_head.c.id)).first() is None:
                conn.execute(audit_head.insert().values(id=1, seq=0, hash=GENESIS_HASH,
                                                        count=0, updated_at=datetime.now(UTC)))

        retrying_transaction(self.engine, seed, store=_STORE, what="creating the audit head")

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    # ------------------------------------------------------------------ writing
    def append(self, *, actor: str, action: str, target: str,
               details: Mapping[str, Any] | None = None) -> AuditEntry:
        """Append one entry in its own transaction.

        Returns:
            The stored entry (its ``seq`` and ``hash``).

        Raises:
            AuditError: an empty actor/action/target or details that are not plain JSON.
            StoreError: the store failed.
        """
        # Validate before taking the lock: a bad entry should not wait for other writers.
        make_entry(None, ts=format_ts(datetime.now(UTC)), actor=actor, action=action,
                   target=target, details=details)
        entry = retrying_transaction(
            self.engine,
            lambda conn: self.append_in(conn, actor=actor, action=action, target=target,
                                        details=details),
            store=_STORE, what=f"appending {action!r}")
        self.anchor()
        return entry

    def append_in(self, conn: Connection, *, actor: str, action: str, target: str,
                  details: Mapping[str, Any] | None = None) -> AuditEntry:
        """Append one entry inside the caller's transaction (it commits or rolls back with it).

        ``conn`` must be a connection to this log's database, in a transaction. Call
        :meth:`anchor` once it has committed.
        """
        # The no-op update takes the head's write lock before anything is read.
        conn.execute(audit_head.update().where(audit_head.c.id == 1)
                     .values(count=audit_head.c.count))
        row = conn.execute(select(audit_head.c.seq, audit_head.c.hash, audit_head.c.count)
                           .where(audit_head.c.id == 1)).first()
        if row is None:
            raise AuditError("The audit log has no head row; call AuditLog.ensure_schema() "
                             "(or open it with open_audit_log) before appending.")
        head = ChainHead.stored(row[0], row[1], row[2])
        entry = make_entry(head if head.seq else None, ts=format_ts(datetime.now(UTC)),
                           actor=actor, action=action, target=target, details=details)
        conn.execute(audit_log.insert().values(
            seq=entry.seq, ts=entry.ts, actor=entry.actor, action=entry.action,
            target=entry.target, details=dumps_canonical(entry.details),
            prev_hash=entry.prev_hash, hash=entry.hash))
        conn.execute(audit_head.update().where(audit_head.c.id == 1).values(
            seq=entry.seq, hash=entry.hash, count=head.count + 1,
            updated_at=datetime.now(UTC)))
        return entry

    def anchor(self) -> None:
        """Copy the committed head to every anchor file (each only moves forward).

        Never raises: the entries are committed already, so a file that cannot be written is
        logged and tried again on the next append.
        """
        if not self.anchors:
            return
        try:
            head = self.head()
        except Exception as exc:
            log.warning("audit anchor not updated: the head cannot be read: %s", exc)
            return
        for anchor in self.anchors:
            try:
                anchor.advance(self.store_key, head, self._still_holds)
            except (OSError, AuditError) as exc:
                log.warning("audit anchor %s not updated: %s", anchor.path, exc)

    def _still_holds(self, recorded: ChainHead) -> bool:
        if (entry := self.get(recorded.seq)) is not None:
            return entry.hash == recorded.hash
        cp = checkpoint_of(self.engine)  # gone: expired behind a checkpoint? (read only then)
        return cp is not None and (recorded.seq < cp[0].seq or (
            recorded.seq, recorded.hash) == (cp[0].seq, cp[0].hash))

    def append_predictions(self, prediction_ids: Sequence[str], *, model: str,
                           actor: str = "server") -> AuditEntry | None:
        """One entry covering a batch of prediction ids (``None`` for an empty batch).

        The entry holds the count, the first and last id and :func:`prediction_ids_digest`;
        the ids themselves stay in the prediction log.
        """
        ids = [str(i) for i in prediction_ids]
        if not ids:
            return None
        return self.append(actor=actor, action=PREDICTIONS_ACTION, target=model,
                           details={"count": len(ids), "first": ids[0], "last": ids[-1],
                                    "ids_sha256": prediction_ids_digest(ids)})

    # ------------------------------------------------------------------ reading
    def head(self) -> ChainHead:
        """The stored head: the latest entry's ``seq`` and ``hash`` and the entry count."""
        with connection(self.engine, _STORE, "reading the audit head") as conn:
            row = conn.execute(select(audit_head.c.seq, audit_head.c.hash, audit_head.c.count)
                               .where(audit_head.c.id == 1)).first()
        if row is None:
            return ChainHead(0, GENESIS_HASH, 0)
        return ChainHead.stored(row[0], row[1], row[2])

    def get(self, seq: int) -> AuditEntry | None:
        """The entry stored under ``seq``, if any (as stored: it may not verify)."""
        with connection(self.engine, _STORE, "reading an audit entry") as conn:
            row = conn.execute(select(audit_log).where(audit_log.c.seq == seq)).mappings().first()
        return _entry(row) if row is not None else None

    def query(self, *, actor: str | None = None, action: str | None = None,
              target: str | None = None, since: datetime | None = None,
              until: datetime | None = None, limit: int | None = 100) -> list[AuditEntry]:
        """The latest ``limit`` entries that match every filter given, oldest first.

        Args:
            actor: Exactly this actor.
            action: Exactly this action, or a prefix ending in ``*`` (``flag.*``).
            target: Exactly this target.
            since: Entries at or after this moment.
            until: Entries before this moment.
            limit: At most this many (the latest); ``None`` for all.
        """
        query = select(audit_log)
        if actor is not None:
            query = query.where(audit_log.c.actor == actor)
        if action is not None:
            if action.endswith("*"):
                prefix = action[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                query = query.where(audit_log.c.action.like(prefix + "%", escape="\\"))
            else:
                query = query.where(audit_log.c.action == action)
        if target is not None:
            query = query.where(audit_log.c.target == target)
        # Canonical timestamps are fixed-width UTC text: text order is time order.
        if since is not None:
            query = query.where(audit_log.c.ts >= format_ts(since))
        if until is not None:
            query = query.where(audit_log.c.ts < format_ts(until))
        query = query.order_by(audit_log.c.seq.desc())
        if limit is not None:
            query = query.limit(max(0, int(limit)))
        with connection(self.engine, _STORE, "querying the audit log") as conn:
            rows = conn.execute(query).mappings().all()
        return [_entry(r) for r in reversed(rows)]

    def entries(self, after_seq: int = 0, page: int = _PAGE) -> Iterator[AuditEntry]:
        """Every entry after ``after_seq`` in sequence order, read page by page."""
        last = after_seq
        while True:
            chunk = self._page(last, page)
            yield from chunk
            if len(chunk) < page:
                return
            last = chunk[-1].seq

    def _page(self, after_seq: int, page: int) -> list[AuditEntry]:
        with connection(self.engine, _STORE, "reading the audit log") as conn:
            rows = conn.execute(select(audit_log).where(audit_log.c.seq > after_seq)
                                .order_by(audit_log.c.seq).limit(page)).mappings().all()
        return [_entry(r) for r in rows]

    # ------------------------------------------------------------------ Merkle proofs
    def _leaves(self, size: int | None) -> list[bytes]:
        query = select(audit_log.c.hash).order_by(audit_log.c.seq)
        if size is not None:
            query = query.limit(max(0, int(size)))
        with connection(self.engine, _STORE, "reading the audit hashes") as conn:
            return [bytes.fromhex(h) for h in conn.execute(query).scalars()]

    def merkle_root(self, size: int | None = None) -> tuple[int, str]:
        """``(size, root)``: the RFC 6962 tree hash over the first ``size`` entry hashes
        (default: all), hex."""
        leaves = self._leaves(size)
        return len(leaves), merkle_root(leaves).hex()

    def inclusion_proof(self, seq: int, size: int | None = None) -> dict[str, Any]:
        """A proof that entry ``seq`` is in the tree of the first ``size`` entries.

        Anyone holding the root checks it with :func:`keelwork.core.audit.merkle.
        verify_inclusion` (``index = seq - 1``, the leaf is the entry's hash).

        Raises:
            AuditError: no entry ``seq`` within ``size``.
        """
        leaves = self._leaves(size)
        if not 1 <= seq <= len(leaves):
            raise AuditError(f"Entry {seq} is not among the {len(leaves)} entries of the audit "
                             "log's tree.")
        return {"kind": "keelwork.audit_inclusion_proof", "version": 1, "seq": seq,
                "index": seq - 1, "size": len(leaves), "leaf": leaves[seq - 1].hex(),
                "proof": [p.hex() for p in inclusion_proof(seq - 1, leaves)],
                "root": merkle_root(leaves).hex()}

    # ------------------------------------------------------------------ verifying
    def verify(self, anchor: ChainHead | None = None, *, kept: bool = True,
               page: int = _PAGE) -> VerifyResult:
        """Check the whole chain, the stored head and the anchors outside the database.

        Reads the log page by page, so memory stays flat on a long log. An empty log fails
        when the store holds models or API keys: creating them was audited.

        Args:
            anchor: A head saved outside the database earlier (:meth:`head`).
            kept: Also check the heads this log's anchor files recorded for its store.
            page: Entries per read.

        Returns:
            The result, pointing at the first bad entry.

        Raises:
            AuditError: an anchor file exists but cannot be read.
        """
        # Anchors first: they are written after the commit, so they never name an entry that
        # the chain read below could miss.
        pinned = [(anchor, "the given anchor")] if anchor is not None else []
        if kept:
            for file in self.anchors:
                head = file.read(self.store_key)
                if head is not None:
                    pinned.append((head, str(file.path)))
        pinned.sort(key=lambda p: p[0].seq)
        cp = checkpoint_of(self.engine)
        result = self._verify_chain(pinned[-1][0] if pinned else None, page, cp)
        for head, where in pinned[:-1]:  # within the chain the highest one pinned
            if not result.ok:
                break
            if head.seq and not self._still_holds(head):  # an expired one: the checkpoint's
                result = VerifyResult(
                    False, result.checked, head.seq, "anchor_mismatch",
                    f"Entry {head.seq} does not have the hash {head.hash[:12]}... that {where} "
                    "recorded: the log was rewritten up to here.", result.head)
        if result.ok and result.checked == 0:
            result = self._verify_empty(result)
        if result.ok:
            where = ", ".join(f"{w} (entry {h.seq})" for h, w in pinned)
            result = VerifyResult(True, result.checked, None, None, result.message + (
                f" Anchored by {where}." if pinned else
                " No anchor outside the database: a truncated tail would go unseen."),
                result.head)
        return result

    def _verify_empty(self, result: VerifyResult) -> VerifyResult:
        """An empty log is only right for a store that holds nothing audited."""
        counts: dict[str, int] = {}
        with connection(self.engine, _STORE, "counting audited rows") as conn:
            present = inspect(conn)
            for name in _AUDITED_TABLES:
                if present.has_table(name):
                    counts[name] = int(conn.execute(select(func.count())
                                                    .select_from(table(name))).scalar_one())
        held = [f"{n} {_AUDITED_TABLES[t]}" for t, n in counts.items() if n]
        if not held:
            return result
        return VerifyResult(False, 0, 1, "truncated",
                            f"The audit log is empty, but the store holds {' and '.join(held)}, "
                            "whose creation was audited: the entries were removed.", None)

    def _verify_chain(self, anchor: ChainHead | None, page: int,
                      cp: tuple[ChainHead, int] | None = None) -> VerifyResult:
        try:
            stored: ChainHead | None = self.head()
            damaged = ""
        except AuditError as exc:  # a head row changed by hand: the chain is checked first
            stored, damaged = None, exc.message
        start, after, checked = (cp[0], cp[0].seq, 0) if cp is not None else (None, 0, 0)
        problem = checkpoint_problem(cp[0], self.get(cp[1])) if cp is not None else None
        if cp is not None and problem is not None:
            return VerifyResult(False, 0, cp[0].seq, "checkpoint_mismatch", problem, None)
        while True:
            chunk = self._page(after, page)
            final = len(chunk) < page
            holds_anchor = anchor is not None and any(e.seq == anchor.seq for e in chunk)
            result = verify_chain(chunk, start=start,
                                  stored_head=stored if final else None,
                                  anchor=anchor if (final or holds_anchor) else None)
            checked += result.checked
            if result.ok and final and damaged:
                last = result.head.seq if result.head else None
                return VerifyResult(False, checked, last, "head_mismatch", damaged, result.head)
            if not result.ok or final:
                text = f"{checked} entries verified." if result.ok and checked else None
                return VerifyResult(result.ok, checked, result.first_bad_seq, result.reason,
                                    text or result.message, result.head)
            start, after = result.head, chunk[-1].seq


def prediction_ids_digest(prediction_ids: Sequence[str]) -> str:
    """SHA-256 (hex) of the ids joined by newlines, as :meth:`AuditLog.append_predictions`
    records it."""
    return hashlib.sha256("\n".join(prediction_ids).encode("utf-8")).hexdigest()


def project_audit_log(engine: Engine, project_dir: Path,
                      extra_anchor: Path | None = None) -> AuditLog:
    """The audit log of a project's store, keeping the project's anchors (not yet created).

    Args:
        engine: The project's store.
        project_dir: The project directory: its ``.keel/audit-anchor.json`` records the head
            after every append.
        extra_anchor: A second anchor file that records it too (the ``audit_anchor`` setting).
    """
    return AuditLog(engine, project_anchors(project_dir, extra_anchor))


def open_audit_log(project_dir: Path, storage_url: str | None = None, *,
                   extra_anchor: Path | None = None) -> AuditLog:
    """Open (creating if needed) the audit log of a project's store, with its anchors.

    Args:
        project_dir: The project directory (for the default SQLite file and the anchors).
        storage_url: SQLAlchemy URL; default ``sqlite:///<project>/.keel/keel.db``.
        extra_anchor: A second anchor file (the ``audit_anchor`` setting).

    Raises:
        StoreError: the store is unreachable or written by a newer keelwork.
    """
    url = storage_url or f"sqlite:///{Path(project_dir).absolute() / '.keel' / 'keel.db'}"
    audit = project_audit_log(make_engine(url), project_dir, extra_anchor)
    try:
        audit.ensure_schema()
    except BaseException:
        audit.close()
        raise
    return audit


def _entry(r: RowMapping) -> AuditEntry:
    return AuditEntry.stored(dict(r))


__all__ = [
    "AUDIT_SCHEMA_KIND",
    "AUDIT_SCHEMA_VERSION",
    "PREDICTIONS_ACTION",
    "AuditLog",
    "audit_head",
    "audit_log",
    "open_audit_log",
    "prediction_ids_digest",
    "project_audit_log",
]

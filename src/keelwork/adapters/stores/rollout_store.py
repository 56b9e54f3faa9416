"""Rollouts and their events, kept in the store (they survive a restart; the CLI and a running
server share them).

Tables::

    rollouts           id (PK), model, phase, body (the rollout as JSON, kind + version),
                       revision, updated_at
    rollout_events     id (PK), rollout_id, at, actor, action, from_phase, to_phase, weight,
                       reason, decision (JSON: outcome, every gate's observed values/thresholds)
    rollout_rollbacks  id (PK), model, from_version, to_version, at, actor, reason: every
                       rollback (schema version 2), so a later rollback skips the versions
                       rolled back from (:mod:`keelwork.core.rollout.rollback`)
    rollouts_revision  id (PK, one row), revision: bumped by every change of any rollout, so a
                       server learns with one read whether to reload (see the controller)

Every change is a read-modify-write in one transaction: the row's ``revision`` is checked in the
``UPDATE ... WHERE revision = :seen``, so an automatic decision computed on a rollout that an
operator changed meanwhile is refused (:class:`~keelwork.core.rollout.TransitionError`) instead
of overwriting the operator. A change that also moves the ``champion`` alias (a promote, a
rollback) moves it in the same transaction (``also``), so nobody ever reads the phase
"promoted" beside the old champion. Each committed event is appended to the audit log as
``rollout.<action>`` with the event as details.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
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
from keelwork.core.rollout.analysis import ArmStats, field_pairs, output_label
from keelwork.core.rollout.rollback import Setback
from keelwork.core.rollout.state import ACTIVE, Rollout, RolloutEvent
from keelwork.errors import ModelNotFoundError, TransitionError
from keelwork.types import AuditSink

ROLLOUTS_SCHEMA_KIND = "rollouts"
#: 2: ``rollout_rollbacks`` added (created when missing; nothing else changed).
ROLLOUTS_SCHEMA_VERSION = 2
_STORE = "rollout store"
#: Work done inside a rollout store transaction, after its own writes (an alias move).
Also = Callable[[Connection, Rollout], None]

metadata = MetaData()
rollouts = Table(
    "rollouts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(128), nullable=False, index=True),
    Column("phase", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("revision", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
rollout_events = Table(
    "rollout_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rollout_id", Integer, nullable=False, index=True),
    Column("at", Float, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("action", String(32), nullable=False),
    Column("from_phase", String(32), nullable=False),
    Column("to_phase", String(32), nullable=False),
    Column("weight", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("decision", Text, nullable=True),
)
rollout_rollbacks = Table(
    "rollout_rollbacks", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(128), nullable=False, index=True),
    Column("from_version", Integer, nullable=False),
    Column("to_version", Integer, nullable=False),
    Column("at", Float, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("reason", Text, nullable=False),
)
rollout_revision = revision_table("rollouts_revision", metadata)


class RolloutStore:
    """Create, read and change rollouts.

    Args:
        engine: The store.
        audit: Where transitions are recorded (the audit log), if anywhere.
    """

    def __init__(self, engine: Engine, audit: AuditSink | None = None) -> None:
        self.engine = engine
        self.audit = audit

    def ensure_schema(self) -> None:
        """Create the tables if missing (safe to repeat, from several processes)."""
        create_tables(self.engine, metadata, "rollout")
        stamp_schema(self.engine, ROLLOUTS_SCHEMA_KIND, ROLLOUTS_SCHEMA_VERSION)
        seed_revision(self.engine, rollout_revision, store=_STORE)

    # ------------------------------------------------------------------ reads
    def revision(self) -> int:
        """The latest change's number (0: never changed); one cheap read for pollers."""
        return read_revision(self.engine, rollout_revision, store=_STORE)

    def get(self, rollout_id: int) -> Rollout:
        """Raises: ModelNotFoundError: no rollout has that id."""
        with connection(self.engine, _STORE, f"reading rollout {rollout_id}") as conn:
            row = conn.execute(sa_select(rollouts.c.body, rollouts.c.revision)
                               .where(rollouts.c.id == rollout_id)).first()
        if row is None:
            raise ModelNotFoundError(f"No rollout has the id {rollout_id}.")
        return _load(row[0], row[1])

    def latest(self, model: str) -> Rollout | None:
        """The model's most recent rollout (any phase), None when it never had one."""
        with connection(self.engine, _STORE, f"reading the rollouts of {model!r}") as conn:
            row = conn.execute(sa_select(rollouts.c.body, rollouts.c.revision)
                               .where(rollouts.c.model == model)
                               .order_by(rollouts.c.id.desc()).limit(1)).first()
        return None if row is None else _load(row[0], row[1])

    def active(self) -> list[Rollout]:
        """Every active rollout (pending, progressing, paused), oldest first."""
        with connection(self.engine, _STORE, "reading the active rollouts") as conn:
            rows = conn.execute(sa_select(rollouts.c.body, rollouts.c.revision)
                                .where(rollouts.c.phase.in_(sorted(ACTIVE)))
                                .order_by(rollouts.c.id)).all()
        return [_load(b, r) for b, r in rows]

    def events(self, rollout_id: int, *, last: int | None = None) -> list[RolloutEvent]:
        """The rollout's transitions, oldest first (only the ``last`` ones when given)."""
        with connection(self.engine, _STORE, f"reading the events of rollout {rollout_id}") \
                as conn:
            model = conn.execute(sa_select(rollouts.c.model)
                                 .where(rollouts.c.id == rollout_id)).scalar()
            stmt = sa_select(rollout_events).where(rollout_events.c.rollout_id == rollout_id)
            if last is None:
                rows = conn.execute(stmt.order_by(rollout_events.c.id)).mappings().all()
            else:
                rows = list(reversed(conn.execute(stmt.order_by(rollout_events.c.id.desc())
                                                  .limit(last)).mappings().all()))
        return [RolloutEvent(rollout_id, str(model), r["action"], r["from_phase"],
                             r["to_phase"], r["weight"], r["actor"], r["at"], r["reason"],
                             json.loads(r["decision"]) if r["decision"] else None)
                for r in rows]

    # ------------------------------------------------------------------ writes
    def create(self, rollout: Rollout, *, actor: str, reason: str = "started",
               also: Also | None = None) -> tuple[Rollout, RolloutEvent]:
        """Store a new rollout and start it (``pending`` -> ``progressing``).

        The revision is bumped before the check for an active rollout: that UPDATE takes the
        write lock (SQLite: the database's; PostgreSQL: the counter row's, and the check that
        follows reads what the previous holder committed), so two starts of one model at the
        same moment queue there and the second sees the first's rollout.

        Args:
            also: Called with the connection and the started rollout inside the transaction
                (the champion alias's pin): both commit, or neither.

        Raises:
            TransitionError: the model already has an active rollout.
        """
        now = time.time()

        def work(conn: Connection) -> tuple[Rollout, RolloutEvent]:
            rev = _bump(conn)
            busy = conn.execute(sa_select(rollouts.c.id).where(
                rollouts.c.model == rollout.model,
                rollouts.c.phase.in_(sorted(ACTIVE)))).scalar()
            if busy is not None:
                raise TransitionError(
                    f"Model '{rollout.model}' already has an active rollout ({busy}); abort or "
                    "promote it before starting another.")
            key = conn.execute(rollouts.insert().values(
                model=rollout.model, phase="pending", body="{}", revision=rev,
                updated_at=datetime.now(UTC))).inserted_primary_key
            assert key is not None  # an INSERT of one row always has its key
            new_id = int(key[0])
            stored = Rollout.from_dict({**rollout.as_dict(), "id": new_id, "revision": rev,
                                        "created_at": now, "updated_at": now,
                                        "phase": "pending"})
            started, event = stored.apply("begin", actor=actor, reason=reason, now=now)
            self._write(conn, started, rev, event)
            if also is not None:
                also(conn, started)
            return started, event

        result = retrying_transaction(self.engine, work, store=_STORE,
                                      what=f"starting a rollout of {rollout.model!r}")
        self._audit(result[1])
        return result

    def transition(self, rollout_id: int, action: str, *, actor: str, reason: str = "",
                   decision: dict[str, Any] | None = None,
                   expect_revision: int | None = None,
                   also: Also | None = None,
                   champion: int | None = None) -> tuple[Rollout, RolloutEvent]:
        """Apply ``action`` to the stored rollout, in one transaction.

        Args:
            expect_revision: Refuse when the stored rollout changed since it was read at this
                revision (an automatic decision must not overwrite an operator's change).
            champion: A retry's champion now (see :meth:`Rollout.apply`).
            also: Called with the connection and the new rollout inside the transaction
                (a promote's alias move): both commit, or neither.

        Raises:
            TransitionError: the phase does not allow it, or the rollout changed meanwhile.
            ModelNotFoundError: no such rollout.
        """
        def work(conn: Connection) -> tuple[Rollout, RolloutEvent]:
            row = conn.execute(sa_select(rollouts.c.body, rollouts.c.revision)
                               .where(rollouts.c.id == rollout_id)).first()
            if row is None:
                raise ModelNotFoundError(f"No rollout has the id {rollout_id}.")
            current = _load(row[0], row[1])
            if expect_revision is not None and current.revision != expect_revision:
                raise TransitionError(
                    f"Rollout {rollout_id} changed since it was read (revision "
                    f"{expect_revision}, now {current.revision}); {action} not applied.")
            new, event = current.apply(action, actor=actor, reason=reason, decision=decision,
                                       champion=champion)
            self._write(conn, new, _bump(conn), event, seen=current.revision)
            if also is not None:
                also(conn, new)
            return new, event

        result = retrying_transaction(self.engine, work, store=_STORE,
                                      what=f"{action} of rollout {rollout_id}")
        self._audit(result[1])
        return result

    def record_rollback(self, model: str, from_version: int, to_version: int, *, actor: str,
                        reason: str, rollout_id: int | None,
                        also: Callable[[Connection], None] | None = None) -> RolloutEvent | None:
        """Record a rollback of ``model`` (and, with ``rollout_id``, move that promoted rollout
        to ``rolled_back``) in one transaction with ``also`` (the alias move).

        Returns:
            The rollout's ``rollback`` event, None without a rollout.

        Raises:
            TransitionError: the rollout is not promoted.
        """
        def work(conn: Connection) -> RolloutEvent | None:
            event: RolloutEvent | None = None
            rev = _bump(conn)
            if rollout_id is not None:
                row = conn.execute(sa_select(rollouts.c.body, rollouts.c.revision)
                                   .where(rollouts.c.id == rollout_id)).first()
                if row is None:
                    raise ModelNotFoundError(f"No rollout has the id {rollout_id}.")
                current = _load(row[0], row[1])
                new, event = current.apply("rollback", actor=actor, reason=reason)
                self._write(conn, new, rev, event, seen=current.revision)
            conn.execute(rollout_rollbacks.insert().values(
                model=model, from_version=from_version, to_version=to_version, at=time.time(),
                actor=actor, reason=reason))
            if also is not None:
                also(conn)
            return event

        event = retrying_transaction(self.engine, work, store=_STORE,
                                     what=f"rolling {model!r} back")
        if event is not None:
            self._audit(event)
        return event

    def setbacks(self, model: str) -> list[Setback]:
        """Every rollback away from a version of ``model`` and every aborted rollout's
        challenger, with when it happened."""
        with connection(self.engine, _STORE, f"reading the rollbacks of {model!r}") as conn:
            backs = conn.execute(sa_select(rollout_rollbacks.c.from_version,
                                           rollout_rollbacks.c.at, rollout_rollbacks.c.id)
                                 .where(rollout_rollbacks.c.model == model)).all()
            rows = conn.execute(sa_select(rollouts.c.body, rollouts.c.revision)
                                .where(rollouts.c.model == model,
                                       rollouts.c.phase.in_(["aborted", "rolled_back"]))).all()
        out = [Setback(int(v), float(at), "rolled_back", f"rolled back from (rollback {i})")
               for v, at, i in backs]
        for body, revision in rows:
            r = _load(body, revision)
            kind = "aborted" if r.phase == "aborted" else "rolled_back"
            word = "was aborted" if kind == "aborted" else "was rolled back"
            out.append(Setback(r.challenger, r.updated_at, kind,
                               f"its rollout {r.id} {word}" + (f": {r.reason}" if kind ==
                                                                "aborted" and r.reason else "")))
        return out

    def touch(self) -> int:
        """Bump the revision without a rollout change (a champion alias moved by a rollback),
        so that servers re-resolve their champions at their next poll."""
        return retrying_transaction(self.engine, _bump, store=_STORE, what="bumping the revision")

    def _write(self, conn: Connection, rollout: Rollout, rev: int, event: RolloutEvent,
               seen: int | None = None) -> None:
        body = rollout.as_dict() | {"revision": rev}
        stmt = rollouts.update().where(rollouts.c.id == rollout.id)
        if seen is not None:
            stmt = stmt.where(rollouts.c.revision == seen)
        done = conn.execute(stmt.values(phase=rollout.phase, body=json.dumps(body),
                                        revision=rev, updated_at=datetime.now(UTC)))
        if done.rowcount != 1:
            raise TransitionError(f"Rollout {rollout.id} changed meanwhile; "
                                  f"{event.action} not applied.")
        conn.execute(rollout_events.insert().values(
            rollout_id=rollout.id, at=event.at, actor=event.actor, action=event.action,
            from_phase=event.from_phase, to_phase=event.to_phase, weight=event.weight,
            reason=event.reason,
            decision=json.dumps(event.decision) if event.decision is not None else None))

    def _audit(self, event: RolloutEvent) -> None:
        if self.audit is not None:
            self.audit.append(actor=event.actor, action=f"rollout.{event.action}",
                              target=event.model, details=event.as_dict())


def live_quality(engine: Engine, model: str, versions: Sequence[int], since: float,
                 limit: int = 50_000) -> dict[int, ArmStats]:
    """Quality from labels per version for ``model``'s answers since ``since`` (epoch s).

    Joins the prediction log with the labels that arrived (``POST /v1/feedback``, ``keel
    ingest labels``). Each labelled answer is counted by
    :meth:`~keelwork.core.rollout.analysis.ArmStats.add_labelled`: correct when its value (a
    number, or a dict's ``label``) equals the ground truth's, and its absolute and squared
    error when both are numbers. A label is sent for the id the caller got, the answering
    model's; a shadow copy of that request (``request_meta.shadow_of``) is judged by the same
    label, so a shadow challenger has live quality too. A store without a labels table has no
    labels: ``{}``.

    Returns:
        Per version, an :class:`ArmStats` holding only the label counts.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from keelwork.adapters.stores.ingest_tables import labels
    from keelwork.adapters.stores.prediction_store import prediction_payloads, predictions
    from keelwork.adapters.stores.subject_keys import open_payloads

    answered = (sa_select(predictions.c.version, prediction_payloads.c.outputs, labels.c.label)
                .join(prediction_payloads, prediction_payloads.c.id == predictions.c.id)
                .join(labels, labels.c.prediction_id == predictions.c.id)
                .where(predictions.c.model == model, predictions.c.ts >= since,
                       predictions.c.version.in_(list(versions)),
                       predictions.c.status.in_(["ok", "fallback"]))
                .limit(limit))
    shadows = (sa_select(predictions.c.version, prediction_payloads.c.outputs,
                         prediction_payloads.c.request_meta)
               .join(prediction_payloads, prediction_payloads.c.id == predictions.c.id)
               .where(predictions.c.model == model, predictions.c.ts >= since,
                      predictions.c.version.in_(list(versions)),
                      predictions.c.status == "shadow")
               .limit(limit))
    pairs: list[tuple[int, Any, Any]] = []
    try:
        with engine.connect() as conn:
            pairs.extend((int(r["v"]), r["outputs"], r["label"]) for r in open_payloads(
                engine, [{"v": v, "outputs": o, "label": lab}
                         for v, o, lab in conn.execute(answered).all()]))
            copies: list[tuple[int, Any, str]] = []
            for r in open_payloads(engine, [{"v": v, "outputs": o, "request_meta": m}
                                            for v, o, m in conn.execute(shadows).all()]):
                version, outputs, meta = r["v"], r["outputs"], r["request_meta"]
                try:
                    of = json.loads(meta).get("shadow_of")
                except (ValueError, AttributeError):
                    continue
                if isinstance(of, str):
                    copies.append((int(version), outputs, of))
            found: dict[str, Any] = {}
            ids = sorted({of for _, _, of in copies})
            for i in range(0, len(ids), 500):  # bounded IN lists
                found.update(conn.execute(sa_select(labels.c.prediction_id, labels.c.label)
                                          .where(labels.c.prediction_id.in_(ids[i:i + 500])))
                             .all())
            pairs.extend((v, o, found[of]) for v, o, of in copies if of in found)
    except SQLAlchemyError:
        return {}  # no labels table yet (nothing ingested): no data, never a failure
    out: dict[int, ArmStats] = {}
    for version, outputs, label in pairs:
        if outputs == "null":  # erased (its subject's key is gone): nothing to judge
            continue
        try:
            answer, truth = json.loads(outputs), json.loads(label)
        except ValueError:
            continue
        stats = out.setdefault(int(version), ArmStats())
        fields = field_pairs(answer, truth)
        if fields is not None:  # a multi-output regressor: every field's error counts
            stats.add_fields(fields)
        else:
            stats.add_labelled(output_label(answer), output_label(truth))
    return out


def live_accuracy(engine: Engine, model: str, versions: Sequence[int], since: float,
                  limit: int = 50_000) -> dict[int, tuple[int, int]]:
    """(labelled, correct) per version: :func:`live_quality`'s accuracy counts."""
    return {v: (q.labelled, q.correct)
            for v, q in live_quality(engine, model, versions, since, limit).items()}


def _bump(conn: Connection) -> int:
    return bump_revision(conn, rollout_revision)


def _load(body: str, revision: int) -> Rollout:
    d = json.loads(body)
    d["revision"] = int(revision)
    return Rollout.from_dict(d)


__all__ = ["ROLLOUTS_SCHEMA_KIND", "ROLLOUTS_SCHEMA_VERSION", "RolloutStore", "live_accuracy",
           "live_quality"]

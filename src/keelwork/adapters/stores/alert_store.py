"""Alert state and its delivery, per alert and receiver, kept so a restart loses nothing.

Table (own ``MetaData``, schema kind ``alerts``)::

    alert_states  fingerprint, receiver (PK together), state ('firing' | 'resolved'),
                  since (when it entered that state), labels, annotations (JSON text),
                  notified_state (the state its receiver was last told; NULL: never),
                  last_notified, attempts (failed tries of the current state), last_error,
                  retry_at (no try before this); index (retry_at)

    alert_acks    fingerprint (PK), acked_at, acked_by: the last acknowledgement of an alert
                  (``keel alerts ack``); it holds for the firing that began before it

A notification is due while ``notified_state`` differs from ``state`` and ``retry_at`` has
passed: one notification per change of state (a repeated "still firing" changes nothing), a
failed one stays due (with its error and attempts) until it is delivered, across restarts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Double,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    or_,
    select,
)
from sqlalchemy.engine import Connection

from keelwork.adapters.stores.schema import create_tables, stamp_schema
from keelwork.adapters.stores.transactions import connection, retrying_transaction
from keelwork.core.alerting.notification import AlertChange, AlertState

ALERTS_SCHEMA_KIND = "alerts"
ALERTS_SCHEMA_VERSION = 1
_STORE = "alert store"
#: The longest error text kept per alert.
MAX_ERROR_CHARS = 2000

metadata = MetaData()
alert_states = Table(
    "alert_states", metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("receiver", String(256), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("since", Double, nullable=False),
    Column("labels", Text, nullable=False),
    Column("annotations", Text, nullable=False),
    Column("notified_state", String(16)),
    Column("last_notified", Double),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("retry_at", Double, nullable=False),
    Index("ix_alert_states_retry_at", "retry_at"),
)

alert_acks = Table(
    "alert_acks", metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("acked_at", Double, nullable=False),
    Column("acked_by", String(256), nullable=False),
)
#: The longest name kept for who acknowledged.
MAX_ACKER_CHARS = 256


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One alert's state for one receiver, and how its delivery stands."""

    fingerprint: str
    receiver: str
    state: AlertState
    since: float
    labels: dict[str, str]
    annotations: dict[str, str]
    notified_state: AlertState | None
    last_notified: float | None
    attempts: int
    last_error: str | None
    retry_at: float

    @property
    def pending(self) -> bool:
        """Whether the receiver has not been told the current state yet."""
        return self.notified_state != self.state


def _row(r: Any) -> AlertRow:
    return AlertRow(r.fingerprint, r.receiver, r.state, r.since, json.loads(r.labels),
                    json.loads(r.annotations), r.notified_state, r.last_notified, r.attempts,
                    r.last_error, r.retry_at)


def _key(fingerprint: str, receiver: str) -> Any:
    return and_(alert_states.c.fingerprint == fingerprint, alert_states.c.receiver == receiver)


class AlertStore:
    """Read and change the alert states.

    Args:
        engine: The store.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def ensure_schema(self) -> None:
        """Create the table if missing (safe to repeat)."""
        create_tables(self.engine, metadata, "alert", tables=[alert_states, alert_acks])
        stamp_schema(self.engine, ALERTS_SCHEMA_KIND, ALERTS_SCHEMA_VERSION)

    def record(self, change: AlertChange, receiver: str) -> bool:
        """Keep ``change`` for ``receiver``.

        Returns:
            True when it changed the alert's state (a notification is now due); False when
            the alert was already in that state (nothing to tell), or was never seen firing
            and now resolves.
        """
        fp = change.fingerprint

        def work(conn: Connection) -> bool:
            old = conn.execute(select(alert_states.c.state).where(_key(fp, receiver))).first()
            if old is not None and old.state == change.state:
                return False
            if old is None and change.state == "resolved":
                return False  # nobody was told it fired: nothing resolves
            values = {"state": change.state, "since": change.at,
                      "labels": json.dumps(dict(change.labels), sort_keys=True),
                      "annotations": json.dumps(dict(change.annotations), sort_keys=True),
                      "attempts": 0, "last_error": None, "retry_at": change.at}
            if old is None:
                conn.execute(alert_states.insert().values(
                    fingerprint=fp, receiver=receiver, notified_state=None, last_notified=None,
                    **values))
            else:
                conn.execute(alert_states.update().where(_key(fp, receiver)).values(**values))
            return True

        return retrying_transaction(self.engine, work, store=_STORE,
                                    what=f"recording alert {fp} for {receiver!r}")

    def due(self, now: float, limit: int = 100) -> list[AlertRow]:
        """Alerts whose current state is not delivered yet and whose retry time has come,
        oldest first."""
        c = alert_states.c
        query = (select(alert_states)
                 .where(or_(c.notified_state.is_(None), c.notified_state != c.state),
                        c.retry_at <= now)
                 .order_by(c.retry_at, c.fingerprint, c.receiver).limit(limit))
        with connection(self.engine, _STORE, "reading due alerts") as conn:
            return [_row(r) for r in conn.execute(query)]

    def delivered(self, fingerprint: str, receiver: str, state: str, at: float) -> bool:
        """Mark ``state`` as told to ``receiver``.

        Returns:
            False when the alert changed state meanwhile (the new state is still due).
        """
        def work(conn: Connection) -> bool:
            done = conn.execute(
                alert_states.update()
                .where(_key(fingerprint, receiver), alert_states.c.state == state)
                .values(notified_state=state, last_notified=at, attempts=0, last_error=None))
            return bool(done.rowcount)

        return retrying_transaction(self.engine, work, store=_STORE,
                                    what=f"marking alert {fingerprint} delivered")

    def failed(self, fingerprint: str, receiver: str, state: str, error: str, at: float,
               retry_at: float) -> None:
        """Keep a failed try of ``state``: its error, one more attempt, the next try's time."""
        def work(conn: Connection) -> None:
            conn.execute(
                alert_states.update()
                .where(_key(fingerprint, receiver), alert_states.c.state == state)
                .values(attempts=alert_states.c.attempts + 1,
                        last_error=error[:MAX_ERROR_CHARS], retry_at=retry_at))

        retrying_transaction(self.engine, work, store=_STORE,
                             what=f"keeping a failed delivery of alert {fingerprint}")

    def get(self, fingerprint: str, receiver: str) -> AlertRow | None:
        """One alert's row, if known."""
        with connection(self.engine, _STORE, "reading an alert") as conn:
            r = conn.execute(select(alert_states).where(_key(fingerprint, receiver))).first()
        return None if r is None else _row(r)

    def alerts(self, *, state: str | None = None) -> list[AlertRow]:
        """Every alert (``state``: only those firing or resolved), newest change first."""
        query = select(alert_states).order_by(alert_states.c.since.desc(),
                                              alert_states.c.fingerprint)
        if state is not None:
            query = query.where(alert_states.c.state == state)
        with connection(self.engine, _STORE, "reading alerts") as conn:
            return [_row(r) for r in conn.execute(query)]

    def acknowledge(self, fingerprint: str, by: str, at: float) -> bool:
        """Record that ``by`` acknowledged the alert at ``at`` (a later ack replaces it).

        Returns:
            False when no receiver knows the alert (nothing was acknowledged).
        """
        def work(conn: Connection) -> bool:
            known = conn.execute(select(alert_states.c.fingerprint).where(
                alert_states.c.fingerprint == fingerprint).limit(1)).first()
            if known is None:
                return False
            conn.execute(alert_acks.delete().where(alert_acks.c.fingerprint == fingerprint))
            conn.execute(alert_acks.insert().values(fingerprint=fingerprint, acked_at=at,
                                                    acked_by=by[:MAX_ACKER_CHARS]))
            return True

        return retrying_transaction(self.engine, work, store=_STORE,
                                    what=f"acknowledging alert {fingerprint}")

    def acks(self) -> dict[str, tuple[float, str]]:
        """Per alert fingerprint, its last acknowledgement: ``(at, by)``."""
        with connection(self.engine, _STORE, "reading alert acknowledgements") as conn:
            return {r.fingerprint: (r.acked_at, r.acked_by)
                    for r in conn.execute(select(alert_acks))}


__all__ = ["AlertRow", "AlertStore", "alert_acks", "alert_states"]

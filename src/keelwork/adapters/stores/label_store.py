"""The label store: ground truth attached to prediction ids, late and in any order, idempotently.

Tables: ``labels``, ``label_history`` and ``unknown_labels`` in
:mod:`keelwork.adapters.stores.ingest_tables` (schema kind ``ingest``). The rules of applying
labels (duplicates, relabels, unknown ids, reconciling) are written once, in
:mod:`keelwork.adapters.stores.label_writes`.

``unknown_labels`` is bounded, since any client of the feedback API can name ids that do not
exist: one :meth:`LabelStore.submit` adds at most ``max_unknown`` new rows (keel.yaml's
``monitoring.labels.max_unknown_per_request``), and none once the table holds
``max_unknown_total`` rows (:data:`~keelwork.adapters.stores.label_writes.MAX_UNKNOWN_LABELS`);
the rest are counted in ``unknown_not_kept``, not kept. :meth:`LabelStore.expire_unknown`
deletes those not seen again within ``monitoring.labels.unknown_ttl``. Files (``keel ingest
--labels``) are an operator's: their unknown labels are all kept, and expire the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine, inspect, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from keelwork.adapters.stores.ingest_ledger_store import Ledger
from keelwork.adapters.stores.ingest_tables import label_history, labels, unknown_labels
from keelwork.adapters.stores.label_writes import (
    MAX_UNKNOWN_LABELS,
    LabelResult,
    apply_labels,
    reconcile_labels,
    rows_by_id,
)
from keelwork.adapters.stores.sql import among
from keelwork.adapters.stores.transactions import connection, store_error
from keelwork.core.label_rows import LabelColumns, LabelRow, label_index, parse_label
from keelwork.errors import ContractViolation, ErrorDetail


@dataclass(frozen=True, slots=True)
class StoredLabel:
    """A label as stored (current, historic or unknown)."""

    prediction_id: str
    label: Any
    ts: float
    source: str
    source_row: int | None
    ingested_at: datetime



class LabelStore:
    """Labels in the store: submit them (the feedback API), read them, reconcile them.

    Args:
        engine: The store.
        ledger: The ledger whose retried transactions to use (default: a new one).
        max_unknown_total: Rows ``unknown_labels`` may hold before :meth:`submit` keeps no
            new unknown label.
    """

    def __init__(self, engine: Engine, ledger: Ledger | None = None, *,
                 max_unknown_total: int = MAX_UNKNOWN_LABELS) -> None:
        self.engine = engine
        self.ledger = ledger or Ledger(engine)
        self.max_unknown_total = max_unknown_total

    def ensure_schema(self) -> None:
        """Create the ingestion and prediction-log tables if missing (safe to repeat).

        Raises:
            StoreError: the store failed or holds a newer schema.
        """
        self.ledger.ensure_schema()

    def submit(self, records: Sequence[Mapping[str, Any]], *, source: str = "api",
               columns: LabelColumns | None = None,
               relabel_own_only: bool = False,
               check_labels: Callable[[list[Any]], list[ErrorDetail]] | None = None,
               max_unknown: int | None = None) -> LabelResult:
        """Validate labels and apply them in one (retried) transaction.

        Meant for ``POST /v1/feedback``: duplicates are no-ops, unknown ids are kept and
        reported. Every record must be valid, or nothing is written.

        Args:
            records: Objects with the id and label (and optional ``ts``) fields.
            source: Recorded with each label.
            columns: Field names (default ``prediction_id``, ``label``, ``ts``).
            relabel_own_only: Refuse labels that replace a label of another ``source``.
            check_labels: More rules for the label values (one per record, ``None`` where a
                record has none), e.g. the output contract's
                (:class:`~keelwork.core.label_check.LabelChecker`); its problems are reported
                with the others.
            max_unknown: New unknown labels kept at most (None: all, up to the store's
                ``max_unknown_total``); see the module doc.

        Returns:
            Counts, the first unknown ids and how many unknown labels were not kept.

        Raises:
            ContractViolation: some record is invalid; ``details`` names every problem with
                the path ``labels[i].field``.
            RelabelRefused: ``relabel_own_only`` and some label would replace another
                source's; nothing is written.
            StoreError: the store failed.
        """
        cols = columns or LabelColumns(ts="ts")
        valid: list[tuple[int | None, LabelRow]] = []
        problems: list[ErrorDetail] = []
        for i, record in enumerate(records):
            if not isinstance(record, Mapping):
                problems.append(ErrorDetail(f"labels[{i}]", "record_type", type(record).__name__,
                                            f"The 'labels[{i}]' record must be an object."))
                continue
            row, details = parse_label(record, cols, noun="field")
            problems.extend(ErrorDetail(f"labels[{i}].{d.path}", d.rule, d.got,
                                        d.message.replace(f"'{d.path}'",
                                                          f"'labels[{i}].{d.path}'", 1))
                            for d in details)
            if row is not None:
                valid.append((None, row))
        if check_labels is not None:
            problems.extend(check_labels([r.get(cols.label) if isinstance(r, Mapping) else None
                                          for r in records]))
            problems.sort(key=lambda p: label_index(p.path))
        if problems:
            shown = "; ".join(p.message for p in problems[:5])
            more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
            raise ContractViolation(f"{len(problems)} label problem(s): {shown}{more}", problems)
        result = self.ledger.transaction(
            f"store {len(valid)} label(s)",
            lambda conn: apply_labels(conn, valid, source, relabel_own_only=relabel_own_only,
                                      max_unknown=max_unknown,
                                      max_unknown_total=self.max_unknown_total))
        result.counts.read = len(records)
        return result

    def reconcile(self) -> int:
        """Move every unknown label whose prediction has reached the log into ``labels``.

        Returns:
            How many labels were moved.

        Raises:
            StoreError: the store failed.
        """
        return self.ledger.transaction("reconcile unknown labels",
                                       lambda conn: reconcile_labels(conn, None, datetime.now(UTC)))

    def expire_unknown(self, older_than_s: float, now: datetime | None = None) -> int:
        """Delete unknown labels not seen again for ``older_than_s`` seconds.

        Returns:
            How many were deleted.

        Raises:
            StoreError: the store failed.
        """
        from datetime import timedelta

        cutoff = (now or datetime.now(UTC)) - timedelta(seconds=older_than_s)

        def work(conn: Connection) -> int:
            done = conn.execute(unknown_labels.delete().where(
                unknown_labels.c.last_seen < cutoff))
            return int(done.rowcount or 0)

        return self.ledger.transaction("expire unknown labels", work)

    def get(self, prediction_id: str) -> StoredLabel | None:
        """The current label of a prediction, or None."""
        rows = self._read(select(labels).where(labels.c.prediction_id == prediction_id))
        return rows[0] if rows else None

    def current(self, prediction_ids: Sequence[str]) -> dict[str, StoredLabel]:
        """The current labels of some predictions, by prediction id (those without: absent).

        Reads only: a store that never received a label (no ``labels`` table) gives ``{}``.

        Raises:
            StoreError: the store failed.
        """
        import json

        if not prediction_ids:
            return {}

        def work(conn: Connection) -> dict[str, Any]:
            if not inspect(conn).has_table(labels.name):
                return {}
            return rows_by_id(conn, labels, prediction_ids)

        rows = self.ledger.transaction("read labels", work)
        return {pid: StoredLabel(prediction_id=pid, label=json.loads(r["label"]),
                                 ts=float(r["ts"]), source=r["source"],
                                 source_row=r["source_row"],
                                 ingested_at=_aware(r["ingested_at"]))
                for pid, r in rows.items()}

    def has_labels(self) -> bool:
        """Return True when the store holds the ``labels`` table (a label store was set up).

        Raises:
            StoreError: the store could not be inspected.
        """
        try:
            return bool(inspect(self.engine).has_table(labels.name))
        except SQLAlchemyError as exc:
            raise store_error("label store", "looking for the labels table", self.engine,
                              exc) from None

    def label_values(self, prediction_ids: Sequence[str]) -> dict[str, tuple[Any, float]]:
        """``(label, ts)`` of each of the predictions that has a current label, by id.

        The monitor's label join, one query (or one per :data:`~.sql.IN_LIST_MAX` ids on
        SQLite) per batch of the log: only the two columns it reads, on a plain connection (a
        read needs no retried transaction). Needs the ``labels`` table (:meth:`has_labels`).

        Raises:
            StoreError: the store failed.
        """
        c = labels.c
        out: dict[str, tuple[Any, float]] = {}
        with connection(self.engine, "label store", "reading labels") as conn:
            for clause in among(conn, c.prediction_id, list(prediction_ids)):
                for pid, text, ts in conn.execute(select(c.prediction_id, c.label, c.ts)
                                                  .where(clause)):
                    out[pid] = (orjson.loads(text), float(ts))
        return out

    def history(self, prediction_id: str) -> list[StoredLabel]:
        """Labels of a prediction that later ones replaced, oldest first."""
        h = label_history.c
        return self._read(select(label_history).where(h.prediction_id == prediction_id)
                          .order_by(h.id))

    def unknown(self, limit: int = 100) -> list[StoredLabel]:
        """Labels still waiting for their prediction, most recently seen first."""
        u = unknown_labels.c
        return self._read(select(unknown_labels).order_by(u.last_seen.desc(), u.prediction_id)
                          .limit(limit))

    def count(self) -> dict[str, int]:
        """Rows in ``labels``, ``label_history`` and ``unknown_labels``."""
        from sqlalchemy import func

        def work(conn: Connection) -> dict[str, int]:
            return {t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                    for t in (labels, label_history, unknown_labels)}

        return self.ledger.transaction("count labels", work)

    def _read(self, stmt: Any) -> list[StoredLabel]:
        import json

        rows = self.ledger.transaction("read labels",
                                       lambda conn: conn.execute(stmt).mappings().all())
        return [StoredLabel(prediction_id=r["prediction_id"], label=json.loads(r["label"]),
                            ts=float(r["ts"]), source=r["source"], source_row=r["source_row"],
                            ingested_at=_aware(r.get("ingested_at") or r["last_seen"]))
                for r in rows]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


__all__ = ["LabelStore", "StoredLabel"]

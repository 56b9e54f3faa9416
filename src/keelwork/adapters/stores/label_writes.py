"""Applying ground-truth labels inside a transaction: the rules of the label tables.

Labels are attached to prediction ids, late and in any order, idempotently. For every label in
the order it arrives:

- its prediction is in the log and has no label: the label is stored (``ingested``);
- it has the same label already (same canonical JSON): nothing changes (``duplicates``);
- it has a different label: the last one ingested wins, and the replaced one is kept in
  ``label_history`` (``ingested`` and ``relabelled``). Arrival order decides, not ``ts``: a
  correction is sent after the mistake, whatever time it says the truth was observed;
- its prediction is not in the log: the label is kept in ``unknown_labels`` and reported
  (``unknown``); past a bound (new rows per call, rows in the table) it is counted in
  ``unknown_not_kept`` instead of kept. Predictions may reach the log after their labels (a
  spool replay, a batch imported later): :func:`reconcile_labels` -- run at the start of every
  labels ingestion -- moves such labels into ``labels`` once their prediction exists.

The tables are in :mod:`keelwork.adapters.stores.ingest_tables`; the store API over them is
:class:`keelwork.adapters.stores.label_store.LabelStore`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.engine import Connection

from keelwork.adapters.stores.ingest_tables import label_history, labels, unknown_labels
from keelwork.adapters.stores.prediction_store import predictions
from keelwork.adapters.stores.sql import among
from keelwork.core.ingest import IngestCounts
from keelwork.core.label_rows import LabelRow
from keelwork.errors import ErrorDetail, RelabelRefused

#: How many unknown ids a result keeps as examples.
UNKNOWN_EXAMPLES = 20
#: Rows ``unknown_labels`` may hold before the feedback API stops adding new ones.
MAX_UNKNOWN_LABELS = 100_000


@dataclass(slots=True)
class LabelResult:
    """What applying some labels did: counts plus the first unknown ids, for the report."""

    counts: IngestCounts = field(default_factory=IngestCounts)
    unknown_ids: list[str] = field(default_factory=list)
    #: Unknown labels past the per-request or total bound: counted in ``counts.unknown``,
    #: not stored.
    unknown_not_kept: int = 0

    def note_unknown(self, ids: Sequence[str]) -> None:
        room = UNKNOWN_EXAMPLES - len(self.unknown_ids)
        if room > 0:
            self.unknown_ids.extend(ids[:room])


def _existing(conn: Connection, column: Any, ids: Sequence[str]) -> set[str]:
    out: set[str] = set()
    for clause in among(conn, column, ids):
        out.update(conn.execute(select(column).where(clause)).scalars())
    return out


def rows_by_id(conn: Connection, table: Table, ids: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for clause in among(conn, table.c.prediction_id, ids):
        for row in conn.execute(select(table).where(clause)).mappings():
            out[row["prediction_id"]] = dict(row)
    return out


def apply_labels(conn: Connection, rows: Sequence[tuple[int | None, LabelRow]], source: str,
                 now: datetime | None = None, *, relabel_own_only: bool = False,
                 max_unknown: int | None = None,
                 max_unknown_total: int | None = None) -> LabelResult:
    """Apply valid labels in order (see the module docstring for the rules).

    Runs inside the caller's transaction; only reads and writes through ``conn``.

    Args:
        conn: A connection inside a transaction.
        rows: ``(row index in the source or None, label)`` in arrival order.
        source: Where they come from (a file path, ``"api"``, ``"api:key:<id> (<name>)"``).
        now: The ingestion time (default: now).
        relabel_own_only: Refuse to replace a label that another source set.
        max_unknown: New ``unknown_labels`` rows kept at most (None: all); labels of ids
            already kept there are updated whatever the bound.
        max_unknown_total: New ``unknown_labels`` rows are kept only while the table holds
            fewer rows than this (None: no bound; counted once, when the first new one comes).

    Returns:
        Counts (``ingested``, ``duplicates``, ``unknown``, ``relabelled``) and unknown ids.

    Raises:
        RelabelRefused: ``relabel_own_only`` and some label would replace another source's
            (nothing is written: the caller's transaction rolls back).
    """
    now = now or datetime.now(UTC)
    result = LabelResult()
    if not rows:
        return result
    ids = sorted({r.prediction_id for _, r in rows})
    reconcile_labels(conn, ids, now)
    known = _existing(conn, predictions.c.id, ids)
    current: dict[str, dict[str, Any]] = rows_by_id(conn, labels, ids)
    unknown_before = rows_by_id(conn, unknown_labels, [i for i in ids if i not in known])
    inserts: dict[str, dict[str, Any]] = {}
    updates: dict[str, dict[str, Any]] = {}
    history: list[dict[str, Any]] = []
    unknown_rows: dict[str, dict[str, Any]] = {}
    unknown_seen: list[str] = []
    fresh_unknown = 0
    room: int | None = None  # new unknown rows that may be kept; counted when first needed
    c = result.counts
    refused: list[ErrorDetail] = []
    for position, (row_index, lab) in enumerate(rows):
        pid = lab.prediction_id
        ts = lab.ts if lab.ts is not None else now.timestamp()
        new = {"prediction_id": pid, "label": lab.label_json, "ts": ts, "source": source,
               "source_row": row_index, "ingested_at": now}
        if pid not in known:
            c.unknown += 1
            unknown_seen.append(pid)
            before = unknown_rows.get(pid) or unknown_before.get(pid)
            if before is None:
                if room is None:
                    room = _unknown_room(conn, max_unknown, max_unknown_total)
                if fresh_unknown >= room:
                    result.unknown_not_kept += 1
                    continue
                fresh_unknown += 1
            unknown_rows[pid] = {**new, "first_seen": before["first_seen"] if before else now,
                                 "last_seen": now,
                                 "times_seen": (before["times_seen"] if before else 0) + 1}
            del unknown_rows[pid]["ingested_at"]
            continue
        old = current.get(pid)
        if old is not None and old["label"] == lab.label_json:
            c.duplicates += 1
            continue
        if old is not None and relabel_own_only and old["source"] != source:
            refused.append(ErrorDetail(
                f"labels[{position}].prediction_id", "relabel_owner", pid,
                f"Prediction {pid!r} was labelled by {old['source']!r}; only they may change "
                "the label (guards.relabel: same_labeller)."))
            continue
        c.ingested += 1
        if old is None:
            inserts[pid] = new
        else:
            c.relabelled += 1
            history.append({**{k: old[k] for k in ("prediction_id", "label", "ts", "source",
                                                   "source_row", "ingested_at")},
                            "replaced_at": now})
            (inserts if pid in inserts else updates)[pid] = new
        current[pid] = new
    if refused:
        raise RelabelRefused(f"{len(refused)} label(s) would replace another labeller's: "
                             f"{refused[0].message}", refused)
    _write(conn, inserts, updates, history, unknown_rows, set(unknown_before))
    result.note_unknown(list(dict.fromkeys(unknown_seen)))
    return result


def _unknown_room(conn: Connection, max_unknown: int | None,
                  max_unknown_total: int | None) -> int:
    """How many new ``unknown_labels`` rows one call may add under both bounds."""
    room = max_unknown if max_unknown is not None else sys.maxsize
    if max_unknown_total is not None:
        held = conn.execute(select(func.count()).select_from(unknown_labels)).scalar_one()
        room = min(room, max(0, max_unknown_total - int(held)))
    return room


def _write(conn: Connection, inserts: dict[str, dict[str, Any]],
           updates: dict[str, dict[str, Any]], history: list[dict[str, Any]],
           unknown_rows: dict[str, dict[str, Any]], unknown_before: set[str]) -> None:
    if history:
        conn.execute(label_history.insert(), history)
    if inserts:
        conn.execute(labels.insert(), list(inserts.values()))
    if updates:
        conn.execute(labels.update().where(labels.c.prediction_id == bindparam("pid")).values(
            label=bindparam("label"), ts=bindparam("ts"), source=bindparam("source"),
            source_row=bindparam("source_row"), ingested_at=bindparam("ingested_at")),
            [{**{k: v for k, v in u.items() if k != "prediction_id"},
              "pid": u["prediction_id"]} for u in updates.values()])
    fresh = [r for pid, r in unknown_rows.items() if pid not in unknown_before]
    seen = [r for pid, r in unknown_rows.items() if pid in unknown_before]
    if fresh:
        conn.execute(unknown_labels.insert(), fresh)
    if seen:
        u = unknown_labels.c
        conn.execute(unknown_labels.update().where(u.prediction_id == bindparam("pid")).values(
            label=bindparam("label"), ts=bindparam("ts"), source=bindparam("source"),
            source_row=bindparam("source_row"), last_seen=bindparam("last_seen"),
            times_seen=bindparam("times_seen")),
            [{"pid": r["prediction_id"], **{k: r[k] for k in (
                "label", "ts", "source", "source_row", "last_seen", "times_seen")}}
             for r in seen])


def reconcile_labels(conn: Connection, ids: Sequence[str] | None, now: datetime) -> int:
    """Move unknown labels whose prediction now exists into ``labels``; return how many.

    An unknown label is older than any label its prediction got meanwhile, so when there is
    one already the unknown label goes to ``label_history`` instead.
    """
    u, p = unknown_labels, predictions
    stmt = select(u).join(p, p.c.id == u.c.prediction_id)
    if ids is not None:
        moved = 0
        for clause in among(conn, u.c.prediction_id, ids):
            moved += _move(conn, [dict(r) for r in conn.execute(stmt.where(clause)).mappings()],
                           now)
        return moved
    return _move(conn, [dict(r) for r in conn.execute(stmt).mappings()], now)


def _move(conn: Connection, found: list[dict[str, Any]], now: datetime) -> int:
    if not found:
        return 0
    ids = [r["prediction_id"] for r in found]
    has_label = _existing(conn, labels.c.prediction_id, ids)
    rows = [{"prediction_id": r["prediction_id"], "label": r["label"], "ts": r["ts"],
             "source": r["source"], "source_row": r["source_row"],
             "ingested_at": r["last_seen"]} for r in found]
    to_labels = [r for r in rows if r["prediction_id"] not in has_label]
    to_history = [{**r, "replaced_at": now} for r in rows if r["prediction_id"] in has_label]
    if to_labels:
        conn.execute(labels.insert(), to_labels)
    if to_history:
        conn.execute(label_history.insert(), to_history)
    for clause in among(conn, unknown_labels.c.prediction_id, ids):
        conn.execute(unknown_labels.delete().where(clause))
    return len(found)



__all__ = [
    "MAX_UNKNOWN_LABELS",
    "UNKNOWN_EXAMPLES",
    "LabelResult",
    "apply_labels",
    "reconcile_labels",
    "rows_by_id",
]

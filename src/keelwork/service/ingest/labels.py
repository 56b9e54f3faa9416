"""Ground-truth labels: attached to prediction ids, late and in any order, idempotently.

Tables (in the ingestion ``MetaData``, schema kind ``ingest``)::

    labels          prediction_id (PK), label (canonical JSON text), ts, source, source_row,
                    ingested_at
    label_history   id (PK), prediction_id, label, ts, source, source_row, ingested_at,
                    replaced_at -- every label that a different later one replaced
    unknown_labels  prediction_id (PK), label, ts, source, source_row, first_seen, last_seen,
                    times_seen -- labels whose prediction is not (yet) in the prediction log

Rules, for every label in the order it arrives:

- its prediction is in the log and has no label: the label is stored (``ingested``);
- it has the same label already (same canonical JSON): nothing changes (``duplicates``);
- it has a different label: the last one ingested wins, and the replaced one is kept in
  ``label_history`` (``ingested`` and ``relabelled``). Arrival order decides, not ``ts``: a
  correction is sent after the mistake, whatever time it says the truth was observed;
- its prediction is not in the log: the label is kept in ``unknown_labels`` and reported
  (``unknown``). Predictions may reach the log after their labels (a spool replay, a batch
  imported later): :meth:`LabelStore.reconcile` -- run at the start of every labels
  ingestion -- moves such labels into ``labels`` once their prediction exists.

``unknown_labels`` is bounded, since any client of the feedback API can name ids that do not
exist: one :meth:`LabelStore.submit` adds at most ``max_unknown`` new rows (keel.yaml's
``monitoring.labels.max_unknown_per_request``; the rest are counted, not kept), and
:meth:`LabelStore.expire_unknown` deletes those not seen again within
``monitoring.labels.unknown_ttl``. Files (``keel ingest --labels``) are an operator's: their
unknown labels are all kept, and expire the same way.

Labels are compared and stored as canonical JSON text (sorted keys, compact) rather than a JSON
column type: PostgreSQL cannot compare ``json`` values, and equal labels must be recognised.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
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
    String,
    Table,
    Text,
    bindparam,
    select,
)
from sqlalchemy.engine import Connection

from keelwork.adapters.stores.prediction_store import predictions
from keelwork.core.ingest import (
    Checkpoint,
    DeadLetter,
    IngestCounts,
    LabelColumns,
    LabelRow,
    parse_label,
)
from keelwork.errors import ContractViolation, DataFileError, ErrorDetail, RelabelRefused
from keelwork.service.ingest.files import ChunkOutcome, SourceFile
from keelwork.service.ingest.ledger import Ledger, among, metadata

#: How many unknown ids a result keeps as examples.
UNKNOWN_EXAMPLES = 20

labels = Table(
    "labels", metadata,
    Column("prediction_id", String(256), primary_key=True),
    Column("label", Text, nullable=False),
    Column("ts", Double, nullable=False),
    Column("source", Text, nullable=False),
    Column("source_row", BigInteger),
    Column("ingested_at", DateTime(timezone=True), nullable=False),
    Index("ix_labels_ts", "ts"),
)

label_history = Table(
    "label_history", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("prediction_id", String(256), nullable=False),
    Column("label", Text, nullable=False),
    Column("ts", Double, nullable=False),
    Column("source", Text, nullable=False),
    Column("source_row", BigInteger),
    Column("ingested_at", DateTime(timezone=True), nullable=False),
    Column("replaced_at", DateTime(timezone=True), nullable=False),
    Index("ix_label_history_prediction", "prediction_id", "id"),
)

unknown_labels = Table(
    "unknown_labels", metadata,
    Column("prediction_id", String(256), primary_key=True),
    Column("label", Text, nullable=False),
    Column("ts", Double, nullable=False),
    Column("source", Text, nullable=False),
    Column("source_row", BigInteger),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("times_seen", Integer, nullable=False),
)


@dataclass(frozen=True, slots=True)
class StoredLabel:
    """A label as stored (current, historic or unknown)."""

    prediction_id: str
    label: Any
    ts: float
    source: str
    source_row: int | None
    ingested_at: datetime


@dataclass(slots=True)
class LabelResult:
    """What applying some labels did: counts plus the first unknown ids, for the report."""

    counts: IngestCounts = field(default_factory=IngestCounts)
    unknown_ids: list[str] = field(default_factory=list)
    #: Unknown labels past the per-request bound: counted in ``counts.unknown``, not stored.
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


def _rows_by_id(conn: Connection, table: Table, ids: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for clause in among(conn, table.c.prediction_id, ids):
        for row in conn.execute(select(table).where(clause)).mappings():
            out[row["prediction_id"]] = dict(row)
    return out


def apply_labels(conn: Connection, rows: Sequence[tuple[int | None, LabelRow]], source: str,
                 now: datetime | None = None, *, relabel_own_only: bool = False,
                 max_unknown: int | None = None) -> LabelResult:
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
    _reconcile(conn, ids, now)
    known = _existing(conn, predictions.c.id, ids)
    current: dict[str, dict[str, Any]] = _rows_by_id(conn, labels, ids)
    unknown_before = _rows_by_id(conn, unknown_labels, [i for i in ids if i not in known])
    inserts: dict[str, dict[str, Any]] = {}
    updates: dict[str, dict[str, Any]] = {}
    history: list[dict[str, Any]] = []
    unknown_rows: dict[str, dict[str, Any]] = {}
    unknown_seen: list[str] = []
    fresh_unknown = 0
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
                if max_unknown is not None and fresh_unknown >= max_unknown:
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


def _reconcile(conn: Connection, ids: Sequence[str] | None, now: datetime) -> int:
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


# --------------------------------------------------------------------------- the store API
class LabelStore:
    """Labels in the store: submit them (the feedback API), read them, reconcile them.

    Args:
        engine: The store.
        ledger: The ledger whose retried transactions to use (default: a new one).
    """

    def __init__(self, engine: Engine, ledger: Ledger | None = None) -> None:
        self.engine = engine
        self.ledger = ledger or Ledger(engine)

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
            max_unknown: New unknown labels kept at most (None: all); see the module doc.

        Returns:
            Counts and the first unknown ids.

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
            problems.sort(key=lambda p: _label_index(p.path))
        if problems:
            shown = "; ".join(p.message for p in problems[:5])
            more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
            raise ContractViolation(f"{len(problems)} label problem(s): {shown}{more}", problems)
        result = self.ledger.transaction(
            f"store {len(valid)} label(s)",
            lambda conn: apply_labels(conn, valid, source, relabel_own_only=relabel_own_only,
                                      max_unknown=max_unknown))
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
                                       lambda conn: _reconcile(conn, None, datetime.now(UTC)))

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

        from sqlalchemy import inspect

        if not prediction_ids:
            return {}

        def work(conn: Connection) -> dict[str, Any]:
            if not inspect(conn).has_table(labels.name):
                return {}
            return _rows_by_id(conn, labels, prediction_ids)

        rows = self.ledger.transaction("read labels", work)
        return {pid: StoredLabel(prediction_id=pid, label=json.loads(r["label"]),
                                 ts=float(r["ts"]), source=r["source"],
                                 source_row=r["source_row"],
                                 ingested_at=_aware(r["ingested_at"]))
                for pid, r in rows.items()}

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


def _label_index(path: str) -> int:
    """``labels[12].label`` -> 12 (problems are reported in body order)."""
    head = path.removeprefix("labels[").partition("]")[0]
    return int(head) if head.isdigit() else -1


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- files
@dataclass(frozen=True, slots=True)
class _LabelChunk:
    valid: list[tuple[int | None, LabelRow]]
    letters: list[DeadLetter]


class LabelsHandler:
    """Ingests labels files (:class:`~keelwork.service.ingest.ledger.ChunkHandler`).

    One label per record; records without a usable id or label are dead-lettered.

    Args:
        columns: Which columns hold the id, the label and (optionally) the time.
        check_labels: More rules for the label values, e.g. the output contract's
            (:class:`~keelwork.core.label_check.LabelChecker`); a label that breaks them is
            dead-lettered with the problems, as ``POST /v1/feedback`` refuses it.
    """

    kind = "labels"
    target = ""

    def __init__(self, columns: LabelColumns | None = None,
                 check_labels: Callable[[list[Any]], list[ErrorDetail]] | None = None) -> None:
        self.columns = columns or LabelColumns()
        self.check_labels = check_labels

    def read_types(self) -> dict[str, Any]:
        """Ids as text (``007`` stays ``007``); labels as the file has them."""
        import pyarrow as pa

        return {self.columns.id: pa.string()}

    def check_columns(self, file: SourceFile) -> None:
        """Refuse a file without the id or label column, before anything is written.

        Raises:
            DataFileError: a required column is missing.
        """
        for name in self.columns.required():
            if name not in file.columns:
                raise DataFileError(
                    f"{file.path}: a labels file must have a '{name}' column; got the columns "
                    f"{', '.join(repr(c) for c in file.columns) or '(none)'}. Name the columns "
                    "with --id-column / --label-column.", path=str(file.path), line=1,
                    column=name)

    def begin(self, file: SourceFile, ledger: Ledger, checkpoint: Checkpoint) -> None:
        """Reconcile labels that earlier runs left unknown."""
        ledger.transaction("reconcile unknown labels",
                           lambda conn: _reconcile(conn, None, datetime.now(UTC)))

    def prepare(self, file: SourceFile, first_row: int, rows: list[dict[str, Any]],
                checkpoint: Checkpoint) -> _LabelChunk:
        """Parse a chunk: valid labels, and dead letters for the rest."""
        valid: list[tuple[int | None, LabelRow]] = []
        letters: list[DeadLetter] = []
        broken: dict[int, list[ErrorDetail]] = {}
        if self.check_labels is not None:
            label = self.columns.label
            for d in self.check_labels([r.get(label) for r in rows]):
                at = _label_index(d.path)
                broken.setdefault(at, []).append(ErrorDetail(
                    label, d.rule, d.got, d.message.replace(f"'{d.path}'", f"'{label}'", 1)))
        for offset, record in enumerate(rows):
            row = first_row + offset
            parsed, details = parse_label(record, self.columns)
            if parsed is not None and offset in broken:
                parsed, details = None, broken[offset]
            if parsed is None:
                letters.append(DeadLetter.of(str(file.path), row, file.line_of(row), details,
                                             record))
            else:
                valid.append((row, parsed))
        return _LabelChunk(valid, letters)

    def write(self, conn: Connection, chunk: _LabelChunk, file: SourceFile) -> ChunkOutcome:
        """Apply a parsed chunk inside the ledger's transaction."""
        result = apply_labels(conn, chunk.valid, str(file.path))
        result.counts.dead_lettered = len(chunk.letters)
        result.counts.read = len(chunk.valid) + len(chunk.letters)
        return ChunkOutcome(result.counts, chunk.letters, result.unknown_ids)

    def end(self, file: SourceFile, ledger: Ledger, checkpoint: Checkpoint) -> None:
        """Nothing to do at the end of a labels file."""


__all__ = [
    "UNKNOWN_EXAMPLES",
    "LabelResult",
    "LabelStore",
    "LabelsHandler",
    "StoredLabel",
    "apply_labels",
    "label_history",
    "labels",
    "unknown_labels",
]

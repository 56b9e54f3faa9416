"""The event counts of quality SLOs, read from the prediction log and the labels table.

One reading per quality SLO and evaluation covers every window it needs at once: the windows
are nested (all end at the same instant), so one pass over the longest counts them all.

- ``violation_rate`` and ``label_coverage`` are counted by the database: one grouped query,
  a ``CASE`` per window (coverage joins ``labels`` on the prediction id);
- ``accuracy``, ``f1``, ``mae`` and ``null_rate`` read the stored outputs (with their labels)
  or inputs, in keyset-paginated batches (constant memory), and each row's events are
  :func:`keelwork.core.slo.quality.answer_events` / :func:`~keelwork.core.slo.quality.
  null_events`, summed by :class:`~keelwork.core.slo.quality.WindowTally`.

Windows are over prediction time: a label counts into the windows of its prediction, whenever
it arrived. Shadow calls are no event of any quality SLO (nobody got their answer).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import orjson
from sqlalchemy import Engine, and_, case, func, inspect, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.expression import ColumnElement

from keelwork.adapters.stores.ingest_tables import labels
from keelwork.adapters.stores.prediction_store import prediction_payloads, predictions
from keelwork.adapters.stores.transactions import connection, store_error
from keelwork.core.slo.quality import (
    QualityCounts,
    QualityIndicator,
    WindowTally,
    answer_events,
    null_events,
)

_STORE = "prediction log"
_ANSWERED = ("ok", "fallback")
#: Rows read per query when a metric reads payloads.
BATCH = 5000


def _not_shadow() -> ColumnElement[bool]:
    p = predictions.c
    return or_(p.guard.is_(None), p.guard != "shadow")


class QualityCountReader:
    """Counts the events of quality SLOs (see the module doc).

    Args:
        engine: The store holding the prediction log (and the labels, when any arrived).
        batch: Rows per query for the metrics that read payloads.
    """

    def __init__(self, engine: Engine, *, batch: int = BATCH) -> None:
        self.engine = engine
        self.batch = batch

    def _has(self, table: str) -> bool:
        try:
            return bool(inspect(self.engine).has_table(table))
        except SQLAlchemyError as exc:
            raise store_error(_STORE, "looking for its tables", self.engine, exc) from None

    def counts(self, ind: QualityIndicator, models: Sequence[str], end: float,
               windows: Sequence[int]) -> dict[int, dict[str, QualityCounts]]:
        """Per window (seconds, each ending at ``end``), per model, the events of ``ind``.

        Args:
            ind: What to count.
            models: The models judged.
            end: Where every window ends (exclusive), in seconds since the epoch.
            windows: The window lengths.

        Returns:
            Per window, per model with events, its counts (no events: absent).

        Raises:
            StoreError: the store failed.
        """
        if not windows or not models or not self._has(predictions.name):
            return {}
        since = end - max(windows)
        has_labels = self._has(labels.name)
        if ind.metric == "violation_rate":
            return self._grouped(ind, models, since, end, windows, labelled=False)
        if ind.metric == "label_coverage":
            return self._grouped(ind, models, since, end, windows, labelled=has_labels)
        if ind.metric in ("accuracy", "f1", "mae") and not has_labels:
            return {}
        tally = WindowTally(end, windows)
        for ts, model, inputs, output, label in self._rows(ind, models, since, end):
            if ind.metric == "null_rate":
                tally.add(ts, model, *null_events(ind, inputs))
            else:
                got = answer_events(ind, output, label)
                if got is not None:
                    tally.add(ts, model, *got)
        return tally.counts()

    def _grouped(self, ind: QualityIndicator, models: Sequence[str], since: float, end: float,
                 windows: Sequence[int], *, labelled: bool,
                 ) -> dict[int, dict[str, QualityCounts]]:
        """violation_rate and label_coverage: one grouped query, two sums per window."""
        p = predictions.c
        if ind.metric == "violation_rate":
            bad: ColumnElement[bool] = and_(p.status == "rejected", p.guard == "contract")
            where = [_not_shadow()]
            source: Any = predictions
        else:
            where = [p.status.in_(_ANSWERED), _not_shadow()]
            if labelled:
                source = predictions.outerjoin(labels, labels.c.prediction_id == p.id)
                bad = labels.c.prediction_id.is_(None)
            else:  # no label ever arrived: every prediction lacks one
                source, bad = predictions, p.id.is_not(None)
        cols: list[Any] = [p.model]
        for w in windows:
            inside = p.ts >= end - w
            cols.append(func.sum(case((inside, 1), else_=0)))
            cols.append(func.sum(case((and_(inside, bad), 1), else_=0)))
        stmt = (select(*cols).select_from(source)
                .where(p.ts >= since, p.ts < end, p.model.in_(list(models)), *where)
                .group_by(p.model))
        out: dict[int, dict[str, QualityCounts]] = {}
        with connection(self.engine, _STORE, "counting quality SLO events") as conn:
            for row in conn.execute(stmt):
                for i, w in enumerate(windows):
                    n, b = int(row[1 + 2 * i] or 0), int(row[2 + 2 * i] or 0)
                    if n:
                        out.setdefault(w, {})[row[0]] = QualityCounts(float(n), float(b))
        return out

    def _rows(self, ind: QualityIndicator, models: Sequence[str], since: float, end: float,
              ) -> Iterator[tuple[float, str, Any, Any, Any]]:
        """``(ts, model, inputs, output, label)`` of the answered predictions in the range
        (with a label, for the metrics judged against one), in (ts, id) order."""
        p, q = predictions.c, prediction_payloads.c
        wants_label = ind.metric != "null_rate"
        payload = q.inputs if ind.metric == "null_rate" else q.outputs
        cols: list[Any] = [p.ts, p.id, p.model, payload]
        source: Any = predictions.join(prediction_payloads, q.id == p.id)
        if wants_label:
            cols.append(labels.c.label)
            source = source.join(labels, labels.c.prediction_id == p.id)
        where = [p.ts >= since, p.ts < end, p.model.in_(list(models)),
                 p.status.in_(_ANSWERED), _not_shadow()]
        after: tuple[float, str] | None = None
        while True:
            stmt = select(*cols).select_from(source).where(*where)
            if after is not None:
                stmt = stmt.where(or_(p.ts > after[0], and_(p.ts == after[0], p.id > after[1])))
            stmt = stmt.order_by(p.ts, p.id).limit(self.batch)
            with connection(self.engine, _STORE, "reading predictions for quality SLOs") as conn:
                rows = conn.execute(stmt).all()
            for r in rows:
                body = _load(r[3])
                if wants_label:
                    yield float(r[0]), r[2], None, body, _load(r[4])
                else:
                    yield float(r[0]), r[2], body, None, None
            if len(rows) < self.batch:
                return
            after = (float(rows[-1][0]), rows[-1][1])


def _load(text: Any) -> Any:
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


__all__ = ["BATCH", "QualityCountReader"]

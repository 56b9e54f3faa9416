"""The event counts of quality SLOs, read from the prediction log and the labels table.

One reading per quality SLO and evaluation covers every window it needs at once: the windows
are nested (all end at the same instant), so one pass over the longest counts them all. They
end at a whole bucket (:func:`bucket_seconds`: a minute, or less when a window is not whole
minutes), so that every window is a union of buckets.

- ``violation_rate`` and ``label_coverage`` are counted by the database: one grouped query,
  a ``CASE`` per window (coverage joins ``labels`` on the prediction id);
- ``drift`` reads the window results ``keel serve``'s monitoring stored (``monitor_results``,
  of the slice's window spec) overlapping the SLO window: per slice, its predictions and the
  verdict on the feature (:func:`~keelwork.core.slo.quality.drifted`);
- ``accuracy``, ``f1``, ``mae`` and ``null_rate`` read the stored outputs (with their labels)
  or inputs, in keyset-paginated batches (constant memory), and each row's events are
  :func:`keelwork.core.slo.quality.answer_events` / :func:`~keelwork.core.slo.quality.
  null_events`. Parsing JSON is the cost, so the sums are kept per bucket and model between
  readings, with each bucket's fingerprint (its predictions, and for the label metrics its
  labels and their latest ``ingested_at``): a reading asks the database for the
  fingerprints (one grouped query, no payload) and reads the rows of the buckets whose
  fingerprint changed only: new predictions, a label that came (late or not), a relabel.
  The sums kept are at most one per bucket and model of the SLO window.

Windows are over prediction time: a label counts into the windows of its prediction, whenever
it arrived. Shadow calls are no event of any quality SLO (nobody got their answer).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from functools import reduce
from typing import Any

import orjson
from sqlalchemy import Engine, Integer, and_, case, cast, func, inspect, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.expression import ColumnElement

from keelwork.adapters.stores.ingest_tables import labels
from keelwork.adapters.stores.monitor_store import monitor_results
from keelwork.adapters.stores.prediction_store import prediction_payloads, predictions
from keelwork.adapters.stores.subject_keys import open_payloads
from keelwork.adapters.stores.transactions import connection, store_error
from keelwork.core.slo.quality import (
    QualityCounts,
    QualityIndicator,
    answer_events,
    drifted,
    null_events,
    slice_events,
)

_STORE = "prediction log"
_ANSWERED = ("ok", "fallback")
#: Rows read per query when a metric reads payloads.
BATCH = 5000
#: Buckets kept per quality SLO at most (more: nothing is kept, every reading reads all).
MAX_BUCKETS = 200_000

#: Per bucket and model: (fingerprint, events, bad).
_Kept = dict[tuple[int, str], tuple[tuple[Any, ...], float, float]]


def bucket_seconds(windows: Sequence[int]) -> int:
    """The bucket every window is a whole number of: a minute, or their greatest common
    divisor with 60 when a window is not whole minutes."""
    return reduce(math.gcd, (int(w) for w in windows), 60)


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
        #: Per (indicator, models, bucket size): the sums kept between readings.
        self._kept: dict[tuple[QualityIndicator, tuple[str, ...], int], _Kept] = {}
        #: Rows parsed by the last reading (what the kept sums save).
        self.rows_read = 0

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
            end: Where the windows end (exclusive), in seconds since the epoch; taken down to
                a whole bucket (:func:`bucket_seconds`).
            windows: The window lengths.

        Returns:
            Per window, per model with events, its counts (no events: absent).

        Raises:
            StoreError: the store failed.
        """
        self.rows_read = 0
        if not windows or not models or not self._has(predictions.name):
            return {}
        size = bucket_seconds(windows)
        end = math.floor(end / size) * size
        since = end - max(windows)
        if ind.metric == "drift":
            return self._slices(ind, models, since, end, windows)
        has_labels = self._has(labels.name)
        if ind.metric == "violation_rate":
            return self._grouped(ind, models, since, end, windows, labelled=False)
        if ind.metric == "label_coverage":
            return self._grouped(ind, models, since, end, windows, labelled=has_labels)
        if ind.metric in ("accuracy", "f1", "mae") and not has_labels:
            return {}
        key = (ind, tuple(models), size)
        kept = self._refresh(ind, models, since, end, size, self._kept.get(key, {}))
        if max(windows) // size <= MAX_BUCKETS:
            self._kept[key] = kept
        return _sums(kept, end // size, [w // size for w in windows], windows)

    def _slices(self, ind: QualityIndicator, models: Sequence[str], since: float, end: float,
                windows: Sequence[int]) -> dict[int, dict[str, QualityCounts]]:
        """drift: the stored monitoring results of the slices overlapping [since, end)."""
        if ind.slice is None or not self._has(monitor_results.name):
            return {}
        t = monitor_results.c
        stmt = (select(t.model, t.start, t.end, t.predictions, t.body)
                .where(t.model.in_(list(models)), t.window == ind.slice, t.end > since,
                       t.start < end))
        sums: dict[int, dict[str, list[float]]] = {}
        with connection(self.engine, _STORE, "reading monitoring results") as conn:
            for model, start, stop, n, body in conn.execute(stmt):
                report = _load(body)
                columns = ((report.get("drift") or {}).get("columns") or []
                           if isinstance(report, dict) else [])
                for w, events, bad in slice_events(float(start), float(stop), int(n or 0),
                                                   drifted(ind, columns), end, windows):
                    pair = sums.setdefault(w, {}).setdefault(model, [0.0, 0.0])
                    pair[0] += events
                    pair[1] += bad
        return {w: {m: QualityCounts(e, b) for m, (e, b) in per.items()}
                for w, per in sums.items()}

    def _bucket(self, size: int) -> Any:
        """SQL: the bucket of a prediction's ``ts`` (as :meth:`_refresh` computes it)."""
        if self.engine.dialect.name == "sqlite":
            return cast(predictions.c.ts / size, Integer)  # truncates: ts is positive
        return func.floor(predictions.c.ts / size)

    def _refresh(self, ind: QualityIndicator, models: Sequence[str], since: float, end: float,
                 size: int, kept: _Kept) -> _Kept:
        """The sums of every bucket and model of [since, end): those kept whose fingerprint
        is unchanged, the others read again."""
        p = predictions.c
        bucket = self._bucket(size).label("bucket")
        cols: list[Any] = [bucket, p.model, func.count()]
        source: Any = predictions
        if ind.metric != "null_rate":
            source = predictions.outerjoin(labels, labels.c.prediction_id == p.id)
            cols += [func.count(labels.c.prediction_id), func.max(labels.c.ingested_at)]
        stmt = (select(*cols).select_from(source)
                .where(p.ts >= since, p.ts < end, p.model.in_(list(models)))
                .group_by(bucket, p.model))
        with connection(self.engine, _STORE, "fingerprinting quality SLO buckets") as conn:
            prints = {(int(r[0]), r[1]): tuple(str(v) for v in r[2:]) for r in conn.execute(stmt)}
        fresh: _Kept = {k: v for k, v in kept.items() if prints.get(k) == v[0]}
        stale = sorted({b for b, m in prints if (b, m) not in fresh})
        for first, last in _runs(stale):
            sums: dict[tuple[int, str], list[float]] = {}
            for ts, model, inputs, output, label in self._rows(
                    ind, models, max(since, first * size), min(end, (last + 1) * size)):
                self.rows_read += 1
                got = (null_events(ind, inputs) if ind.metric == "null_rate"
                       else answer_events(ind, output, label))
                if got is not None:
                    pair = sums.setdefault((int(ts / size), model), [0.0, 0.0])
                    pair[0] += got[0]
                    pair[1] += got[1]
            for b in range(first, last + 1):
                for m in models:
                    if (b, m) in prints and (b, m) not in fresh:
                        events, bad = sums.get((b, m), (0.0, 0.0))
                        fresh[(b, m)] = (prints[(b, m)], events, bad)
        return fresh

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
            col = "inputs" if ind.metric == "null_rate" else "outputs"
            opened = open_payloads(self.engine, [{col: r[3]} for r in rows])
            for r, o in zip(rows, opened, strict=True):
                body = _load(o[col])
                if wants_label:
                    yield float(r[0]), r[2], None, body, _load(r[4])
                else:
                    yield float(r[0]), r[2], body, None, None
            if len(rows) < self.batch:
                return
            after = (float(rows[-1][0]), rows[-1][1])


def _runs(buckets: list[int]) -> list[tuple[int, int]]:
    """Sorted bucket numbers as runs of consecutive ones: [1, 2, 3, 7] -> [(1, 3), (7, 7)]."""
    out: list[tuple[int, int]] = []
    for b in buckets:
        if out and b == out[-1][1] + 1:
            out[-1] = (out[-1][0], b)
        else:
            out.append((b, b))
    return out


def _sums(kept: _Kept, last: int, spans: list[int], windows: Sequence[int],
          ) -> dict[int, dict[str, QualityCounts]]:
    """Per window, per model, the sums of the buckets it covers (windows end before bucket
    ``last``; window ``i`` covers ``spans[i]`` buckets)."""
    totals: dict[int, dict[str, list[float]]] = {}
    for (b, model), (_, events, bad) in kept.items():
        if events == 0:
            continue
        age = last - b
        for span, w in zip(spans, windows, strict=True):
            if 0 < age <= span:
                pair = totals.setdefault(w, {}).setdefault(model, [0.0, 0.0])
                pair[0] += events
                pair[1] += bad
    return {w: {m: QualityCounts(e, b) for m, (e, b) in per.items()}
            for w, per in totals.items()}


def _load(text: Any) -> Any:
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


__all__ = ["BATCH", "MAX_BUCKETS", "QualityCountReader", "bucket_seconds"]

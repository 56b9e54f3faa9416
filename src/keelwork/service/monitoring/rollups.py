"""Monitoring windows from rollups: a window's report in O(buckets), not O(rows).

A rollup (:class:`~keelwork.core.monitors.rollup.Rollup`) is what a window needs from one model
version's predictions of one :data:`BUCKET_SECONDS` bucket, labels left out: merged profiles,
segment profiles, counts, the columns carried, the scores. :func:`fold` makes one with the very
:meth:`WindowContext.add` a full run uses. Rollups are made by the runs themselves: a run
folds each bucket that no rollup covers yet, from the log, once, and stores it
(:meth:`RollupPlan.entry`); later runs -- ``keel monitor run``, the server's monitoring loop
every ``monitor_interval`` -- read it instead of the bucket's rows. Nothing of this happens on
the serving path (the prediction log is written as before).

A time window whose length is a multiple of :data:`BUCKET_SECONDS` (``5m``, ``15m``, ``1h``,
``1d``, ...) is assembled from its buckets:

- a bucket is *covered* when its rollups (every version's) together saw exactly as many rows as
  the log holds in the bucket (a range count on the ``(model, ts)`` index), and those the run
  reads were profiled against the run's layout (:func:`layout_of`); any other bucket -- never
  folded, still being written, rows deleted or added since -- is folded again from the log and
  its rollups replaced. A window is therefore exact whatever the state of the rollups;
- ground truth is never rolled up (labels arrive late): the run's *labelled* predictions are
  read with one narrow query and folded as the full run folds them (label columns, the realised
  quality's truth/prediction/score lists, label coverage and delay);
- then :meth:`WindowContext.finish` builds the entry, as for a window read from the log.

Every entry equals the one a full read of the log gives (``tests/integration/
test_monitor_rollups.py`` compares them). Left to the full read (:meth:`RollupPlan.entry`
returns None): count windows (``1000p``), free-text columns (their drift reads a sample of
texts), and windows whose logged outputs lack scores when the run would score inputs again
but cannot use rollups it scored (it reads every version, or the model failed to score).

Scores computed again (a classifier that logs only its label: the run scores logged inputs
with the monitored version's model) are folded into that version's rollups, whose layout
says so (:func:`layout_of` with ``rescored``): later runs that score with the same version
read them and score again only the labelled predictions (realised quality reads their own
scores); a run that does not score again folds its own. Each entry says how it was computed
in ``computed_from``: ``rollups`` (stored rollups only), ``rollups+log`` (some buckets folded
from the log by this run) or ``log``.
"""

from __future__ import annotations

import bisect
import concurrent.futures as cf
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar, cast

from sqlalchemy import Engine

from keelwork.core.monitors.profile import TableProfile
from keelwork.core.monitors.rollup import (
    Rollup,
    combine,
    id_key,
    layout_fingerprint,
    rollup_from_bytes,
)
from keelwork.core.monitors.windows import (
    LABEL_LABEL,
    LABEL_VALUE,
    PREDICTION_LABEL,
    PREDICTION_SCORE,
    PREDICTION_VALUE,
    WindowSpec,
    category,
    proba_row,
)
from keelwork.errors import StoreError
from keelwork.service.monitoring.fairness import count_labelled
from keelwork.service.monitoring.window import (
    ANSWERED,
    MonitorSettings,
    Window,
    WindowContext,
    load_json,
)

_T = TypeVar("_T")
log = logging.getLogger("keelwork.monitor")

#: Bucket length of the rollups (seconds). Windows that are whole multiples of it are served.
BUCKET_SECONDS = 300


def bucket_of(ts: float, seconds: int = BUCKET_SECONDS) -> int:
    """The start of the bucket holding ``ts``: ``start <= ts < start + seconds``, exactly."""
    b = math.floor(ts / seconds)
    if b * seconds > ts:
        b -= 1
    elif (b + 1) * seconds <= ts:
        b += 1
    return int(b * seconds)


def layout_of(ctx: WindowContext, rescored: int | None = None) -> str:
    """The fingerprint a rollup made for ``ctx``'s run must carry (see
    :func:`~keelwork.core.monitors.rollup.layout_fingerprint`); ``rescored``: the model
    version whose scores of the logged inputs the rollup holds (None: the logged scores)."""
    extra: dict[str, Any] = {"scores": ctx.ref.cbpe is not None,
                             "multiclass": ctx.multiclass}
    if rescored is not None:
        extra["rescored_by"] = [ctx.ref.model, rescored]
    return layout_fingerprint(ctx.ref.schema.as_dict(), ctx.ref.profile,
                              ctx.settings.segments, extra)


def servable(ctx: WindowContext, spec: WindowSpec) -> bool:
    """Whether windows of ``spec`` can come from rollups at all for this run."""
    return (spec.seconds is not None and spec.seconds % BUCKET_SECONDS == 0
            and not ctx.text_refs)


def fold(ctx: WindowContext, rows: list[dict[str, Any]], layout: str) -> Rollup:
    """Fold logged rows into a rollup, exactly as a run folds them without labels.

    ``unscored`` counts the answered rows left without a score: their outputs carry none and
    ``ctx`` did not score them again (it has no rescorer, or scoring failed).
    """
    w = Window(0.0, 0.0)
    ctx.add(w, rows, {})
    out = Rollup(layout, seen=len(rows), rows=w.rows, skipped=w.skipped,
                 profile=w.profile, segments=w.segments, columns=w.columns,
                 versions=w.versions)
    if w.rescored:  # kept per prediction, for the ones labelled later (see _add_labelled)
        out.kept_ids = [id_key(pid) for pid, _p in w.rescored]
        out.kept_width = len(w.rescored[0][1])
        out.kept_proba = [float(v) for _pid, p in w.rescored for v in p]
    if ctx.multiclass:
        out.unscored = w.rows - len(w.all_proba)
        out.width = len(ctx.ref.schema.classes or ())
        if ctx.ref.cbpe is not None:
            out.scores = [v for row in w.all_proba for v in row]
    else:
        out.unscored = w.rows - len(w.all_scores)
        if ctx.ref.cbpe is not None:
            out.scores = w.all_scores
    return out


class RollupPlan:
    """The rollups and log counts of one run's range, and the windows they serve.

    Args:
        engine: The store.
        ctx: The run's context (its reference, settings and rescorer).
        lo: Start of the range (the first window's start).
        hi: End of the range (the last window's end).
    """

    def __init__(self, engine: Engine, ctx: WindowContext, lo: float, hi: float) -> None:
        from keelwork.adapters.stores.prediction_store import PredictionReader
        from keelwork.adapters.stores.profile_rollups import RollupStore

        self.engine = engine
        self.ctx = ctx
        self.lo, self.hi = lo, hi
        self._labelled_rows: list[dict[str, Any]] | None = None
        self._labelled_ts: list[float] = []
        # A run that scores logged inputs again with its version's model, reading that
        # version only, keeps those scores in the version's rollups (see the module docstring).
        only = ctx.settings.version
        self.rescored = (only if ctx.rescore is not None and only is not None
                         and only == ctx.ref.model_version else None)
        self.layout = layout_of(ctx, self.rescored)
        self.plain = layout_of(ctx)
        self.store = RollupStore(engine)
        self.reader = PredictionReader(engine)
        self.counts: dict[int, int] = {}
        self.stored: dict[tuple[int, int], tuple[str, int, bytes]] = {}
        self.usable = self.reader.has_log()
        if self.usable:
            try:
                self.store.ensure_schema()
            except StoreError as exc:  # e.g. a read-only store: every window read in full
                log.warning("monitoring rollups unavailable: %s", exc)
                self.usable = False
        self._prefetched: cf.Future[list[dict[str, Any]]] | None = None
        if self.usable:
            # The labelled predictions are read on a thread while this one counts the log
            # and reads and combines the rollups (the database works with the GIL released).
            self._prefetched = _in_thread(self.store.labelled_rows, ctx.ref.model, lo, hi,
                                          predictions_hint="count")
            try:
                buckets = range(int(lo), int(hi), BUCKET_SECONDS)
                self.counts = self.store.log_counts(ctx.ref.model, buckets, BUCKET_SECONDS)
                self.stored = self.store.read(ctx.ref.model, lo, hi, BUCKET_SECONDS)
            except BaseException:
                self.close()
                raise
        # Folding a bucket's rows into rollups, as they are stored: every version, every
        # reference column (a run's version filter and features apply when reading them),
        # no rescoring (a window whose rows need scores is left to the full read).
        self.keeper = WindowContext(ctx.ref, MonitorSettings(segments=ctx.settings.segments),
                                    ctx.spec, None, ctx.now)
        self.scored = 0  # instances the scorer scored again (see _catch_up)
        self.scorer = (None if self.rescored is None else WindowContext(
            ctx.ref, MonitorSettings(segments=ctx.settings.segments), ctx.spec,
            self._counted(ctx.rescore), ctx.now))
        if self.scorer is not None:
            self.scorer.keep_rescored = True
        self.folded = 0

    def close(self) -> None:
        """Wait for the read ahead of the labelled predictions (its connection returns to
        the pool before the caller disposes of the engine)."""
        if self._prefetched is not None:
            cf.wait([self._prefetched])

    def entry(self, start: float, end: float) -> tuple[Window, dict[str, Any]] | None:
        """Window ``[start, end)`` and its finished entry, or None: read it from the log.

        Raises:
            StoreError: the store failed.
        """
        if not self.usable:
            return None
        parts: list[Rollup] = []
        read = 0
        for b in range(int(start), int(end), BUCKET_SECONDS):
            n = self.counts.get(b, 0)
            if not n:
                continue
            got = self._covered(b, n)
            if got is None:
                got = self._catch_up(b)
                read += 1
            if self.ctx.rescore is not None and any(p.unscored for p in got):
                return None  # scores to compute again from the logged inputs
            parts.extend(got)
        total = combine(self.layout, parts)
        w = self._window(start, end, total)
        self._add_labelled(w, self._labelled(start, end), total)
        entry = self.ctx.finish(w)
        entry["computed_from"] = "rollups+log" if read else "rollups"
        return w, entry

    def _catch_up(self, bucket: int) -> list[Rollup]:
        """Fold a bucket the rollups do not cover from the log, store its rollups (one per
        version, replacing any), and return those of the run's version(s). A bucket still
        being written is folded again by a later run: its count will not match."""
        by_version: dict[int, list[dict[str, Any]]] = {}
        for rows in self.reader.iter_row_batches(bucket, bucket + BUCKET_SECONDS,
                                                 model=self.ctx.ref.model, batch_size=5000):
            for r in rows:
                by_version.setdefault(int(r["version"]), []).append(r)
        folded: dict[int, Rollup] = {}
        for v, rows in by_version.items():
            if self.scorer is not None and v == self.rescored:
                before = self.scored
                folded[v] = fold(self.scorer, rows, self.layout)
                if self.scored == before:  # the log had every score: an ordinary rollup
                    folded[v].layout = self.plain
            else:
                folded[v] = fold(self.keeper, rows, self.plain)
        self.folded += sum(len(rows) for rows in by_version.values())
        try:
            self.store.replace_bucket(self.ctx.ref.model, bucket, folded, BUCKET_SECONDS)
        except StoreError as exc:  # a cache: the run goes on without storing it
            log.warning("storing the monitoring rollups of %s at %s failed: %s",
                        self.ctx.ref.model, bucket, exc)
        only = self.ctx.settings.version
        # (an ordinary rollup means the same as this run's own: see _covered)
        return [replace(r, layout=self.layout) for v, r in folded.items()
                if only is None or v == only]

    def _counted(self, rescore: Any) -> Any:
        def score(instances: list[Any]) -> list[Any] | None:
            self.scored += len(instances)
            return cast("list[Any] | None", rescore(instances))
        return score

    def _labelled(self, start: float, end: float) -> list[dict[str, Any]]:
        """The labelled predictions of ``[start, end)``: read once for the whole range (one
        query rather than one per window), in ``(ts, id)`` order."""
        if self._labelled_rows is None:
            self._labelled_rows = (self._prefetched.result() if self._prefetched is not None
                                   else self.store.labelled_rows(
                                       self.ctx.ref.model, self.lo, self.hi,
                                       predictions_hint=sum(self.counts.values())))
            self._labelled_ts = [float(r["ts"]) for r in self._labelled_rows]
        i = bisect.bisect_left(self._labelled_ts, start)
        j = bisect.bisect_left(self._labelled_ts, end)
        return self._labelled_rows[i:j]

    def _covered(self, bucket: int, n: int) -> list[Rollup] | None:
        """The bucket's rollups of the run's version(s), when they cover it exactly: every
        version's rollups together saw the log's ``n`` rows, and those the run reads were
        profiled against its layout."""
        here = {v: got for (v, b), got in self.stored.items() if b == bucket}
        if sum(seen for _layout, seen, _body in here.values()) != n:
            return None
        only = self.ctx.settings.version
        wanted = [got for v, got in here.items() if only is None or v == only]
        fits = {self.layout, self.plain}
        if any(layout not in fits for layout, _seen, _body in wanted):
            return None
        layouts = self.ctx.ref.profile.columns
        out = [rollup_from_bytes(body, layouts) for _layout, _seen, body in wanted]
        if self.rescored is not None and any(r.unscored for r in out if r.layout == self.plain):
            return None  # folded without scoring again: this run folds it with its scores
        for r in out:  # logged scores and this version's own scores mean the same here
            r.layout = self.layout
        return out

    def _window(self, start: float, end: float, total: Rollup) -> Window:
        ctx = self.ctx
        names = set(ctx.names)
        w = Window(start, end, rows=total.rows, skipped=total.skipped,
                   versions=set(total.versions), columns=set(total.columns))
        if total.profile is not None:
            w.profile = _only(total.profile, names)
        w.segments = {key: [_only(p, names), n] for key, (p, n) in total.segments.items()}
        if ctx.ref.cbpe is not None:  # arrays: CBPE reads them as such, never appends
            if ctx.multiclass:
                w.all_proba = cast(list[list[float]], total.scores.reshape(-1, total.width))
            else:
                w.all_scores = cast(list[float], total.scores)
        return w

    def _add_labelled(self, w: Window, rows: Sequence[dict[str, Any]],
                      total: Rollup) -> None:
        """Fold the window's labelled predictions in, as :meth:`WindowContext.add` does;
        ``total``: the window's rollups (their kept scores of predictions scored again)."""
        import numpy as np

        ctx = self.ctx
        only = ctx.settings.version
        rows = [r for r in rows if r.get("status") in ANSWERED
                and (only is None or int(r["version"]) == only)]
        label_names = [n for n in ctx.names if n.startswith("label:")]
        flat: list[dict[str, Any]] = []
        pred_ts: list[float] = []
        inputs = [load_json(r.get("inputs")) for r in rows]
        outputs = [load_json(r.get("outputs")) for r in rows]
        # Realised quality reads the labelled predictions' own scores: those the log lacks
        # come from the rollups that scored them again, else are scored again here, as a
        # full read scores them (few rows: the labelled ones).
        proba: list[Any] = (total.kept_scores([id_key(r["id"]) for r in rows])
                            if len(total.kept_ids) else [None] * len(rows))
        rest = [i for i, p in enumerate(proba) if p is None]
        if rest:
            again = ctx.rescored(w, [inputs[i] for i in rest], [outputs[i] for i in rest])
            for i, p in zip(rest, again, strict=True):
                proba[i] = p
        # Of the inputs, labelled rows are read for their segments and protected groups
        # only (their drift is in the rollups already).
        fair = ctx.settings.fairness
        wanted = {*ctx.settings.segments, *(fair.rules.protected if fair is not None else ())}
        for row, inst, out, p in zip(rows, inputs, outputs, proba, strict=True):
            label = (row["label"], float(row["label_ts"]))
            cols = ctx.columns_of(row, inst, out, p, label, wanted)
            w.columns.update(k for k in cols if k.startswith("label:"))
            flat.append(cols)
            pred_ts.append(float(row["ts"]))
            score = cols.get(PREDICTION_SCORE)
            truth = cols.get(LABEL_LABEL, cols.get(LABEL_VALUE))
            pred = cols.get(PREDICTION_LABEL, cols.get(PREDICTION_VALUE))
            w.label_ts.append(label[1])
            if truth is not None and pred is not None:
                w.truth.append(truth)
                w.predicted.append(pred)
                w.scores.append(score if isinstance(score, float) else None)
                w.proba.append(proba_row(cols, ctx.ref.schema) if ctx.multiclass else None)
                w.seg_of_labelled.append({f: category(cols[f]) for f in ctx.settings.segments
                                          if cols.get(f) is not None})
                w.fair = count_labelled(ctx.settings.fairness, w.fair, cols, truth, pred,
                                        label[0])
        # Coverage reads the labelled predictions' times; the others only count.
        others = w.rows - len(rows)
        w.pred_ts = cast(list[float], np.concatenate([np.asarray(pred_ts, dtype=np.float64),
                                                      np.full(others, w.start)]))
        w.label_ts = w.label_ts + [None] * others
        if not label_names or w.profile is None:
            return
        w.profile = _with_labels(ctx, w.profile, flat, label_names)
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in flat:  # one pass: each labelled row into its segments
            for f in ctx.settings.segments:
                if (v := r.get(f)) is not None:
                    groups.setdefault((f, category(v)), []).append(r)
        for key, acc in w.segments.items():
            acc[0] = _with_labels(ctx, acc[0], groups.get(key, []), label_names)


def _in_thread(fn: Callable[..., _T], *args: Any, **kwargs: Any) -> cf.Future[_T]:
    """``fn(*args, **kwargs)`` started on a thread of its own."""
    pool = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="keel-monitor-read")
    try:
        return pool.submit(fn, *args, **kwargs)
    finally:
        pool.shutdown(wait=False)  # the thread ends when its one task does


def _only(profile: TableProfile, names: set[str]) -> TableProfile:
    return TableProfile(profile.rows, {n: c for n, c in profile.columns.items()
                                       if n in names})


def _with_labels(ctx: WindowContext, profile: TableProfile, labelled: list[dict[str, Any]],
                 names: list[str]) -> TableProfile:
    """``profile`` (of ``profile.rows`` predictions) with its label columns: the labelled
    rows' values, every other prediction a null -- what profiling all rows would count."""

    from keelwork.core.monitors.columns import profile_rows

    ref = TableProfile(ctx.profile.rows, {n: ctx.profile.columns[n] for n in names})
    part = profile_rows(labelled, ctx.kinds, ref, names)
    missing = profile.rows - len(labelled)
    cols = dict(profile.columns)
    for n, c in part.columns.items():
        cols[n] = replace(c, rows=c.rows + missing, nulls=c.nulls + missing)
    return TableProfile(profile.rows, cols)


__all__ = ["BUCKET_SECONDS", "RollupPlan", "bucket_of", "fold", "layout_of", "servable"]

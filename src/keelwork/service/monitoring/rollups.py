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

A closed window (its end not after the run's ``now``) whose buckets were all covered also
stores its sum of rollups as a *span*, with a digest of the bucket counts it was summed
for; a later run whose counts give the same digest reads that one span instead of the
window's bucket rollups (288 for a day), and reads no bucket rollup at all when every
window is served so.

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
import hashlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar, cast

from sqlalchemy import Engine

from keelwork.core.monitors.profile import ProfileError, TableProfile
from keelwork.core.monitors.rollup import (
    Rollup,
    combine,
    id_key,
    layout_fingerprint,
    rollup_from_bytes,
)
from keelwork.core.monitors.windows import WindowSpec
from keelwork.errors import StoreError
from keelwork.service.monitoring.labelled import add_labelled
from keelwork.service.monitoring.window import MonitorSettings, Window, WindowContext

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


@dataclass(frozen=True)
class ReadAhead:
    """The labelled predictions of ``model`` in ``[lo, hi)``, being read on a thread since
    before the run began (see :func:`read_ahead`)."""

    model: str
    lo: float
    hi: float
    future: cf.Future[list[dict[str, Any]]]

    def wait(self) -> None:
        """Wait for the read (its connection returns to the pool before the engine goes)."""
        cf.wait([self.future])


def read_ahead(engine: Engine, model: str, spec: WindowSpec, since: float,
               until: float) -> ReadAhead | None:
    """Start reading the labelled predictions a rollup run of ``spec`` windows over
    ``[since, until)`` will fold, while the caller still loads the reference and the
    registry; None when such a run would not use rollups."""
    from keelwork.adapters.stores.profile_rollups import RollupStore

    if spec.seconds is None or spec.seconds % BUCKET_SECONDS or until <= since:
        return None
    bounds = spec.time_windows(since, until)
    lo, hi = bounds[0][0], bounds[-1][1]
    return ReadAhead(model, lo, hi, _in_thread(RollupStore(engine).labelled_rows, model, lo,
                                               hi, predictions_hint="count"))


class RollupPlan:
    """The rollups and log counts of one run's range, and the windows they serve.

    Args:
        engine: The store.
        ctx: The run's context (its reference, settings and rescorer).
        lo: Start of the range (the first window's start).
        hi: End of the range (the last window's end).
        ahead: The range's labelled predictions, already being read (used when it is the
            same model and range).
    """

    def __init__(self, engine: Engine, ctx: WindowContext, lo: float, hi: float,
                 ahead: ReadAhead | None = None) -> None:
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
        self._stored: dict[tuple[int, int], tuple[str, int, bytes]] | None = None
        self.selection = -1 if only is None else only
        self.spans: dict[tuple[int, int], tuple[str, str, bytes]] = {}
        self.from_spans = 0  # windows served by a stored span
        self.usable = self.reader.has_log()
        if self.usable:
            try:
                self.store.ensure_schema()
            except StoreError as exc:  # e.g. a read-only store: every window read in full
                log.warning("monitoring rollups unavailable: %s", exc)
                self.usable = False
        self._prefetched: cf.Future[list[dict[str, Any]]] | None = None
        if self.usable:
            # The labelled predictions and the spans are read on threads while this one
            # counts the log and reads and combines the rollups (the database works with the
            # GIL released).
            self._prefetched = (ahead.future if ahead is not None
                                and (ahead.model, ahead.lo, ahead.hi) == (ctx.ref.model, lo, hi)
                                else _in_thread(self.store.labelled_rows, ctx.ref.model, lo,
                                                hi, predictions_hint="count"))
            spans = _in_thread(self.store.read_spans, ctx.ref.model, self.selection, lo, hi)
            try:
                buckets = range(int(lo), int(hi), BUCKET_SECONDS)
                self.counts = self.store.log_counts(ctx.ref.model, buckets, BUCKET_SECONDS)
            except BaseException:
                cf.wait([spans])
                self.close()
                raise
            try:
                self.spans = spans.result()
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
        read = 0
        counts = self._counts_digest(start, end)
        total = self._span(start, end, counts)
        if total is None:
            parts: list[Rollup] = []
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
            if not read and end <= self.ctx.now:
                self._keep_span(start, end, counts, total)
        elif self.ctx.rescore is not None and total.unscored:
            return None  # (as above: its buckets' rollups lack scores)
        w = self._window(start, end, total)
        add_labelled(self.ctx, w, self._labelled(start, end), total)
        entry = self.ctx.finish(w)
        entry["computed_from"] = "rollups+log" if read else "rollups"
        return w, entry

    def _counts_digest(self, start: float, end: float) -> str:
        """A digest of the log's count in each bucket of ``[start, end)``."""
        h = hashlib.sha256()
        for b in range(int(start), int(end), BUCKET_SECONDS):
            if n := self.counts.get(b, 0):
                h.update(b"%d:%d;" % (b, n))
        return h.hexdigest()

    def _span(self, start: float, end: float, counts: str) -> Rollup | None:
        """The window's stored span, when it was summed from rollups that covered these
        very bucket counts, for this run's layout."""
        got = self.spans.get((int(start), int(end)))
        if got is None or got[0] != self.layout or got[1] != counts:
            return None
        try:
            total = rollup_from_bytes(got[2], self.ctx.ref.profile.columns)
        except ProfileError as exc:  # a cache: read the buckets instead
            log.warning("a stored rollup span of %s is unreadable: %s", self.ctx.ref.model,
                        exc)
            return None
        self.from_spans += 1
        return total

    def _keep_span(self, start: float, end: float, counts: str, total: Rollup) -> None:
        """Store a closed window's sum of covering rollups, for the runs that follow."""
        try:
            self.store.write_span(self.ctx.ref.model, self.selection, int(start), int(end),
                                  counts, total)
        except StoreError as exc:  # a cache: the run goes on without storing it
            log.warning("storing a rollup span of %s failed: %s", self.ctx.ref.model, exc)

    @property
    def stored(self) -> dict[tuple[int, int], tuple[str, int, bytes]]:
        """The range's bucket rollups, read when a window first needs them (a window
        served by its span never does)."""
        if self._stored is None:
            self._stored = self.store.read(self.ctx.ref.model, self.lo, self.hi,
                                           BUCKET_SECONDS)
        return self._stored

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


__all__ = ["BUCKET_SECONDS", "ReadAhead", "RollupPlan", "bucket_of", "fold", "layout_of",
           "read_ahead", "servable"]

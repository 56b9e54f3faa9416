"""``keel monitor run``: the prediction log, window by window, against the stored reference.

The log of one model over ``[since, until)`` is read in batches
(:meth:`PredictionReader.iter_row_batches`, constant memory) in ``(ts, id)`` order; each batch is
flattened into columns (:mod:`keelwork.core.monitors.windows`), its labels joined from the
``labels`` table, and profiled against the reference's layout. Window profiles are *merged*
batch by batch, so no window keeps its rows; only what quality needs is kept per window (the
labelled rows' truth/prediction/score, every prediction's time and score), plus a bounded sample
of each free-text column. A window is finished as soon as the log moves past it.

Per window: drift of every reference column (inputs, predictions, ground truth; free text by
descriptor drift), the same per segment value (``monitoring.segments``; a value is compared only
when the window holds at least ``monitoring.min_segment_rows`` of its predictions, and at most
:data:`MAX_SEGMENT_VALUES` values per field, the most frequent, so a high-cardinality field
cannot explode the report), realised quality with label coverage and delay, and CBPE's estimate
when the reference has one. Each window is stored (``monitor_results``, replacing an earlier
computation of it) and returned in the report shape the renderers read.

Only predictions the model answered are monitored (status ``ok`` or ``fallback``); refused and
failed ones are counted in the window's ``skipped``.

Scores: the gateway logs what ``predict`` returned (a class label for a scikit-learn
classifier), not probabilities. When the reference holds ``prediction:score`` and the logged
outputs do not, the window's logged inputs are scored again with the registered model
(``rescore``), which is what prediction-score drift and CBPE need.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from keelwork.adapters.stores.explanation_store import window_explanations
from keelwork.adapters.stores.monitor_store import MonitorStore
from keelwork.core.explain.attribution import mean_abs, reliance_drift
from keelwork.core.monitors.reference import MonitorReference
from keelwork.core.monitors.report import MONITOR_REPORT_KIND as REPORT_KIND
from keelwork.core.monitors.report import MONITOR_REPORT_VERSION as REPORT_VERSION
from keelwork.core.monitors.report import MonitorReport
from keelwork.core.monitors.windows import (
    WindowSpec,
    parse_window,
)
from keelwork.errors import MonitorError
from keelwork.service.monitoring.rollups import ReadAhead, RollupPlan, servable
from keelwork.service.monitoring.window import (
    MAX_SEGMENT_VALUES,
    TEXT_SAMPLE,
    MonitorSettings,
    Rescorer,
    Window,
    WindowContext,
    iso,
)

log = logging.getLogger("keelwork.monitor")


def run_monitor(engine: Engine, reference: MonitorReference, window: str, *,
                since: float, until: float, settings: MonitorSettings | None = None,
                reference_row: Any = None, rescore: Rescorer | None = None,
                store: bool = True, now: float | None = None, batch_size: int = 2000,
                on_window: Callable[[dict[str, Any]], None] | None = None,
                rollups: bool = True, ahead: ReadAhead | None = None) -> MonitorReport:
    """Monitor ``reference.model`` over ``[since, until)`` in windows of ``window``.

    Args:
        engine: The store holding the prediction log (and labels, and the results).
        reference: The model's stored reference.
        window: A window spec (``1h``, ``15m``, ``1d``, ``1000p``).
        since: Start (unix seconds); time windows extend to whole windows around it.
        until: End (unix seconds, exclusive).
        settings: From keel.yaml's ``monitoring`` (defaults when omitted).
        reference_row: The stored reference row (for its ``created_at``), if at hand.
        rescore: Scores logged inputs again when the log has no scores (see the module
            docstring); None: no rescoring.
        store: Write each window to ``monitor_results``.
        now: The present, for label coverage (default: the clock).
        batch_size: Log rows per query.
        on_window: Called with each finished window's entry (progress bars).
        rollups: Serve windows from the server's rollups where they cover them exactly
            (:mod:`.rollups`); False: read every window from the log. Each entry's
            ``computed_from`` says which was done (the results are equal).
        ahead: The labelled predictions a rollup run reads, already being read
            (:func:`~.rollups.read_ahead`); the caller waits for it before disposing of
            ``engine``.

    Returns:
        The report (:class:`~keelwork.core.monitors.report.MonitorReport`: ``model``,
        ``window``, ``generated_at``, ``reference`` and ``windows``; ``to_dict()`` is its JSON).

    Raises:
        MonitorError: the window spec is invalid or ``until <= since``.
        StoreError: the store failed.
    """
    spec = parse_window(window)
    if until <= since:
        raise MonitorError(f"A monitoring run needs since < until; got since "
                           f"{iso(since)} and until {iso(until)}.")
    settings = settings or MonitorSettings()
    now = time.time() if now is None else now
    results = MonitorStore(engine)
    if store:
        results.ensure_schema()
    ctx = WindowContext(reference, settings, spec, rescore, now)
    out: list[dict[str, Any]] = []

    def finish(w: Window, entry: dict[str, Any] | None = None) -> None:
        if entry is None:
            entry = ctx.finish(w)
            entry["computed_from"] = "log"
        # The global view of POST :explain's stored explanations (none stored: no key).
        explained = window_explanations(engine, reference.model, w.start, w.end)
        if explained:
            view = entry["attributions"] = mean_abs(explained)
            baseline = reference.reliance
            view["reference"] = None if baseline is None else {
                **reliance_drift(baseline.get("mean_abs") or {}, view["mean_abs"]),
                "explained": baseline.get("explained"), "mean_abs": baseline.get("mean_abs")}
        out.append(entry)
        if store:
            version = max(w.versions) if w.versions else reference.model_version
            results.put_window(reference.model, spec.text, w.start, w.end, version, w.rows,
                               entry)
        if on_window is not None:
            on_window(entry)

    plan = None
    if rollups and servable(ctx, spec):
        bounds = spec.time_windows(since, until)
        plan = RollupPlan(engine, ctx, bounds[0][0], bounds[-1][1], ahead)
    if plan is None or not plan.usable:
        for w in _windows(engine, ctx, spec, since, until, batch_size):
            finish(w)
    else:
        try:
            for start, end in bounds:
                got = plan.entry(start, end)
                if got is not None:
                    finish(*got)
                    continue
                for w in _windows(engine, ctx, spec, start, end, batch_size):
                    finish(w)
        finally:
            plan.close()
    created = getattr(reference_row, "created_at", None) or reference.created_at
    return MonitorReport(model=reference.model, model_version=settings.version,
                         window=spec.text, generated_at=datetime.now(UTC).isoformat(),
                         reference={"id": getattr(reference_row, "id", None),
                                    "model_version": reference.model_version,
                                    "rows": reference.rows, "source": reference.source,
                                    "created_at": created.isoformat(), "note": reference.note},
                         windows=tuple(out))


# --------------------------------------------------------------------------- reading
def _windows(engine: Engine, ctx: WindowContext, spec: WindowSpec, since: float, until: float,
             batch_size: int) -> Iterator[Window]:
    """Finished windows in order: every time window of the range, even empty ones."""
    from keelwork.adapters.stores.prediction_store import PredictionReader

    reader = PredictionReader(engine)
    bounds = spec.time_windows(since, until) if spec.is_time else []
    if spec.is_time:
        # Whole windows: read from the first window's start to the last one's end.
        lo, hi = bounds[0][0], bounds[-1][1]
    else:
        lo, hi = since, until
    pending = iter(bounds)
    current: Window | None = None
    count = 0
    has_log = reader.has_log()
    batches = (reader.iter_row_batches(lo, hi, model=ctx.ref.model, batch_size=batch_size)
               if has_log else iter(()))
    labels_of = _label_reader(engine)
    for rows in batches:
        labels = labels_of([r["id"] for r in rows])
        order: list[Window] = []
        rows_of: dict[int, list[dict[str, Any]]] = {}

        if current is not None:
            _touch(current, order, rows_of)
        for row in rows:
            ts = float(row["ts"])
            if spec.is_time:
                while current is None or ts >= current.end:
                    start, end = next(pending)
                    current = Window(start, end)
                    _touch(current, order, rows_of)
            else:
                assert spec.count is not None
                if current is None or count == spec.count:
                    if current is not None:
                        current.end = ts
                    current = Window(ts, ts)
                    _touch(current, order, rows_of)
                    count = 0
                count += 1
                current.last_ts = ts
            rows_of[id(current)].append(row)
        for w in order:
            if rows_of[id(w)]:
                ctx.add(w, rows_of[id(w)], labels)
        # Every window but the current one is complete: the log is in time order.
        yield from (w for w in order if w is not current)
    if current is not None:
        if not spec.is_time:
            current.end = current.last_ts + 1e-6
        yield current
    for start, end in pending:
        yield Window(start, end)


def _touch(w: Window, order: list[Window], rows_of: dict[int, list[dict[str, Any]]]) -> None:
    if id(w) not in rows_of:
        rows_of[id(w)] = []
        order.append(w)


def _label_reader(engine: Engine) -> Callable[[list[str]], dict[str, tuple[Any, float]]]:
    """Labels (value, ts) by prediction id; an empty reader when no label was ever stored."""
    from keelwork.adapters.stores.label_store import LabelStore

    store = LabelStore(engine)
    try:
        present = store.has_labels()
    except Exception:  # the log read reports a broken store, with its words
        present = False
    if not present:
        return lambda ids: {}
    return store.label_values


__all__ = [
    "MAX_SEGMENT_VALUES",
    "REPORT_KIND",
    "REPORT_VERSION",
    "TEXT_SAMPLE",
    "MonitorSettings",
    "Rescorer",
    "run_monitor",
]

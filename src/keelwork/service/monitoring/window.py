"""One monitoring window: what a run accumulates batch by batch, and the entry it becomes.

:class:`WindowContext` holds a run's reference and settings; :meth:`WindowContext.add` folds a
batch of logged predictions into a :class:`Window` (merged profiles, the labelled rows' truth
and scores, a text sample), and :meth:`WindowContext.finish` turns the window into its stored
entry: drift (a :class:`~keelwork.core.monitors.report.DriftReport`, free text appended), the
same per segment value, realised quality with label coverage, and CBPE's estimate. The run
itself (reading the log in windows, storing each entry) is :mod:`.runner`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from keelwork.core.fairness import GroupTally
from keelwork.core.monitors.columns import columns_table
from keelwork.core.monitors.drift import drift_report
from keelwork.core.monitors.profile import TableProfile, profile_table
from keelwork.core.monitors.reference import MonitorReference
from keelwork.core.monitors.report import ColumnDrift, DriftReport
from keelwork.core.monitors.rollup import canonical_scores, carried, empty_profile
from keelwork.core.monitors.windows import (
    LABEL_LABEL,
    LABEL_VALUE,
    PREDICTION_SCORE,
    PROBA_PREFIX,
    WindowSpec,
    category,
    flatten_instance,
    flatten_label,
    flatten_output,
    labelled_pair,
    parse_duration,
    proba_columns,
    proba_row,
)
from keelwork.errors import MonitorError
from keelwork.service.monitoring import fairness as fair_mod
from keelwork.spec.model import MonitoringSection

#: Segment values compared per field and window (the most frequent ones).
MAX_SEGMENT_VALUES = 50
#: Texts per free-text column and window kept for text drift (a uniform sample).
TEXT_SAMPLE = 2000
#: Record fields (not inputs) that may name a segment.
RECORD_SEGMENTS = ("tenant", "version")
ANSWERED = ("ok", "fallback")
#: keel.yaml's method names -> :mod:`keelwork.core.monitors.drift`'s.
_METHOD_NAMES = {"jensen_shannon": "js", "chi2": "chisquare"}


@dataclass(frozen=True, slots=True)
class MonitorSettings:
    """What a run needs from keel.yaml's ``monitoring`` section."""

    segments: tuple[str, ...] = ()
    min_segment_rows: int = 30
    expected_delay_s: float = 86400.0
    methods: Mapping[str, str] = field(default_factory=dict)
    features: tuple[str, ...] | None = None
    #: ``monitoring.drift.threshold``: the minimum effect size for every column (None: each
    #: method's own floor).
    floor: float | None = None
    #: Only this model version's predictions (None: every version).
    version: int | None = None
    fairness: fair_mod.FairnessSettings | None = None  # keel.yaml's (None: not measured)

    @classmethod
    def from_spec(cls, mon: MonitoringSection, version: int | None = None) -> MonitorSettings:
        """Read keel.yaml's ``monitoring`` section (``version``: see the attribute)."""
        d = mon.drift
        return cls(segments=tuple(mon.segments), min_segment_rows=mon.min_segment_rows,
                   expected_delay_s=parse_duration(mon.labels.expected_delay),
                   methods={"numeric": _METHOD_NAMES.get(d.numeric_method, d.numeric_method),
                            "categorical": _METHOD_NAMES.get(d.categorical_method,
                                                             d.categorical_method)},
                   features=tuple(d.features) if d.features is not None else None,
                   floor=d.threshold, version=version)


@dataclass(slots=True)
class Window:
    start: float
    end: float
    rows: int = 0
    skipped: int = 0
    profile: TableProfile | None = None
    segments: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    pred_ts: list[float] = field(default_factory=list)
    label_ts: list[float | None] = field(default_factory=list)
    truth: list[Any] = field(default_factory=list)
    predicted: list[Any] = field(default_factory=list)
    scores: list[float | None] = field(default_factory=list)
    all_scores: list[float] = field(default_factory=list)
    #: Multi-class: the probability row of every prediction / of the labelled ones.
    all_proba: list[list[float]] = field(default_factory=list)
    proba: list[list[float] | None] = field(default_factory=list)
    seg_of_labelled: list[dict[str, str]] = field(default_factory=list)
    texts: dict[str, list[str]] = field(default_factory=dict)
    seen_texts: dict[str, int] = field(default_factory=dict)
    versions: set[int] = field(default_factory=set)
    #: Every flattened column the window's predictions carried (for ``added`` columns).
    columns: set[str] = field(default_factory=set)
    last_ts: float = 0.0
    notes: list[str] = field(default_factory=list)
    fair: GroupTally | None = None  # labelled answers per protected group
    #: With ``WindowContext.keep_rescored``: (prediction id, probabilities) of rows scored again.
    rescored: list[tuple[str, list[float]]] = field(default_factory=list)


#: Scores a batch of logged inputs again: returns one probability row per instance, or None.
Rescorer = Callable[[list[Any]], list[Any] | None]


# --------------------------------------------------------------------------- computing
class WindowContext:
    """The reference and settings of one run, and the per-window computations."""

    def __init__(self, ref: MonitorReference, settings: MonitorSettings, spec: WindowSpec,
                 rescore: Rescorer | None, now: float) -> None:
        self.ref = ref
        self.settings = settings
        self.spec = spec
        self.now = now
        self.profile = _selected(ref.profile, settings.features, ref.input_columns)
        self.kinds = {n: c.kind for n, c in self.profile.columns.items()}
        self.names = list(self.kinds)
        # Absent for reasons that are not a schema change: ground truth until labels arrive,
        # scores when the log holds labels only and nothing rescored them.
        self.missing_ok = frozenset(n for n in self.names if n.startswith("label:")
                                    or n.startswith("prediction:score"))
        # Multi-class CBPE (and multi-class ROC AUC) read every class's probability.
        self.multiclass = bool(ref.schema.classes) and len(ref.schema.classes or ()) > 2
        wants_score = PREDICTION_SCORE in ref.profile.columns or (
            self.multiclass and ref.cbpe is not None)
        self.rescore = rescore if wants_score else None
        self.keep_rescored = False  # Window.rescored: for rollups (see .rollups.fold)
        self.rng = random.Random(20240601)
        self.text_refs: dict[str, Any] = {}
        if ref.text:
            from keelwork.core.monitors.text import TextReference

            self.text_refs = {c: TextReference.from_dict(d) for c, d in ref.text.items()}

    # -- per batch
    def add(self, w: Window, rows: list[dict[str, Any]],
            labels: Mapping[str, tuple[Any, float]]) -> None:
        schema = self.ref.schema
        flat: list[dict[str, Any]] = []
        only = self.settings.version
        if only is not None:
            rows = [r for r in rows if int(r["version"]) == only]
        answered = [r for r in rows if r.get("status") in ANSWERED]
        w.skipped += len(rows) - len(answered)
        inputs = [load_json(r.get("inputs")) for r in answered]
        outputs = [load_json(r.get("outputs")) for r in answered]
        proba = self.rescored(w, inputs, outputs)
        if self.keep_rescored:
            w.rescored.extend((r["id"], p) for r, p in zip(answered, proba, strict=True)
                              if p is not None)
        for row, inst, out, p in zip(answered, inputs, outputs, proba, strict=True):
            label = labels.get(row["id"])
            cols = self.columns_of(row, inst, out, p, label)
            row_p = proba_row(cols, schema) if self.multiclass else None
            flat.append(cols)
            ts = float(row["ts"])
            w.pred_ts.append(ts)
            w.versions.add(int(row["version"]))
            score = cols.get(PREDICTION_SCORE)
            if isinstance(score, float):
                w.all_scores.append(score)
            if row_p is not None:
                w.all_proba.append(row_p)
            pair = labelled_pair(cols, schema) if label is not None else None
            if label is not None and pair is not None:
                truth, pred = pair
                w.label_ts.append(label[1])
                w.truth.append(truth)
                w.predicted.append(pred)
                w.scores.append(score if isinstance(score, float) else None)
                w.proba.append(row_p)
                w.seg_of_labelled.append(self._segment_values(cols))
                w.fair = fair_mod.count_labelled(self.settings.fairness, w.fair, cols, truth,
                                                 pred, label[0])
            else:
                w.label_ts.append(label[1] if label is not None else None)
        if not flat:
            return
        for cols in flat:
            w.columns.update(cols)
        w.rows += len(flat)
        part = self._profile(flat)
        w.profile = part if w.profile is None else w.profile.merge(part)
        self._add_segments(w, flat)
        self._sample_texts(w, flat)

    def columns_of(self, row: Mapping[str, Any], inst: Any, out: Any, p: Any,
                   label: tuple[Any, float] | None,
                   inputs: Collection[str] | None = None) -> dict[str, Any]:
        """One logged prediction's flattened columns: inputs (``inputs``: only these), outputs
        (``p``: probabilities scored again, or None), its label, and the record fields that
        name a segment."""
        schema = self.ref.schema
        cols = flatten_instance(inst, schema, inputs)
        cols.update(flatten_output(out, schema))
        if p is not None and PREDICTION_SCORE not in cols:
            cols.update(proba_columns(p, schema))
        if label is not None:
            cols.update(flatten_label(label[0], schema))
        for f in RECORD_SEGMENTS:
            if f in self.settings.segments and f not in cols and row.get(f) is not None:
                cols[f] = row[f]
        return cols

    def rescored(self, w: Window, inputs: list[Any], outputs: list[Any]) -> list[Any]:
        """Per instance, its probabilities scored again by the rescorer, or None (the output
        carries scores, there is no rescorer, or scoring failed: ``w.notes`` says so)."""
        none: list[Any] = [None] * len(inputs)
        if self.rescore is None or not inputs:
            return none
        key = PREDICTION_SCORE if not self.multiclass else (
            PROBA_PREFIX + (self.ref.schema.classes or ("",))[0])
        if all(key in flatten_output(o, self.ref.schema) for o in outputs):
            return none
        usable = [i for i, x in enumerate(inputs) if x is not None]
        try:
            got = self.rescore([inputs[i] for i in usable]) if usable else []
        except Exception as exc:  # the window goes on without these scores, and says so
            note = (f"Scoring logged inputs again failed ({type(exc).__name__}: {exc}); "
                    f"prediction:score and CBPE miss those predictions.")
            if note not in w.notes:
                w.notes.append(note)
            return none
        if got is None:
            self.rescore = None
            return none
        out = list(none)
        for i, p in zip(usable, got, strict=True):
            out[i] = p
        return out

    def _profile(self, flat: Sequence[Mapping[str, Any]]) -> TableProfile:
        # Every reference column, absent values null: a column's counts then do not depend
        # on how the log was cut into batches (or buckets); :meth:`finish` drops the columns
        # no prediction of the window carried (those read ``missing``).
        return profile_table(columns_table(flat, self.kinds, self.names),
                             reference=self.profile)

    def _segment_values(self, cols: Mapping[str, Any]) -> dict[str, str]:
        return {f: category(cols[f]) for f in self.settings.segments
                if cols.get(f) is not None}

    def _add_segments(self, w: Window, flat: list[dict[str, Any]]) -> None:
        for f in self.settings.segments:
            groups: dict[str, list[dict[str, Any]]] = {}
            for r in flat:
                v = r.get(f)
                if v is not None:
                    groups.setdefault(category(v), []).append(r)
            for value, rows in groups.items():
                key = (f, value)
                part = self._profile(rows)
                acc = w.segments.get(key)
                if acc is None:
                    w.segments[key] = [part, len(rows)]
                else:
                    acc[0] = acc[0].merge(part)
                    acc[1] += len(rows)

    def _sample_texts(self, w: Window, flat: list[dict[str, Any]]) -> None:
        for c in self.text_refs:
            sample = w.texts.setdefault(c, [])
            for r in flat:
                t = r.get(c)
                if not isinstance(t, str):
                    continue
                seen = w.seen_texts.get(c, 0) + 1
                w.seen_texts[c] = seen
                if len(sample) < TEXT_SAMPLE:
                    sample.append(t)
                else:  # reservoir sampling: every text of the window equally likely kept
                    j = self.rng.randrange(seen)
                    if j < TEXT_SAMPLE:
                        sample[j] = t

    # -- per window
    def finish(self, w: Window) -> dict[str, Any]:
        profile = (carried(w.profile, w.columns) if w.profile is not None
                   else empty_profile(self.profile))
        missing_ok = self.missing_ok
        if w.rows and not any(not c.startswith(("prediction:", "label:")) for c in w.columns):
            # No inputs logged at all (storage.log_inputs: false): nothing to compare, not
            # a schema change.
            missing_ok = missing_ok | set(self.ref.input_columns)
            w.notes.append("No inputs were logged (storage.log_inputs: false?): input drift "
                           "is not computed.")
        drift = drift_report(self.profile, profile, methods=self.settings.methods,
                             floor=self.settings.floor, missing_ok=missing_ok,
                             added=self._added(w))
        drift = self._text_drift(w, drift)
        segments, skipped = [], []
        counts: dict[str, list[tuple[str, int]]] = {}
        for (f, v), (_, n) in w.segments.items():
            counts.setdefault(f, []).append((v, n))
        for f, values in counts.items():
            ranked = sorted(values, key=lambda vn: (-vn[1], vn[0]))
            for i, (v, n) in enumerate(ranked):
                if n < self.settings.min_segment_rows or i >= MAX_SEGMENT_VALUES:
                    skipped.append({"field": f, "value": v, "predictions": n})
                    continue
                base, note = self._segment_reference(f, v)
                rep = drift_report(base, carried(w.segments[(f, v)][0], w.columns),
                                   methods=self.settings.methods,
                                   floor=self.settings.floor, missing_ok=self.missing_ok)
                segments.append({"field": f, "value": v, "predictions": n,
                                 "reference_rows": base.rows, "note": note,
                                 "summary": rep.summary.to_dict(),
                                 "columns": [c.as_dict() for c in rep.columns],
                                 "quality": self._segment_quality(w, f, v)})
        status, notes = _status(w, drift)
        estimated, reason = self._estimated(w)
        if estimated is not None and reason is not None:
            estimated["notes"] = [*estimated.get("notes", []), reason]
            reason = None
        entry: dict[str, Any] = {
            "start": iso(w.start), "end": iso(w.end), "predictions": w.rows,
            "status": status, "notes": notes + w.notes, "skipped": w.skipped,
            "drift": drift.to_dict(), "segments": segments,
            "segments_skipped": skipped[:100],
            "quality": {"realised": self._realised(w), "estimated": estimated,
                        "estimated_reason": reason},
        }
        return entry | fair_mod.window_entry(self.settings.fairness, w.fair)

    def _added(self, w: Window) -> list[str]:
        """Input columns the window's predictions carried that the reference does not have."""
        known = set(self.ref.profile.columns) | set(self.text_refs)
        return sorted(c for c in w.columns if c not in known and not c.startswith(
            ("prediction:", "label:")) and c not in RECORD_SEGMENTS)

    def _segment_reference(self, f: str, v: str) -> tuple[TableProfile, str | None]:
        """The reference's slice for segment ``f = v`` (without ``f``, constant in it)."""
        sliced = self.ref.segments.get(f, {}).get(v)
        note = None
        if sliced is None:
            sliced = self.profile
            note = (f"The reference holds no {f} = {v!r}; compared with the whole reference." if
                    f in self.ref.segments else f"The reference has no {f!r} field; compared "
                    f"with the whole reference.")
        cols = {n: c for n, c in sliced.columns.items() if n in self.profile.columns and n != f}
        return TableProfile(sliced.rows, cols), note

    def _text_drift(self, w: Window, drift: DriftReport) -> DriftReport:
        """``drift`` with each free-text column's descriptor (and embedding) verdicts."""
        if not self.text_refs:
            return drift
        from keelwork.core.monitors.text import text_drift

        verdicts: list[ColumnDrift] = []
        for c, ref in self.text_refs.items():
            try:
                verdicts.extend(text_drift(ref, w.texts.get(c, [])))
            except MonitorError as exc:
                drift = drift.with_note(f"text drift of {c!r}: {exc}")
        return drift.with_columns(verdicts)

    def _realised(self, w: Window) -> dict[str, Any] | None:
        if w.rows == 0:
            return None
        from keelwork.core.monitors.quality import label_coverage

        coverage = label_coverage(w.pred_ts, w.label_ts, window_end=w.end,
                                  expected_delay_s=self.settings.expected_delay_s, now=self.now)
        metrics = self._metrics(w.truth, w.predicted, w.scores, w.proba)
        notes = [*metrics.pop("notes", []), *coverage.pop("notes", [])]
        # ``labelled``: predictions whose label was read as ground truth (coverage's count
        # includes labels that could not be, e.g. text for a regressor).
        return {**metrics, **coverage, "labelled": len(w.truth), "notes": notes}

    def _metrics(self, truth: list[Any], predicted: list[Any], scores: list[float | None],
                 proba: Sequence[list[float] | None] = ()) -> dict[str, Any]:
        from keelwork.core.monitors.quality import (
            classification_metrics,
            multioutput_regression_metrics,
            regression_metrics,
        )

        if self.ref.schema.outputs and self.ref.schema.task == "regression":
            return multioutput_regression_metrics(truth, predicted, self.ref.schema.outputs)
        if self.ref.schema.task == "regression":
            return dict(regression_metrics(truth, predicted))
        positive = self.ref.schema.binary_positive
        usable = positive is not None and all(s is not None for s in scores)
        rows = [p for p in proba if p is not None]
        with_rows = self.multiclass and truth and len(rows) == len(truth)
        return dict(classification_metrics(
            truth, predicted, scores=[float(s) for s in scores if s is not None] if usable
            else None, positive=positive, proba=rows if with_rows else None,
            proba_classes=self.ref.schema.classes if with_rows else None))

    def _segment_quality(self, w: Window, f: str, v: str) -> dict[str, Any]:
        idx = [i for i, s in enumerate(w.seg_of_labelled) if s.get(f) == v]
        return {**self._metrics([w.truth[i] for i in idx], [w.predicted[i] for i in idx],
                                [w.scores[i] for i in idx], [w.proba[i] for i in idx]),
                "labelled": len(idx)}

    def _estimated(self, w: Window) -> tuple[dict[str, Any] | None, str | None]:
        """CBPE's estimate of the window, or None and why not."""
        if self.ref.cbpe is None:
            return None, (f"no performance estimate: {self.ref.cbpe_reason}"
                          if self.ref.cbpe_reason else "no performance estimate: the "
                          "reference holds no CBPE reference (build it again with 'keel "
                          "monitor reference').")
        if w.rows == 0:
            return None, "no performance estimate: no predictions in this window."
        from keelwork.core.monitors.cbpe_multiclass import cbpe_from_dict, estimate

        scores: list[Any] = w.all_proba if self.multiclass else w.all_scores
        if len(scores) == 0:
            return None, ("no performance estimate: none of this window's predictions has "
                          "the model's probabilities (the log holds labels only, and they "
                          "were not scored again: --no-rescore, or the model could not be "
                          "loaded).")
        est = estimate(cbpe_from_dict(self.ref.cbpe), canonical_scores(scores))
        note = None
        if len(scores) < w.rows:
            note = (f"estimated from the {len(scores)} of {w.rows} predictions that have "
                    f"the model's probabilities.")
        return {"method": "cbpe", **est, "predictions": len(scores)}, note


# --------------------------------------------------------------------------- helpers
def _selected(profile: TableProfile, features: Sequence[str] | None,
              inputs: Sequence[str]) -> TableProfile:
    """The reference restricted to ``monitoring.drift.features`` (predictions, labels kept)."""
    if features is None:
        return profile
    keep = set(features)
    cols = {n: c for n, c in profile.columns.items() if n in keep or n not in set(inputs)}
    return TableProfile(profile.rows, cols)


def _status(w: Window, drift: DriftReport) -> tuple[str, list[str]]:
    """A word for the window as a whole, and sentences for what is off about it."""
    notes = []
    if w.rows == 0:
        extra = f" ({w.skipped} refused or failed)" if w.skipped else ""
        return "empty", [f"No answered predictions in this window{extra}."]
    by_status: dict[str, list[str]] = {}
    for c in drift.columns:
        by_status.setdefault(c.status, []).append(c.column)
    words = {"missing": "missing from the logged data (a schema change)",
             "no_values": "all null in this window",
             "no_reference": "without values in the reference"}
    truth = [c for c in by_status.get("missing", []) if c in (LABEL_LABEL, LABEL_VALUE)]
    if truth:  # normal until labels arrive: not a problem with the logged data
        by_status["missing"] = [c for c in by_status["missing"] if c not in truth]
        notes.append(f"No ground truth in this window yet: {truth[0]} is compared once "
                     f"labels arrive.")
    for st, text in words.items():
        if by_status.get(st):
            notes.append(f"{len(by_status[st])} column(s) {text}: "
                         f"{', '.join(by_status[st][:10])}.")
    added = drift.added
    if added:
        notes.append(f"{len(added)} column(s) not in the reference (not compared): "
                     f"{', '.join(added[:10])}.")
    new = [c.column for c in drift.columns if c.details.get("new_categories")]
    if new:
        notes.append(f"Categories never seen in the reference in: {', '.join(new[:10])}.")
    if w.rows == 1:
        notes.append("A single prediction: drift is judged against the sampling noise of one "
                     "row, so only a value far outside the reference can show.")
        return "single_row", notes
    return ("drift" if drift.drifted else "ok"), notes


def load_json(text: Any) -> Any:
    if text is None or not isinstance(text, str | bytes):
        return text
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


__all__ = ["ANSWERED", "MAX_SEGMENT_VALUES", "RECORD_SEGMENTS", "TEXT_SAMPLE", "MonitorSettings",
           "Rescorer", "Window", "WindowContext", "iso", "load_json"]

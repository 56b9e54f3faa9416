"""A window's labelled predictions, folded into a window assembled from rollups.

Ground truth arrives late, so it is never rolled up: a run reads the window's labelled
predictions (one narrow query) and folds them here exactly as :meth:`WindowContext.add` and
:meth:`WindowContext.columns_of` fold them in a full read -- the label columns, the realised
quality's truth / prediction / score lists, segment and fairness counts, label coverage and
delay.

Each labelled prediction is flattened as :meth:`WindowContext.columns_of` flattens it, but
the parts that repeat are flattened once: the outputs by their logged JSON text (a classifier
that logs only its label has a handful of distinct outputs among thousands of rows) and the
labels by value. Inputs are decoded only for the fields a labelled row is read for (segments,
protected groups) or when the row must be scored again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, cast

from keelwork.core.monitors.profile import TableProfile
from keelwork.core.monitors.rollup import Rollup, id_key
from keelwork.core.monitors.windows import (
    PREDICTION_SCORE,
    PROBA_PREFIX,
    category,
    flatten_instance,
    flatten_label,
    flatten_output,
    labelled_pair,
    proba_columns,
    proba_row,
)
from keelwork.service.monitoring.fairness import count_labelled
from keelwork.service.monitoring.window import (
    ANSWERED,
    RECORD_SEGMENTS,
    Window,
    WindowContext,
    load_json,
)

_HASHABLE = (str, int, float, bool, type(None))


def add_labelled(ctx: WindowContext, w: Window, rows: Sequence[Mapping[str, Any]],
                 total: Rollup) -> None:
    """Fold the window's labelled predictions ``rows`` into ``w``, as
    :meth:`WindowContext.add` does; ``total``: the window's rollups (their kept scores of
    predictions scored again)."""
    import numpy as np

    only = ctx.settings.version
    rows = [r for r in rows if r.get("status") in ANSWERED
            and (only is None or int(r["version"]) == only)]
    label_names = [n for n in ctx.names if n.startswith("label:")]
    schema = ctx.ref.schema
    fair = ctx.settings.fairness
    # Of the inputs, labelled rows are read for their segments and protected groups only
    # (their drift is in the rollups already).
    wanted = {*ctx.settings.segments, *(fair.rules.protected if fair is not None else ())}
    record_segments = [f for f in RECORD_SEGMENTS if f in ctx.settings.segments]
    inputs: list[Any] = [None] * len(rows)
    if wanted:
        inputs = [load_json(r.get("inputs")) for r in rows]
    out_memo: dict[Any, tuple[Any, dict[str, Any]]] = {}
    outputs, out_cols = [], []
    for r in rows:
        text = r.get("outputs")
        got = out_memo.get(text) if isinstance(text, str | bytes) else None
        if got is None:
            out = load_json(text)
            got = (out, flatten_output(out, schema))
            if isinstance(text, str | bytes):
                out_memo[text] = got
        outputs.append(got[0])
        out_cols.append(got[1])
    # Realised quality reads the labelled predictions' own scores: those the log lacks come
    # from the rollups that scored them again, else are scored again here, as a full read
    # scores them (few rows: the labelled ones).
    proba: list[Any] = (total.kept_scores([id_key(r["id"]) for r in rows])
                        if len(total.kept_ids) else [None] * len(rows))
    rest = [i for i, p in enumerate(proba) if p is None]
    if rest:
        if not wanted:  # decoded for scoring only
            for i in rest:
                inputs[i] = load_json(rows[i].get("inputs"))
        again = ctx.rescored(w, [inputs[i] for i in rest], [outputs[i] for i in rest])
        for i, p in zip(rest, again, strict=True):
            proba[i] = p
    probas = _proba_columns(schema)
    label_memo: dict[tuple[type, Any], dict[str, Any]] = {}
    flat: list[dict[str, Any]] = []
    pred_ts: list[float] = []
    for row, inst, oc, p in zip(rows, inputs, out_cols, proba, strict=True):
        label = row["label"]
        label_ts = float(row["label_ts"])
        # what ctx.columns_of(row, inst, out, p, (label, label_ts), wanted) returns
        cols = flatten_instance(inst, schema, wanted) if wanted else {}
        cols.update(oc)
        if p is not None and PREDICTION_SCORE not in cols:
            cols.update(probas(p))
        if isinstance(label, _HASHABLE):
            lc = label_memo.get((type(label), label))
            if lc is None:
                lc = label_memo[(type(label), label)] = flatten_label(label, schema)
        else:
            lc = flatten_label(label, schema)
        cols.update(lc)
        for f in record_segments:
            if f not in cols and row.get(f) is not None:
                cols[f] = row[f]
        w.columns.update(k for k in cols if k[:6] == "label:")
        flat.append(cols)
        pred_ts.append(float(row["ts"]))
        score = cols.get(PREDICTION_SCORE)
        pair = labelled_pair(cols, schema)
        w.label_ts.append(label_ts)
        if pair is not None:
            truth, pred = pair
            w.truth.append(truth)
            w.predicted.append(pred)
            w.scores.append(score if isinstance(score, float) else None)
            w.proba.append(proba_row(cols, schema) if ctx.multiclass else None)
            w.seg_of_labelled.append({f: category(cols[f]) for f in ctx.settings.segments
                                      if cols.get(f) is not None})
            w.fair = count_labelled(fair, w.fair, cols, truth, pred, label)
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


def _proba_columns(schema: Any) -> Callable[[Any], dict[str, Any]]:
    """:func:`proba_columns` for ``schema``, with the common case -- a row of finite floats,
    one per class, as kept scores are -- put together directly (the same columns)."""
    classes = list(schema.classes or ())
    keys = [PROBA_PREFIX + c for c in classes]
    positive = schema.binary_positive
    score_key = None if positive is None else PROBA_PREFIX + positive

    def columns(p: Any) -> dict[str, Any]:
        if (type(p) is list and keys and len(p) == len(keys)
                and all(type(v) is float and math.isfinite(v) for v in p)):
            out: dict[str, Any] = dict(zip(keys, p, strict=True))
            if score_key is not None:
                out[PREDICTION_SCORE] = out[score_key]
            return out
        return proba_columns(p, schema)

    return columns


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


__all__ = ["add_labelled"]

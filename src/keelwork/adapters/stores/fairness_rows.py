"""The labelled answers of a rollout's versions with their inputs: what the fairness gate reads.

One query joins the prediction log (answered predictions of the versions since a time) with
their current labels, at most ``limit`` rows: the gate's counts are per group, and a bounded
sample of a step's labelled answers is what it judges (as :func:`.rollout_store.live_quality`
bounds the accuracy gate's).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from keelwork.adapters.stores.ingest_tables import labels
from keelwork.adapters.stores.prediction_store import prediction_payloads, predictions
from keelwork.adapters.stores.subject_keys import open_payloads
from keelwork.core.rollout.analysis import output_label

Row = tuple[dict[str, Any], Any, Any]


def labelled_inputs(engine: Engine, model: str, versions: Sequence[int], since: float,
                    limit: int = 50_000) -> dict[int, list[Row]]:
    """``(fields, output label, true label)`` of each labelled answer per version: ``fields``
    holds the logged inputs and, where the label is an object, its other keys (protected
    fields sent with the truth: ``fairness.label_fields``).

    Inputs that are not a JSON object (a list, a text) give no input field.
    A store without a labels table has no labels: ``{}``.
    """
    p, q = predictions, prediction_payloads
    stmt = (select(p.c.version, q.c.inputs, q.c.outputs, labels.c.label)
            .join(q, q.c.id == p.c.id)
            .join(labels, labels.c.prediction_id == p.c.id)
            .where(p.c.model == model, p.c.ts >= since, p.c.version.in_(list(versions)),
                   p.c.status.in_(["ok", "fallback"]))
            .limit(limit))
    try:
        with engine.connect() as conn:
            found = open_payloads(engine, [
                {"v": v, "inputs": i, "outputs": o, "label": lab}
                for v, i, o, lab in conn.execute(stmt).all()])
    except SQLAlchemyError:
        return {}  # no labels table yet: no data, never a failure
    out: dict[int, list[Row]] = {}
    for version, inputs, outputs, label in (tuple(r.values()) for r in found):
        if outputs == "null":  # erased (its subject's key is gone): nothing to judge
            continue
        try:
            inst = json.loads(inputs) if inputs else {}
            truth = json.loads(label)
            fields = dict(inst) if isinstance(inst, dict) else {}
            if isinstance(truth, dict):  # protected fields sent with the label
                fields.update((k, v) for k, v in truth.items() if k not in fields)
            row = (fields, output_label(json.loads(outputs)), output_label(truth))
        except (TypeError, ValueError):
            continue
        out.setdefault(int(version), []).append(row)
    return out


__all__ = ["labelled_inputs"]

"""Per-field accuracy of a model whose answers are records of fields (an extraction model),
from the labels that reached its predictions (``keel monitor fields``).

Reads the model's answered predictions of a time range and their current labels, and scores
every labelled field of every answer (:mod:`keelwork.core.monitors.fields`: one verdict per
field, values compared after normalisation). A model with two or more contract outputs that
answers a list is read as the record of those outputs in contract order (its labels likewise;
a scalar label is the first output's). Predictions whose answer or label is not an
object are counted apart (``not_records``): their quality is the classification or
regression quality of ``keel monitor run``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.label_store import LabelStore
from keelwork.adapters.stores.prediction_store import PredictionReader
from keelwork.core.monitors.fields import FieldTally
from keelwork.core.monitors.windows import OutputSchema
from keelwork.spec.model import ResolvedSpec

#: Predictions read per query (and labels looked up per batch).
BATCH = 1_000


def field_accuracy(resolved: ResolvedSpec, model: str, *, since: float | None = None,
                   until: float | None = None, version: int | None = None) -> dict[str, Any]:
    """Per-field accuracy of ``model``'s answers between ``since`` and ``until``.

    Args:
        resolved: The project's keel.yaml.
        model: The model.
        since, until: The time range (epoch seconds; None: unbounded).
        version: Only this version's answers (None: all).

    Returns:
        ``{model, version, predictions, labelled, not_records, fields: {name: {labelled,
        right, accuracy}}, overall: {labelled, right, accuracy}}``.

    Raises:
        StoreError: the store failed.
    """
    engine = make_engine(resolved.storage_url)
    fields = tuple(f.name for f in resolved.spec.contract.outputs)
    # A multi-output model's list answer (and a list or scalar label) is the record of its
    # contract outputs in order.
    schema = OutputSchema(outputs=fields) if len(fields) > 1 else OutputSchema()
    tally = FieldTally()
    seen = labelled = not_records = 0
    try:
        reader = PredictionReader(engine)
        labels = LabelStore(engine)
        if reader.has_log():
            batch: list[Any] = []
            for record in reader.iter_records(since, until, model=model, batch_size=BATCH):
                if record.status not in ("ok", "fallback") or (
                        version is not None and record.version != version):
                    continue
                seen += 1
                batch.append(record)
                if len(batch) >= BATCH:
                    labelled, not_records = _score(labels, batch, tally, labelled,
                                                   not_records, schema)
                    batch = []
            labelled, not_records = _score(labels, batch, tally, labelled, not_records, schema)
    finally:
        engine.dispose()
    return {"model": model, "version": version, "predictions": seen, "labelled": labelled,
            "not_records": not_records, **tally.as_dict()}


def _score(labels: LabelStore, batch: list[Any], tally: FieldTally, labelled: int,
           not_records: int, schema: OutputSchema) -> tuple[int, int]:
    current = labels.current([r.id for r in batch]) if batch else {}
    for record in batch:
        got = current.get(record.id)
        if got is None:
            continue
        labelled += 1
        answer, label = _record(record.outputs, schema), _record(got.label, schema)
        if label is None and schema.outputs and not isinstance(got.label, Mapping | list):
            label = {schema.outputs[0]: got.label}  # a scalar label: the first output's
        if answer is not None and label is not None:
            tally.add(answer, label)
        else:
            not_records += 1
    return labelled, not_records



def _record(value: Any, schema: OutputSchema) -> Mapping[str, Any] | None:
    if isinstance(value, Mapping):
        return value
    return schema.as_record(value)


__all__ = ["field_accuracy"]

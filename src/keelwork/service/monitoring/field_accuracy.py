"""Per-field accuracy of a model whose answers are records of fields (an extraction model),
from the labels that reached its predictions (``keel monitor fields``).

Reads the model's answered predictions of a time range and their current labels, and scores
every labelled field of every answer (:mod:`keelwork.core.monitors.fields`: one verdict per
field, values compared after normalisation). Predictions whose answer or label is not an
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
                    labelled, not_records = _score(labels, batch, tally, labelled, not_records)
                    batch = []
            labelled, not_records = _score(labels, batch, tally, labelled, not_records)
    finally:
        engine.dispose()
    return {"model": model, "version": version, "predictions": seen, "labelled": labelled,
            "not_records": not_records, **tally.as_dict()}


def _score(labels: LabelStore, batch: list[Any], tally: FieldTally, labelled: int,
           not_records: int) -> tuple[int, int]:
    current = labels.current([r.id for r in batch]) if batch else {}
    for record in batch:
        got = current.get(record.id)
        if got is None:
            continue
        labelled += 1
        if isinstance(record.outputs, Mapping) and isinstance(got.label, Mapping):
            tally.add(record.outputs, got.label)
        else:
            not_records += 1
    return labelled, not_records


__all__ = ["field_accuracy"]

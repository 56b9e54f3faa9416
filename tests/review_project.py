"""A project with a review queue and no model: predictions written straight into the log and
queued, for the tests of the review page, its API and the import (shared by several modules)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete

from keelwork.adapters.stores import prediction_store
from keelwork.adapters.stores.audit_store import AuditLog
from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.label_store import LabelStore
from keelwork.adapters.stores.review_store import ReviewStore
from keelwork.core.predictions import PredictionRecord, new_prediction_id
from keelwork.spec import load_spec
from keelwork.spec.model import ResolvedSpec

SPEC = """\
service: {name: tickets, owners: [t@example.com]}
models:
  - {name: triage, runtime: python, artifact: "a:b"}
contract:
  inputs:
    - {name: text, type: text}
  outputs:
    - {name: label, type: category, categories: [bug, question, praise]}
review: {budget_per_day: 50}
"""


@dataclass
class ReviewProject:
    resolved: ResolvedSpec
    engine: Engine
    audit: AuditLog
    ids: list[str]

    def erase(self, prediction_id: str) -> None:
        """Remove a prediction from the log (as an erasure or retention would)."""
        with self.engine.begin() as conn:
            for table in (prediction_store.prediction_payloads, prediction_store.predictions):
                conn.execute(delete(table).where(table.c.id == prediction_id))


def review_project(directory: Path, inputs: list[Any], *, spec: str = SPEC,
                   outputs: list[Any] | None = None,
                   reasons: list[str] | None = None) -> ReviewProject:
    """``directory/keel.yaml`` and its store: one logged prediction per input, all queued
    (the first the most uncertain: priority 0.7, 0.6, ...)."""
    (directory / "keel.yaml").write_text(spec)
    (directory / ".keel").mkdir(exist_ok=True)
    resolved = load_spec(directory / "keel.yaml")
    engine = make_engine(resolved.storage_url)
    prediction_store.ensure_schema(engine)
    now = time.time()
    records = [PredictionRecord(id=new_prediction_id(), ts=now - 60 + i, model="triage",
                                version=1, inputs=x,
                                outputs=(outputs or ["bug"] * len(inputs))[i], latency_ms=1.0)
               for i, x in enumerate(inputs)]
    with engine.begin() as conn:
        prediction_store.insert_records(conn, records)
    store = ReviewStore(engine)
    store.ensure_schema()
    reasons = reasons or ["uncertain"] * len(records)
    store.enqueue([{"prediction_id": r.id, "model": "triage", "reason": reasons[i],
                    "priority": 0.7 - i / 10, "wanted": 1} for i, r in enumerate(records)])
    LabelStore(engine).ensure_schema()
    audit = AuditLog(engine)
    audit.ensure_schema()
    return ReviewProject(resolved, engine, audit, [r.id for r in records])

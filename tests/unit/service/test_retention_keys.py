"""Retention destroys the per-subject payload keys of subjects whose predictions have all
expired, batch by batch, and keeps (or puts back) the keys of subjects still logged."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from keelwork.adapters.stores.audit_store import AuditLog
from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.prediction_store import (
    PredictionReader,
    ensure_schema,
    insert_records,
)
from keelwork.adapters.stores.subject_keys import SubjectKeys
from keelwork.core.predictions import PredictionRecord
from keelwork.service.payload_keys import project_keys
from keelwork.service.retention import apply_retention, drop_unused_keys
from keelwork.spec.model import RetentionSection

DAY = 86_400.0


def _rec(i: int, subject: str, age_days: float, now: float) -> PredictionRecord:
    return PredictionRecord(id=f"p{i:03d}", ts=now - age_days * DAY + i, model="m", version=1,
                            subject_id=subject, inputs={"note": f"canary{i}qz"}, outputs=i,
                            latency_ms=1.0)


def test_keys_of_subjects_with_nothing_left_are_destroyed(store_url: str,
                                                          tmp_path: Path) -> None:
    now = time.time()
    engine = make_engine(store_url)
    ensure_schema(engine)
    keys = project_keys(tmp_path, engine, seal=True)
    assert keys is not None
    # alice and dave only old rows (several batches of them), bob old and new, carol new.
    plan = [("alice", 40)] * 5 + [("dave", 40)] * 3 + [("bob", 40), ("bob", 1), ("carol", 1)]
    with engine.begin() as conn:
        insert_records(conn, [_rec(i, s, age, now) for i, (s, age) in enumerate(plan)])
    ids = {s: keys.key_id(s) for s in ("alice", "bob", "carol", "dave")}
    before = keys.keys(ids.values())
    assert len(before) == 4
    audit = AuditLog(engine)
    audit.ensure_schema()
    report = apply_retention(engine, RetentionSection(predictions_days=30), audit=audit,
                             actor="t", now=now, batch=2)
    assert report.deleted["predictions"] == 9 and report.keys_destroyed == 2
    assert set(keys.keys(ids.values())) == {ids["bob"], ids["carol"]}
    if keys.path is not None:  # the key file: the destroyed keys' bytes are gone
        raw = keys.path.read_bytes()
        assert before[ids["alice"]] not in raw and before[ids["bob"]] in raw
    assert [r.inputs["note"] for r in PredictionReader(engine).iter_records()] == [
        "canary9qz", "canary10qz"]  # the kept subjects still open
    applied = [e for e in audit.entries() if e.action == "retention.apply"]
    assert applied[-1].details["subject_keys_destroyed"] == 2
    engine.dispose()


class _Store:
    """A retention store whose second look finds a subject logged again."""

    def __init__(self, first: set[str], second: set[str]) -> None:
        self.looks = [first, second]

    def subjects_logged(self, subjects: list[str]) -> set[str]:
        return self.looks.pop(0) & set(subjects)


def test_a_subject_logged_again_meanwhile_gets_its_key_back(tmp_path: Path) -> None:
    keys = SubjectKeys(tmp_path / "subject_keys.db", b"s" * 32)
    held = {s: k for s, (_, k) in keys.ensure(["erin", "finn"]).items()}
    store: Any = _Store(first=set(), second={"finn"})
    assert drop_unused_keys(store, keys, {"erin", "finn"}) == 1
    assert keys.keys([keys.key_id("erin")]) == {}
    assert keys.keys([keys.key_id("finn")]) == {keys.key_id("finn"): held["finn"]}
    keys.close()

"""Retention: rows older than keel.yaml's ``retention`` periods are deleted.

``keel serve`` applies it every ``retention.interval`` (:func:`retention_loop`, in a worker
thread, in bounded batches with pauses so serving is not stalled); ``keel retention apply``
applies it once (for cron), and can reclaim the space (``--vacuum``) so that deleted values
leave the database files too.

What each period covers:

- ``predictions_days``: the prediction log (metadata and payloads) by prediction time;
- ``labels_days``: labels, replaced labels and unmatched labels by label time;
- ``dead_letters_days``: dead-lettered ingestion rows by when they were dead-lettered;
- ``audit_days``: audit entries by their time, behind a checkpoint the chain records
  (:mod:`keelwork.adapters.stores.audit_checkpoints`), so ``keel audit verify`` still passes.

Stored monitoring results and references are aggregates and are kept. Each run that deletes
something appends a ``retention.apply`` audit entry with the counts and cutoffs.

Per-subject payload keys (:mod:`keelwork.adapters.stores.subject_keys`): once the last
prediction of a subject has expired, its key is destroyed too, batch by batch, so the key
store does not grow with every subject ever seen. A prediction of the subject written while
that happens keeps its key (the key is put back when the subject is found logged again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from keelwork.adapters.stores.audit_store import AuditLog
from keelwork.adapters.stores.retention_store import BATCH, Progress, RetentionStore
from keelwork.errors import ErrorDetail, SpecError
from keelwork.spec.model import RetentionSection
from keelwork.spec.slos import duration_seconds

if TYPE_CHECKING:
    from keelwork.adapters.stores.subject_keys import SubjectKeys
    from keelwork.spec.settings import Settings

log = logging.getLogger("keelwork.retention")

#: Seconds between two delete batches when the server applies retention.
SERVER_PAUSE_S = 0.05
_DAY = 86_400.0


@dataclass
class RetentionReport:
    """What one application deleted (or, dry, would delete), per table group."""

    now: float
    cutoffs: dict[str, str] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False
    vacuumed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: Per-subject payload keys destroyed because no prediction of their subject is left.
    keys_destroyed: int = 0

    @property
    def total(self) -> int:
        return sum(self.deleted.values())

    def as_dict(self) -> dict[str, Any]:
        return {"now": datetime.fromtimestamp(self.now, UTC).isoformat(),
                "dry_run": self.dry_run, "cutoffs": self.cutoffs, "deleted": self.deleted,
                "subject_keys_destroyed": self.keys_destroyed,
                "vacuumed": self.vacuumed, "seconds": round(self.seconds, 3)}


def cutoffs(retention: RetentionSection, now: float) -> dict[str, float]:
    """Per kept kind (``predictions``, ``labels``, ``dead_letters``, ``audit``), the unix time
    before which its rows expire; kinds without a period are absent."""
    days = {"predictions": retention.predictions_days, "labels": retention.labels_days,
            "dead_letters": retention.dead_letters_days, "audit": retention.audit_days}
    return {k: now - d * _DAY for k, d in days.items() if d is not None}


def apply_retention(engine: Engine, retention: RetentionSection, *, audit: AuditLog,
                    actor: str, now: float | None = None, dry_run: bool = False,
                    vacuum: bool = False, batch: int = BATCH, pause_s: float = 0.0,
                    progress: Progress | None = None,
                    keys: SubjectKeys | None = None) -> RetentionReport:
    """Delete (or count, ``dry_run``) what ``retention`` no longer keeps.

    Args:
        engine: The project's store.
        retention: keel.yaml's ``retention`` section.
        audit: The audit log (entries are expired through it; runs are recorded in it).
        actor: Who applies it (recorded in the audit log).
        now: The present in unix seconds (tests pass a fake clock).
        dry_run: Only count.
        vacuum: Afterwards, make deleted rows leave the database files
            (:meth:`RetentionStore.vacuum`).
        batch: Rows per delete transaction.
        pause_s: Seconds between batches.
        progress: Called after each batch with the table and its rows deleted so far.
        keys: The per-subject key store whose keys of subjects with no prediction left are
            destroyed (default: the sealing one attached to ``engine``, if any).

    Raises:
        StoreError: the store failed (what was deleted before stays deleted).
    """
    started = time.perf_counter()
    at = time.time() if now is None else now
    if keys is None:
        from keelwork.adapters.stores.subject_keys import seal_for

        keys = seal_for(engine)
    store = RetentionStore(engine, batch=batch, pause_s=pause_s)
    cuts = cutoffs(retention, at)
    report = RetentionReport(now=at, dry_run=dry_run, cutoffs={
        k: datetime.fromtimestamp(v, UTC).isoformat() for k, v in cuts.items()})
    when = {k: datetime.fromtimestamp(v, UTC) for k, v in cuts.items()}
    for kind, cut in cuts.items():
        if dry_run:
            report.deleted[kind] = (
                store.count_predictions(cut) if kind == "predictions"
                else store.count_labels(cut) if kind == "labels"
                else store.count_dead_letters(when[kind]) if kind == "dead_letters"
                else store.count_audit(when[kind]))
        elif kind == "predictions":
            report.deleted[kind] = store.expire_predictions(
                cut, progress, on_subjects=None if keys is None else
                partial(_drop_keys, report, store, keys))
        elif kind == "labels":
            report.deleted[kind] = store.expire_labels(cut, progress)
        elif kind == "dead_letters":
            report.deleted[kind] = store.expire_dead_letters(when[kind], progress)
    # The audit log last: the run's own entry below is then not already older than its cutoff.
    if not dry_run and report.total:
        audit.append(actor=actor, action="retention.apply", target="store",
                     details={"deleted": dict(report.deleted), "cutoffs": report.cutoffs,
                              "subject_keys_destroyed": report.keys_destroyed})
    if "audit" in cuts and not dry_run:
        report.deleted["audit"] = store.expire_audit(audit, when["audit"], actor=actor,
                                                     progress=progress)
    if vacuum and not dry_run:
        report.vacuumed = store.vacuum()
    report.seconds = time.perf_counter() - started
    return report


def _drop_keys(report: RetentionReport, store: RetentionStore, keys: SubjectKeys,
               subjects: set[str]) -> None:
    report.keys_destroyed += drop_unused_keys(store, keys, subjects)


def drop_unused_keys(store: RetentionStore, keys: SubjectKeys, subjects: set[str]) -> int:
    """Destroy the payload keys of the ones of ``subjects`` (named by a batch of expired
    predictions) that have no prediction left; returns how many were destroyed.

    A prediction of such a subject committed meanwhile (sealed under the key read before it
    went) is found by a second look, and its key is put back.
    """
    gone = sorted(subjects - store.subjects_logged(sorted(subjects)))
    if not gone:
        return 0
    ids = {keys.key_id(s): s for s in gone}
    held = keys.keys(ids)
    destroyed = keys.forget_many(held)
    back = store.subjects_logged(gone)
    if back:
        again = {k: key for k, key in held.items() if ids[k] in back}
        keys.restore(again)
        destroyed -= len(again)
    return destroyed


def interval_of(retention: RetentionSection) -> float:
    """Seconds between the server's applications (``retention.interval``)."""
    return float(duration_seconds(retention.interval))


async def retention_loop(apply: Callable[[], RetentionReport], *, interval: float,
                         stop: asyncio.Event) -> None:
    """Apply retention now and then every ``interval`` seconds until ``stop`` is set.

    Each application runs in a worker thread; a failure is logged, never raised (the next
    round tries again).
    """
    while not stop.is_set():
        try:
            report = await asyncio.to_thread(apply)
            if report.total:
                log.info("retention: deleted %s", ", ".join(
                    f"{n} {k}" for k, n in report.deleted.items() if n))
        except Exception:
            log.exception("retention failed; retrying in %.0f s", interval)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


def server_retention(engine: Engine, retention: RetentionSection, audit: AuditLog, *,
                     actor: str, clock: Callable[[], float] = time.time,
                     ) -> Callable[[], RetentionReport] | None:
    """What the server's loop calls, or None when keel.yaml keeps everything."""
    if not retention.enabled:
        return None

    def apply() -> RetentionReport:
        return apply_retention(engine, retention, audit=audit, actor=actor, now=clock(),
                               pause_s=SERVER_PAUSE_S)

    return apply


def apply_project(project: Path, settings: Settings, *, dry_run: bool = False,
                  vacuum: bool = False, now: float | None = None,
                  progress: Progress | None = None) -> RetentionReport:
    """``keel retention apply``: keel.yaml's retention on the project's store, once.

    Raises:
        SpecError: no keel.yaml, or it sets no retention period.
        StoreError: the store failed.
    """
    from keelwork.adapters.stores.engine import make_engine
    from keelwork.service.audit import audit_log
    from keelwork.service.payload_keys import KEY_FILE as SUBJECT_KEY_FILE
    from keelwork.service.payload_keys import project_keys
    from keelwork.service.projects import actor, project_spec

    resolved = project_spec(project, settings, needs="retention reads its 'retention' section")
    retention = resolved.spec.retention
    if not retention.enabled:
        raise SpecError(
            "keel.yaml sets no retention period: add retention.predictions_days, labels_days, "
            "dead_letters_days or audit_days.",
            [ErrorDetail("retention", "retention_missing", None, "no retention period set")])
    with audit_log(project, settings) as audit:
        if audit is None:  # no store yet: nothing to delete
            return RetentionReport(now=time.time() if now is None else now, dry_run=dry_run,
                                   cutoffs={})
        engine = make_engine(resolved.storage_url)
        # The key store's clean-up needs the subject key; without one, no key was ever made.
        keys = project_keys(project, engine,
                            seal=(project / SUBJECT_KEY_FILE).is_file()) if not dry_run else None
        try:
            return apply_retention(engine, retention, audit=audit,
                                   actor=actor(None, settings), now=now, dry_run=dry_run,
                                   vacuum=vacuum, progress=progress,
                                   keys=keys if keys is not None and keys.secret else None)
        finally:
            engine.dispose()


__all__ = ["RetentionReport", "apply_project", "apply_retention", "cutoffs",
           "drop_unused_keys", "interval_of", "retention_loop", "server_retention"]

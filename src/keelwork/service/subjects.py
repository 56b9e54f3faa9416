"""Access and erasure by data subject (GDPR Art. 15 and 17): ``keel export --subject`` and
``keel erase --subject``, and their admin HTTP routes.

What is held about a subject: its predictions with their payloads and labels
(:class:`~keelwork.adapters.stores.subject_store.SubjectStore`) and its rows in dataset
snapshots taken with a subject column (:mod:`keelwork.adapters.stores.dataset_erasure`).

Payloads of predictions that name a subject are sealed under the subject's own key, kept in a
key file apart from the data (:mod:`keelwork.adapters.stores.subject_keys`; crypto-shredding).
Erasing first destroys that key -- every copy of the payloads, backups included, becomes
unreadable -- then removes the rows, then records:

- a tombstone in the store (``subject_erasures``): when, who, why, how many rows, and the
  subject's keyed digest (HMAC-SHA256 with the project's subject key, ``.keel/subject.key``,
  created on first use, readable by its owner only), never the subject itself;
- an audit entry ``subject.erase`` naming the digest and the counts.

A model trained on erased rows cannot forget them: the report names every model version whose
training snapshot held the subject (lineage), so that someone can decide on retraining.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keelwork.errors import ErrorDetail, SpecError
from keelwork.service.payload_keys import KEY_FILE, project_keys, subject_key

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from keelwork.adapters.stores.audit_store import AuditLog
    from keelwork.adapters.stores.datasets import DatasetStore
    from keelwork.spec.settings import Settings

#: Longest subject identifier accepted (the prediction log keeps at most 256 characters).
MAX_SUBJECT = 256


def check_subject(subject: str) -> str:
    """The subject identifier, or a clear error for an empty or over-long one."""
    if not subject or not subject.strip() or len(subject) > MAX_SUBJECT:
        raise SpecError(
            f"A subject identifier must be 1 to {MAX_SUBJECT} characters, not blank.",
            [ErrorDetail("subject", "subject_id", None, f"1 to {MAX_SUBJECT} characters")])
    return subject


def subject_digest(key: bytes, subject: str) -> str:
    """HMAC-SHA256 of the subject under the project key (hex): matches a later request for the
    same subject to its erasure without keeping who it was."""
    return hmac.new(key, subject.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


@dataclass
class ErasureReport:
    """What ``keel erase --subject`` removed."""

    digest: str
    key_destroyed: bool = False
    snapshot_key_destroyed: bool = False
    predictions: int = 0
    labels: int = 0
    snapshots: dict[str, int] = field(default_factory=dict)
    unsearchable: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"subject_digest": self.digest, "payload_key_destroyed": self.key_destroyed,
                "snapshot_key_destroyed": self.snapshot_key_destroyed,
                "predictions": self.predictions,
                "labels": self.labels, "snapshot_rows": self.snapshots,
                "snapshots_without_subject_column": self.unsearchable,
                "models_trained_on_erased_rows": self.models,
                "note": ("A trained model cannot forget: the model versions listed were trained "
                         "on snapshots that held this subject; retrain them without it if the "
                         "request requires.") if self.models else None,
                "seconds": round(self.seconds, 3)}


def tombstone_reason(reason: str, subject: str) -> str:
    """An erasure's reason as the tombstone and the audit log keep it: the subject, and the
    personal data the entity scanner finds (when installed), replaced; the ticket stays."""
    from keelwork.service.redaction import scanner

    kept = re.sub(re.escape(subject), "<subject>", reason, flags=re.IGNORECASE)
    try:
        return scanner(secrets.token_bytes(32))(kept, "redact")
    except Exception:  # no scanner installed, or it gave up: the subject is out already
        return kept


def erase(engine: Engine, audit: AuditLog, datasets: DatasetStore | None, registry: Any,
          subject: str, *, key: bytes, actor: str, reason: str,
          rewrite: bool = False) -> ErasureReport:
    """Erase ``subject`` from the prediction log, labels and snapshots; record the tombstone
    and the audit entry.

    Args:
        engine: The store holding the prediction log and labels.
        audit: The audit log.
        datasets: The snapshot store (None: the project has none).
        registry: The model registry, for lineage (None: none).
        subject: The subject identifier.
        key: The project's subject key.
        actor: Who erases.
        reason: Why (a ticket number); recorded as :func:`tombstone_reason` keeps it.
        rewrite: PostgreSQL: rewrite the tables so erased tuples leave the files.
    """
    from keelwork.adapters.stores.subject_store import SubjectStore

    started = time.perf_counter()
    check_subject(subject)
    reason = tombstone_reason(reason, subject)
    digest = subject_digest(key, subject)
    report = ErasureReport(digest)
    from keelwork.adapters.stores.dataset_sealing import scoped
    from keelwork.adapters.stores.subject_keys import key_id, keys_for

    # The keys first: once they are gone, no copy of the payloads or of the sealed snapshot
    # rows opens, whatever fails next. The snapshot key is a key of its own (see
    # dataset_sealing: retention destroys log keys only).
    keys = keys_for(engine)
    log_key, snapshot_key = key_id(key, subject), key_id(key, scoped(subject))
    held = keys.keys([log_key, snapshot_key]) if keys is not None else {}
    if keys is not None and held:
        keys.forget_many(held)
    if keys is not None:  # rows of the subject logged before now but still on their way
        keys.mark_erased([log_key])  # (spool, in flight) are written erased
    report.key_destroyed, report.snapshot_key_destroyed = log_key in held, snapshot_key in held
    sealed_rows = snapshot_key in held
    if datasets is not None:
        from keelwork.adapters.stores.dataset_erasure import erase_from_snapshots

        done = erase_from_snapshots(datasets, subject, actor=actor, reason=reason,
                                    key_id=snapshot_key if sealed_rows else None)
        report.snapshots, report.unsearchable = done.removed, done.unsearchable
    counts = SubjectStore(engine).erase(subject, digest=digest, actor=actor, reason=reason,
                                        rewrite=rewrite)
    report.predictions, report.labels = counts["predictions"], counts["labels"]
    if registry is not None and report.snapshots:
        report.models = sorted(
            f"{mv.name}:{mv.version}" for s in registry.list_models()
            for mv in registry.list_versions(s.name) if mv.dataset_version in report.snapshots)
    audit.append(actor=actor, action="subject.erase", target=digest[:16],
                 details={"subject_digest": digest, "reason": reason,
                          "payload_key_destroyed": report.key_destroyed,
                          "snapshot_key_destroyed": report.snapshot_key_destroyed,
                          "predictions": report.predictions, "labels": report.labels,
                          "snapshot_rows": report.snapshots, "models": report.models})
    report.seconds = time.perf_counter() - started
    return report


def export(engine: Engine, datasets: DatasetStore | None, subject: str, *,
           key: bytes) -> dict[str, Any]:
    """Everything held about ``subject``: predictions (payloads, labels), snapshot rows, and
    earlier erasures of the same subject."""
    from keelwork.adapters.stores.subject_store import SubjectStore

    check_subject(subject)
    store = SubjectStore(engine)
    rows: dict[str, list[dict[str, Any]]] = {}
    if datasets is not None:
        from keelwork.adapters.stores.dataset_erasure import rows_of_subject

        rows = rows_of_subject(datasets, subject)
    return {"kind": "keelwork.subject_export", "version": 1, "subject": subject,
            "predictions": list(store.predictions_of(subject)), "snapshot_rows": rows,
            "erasures": store.erasures(subject_digest(key, subject))}


class SubjectRequests:
    """Access and erasure on a running server's stores (the admin HTTP routes).

    Implements :class:`keelwork.types.SubjectRequestsProtocol`.

    Args:
        project: The project directory (subject key, snapshots).
        engine: The server's store.
        audit: The server's audit log.
        registry: The model registry, for lineage.
        storage_url: The store's URL, for the snapshot store.
    """

    def __init__(self, project: Path, engine: Engine, audit: AuditLog, registry: Any,
                 storage_url: str) -> None:
        self.project, self.engine, self.audit = project, engine, audit
        self.registry, self.storage_url = registry, storage_url
        project_keys(project, engine, seal=False)

    def _datasets(self) -> DatasetStore:
        from keelwork.adapters.stores.datasets import open_dataset_store

        return open_dataset_store(self.project, self.storage_url)

    def export(self, subject: str) -> dict[str, Any]:
        with self._datasets() as ds:
            return export(self.engine, ds, subject, key=subject_key(self.project))

    def erase(self, subject: str, *, reason: str, actor: str) -> dict[str, Any]:
        with self._datasets() as ds:
            return erase(self.engine, self.audit, ds, self.registry, subject,
                         key=subject_key(self.project), actor=actor, reason=reason).as_dict()


# --------------------------------------------------------------------------- for the CLI
def erase_project(project: Path, settings: Settings, subject: str, *, reason: str,
                  actor: str | None = None, rewrite: bool = False) -> ErasureReport:
    """:func:`erase` on a project's stores (``keel erase --subject``)."""
    from keelwork.service.audit import audit_log
    from keelwork.service.projects import actor as who
    from keelwork.service.projects import dataset_store, registry

    with audit_log(project, settings) as audit, dataset_store(project, settings=settings) as ds, \
            registry(project, settings=settings) as reg:
        if audit is None:
            return ErasureReport(subject_digest(subject_key(project), check_subject(subject)))
        project_keys(project, audit.engine, seal=False)
        return erase(audit.engine, audit, ds, reg, subject, key=subject_key(project),
                     actor=who(actor, settings), reason=reason, rewrite=rewrite)


def export_project(project: Path, settings: Settings, subject: str) -> dict[str, Any]:
    """:func:`export` on a project's stores (``keel export --subject``)."""
    from keelwork.service.audit import audit_log
    from keelwork.service.projects import dataset_store

    with audit_log(project, settings) as audit, dataset_store(project, settings=settings) as ds:
        if audit is None:
            check_subject(subject)
            return {"kind": "keelwork.subject_export", "version": 1, "subject": subject,
                    "predictions": [], "snapshot_rows": {}, "erasures": []}
        project_keys(project, audit.engine, seal=False)
        return export(audit.engine, ds, subject, key=subject_key(project))


__all__ = ["KEY_FILE", "ErasureReport", "SubjectRequests", "check_subject", "erase",
           "erase_project", "export", "export_project", "subject_digest", "subject_key",
           "tombstone_reason"]

"""The audit log as use-cases: verify the chain and its anchors, query entries, head, proofs.

The anchors checked are the project's own file (``.keel/audit-anchor.json``), the
``audit_anchor`` setting (``KEELWORK_AUDIT_ANCHOR``) and, optionally, a head saved earlier.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keelwork.errors import AuditError, DataFileError
from keelwork.service.projects import project_store, storage_url

if TYPE_CHECKING:
    from keelwork.adapters.stores.audit_store import AuditLog
    from keelwork.core.audit import ChainHead, VerifyResult
    from keelwork.spec.settings import Settings


def audit_log(project: Path,
              settings: Settings) -> AbstractContextManager[AuditLog | None]:
    """The project's audit log, keeping its anchors (the ``audit_anchor`` setting's too);
    ``None`` when the project has no store yet."""
    from keelwork.adapters.stores.audit_store import open_audit_log

    def opener(directory: Path, url: str | None) -> AuditLog:
        return open_audit_log(directory, url, extra_anchor=settings.audit_anchor)

    return project_store(project, opener, settings=settings)


def store_key(project: Path, settings: Settings) -> str:
    """What anchors record the project's store under: its URL without the password."""
    from keelwork.adapters.stores.engine import normalize_url

    return normalize_url(storage_url(project, settings)).render_as_string(hide_password=True)


def read_anchor(path: Path, store: str) -> ChainHead:
    """A head saved earlier (``keel audit head``) or the head of ``store`` in an anchor file.

    Raises:
        DataFileError: the file is unreadable, not JSON, or holds no head for ``store``.
    """
    from keelwork.adapters.stores.audit_anchor import ANCHOR_KIND, parse_anchor
    from keelwork.core.audit import ChainHead

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataFileError(f"{path}: cannot be read ({exc.strerror}).", path=str(path)) from None
    except ValueError as exc:
        raise DataFileError(f"{path}: not valid JSON: {exc}.", path=str(path)) from None
    try:
        if isinstance(data, dict) and data.get("kind") == ANCHOR_KIND:
            heads = parse_anchor(data, str(path))
            if store not in heads:
                raise DataFileError(f"{path}: holds no head for this project's store {store!r}; "
                                    f"got heads for {sorted(heads) or 'no store'}.",
                                    path=str(path))
            return heads[store]
        return ChainHead.from_dict(data)
    except AuditError as exc:
        raise DataFileError(f"{path}: {exc.message}", path=str(path)) from None


def verify(project: Path, anchor: Path | None,
           settings: Settings) -> tuple[VerifyResult, dict[str, Any] | None]:
    """Check the whole chain and every anchor (``keel audit verify``).

    Args:
        project: The project directory.
        anchor: A file with a head saved earlier (or a copy of an anchor file), checked on top
            of the project's anchors.
        settings: The process settings (the extra anchor file).

    Returns:
        The result and, when the chain is broken at an entry the log holds, that entry.

    Raises:
        DataFileError: ``anchor`` is unreadable or holds no head for this project's store.
    """
    pinned = read_anchor(anchor, store_key(project, settings)) if anchor is not None else None
    return verify_head(project, pinned, settings)


def verify_head(project: Path, pinned: ChainHead | None, settings: Settings
                ) -> tuple[VerifyResult, dict[str, Any] | None]:
    """:func:`verify` with the extra head already in hand (``Project.audit.verify(anchor)``).

    Args:
        project: The project directory.
        pinned: A head saved earlier, checked on top of the project's anchors.
        settings: The process settings (the extra anchor file).

    Returns:
        The result and, when the chain is broken at an entry the log holds, that entry.
    """
    from keelwork.adapters.stores.audit_anchor import project_anchors
    from keelwork.core.audit import VerifyResult

    store = store_key(project, settings)
    bad_entry: dict[str, Any] | None = None
    with audit_log(project, settings) as log:
        if log is None:
            result = VerifyResult(True, 0, message="The log is empty (no store yet).")
            kept = [h for f in project_anchors(project, settings.audit_anchor)
                    if (h := f.read(store)) is not None]
            latest = max([*kept, *([pinned] if pinned else [])], key=lambda h: h.seq,
                         default=None)
            if latest is not None and latest.seq > 0:
                result = VerifyResult(False, 0, latest.seq, "truncated",
                                      f"An anchor names entry {latest.seq}, but there is no "
                                      "store.")
        else:
            result = log.verify(anchor=pinned)
            if result.first_bad_seq is not None:
                found = log.get(result.first_bad_seq)
                bad_entry = found.as_dict() if found is not None else None
    return result, bad_entry


def query(project: Path, *, actor: str | None, action: str | None, target: str | None,
          since: datetime | None, until: datetime | None, limit: int | None,
          settings: Settings) -> list[Any]:
    """The latest entries matching every filter given, oldest first."""
    with audit_log(project, settings) as log:
        return [] if log is None else list(log.query(
            actor=actor, action=action, target=target, since=since, until=until, limit=limit))


def head(project: Path, settings: Settings) -> ChainHead:
    """The latest entry's number and hash (the genesis head for a project without a store)."""
    from keelwork.core.audit import GENESIS_HASH, ChainHead

    with audit_log(project, settings) as log:
        return ChainHead(0, GENESIS_HASH, 0) if log is None else log.head()


def prove(project: Path, seq: int, size: int | None,
          settings: Settings) -> dict[str, Any]:
    """An RFC 6962 inclusion proof of entry ``seq`` and the Merkle root it checks against.

    Raises:
        AuditError: the entry is not in the log.
    """
    with audit_log(project, settings) as log:
        if log is None:
            raise AuditError(f"Entry {seq} is not in the audit log: this project has no store "
                             "yet.")
        return log.inclusion_proof(seq, size)


__all__ = ["audit_log", "head", "prove", "query", "read_anchor", "store_key", "verify",
           "verify_head"]

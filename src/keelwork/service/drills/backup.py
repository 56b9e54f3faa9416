"""The backup-and-restore drill: the store is backed up and the backup restored into a scratch
store, which must then hold the same rows (counted per table), an audit chain that verifies,
and the same registry (every model's versions, with their artifacts' digests).

SQLite: the online backup API copies the database (the WAL's committed pages included) while
servers keep writing; the backup is then restored with the same API into a new file, and the
two copies are compared. PostgreSQL: ``pg_dump -Fc`` of the store restored by ``pg_restore``
into a scratch database on the same server (dropped afterwards), compared with the store; a
server writing meanwhile can make the counts differ, so run it when the store is quiet.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from keelwork.errors import DrillUnavailable, KeelworkError
from keelwork.service.check_item import CheckItem

NAME = "backup_restore"


def backup_drill(store_url: str, *, timeout_s: float = 120.0) -> CheckItem:
    """Run the drill on the store at ``store_url`` (only read).

    Args:
        store_url: The user's store.
        timeout_s: Bound on each copy (the backup, then the restore).

    Returns:
        pass, fail with the facts, or not_checked with the reason.
    """
    from keelwork.adapters.stores.store_copy import (
        create_scratch_database,
        drop_database,
        is_postgres,
        pg_dump_restore,
        sqlite_backup,
        sqlite_file,
    )

    source = sqlite_file(store_url)
    try:
        with tempfile.TemporaryDirectory(prefix="keel-backup-") as tmp:
            restored_root = Path(tmp) / "restored"
            if source is not None:
                if not source.exists():
                    raise DrillUnavailable("the project has no store yet")
                backup = Path(tmp) / "backup" / "keel.db"
                restored = restored_root / ".keel" / "keel.db"
                try:
                    sqlite_backup(source, backup, timeout_s)
                    sqlite_backup(backup, restored, timeout_s)
                except KeelworkError as exc:
                    if "ran past" not in exc.message:
                        raise  # a backup that fails is a failed item, not an unchecked one
                    raise DrillUnavailable(exc.message) from None
                return _compare(f"sqlite:///{backup}", f"sqlite:///{restored}", restored_root,
                                "SQLite online backup API")
            if not is_postgres(store_url):
                raise DrillUnavailable(f"no backup method for a store of kind "
                                       f"'{store_url.split(':', 1)[0]}'")
            try:
                scratch = create_scratch_database(store_url, "keel_restore")
            except KeelworkError as exc:
                raise DrillUnavailable(f"no scratch database to restore into: "
                                       f"{exc.message}") from None
            try:
                try:
                    pg_dump_restore(store_url, Path(tmp) / "keel.dump", scratch, timeout_s)
                except KeelworkError as exc:
                    raise DrillUnavailable(exc.message) from None
                return _compare(store_url, scratch, restored_root, "pg_dump -Fc / pg_restore")
            finally:
                drop_database(scratch)
    except DrillUnavailable as exc:
        return CheckItem(NAME, "not_checked", exc.message, "see docs/check.md")


def _compare(backup_url: str, restored_url: str, restored_root: Path, method: str) -> CheckItem:
    from keelwork.adapters.stores.store_copy import table_counts

    before, after = table_counts(backup_url), table_counts(restored_url)
    differ = {t: [before.get(t), after.get(t)] for t in sorted({*before, *after})
              if before.get(t) != after.get(t)}
    chain = _verify_chain(restored_root, restored_url)
    registry_before, registry_after = _versions(backup_url), _versions(restored_url)
    facts: dict[str, Any] = {"method": method, "tables": len(after),
                             "rows": sum(after.values()), "differing_tables": differ,
                             "audit_entries": chain[1], "audit_ok": chain[0],
                             "model_versions": sum(len(v) for v in registry_after.values())}
    problems = []
    if differ:
        problems.append(f"row counts differ in {', '.join(differ)}")
    if not chain[0]:
        problems.append(f"the restored audit chain does not verify: {chain[2]}")
    if registry_before != registry_after:
        problems.append("the restored registry lists other versions")
    if problems:
        return CheckItem(NAME, "fail", "; ".join(problems), "keel audit verify on the store; "
                         "a backup of a broken store is no restore point", facts)
    return CheckItem(NAME, "pass", f"backed up ({method}) and restored: {len(after)} tables, "
                     f"{sum(after.values())} rows equal, the audit chain of {chain[1]} entries "
                     f"verifies, {facts['model_versions']} model versions listed", facts=facts)


def _verify_chain(root: Path, url: str) -> tuple[bool, int, str]:
    from keelwork.adapters.stores.audit_store import open_audit_log

    log = open_audit_log(root, url)
    try:
        result = log.verify()
    finally:
        log.close()
    return result.ok, result.checked, result.message


def _versions(url: str) -> dict[str, list[tuple[int, str | None]]]:
    """Every model's versions (number, artifact digest) in the registry at ``url``."""
    from keelwork.adapters.stores.registry_store import open_registry

    with tempfile.TemporaryDirectory(prefix="keel-registry-") as tmp:
        registry = open_registry(Path(tmp), url, audit=False)
        try:
            return {m.name: [(v.version, v.sha256) for v in registry.list_versions(m.name)]
                    for m in registry.list_models()}
        finally:
            registry.close()


__all__ = ["NAME", "backup_drill"]

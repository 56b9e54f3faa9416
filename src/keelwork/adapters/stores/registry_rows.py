"""Row-level writes and reads of the registry tables shared by the registry store's operations.

Alias moves (with their history row), the per-model write lock, and turning a
``model_versions`` row into a :class:`~keelwork.core.registry.ModelVersion`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, RowMapping

from keelwork.adapters.stores.schema import alias_history, model_aliases, models
from keelwork.core.registry import AliasChange, ModelVersion

#: (actor, action, target, details) of an audit entry waiting for its transaction.
AuditEvent = tuple[str, str, str, dict[str, Any]]


def lock_model(conn: Connection, model_id: int) -> None:
    """Take the model's write lock for the rest of the transaction, before reading anything.

    A no-op update: PostgreSQL locks the row, SQLite takes its database write lock. Either way,
    writers to one model queue here instead of reading the same "current" state and racing
    (which would give two versions one number, or an alias history whose "from" skips a step).
    """
    conn.execute(models.update().where(models.c.id == model_id).values(name=models.c.name))


def move_alias(conn: Connection, model_id: int, name: str, alias: str, to_version: int | None,
                actor: str, reason: str) -> AliasChange | None:
    """Point (or with ``None`` remove) an alias and append its history; ``None`` if no change."""
    current = conn.execute(
        select(model_aliases.c.version)
        .where(model_aliases.c.model_id == model_id, model_aliases.c.alias == alias)
        .with_for_update()
    ).scalar()
    if current == to_version:
        return None
    now = datetime.now(UTC)
    key = (model_aliases.c.model_id == model_id) & (model_aliases.c.alias == alias)
    if to_version is None:
        conn.execute(model_aliases.delete().where(key))
    elif current is None:
        conn.execute(model_aliases.insert().values(model_id=model_id, alias=alias,
                                                   version=to_version, updated_at=now,
                                                   updated_by=actor))
    else:
        conn.execute(model_aliases.update().where(key).values(version=to_version,
                                                              updated_at=now, updated_by=actor))
    conn.execute(alias_history.insert().values(model_id=model_id, alias=alias,
                                               from_version=current, to_version=to_version,
                                               actor=actor, reason=reason, changed_at=now))
    return AliasChange(name, alias, current, to_version, actor, reason, now)


def alias_event(change: AliasChange) -> AuditEvent:
    action = "alias.remove" if change.to_version is None else "alias.set"
    return (change.actor, action, f"{change.name}@{change.alias}",
            {"from_version": change.from_version, "to_version": change.to_version,
             "reason": change.reason})


def to_version(name: str, r: RowMapping, aliases: tuple[str, ...]) -> ModelVersion:
    return ModelVersion(
        name=name, version=r["version"], runtime=r["runtime"], artifact_uri=r["artifact_uri"],
        sha256=r["sha256"], size=r["size"], created_at=aware(r["created_at"]),
        created_by=r["created_by"], git_commit=r["git_commit"], git_dirty=r["git_dirty"],
        dataset_version=r["dataset_version"], metrics=r["metrics"] or {},
        environment=r["environment"] or {}, options=r["options"] or {}, aliases=aliases,
    )


def aware(value: datetime) -> datetime:
    # SQLite hands timestamps back without a zone; they were written in UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)



__all__ = ["AuditEvent", "alias_event", "aware", "lock_model", "move_alias", "to_version"]

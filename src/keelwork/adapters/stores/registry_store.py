"""The model registry on SQL (SQLite by default, PostgreSQL) plus the content-addressed blob store.

Registration is atomic: the request is checked first (:mod:`.registry_checks`; verifying that
the artifact loads is the register use-case's step, :mod:`keelwork.service.registration`, done
before this store is called); the blob is stored (deduplicated) next; the version row, the model
row and any aliases are written in one transaction; if that transaction fails, a blob this call
created is removed again unless something else references it. Writers to one model first take
its lock (a no-op update of its row), then read ``max(version) + 1``; a unique constraint on
(model, version) backs this up and any conflict is retried, so concurrent registers never share
a number. The reads are :class:`~keelwork.adapters.stores.registry_reads.RegistryReads`.

The provenance stored with each version (git state, environment, actor) is read by
:mod:`keelwork.adapters.stores.provenance`.

Audit: every registration (``model.register``) and alias move (``alias.set``,
``alias.remove``) is appended to the audit sink given, if any, with the caller's actor. When the
sink is the :class:`~keelwork.adapters.stores.audit_store.AuditLog` of this same database (what
:func:`open_registry` sets up), the entries are written in the registry's own transaction, after
its other writes: the change and its audit entry commit together or not at all. Any other sink
is called after the commit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from keelwork.adapters.stores.artifacts import ArtifactStore, StoredArtifact
from keelwork.adapters.stores.audit_store import AuditLog, project_audit_log
from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.provenance import (
    TRACKED_PACKAGES,
    capture_environment,
    default_actor,
    git_state,
)
from keelwork.adapters.stores.registry_checks import check_registration
from keelwork.adapters.stores.registry_reads import RegistryReads
from keelwork.adapters.stores.registry_rows import (
    AuditEvent,
    alias_event,
    lock_model,
    move_alias,
)
from keelwork.adapters.stores.schema import (
    ensure_schema,
    model_versions,
    models,
)
from keelwork.adapters.stores.transactions import (
    retrying_transaction,
    store_error,
)
from keelwork.core.registry import (
    AliasChange,
    ModelVersion,
    callable_uri,
    check_alias,
    check_version,
    next_version,
)
from keelwork.errors import (
    KeelworkError,
    ModelNotFoundError,
    StoreError,
)
from keelwork.types import AuditSink

_MAX_ATTEMPTS = 30
T = TypeVar("T")


class SqlRegistry(RegistryReads):
    """Model versions, aliases and alias history in SQL; artifacts in an :class:`ArtifactStore`.

    Args:
        engine: The metadata store.
        artifacts: Where artifact blobs live.
        audit: Where registrations and alias moves are recorded, if anywhere.
        user: Who acts when a call names no actor (the ``user`` setting); default the OS user.
    """

    def __init__(self, engine: Engine, artifacts: ArtifactStore,
                 audit: AuditSink | None = None, *, user: str | None = None) -> None:
        self.engine = engine
        self.artifacts = artifacts
        self.audit = audit
        self.user = user

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> SqlRegistry:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ register
    def register(
        self,
        name: str,
        artifact: str | Path,
        runtime: str,
        *,
        dataset_version: str | None = None,
        metrics: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        aliases: Sequence[str] = (),
        created_by: str | None = None,
        source_dir: Path | None = None,
    ) -> ModelVersion:
        """Register ``artifact`` as the next version of model ``name``.

        Args:
            name: The model name (created on first registration).
            artifact: A file or directory; for the ``python`` runtime, ``"module:function"``.
            runtime: The runtime kind (``sklearn``, ``onnx``, ``torch``, ``hf``, ``mlflow``,
                ``python`` or a plug-in).
            dataset_version: Free-form identifier of the training data.
            metrics: Evaluation metrics, name -> finite number.
            options: Runtime options, stored with the version and used to verify it.
            aliases: Aliases to point at the new version in the same transaction.
            created_by: Who registers it; default the registry's ``user``, else the OS user.
            source_dir: Directory whose git commit is recorded; default the current directory.

        Returns:
            The new version.

        Raises:
            RegistryError: a name, alias, metric or option is invalid, or the runtime is unknown.
            ArtifactError: the artifact is missing or unreadable.
            StoreError: the database failed.
        """
        checked = check_registration(name, artifact, runtime, metrics=metrics, options=options,
                                     aliases=aliases)
        runtime, source = checked.runtime, checked.source
        metric_values, option_values = checked.metrics, checked.options

        stored: StoredArtifact | None = None
        if isinstance(source, Path):
            stored = self.artifacts.put(source)
        git_commit, git_dirty = git_state(source_dir or Path.cwd())
        row: dict[str, Any] = {
            "runtime": runtime,
            "artifact_uri": stored.uri if stored else callable_uri(str(source)),
            "sha256": stored.sha256 if stored else None,
            "size": stored.size if stored else None,
            "created_at": datetime.now(UTC),
            "created_by": created_by or default_actor(self.user),
            "git_commit": git_commit,
            "git_dirty": git_dirty,
            "dataset_version": dataset_version,
            "metrics": metric_values,
            "environment": capture_environment(),
            "options": option_values,
        }
        events: list[AuditEvent] = []

        def work(conn: Connection) -> int:
            events.clear()  # a retried attempt starts over
            number = self._insert_version(conn, name, row, aliases, events)
            self._audit_in(conn, events)
            return number

        try:
            number = self._retrying(work)
        except BaseException:
            if stored is not None and stored.created:
                # Best effort: the original error matters more than a failed clean-up.
                with suppress(KeelworkError, OSError):
                    self.artifacts.remove_if_unreferenced(stored.sha256, self._blob_referenced)
            raise
        if (isinstance(source, Path) and stored is not None
                and not self.artifacts.exists(stored.sha256)):
            # We reused a blob that a concurrent, failing register of the same bytes created
            # and then removed before our row committed: store it again from the source.
            self.artifacts.put(source)
        self._audit_after(events)
        return self.get(name, number)

    def _insert_version(self, conn: Connection, name: str, row: dict[str, Any],
                        aliases: Sequence[str], events: list[AuditEvent]) -> int:
        model_id = conn.execute(select(models.c.id).where(models.c.name == name)).scalar()
        if model_id is None:
            # A concurrent first registration of the same name fails the unique name and
            # retries; the winner's row then exists.
            model_id = conn.execute(models.insert().values(
                name=name, created_at=row["created_at"], created_by=row["created_by"],
            )).inserted_primary_key[0]  # type: ignore[index]
        else:
            lock_model(conn, model_id)
        current = conn.execute(select(func.max(model_versions.c.version))
                               .where(model_versions.c.model_id == model_id)).scalar()
        number = next_version(current)
        conn.execute(model_versions.insert().values(model_id=model_id, version=number, **row))
        events.append((row["created_by"], "model.register", f"{name}:{number}", {
            "runtime": row["runtime"], "sha256": row["sha256"],
            "artifact_uri": row["artifact_uri"], "dataset_version": row["dataset_version"],
            "aliases": list(aliases)}))
        self._write_aliases(conn, model_id, name, number, aliases, row["created_by"], events)
        return number

    def _write_aliases(self, conn: Connection, model_id: int, name: str, number: int,
                       aliases: Sequence[str], actor: str, events: list[AuditEvent]) -> None:
        for alias in aliases:
            change = move_alias(conn, model_id, name, alias, number, actor,
                                 f"set at registration of version {number}")
            if change is not None:
                events.append(alias_event(change))

    def _blob_referenced(self, sha256: str) -> bool:
        with self._db("checking artifact references") as conn:
            hit = conn.execute(select(model_versions.c.id)
                               .where(model_versions.c.sha256 == sha256).limit(1)).first()
        return hit is not None

    # ------------------------------------------------------------------ aliases
    def set_alias(self, name: str, version: int, alias: str, actor: str | None = None,
                  reason: str = "") -> AliasChange:
        """Point ``alias`` at ``version`` and record the move in the alias history.

        Setting an alias to the version it already names changes nothing and records nothing;
        the returned change then has ``from_version == to_version``.

        Raises:
            RegistryError: the alias is invalid or reserved.
            ModelNotFoundError: no such model or version.
        """
        check_alias(alias)
        check_version(version)
        who = actor or default_actor(self.user)
        events: list[AuditEvent] = []

        def move(conn: Connection) -> AliasChange:
            events.clear()
            change = self._set_alias(conn, name, version, alias, who, reason, events)
            self._audit_in(conn, events)
            return change

        result = self._retrying(move)
        self._audit_after(events)
        return result

    def set_alias_in(self, conn: Connection, name: str, version: int, alias: str, *,
                     actor: str, reason: str = "") -> AliasChange:
        """:meth:`set_alias` inside the caller's transaction: the move commits (or rolls back)
        with the caller's other writes, e.g. a rollout's promotion with its phase.

        ``conn`` must be a connection to this registry's database, in a transaction. The audit
        entry is written in that transaction when the sink is this database's log, else it is
        appended at once (before the caller commits).

        Raises:
            RegistryError: the alias is invalid or reserved.
            ModelNotFoundError: no such model or version.
        """
        check_alias(alias)
        check_version(version)
        events: list[AuditEvent] = []
        change = self._set_alias(conn, name, version, alias, actor, reason, events)
        self._audit_in(conn, events)
        self._audit_after(events)
        return change

    def _set_alias(self, conn: Connection, name: str, version: int, alias: str, who: str,
                   reason: str, events: list[AuditEvent]) -> AliasChange:
        model_id = self._model_id(conn, name)
        lock_model(conn, model_id)
        exists = conn.execute(select(model_versions.c.id).where(
            model_versions.c.model_id == model_id, model_versions.c.version == version,
        )).first()
        if exists is None:
            raise self._no_version(conn, model_id, name, version)
        change = move_alias(conn, model_id, name, alias, version, who, reason)
        if change is None:
            return AliasChange(name, alias, version, version, who, reason, datetime.now(UTC))
        events.append(alias_event(change))
        return change

    def remove_alias(self, name: str, alias: str, actor: str | None = None,
                     reason: str = "") -> AliasChange:
        """Remove ``alias`` from ``name``; the history records ``to_version=None``.

        Raises:
            ModelNotFoundError: no such model, or the model has no such alias.
        """
        who = actor or default_actor(self.user)
        events: list[AuditEvent] = []

        def drop(conn: Connection) -> AliasChange:
            events.clear()
            model_id = self._model_id(conn, name)
            lock_model(conn, model_id)
            change = move_alias(conn, model_id, name, alias, None, who, reason)
            if change is None:
                raise ModelNotFoundError(f"Model '{name}' has no alias '{alias}' to remove.")
            events.append(alias_event(change))
            self._audit_in(conn, events)
            return change

        result = self._retrying(drop)
        self._audit_after(events)
        return result

    # ------------------------------------------------------------------ audit
    def _audit_shares_transaction(self) -> bool:
        """Whether the audit sink is an audit log of this very database."""
        return isinstance(self.audit, AuditLog) and self.audit.engine.url == self.engine.url

    def _audit_in(self, conn: Connection, events: list[AuditEvent]) -> None:
        """Append ``events`` inside the registry's transaction, when the sink allows it."""
        if not events or not self._audit_shares_transaction():
            return
        audit: AuditLog = self.audit  # type: ignore[assignment]
        for actor, action, target, details in events:
            audit.append_in(conn, actor=actor, action=action, target=target, details=details)

    def _audit_after(self, events: list[AuditEvent]) -> None:
        """After the commit: append ``events`` to a sink that is not this database's log, or
        copy the head of this database's log (which took them in the transaction) to its
        anchors."""
        if self.audit is None or not events:
            return
        if self._audit_shares_transaction():
            audit: AuditLog = self.audit  # type: ignore[assignment]
            audit.anchor()
            return
        for actor, action, target, details in events:
            self.audit.append(actor=actor, action=action, target=target, details=details)

    # ------------------------------------------------------------------ internals
    def _retrying(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a transaction, again on a uniqueness conflict or a busy database."""
        return retrying_transaction(self.engine, work, store="registry store",
                                    what="writing the registry")

def _store_error(what: str, engine: Engine, exc: SQLAlchemyError) -> StoreError:
    return store_error("registry store", what, engine, exc)


# --------------------------------------------------------------------------- opening
def default_storage_url(project_dir: Path) -> str:
    """The embedded default: ``sqlite:///<project>/.keel/keel.db``."""
    return f"sqlite:///{Path(project_dir).absolute() / '.keel' / 'keel.db'}"


def open_registry(project_dir: Path, storage_url: str | None = None, *,
                  audit: AuditSink | bool = True, user: str | None = None,
                  audit_anchor: Path | None = None) -> SqlRegistry:
    """Open (creating if needed) the registry of a project.

    Args:
        project_dir: The project directory; artifacts live in ``<project_dir>/.keel/artifacts``.
        storage_url: SQLAlchemy URL of the metadata store; default :func:`default_storage_url`.
        audit: ``True``: record changes in the store's own audit log, in the same transaction;
            ``False``: record nothing; a sink: record there, after each commit.
        user: Who acts when a call names no actor (the ``user`` setting); default the OS user.
        audit_anchor: A second anchor file of the store's own audit log (the ``audit_anchor``
            setting), besides the project's ``.keel/audit-anchor.json``.

    Returns:
        A registry; close it (or use it as a context manager) when done.

    Raises:
        StoreError: the store is unreachable, malformed or written by a newer keelwork.
    """
    engine = make_engine(storage_url or default_storage_url(project_dir))
    sink: AuditSink | None = None
    try:
        ensure_schema(engine)
        if not isinstance(audit, bool):
            sink = audit
        elif audit:
            log = project_audit_log(engine, project_dir, audit_anchor)
            log.ensure_schema()
            sink = log
    except BaseException:
        engine.dispose()
        raise
    return SqlRegistry(engine, ArtifactStore(Path(project_dir).absolute() / ".keel" / "artifacts"),
                       sink, user=user)


__all__ = [
    "TRACKED_PACKAGES",
    "SqlRegistry",
    "capture_environment",
    "default_actor",
    "default_storage_url",
    "git_state",
    "open_registry",
]

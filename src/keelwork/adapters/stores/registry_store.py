"""The model registry on SQL (SQLite by default, PostgreSQL) plus the content-addressed blob store.

Registration is atomic: the artifact is verified by loading it with its runtime *before* anything
is written; the blob is stored (deduplicated) next; the version row, the model row and any aliases
are written in one transaction; if that transaction fails, a blob this call created is removed
again unless something else references it. Writers to one model first take its lock (a no-op
update of its row), then read ``max(version) + 1``; a unique constraint on (model, version) backs
this up and any conflict is retried, so concurrent registers never share a number.

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

import difflib
import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, func, select
from sqlalchemy.engine import Connection, RowMapping
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
from keelwork.adapters.stores.schema import (
    alias_history,
    ensure_schema,
    model_aliases,
    model_versions,
    models,
)
from keelwork.adapters.stores.transactions import (
    connection,
    retrying_transaction,
    store_error,
)
from keelwork.core.registry import (
    CALLABLE_RUNTIME,
    DEFAULT_ALIAS,
    AliasChange,
    ModelRef,
    ModelSummary,
    ModelVersion,
    callable_uri,
    check_alias,
    check_metrics,
    check_model_name,
    check_version,
    is_callable_reference,
    next_version,
    parse_model_ref,
)
from keelwork.errors import (
    ArtifactError,
    KeelworkError,
    ModelLoadError,
    ModelNotFoundError,
    RegistryError,
    StoreError,
    UnsafeArtifactError,
)
from keelwork.types import AuditSink

_MAX_ATTEMPTS = 30
T = TypeVar("T")
#: (actor, action, target, details) of an audit entry waiting for its transaction.
_Event = tuple[str, str, str, dict[str, Any]]


class SqlRegistry:
    """Model versions, aliases and alias history in SQL; artifacts in an :class:`ArtifactStore`.

    Args:
        engine: The metadata store.
        artifacts: Where artifact blobs live.
        audit: Where registrations and alias moves are recorded, if anywhere.
    """

    def __init__(self, engine: Engine, artifacts: ArtifactStore,
                 audit: AuditSink | None = None) -> None:
        self.engine = engine
        self.artifacts = artifacts
        self.audit = audit

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
        allow_unsafe_pickle: bool = False,
        verify: bool = True,
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
            created_by: Who registers it; default ``$KEELWORK_USER`` or the OS user.
            source_dir: Directory whose git commit is recorded; default the current directory.
            allow_unsafe_pickle: Let the runtime load pickle/joblib files when verifying.
            verify: Load the artifact with its runtime first (and refuse it if that fails).
                Without it the format's safety is still checked: a pickle-based artifact is
                refused unless ``allow_unsafe_pickle``.

        Returns:
            The new version.

        Raises:
            RegistryError: a name, alias, metric or option is invalid, or the runtime is unknown.
            ArtifactError: the artifact is missing or unreadable.
            ModelLoadError: verification failed (UnsafeArtifactError for refused pickles).
            StoreError: the database failed.
        """
        check_model_name(name)
        runtime = _check_runtime(runtime)
        metric_values = check_metrics(metrics)
        option_values = _check_options(options)
        for alias in aliases:
            check_alias(alias)
        source = _artifact_source(name, artifact, runtime)
        if verify:
            _verify_loads(name, runtime, source, option_values, allow_unsafe_pickle)
        elif isinstance(source, Path) and not allow_unsafe_pickle:
            _refuse_pickles(name, runtime, source, option_values)

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
            "created_by": created_by or default_actor(),
            "git_commit": git_commit,
            "git_dirty": git_dirty,
            "dataset_version": dataset_version,
            "metrics": metric_values,
            "environment": capture_environment(),
            "options": option_values,
        }
        events: list[_Event] = []

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
                        aliases: Sequence[str], events: list[_Event]) -> int:
        model_id = conn.execute(select(models.c.id).where(models.c.name == name)).scalar()
        if model_id is None:
            # A concurrent first registration of the same name fails the unique name and
            # retries; the winner's row then exists.
            model_id = conn.execute(models.insert().values(
                name=name, created_at=row["created_at"], created_by=row["created_by"],
            )).inserted_primary_key[0]  # type: ignore[index]
        else:
            _lock_model(conn, model_id)
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
                       aliases: Sequence[str], actor: str, events: list[_Event]) -> None:
        for alias in aliases:
            change = _move_alias(conn, model_id, name, alias, number, actor,
                                 f"set at registration of version {number}")
            if change is not None:
                events.append(_alias_event(change))

    def _blob_referenced(self, sha256: str) -> bool:
        with self._db("checking artifact references") as conn:
            hit = conn.execute(select(model_versions.c.id)
                               .where(model_versions.c.sha256 == sha256).limit(1)).first()
        return hit is not None

    # ------------------------------------------------------------------ read
    def list_models(self) -> list[ModelSummary]:
        """Every registered model with its latest version, version count and aliases."""
        with self._db("listing models") as conn:
            rows = conn.execute(
                select(models.c.id, models.c.name, models.c.created_at,
                       func.max(model_versions.c.version).label("latest"),
                       func.count(model_versions.c.id).label("count"),
                       func.max(model_versions.c.created_at).label("updated"))
                .join(model_versions, model_versions.c.model_id == models.c.id)
                .group_by(models.c.id, models.c.name, models.c.created_at)
                .order_by(models.c.name)
            ).mappings().all()
            alias_rows = conn.execute(select(model_aliases.c.model_id, model_aliases.c.alias,
                                             model_aliases.c.version)).all()
        by_model: dict[int, dict[str, int]] = {}
        for model_id, alias, number in alias_rows:
            by_model.setdefault(model_id, {})[alias] = number
        return [
            ModelSummary(name=r["name"], latest_version=r["latest"], version_count=r["count"],
                         aliases=dict(sorted(by_model.get(r["id"], {}).items())),
                         created_at=_aware(r["created_at"]), updated_at=_aware(r["updated"]))
            for r in rows
        ]

    def list_versions(self, name: str) -> list[ModelVersion]:
        """Every version of ``name``, oldest first.

        Raises:
            ModelNotFoundError: no model has that name.
        """
        with self._db("listing versions") as conn:
            model_id = self._model_id(conn, name)
            return self._versions(conn, model_id, name)

    def get(self, name: str, version: int) -> ModelVersion:
        """One version of ``name``.

        Raises:
            ModelNotFoundError: no such model or version.
        """
        check_version(version)
        with self._db("reading a model version") as conn:
            model_id = self._model_id(conn, name)
            found = self._versions(conn, model_id, name, version)
            if not found:
                raise self._no_version(conn, model_id, name, version)
            return found[0]

    def resolve(self, ref: str | ModelRef) -> ModelVersion:
        """The version ``ref`` points at: ``name:3``, ``name@alias`` (``@latest`` = highest
        version) or ``name`` (its ``champion`` when set, else its latest version).

        Raises:
            RegistryError: the reference is malformed.
            ModelNotFoundError: the model, version or alias does not exist.
        """
        parsed = parse_model_ref(ref) if isinstance(ref, str) else ref
        if parsed.version is not None:
            return self.get(parsed.name, parsed.version)
        with self._db("resolving a model reference") as conn:
            model_id = self._model_id(conn, parsed.name)
            aliases = self._aliases(conn, model_id)
            if parsed.alias is not None and parsed.alias != "latest":
                if parsed.alias not in aliases:
                    known = ", ".join(f"{a} -> {v}" for a, v in sorted(aliases.items()))
                    raise ModelNotFoundError(
                        f"Model '{parsed.name}' has no alias '{parsed.alias}' (aliases: "
                        f"{known or 'none'}). Set one with 'keel models alias {parsed.name} "
                        f"VERSION {parsed.alias}'.")
                number = aliases[parsed.alias]
            elif parsed.alias is None and DEFAULT_ALIAS in aliases:
                number = aliases[DEFAULT_ALIAS]
            else:
                latest = conn.execute(select(func.max(model_versions.c.version))
                                      .where(model_versions.c.model_id == model_id)).scalar()
                if latest is None:  # a model row without versions cannot be committed
                    raise ModelNotFoundError(f"Model '{parsed.name}' has no versions.")
                number = int(latest)
            return self._versions(conn, model_id, parsed.name, number)[0]

    def artifact_path(self, model_version: ModelVersion) -> Path | None:
        """The stored file or directory of a version; ``None`` for ``module:function`` models.

        Raises:
            ArtifactError: the blob is missing from the store.
        """
        if model_version.sha256 is None:
            return None
        return self.artifacts.resolve_uri(model_version.artifact_uri)

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
        who = actor or default_actor()
        events: list[_Event] = []

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
        events: list[_Event] = []
        change = self._set_alias(conn, name, version, alias, actor, reason, events)
        self._audit_in(conn, events)
        self._audit_after(events)
        return change

    def _set_alias(self, conn: Connection, name: str, version: int, alias: str, who: str,
                   reason: str, events: list[_Event]) -> AliasChange:
        model_id = self._model_id(conn, name)
        _lock_model(conn, model_id)
        exists = conn.execute(select(model_versions.c.id).where(
            model_versions.c.model_id == model_id, model_versions.c.version == version,
        )).first()
        if exists is None:
            raise self._no_version(conn, model_id, name, version)
        change = _move_alias(conn, model_id, name, alias, version, who, reason)
        if change is None:
            return AliasChange(name, alias, version, version, who, reason, datetime.now(UTC))
        events.append(_alias_event(change))
        return change

    def alias_revision(self) -> int:
        """A number that grows with every alias change of any model (0: none yet).

        One primary-key read, for pollers: a server re-resolves its champions when it moved,
        whoever moved the alias (``keel models alias``, a promote, a rollback, a registration
        with ``--alias``).
        """
        with self._db("reading the alias revision") as conn:
            value = conn.execute(select(func.max(alias_history.c.id))).scalar()
        return int(value or 0)

    def remove_alias(self, name: str, alias: str, actor: str | None = None,
                     reason: str = "") -> AliasChange:
        """Remove ``alias`` from ``name``; the history records ``to_version=None``.

        Raises:
            ModelNotFoundError: no such model, or the model has no such alias.
        """
        who = actor or default_actor()
        events: list[_Event] = []

        def drop(conn: Connection) -> AliasChange:
            events.clear()
            model_id = self._model_id(conn, name)
            _lock_model(conn, model_id)
            change = _move_alias(conn, model_id, name, alias, None, who, reason)
            if change is None:
                raise ModelNotFoundError(f"Model '{name}' has no alias '{alias}' to remove.")
            events.append(_alias_event(change))
            self._audit_in(conn, events)
            return change

        result = self._retrying(drop)
        self._audit_after(events)
        return result

    def alias_history(self, name: str) -> list[AliasChange]:
        """Every alias change of ``name``, oldest first.

        Raises:
            ModelNotFoundError: no model has that name.
        """
        with self._db("reading the alias history") as conn:
            model_id = self._model_id(conn, name)
            rows = conn.execute(select(alias_history).where(alias_history.c.model_id == model_id)
                                .order_by(alias_history.c.id)).mappings().all()
        return [AliasChange(name, r["alias"], r["from_version"], r["to_version"], r["actor"],
                            r["reason"], _aware(r["changed_at"])) for r in rows]

    # ------------------------------------------------------------------ audit
    def _audit_shares_transaction(self) -> bool:
        """Whether the audit sink is an audit log of this very database."""
        return isinstance(self.audit, AuditLog) and self.audit.engine.url == self.engine.url

    def _audit_in(self, conn: Connection, events: list[_Event]) -> None:
        """Append ``events`` inside the registry's transaction, when the sink allows it."""
        if not events or not self._audit_shares_transaction():
            return
        audit: AuditLog = self.audit  # type: ignore[assignment]
        for actor, action, target, details in events:
            audit.append_in(conn, actor=actor, action=action, target=target, details=details)

    def _audit_after(self, events: list[_Event]) -> None:
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
    def _db(self, what: str) -> AbstractContextManager[Connection]:
        return connection(self.engine, "registry store", what)

    def _retrying(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a transaction, again on a uniqueness conflict or a busy database."""
        return retrying_transaction(self.engine, work, store="registry store",
                                    what="writing the registry")

    def _model_id(self, conn: Connection, name: str) -> int:
        model_id = conn.execute(select(models.c.id).where(models.c.name == name)).scalar()
        if model_id is None:
            names = list(conn.execute(select(models.c.name).order_by(models.c.name)).scalars())
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            known = ", ".join(names[:20]) or "none"
            raise ModelNotFoundError(
                f"No model named '{name}' is registered (models: {known}).{hint} Register it "
                "with 'keel models register NAME PATH --runtime KIND'.")
        return int(model_id)

    def _aliases(self, conn: Connection, model_id: int) -> dict[str, int]:
        rows = conn.execute(select(model_aliases.c.alias, model_aliases.c.version)
                            .where(model_aliases.c.model_id == model_id)).all()
        return {alias: number for alias, number in rows}

    def _versions(self, conn: Connection, model_id: int, name: str,
                  version: int | None = None) -> list[ModelVersion]:
        query = select(model_versions).where(model_versions.c.model_id == model_id)
        if version is not None:
            query = query.where(model_versions.c.version == version)
        rows = conn.execute(query.order_by(model_versions.c.version)).mappings().all()
        by_version: dict[int, list[str]] = {}
        for alias, number in sorted(self._aliases(conn, model_id).items()):
            by_version.setdefault(number, []).append(alias)
        return [_to_version(name, r, tuple(by_version.get(r["version"], ()))) for r in rows]

    def _no_version(self, conn: Connection, model_id: int, name: str,
                    version: int) -> ModelNotFoundError:
        numbers = list(conn.execute(select(model_versions.c.version)
                                    .where(model_versions.c.model_id == model_id)
                                    .order_by(model_versions.c.version)).scalars())
        have = f"versions {numbers[0]}..{numbers[-1]}" if numbers else "no versions"
        return ModelNotFoundError(f"Model '{name}' has no version {version} ({have}).")


# --------------------------------------------------------------------------- helpers
def _lock_model(conn: Connection, model_id: int) -> None:
    """Take the model's write lock for the rest of the transaction, before reading anything.

    A no-op update: PostgreSQL locks the row, SQLite takes its database write lock. Either way,
    writers to one model queue here instead of reading the same "current" state and racing
    (which would give two versions one number, or an alias history whose "from" skips a step).
    """
    conn.execute(models.update().where(models.c.id == model_id).values(name=models.c.name))


def _move_alias(conn: Connection, model_id: int, name: str, alias: str, to_version: int | None,
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


def _alias_event(change: AliasChange) -> _Event:
    action = "alias.remove" if change.to_version is None else "alias.set"
    return (change.actor, action, f"{change.name}@{change.alias}",
            {"from_version": change.from_version, "to_version": change.to_version,
             "reason": change.reason})


def _to_version(name: str, r: RowMapping, aliases: tuple[str, ...]) -> ModelVersion:
    return ModelVersion(
        name=name, version=r["version"], runtime=r["runtime"], artifact_uri=r["artifact_uri"],
        sha256=r["sha256"], size=r["size"], created_at=_aware(r["created_at"]),
        created_by=r["created_by"], git_commit=r["git_commit"], git_dirty=r["git_dirty"],
        dataset_version=r["dataset_version"], metrics=r["metrics"] or {},
        environment=r["environment"] or {}, options=r["options"] or {}, aliases=aliases,
    )


def _aware(value: datetime) -> datetime:
    # SQLite hands timestamps back without a zone; they were written in UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _check_runtime(runtime: str) -> str:
    from keelwork.spec.kinds import runtime_kinds

    kinds = runtime_kinds()
    if runtime in kinds:
        return runtime
    close = difflib.get_close_matches(runtime, kinds, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise RegistryError(f"The runtime {runtime!r} is not a known runtime kind; use one of "
                        f"{', '.join(kinds)}.{hint}")


def _check_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise RegistryError("Runtime options must be an object of name -> value; got "
                            f"{type(options).__name__}.")
    try:
        return dict(json.loads(json.dumps(dict(options), allow_nan=False)))
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"Runtime options must be plain JSON values: {exc}.") from None


def _artifact_source(name: str, artifact: str | Path, runtime: str) -> Path | str:
    """A file/directory to store, or (``python`` runtime) the ``module:function`` text."""
    text = str(artifact)
    if runtime == CALLABLE_RUNTIME:
        if isinstance(artifact, str) and is_callable_reference(text):
            return text
        raise ArtifactError(
            f"The 'python' runtime takes a 'module:function' reference as its artifact "
            f"(e.g. 'my_package.model:predict'); got {text!r} for model '{name}'. Give the "
            "import path of the function, or pick the runtime kind that loads this file.")
    path = Path(artifact).expanduser()
    if not path.exists():
        hint = (" It looks like a 'module:function' reference: use --runtime python for a "
                "Python callable." if is_callable_reference(text) else "")
        raise ArtifactError(
            f"The artifact '{text}' for model '{name}' does not exist (looked at "
            f"'{path.absolute()}'). Check the path; relative paths start at the current "
            f"directory.{hint}")
    return path


def _refuse_pickles(name: str, runtime: str, source: Path, options: Mapping[str, Any]) -> None:
    """Without loading: refuse an artifact that serving would unpickle (``--no-verify`` skips
    the load, never this check)."""
    from keelwork.adapters.runtimes import runtime_class
    from keelwork.adapters.runtimes.base import BaseRuntime, refuse_or_warn_pickle

    factory = runtime_class(runtime)
    finder = getattr(factory, "pickled_parts", None) or BaseRuntime.pickled_parts
    pickled = finder(source, options)
    if pickled:
        try:
            refuse_or_warn_pickle(pickled[0], False, runtime)
        except UnsafeArtifactError as exc:
            raise _with_context(exc, f"Model '{name}' was not registered (--no-verify skips "
                                "loading the model, not this check)") from None


def _verify_loads(name: str, runtime: str, source: Path | str, options: Mapping[str, Any],
                  allow_unsafe_pickle: bool) -> None:
    """Load the artifact with its runtime and unload it; re-raise failures with context."""
    try:
        from keelwork.adapters.runtimes import load_runtime
    except ImportError as exc:
        raise ModelLoadError(
            f"Cannot verify model '{name}': the runtimes are not available ({exc}). "
            "Register without verification only if you have checked the artifact yourself."
        ) from None
    try:
        loaded = load_runtime(runtime, source, options,
                              allow_unsafe_pickle=allow_unsafe_pickle)
        loaded.unload()
    except (ModelLoadError, ArtifactError) as exc:  # UnsafeArtifactError included
        # Runtime messages already name the runtime, the file and the fix.
        raise _with_context(exc, f"Model '{name}' was not registered") from None
    except KeelworkError:
        raise
    except Exception as exc:  # a library error the runtime did not translate
        raise ModelLoadError(
            f"Model '{name}' was not registered: the '{runtime}' runtime could not load "
            f"'{source}': {type(exc).__name__}: {exc}. Check that the artifact was saved for "
            "this runtime."
        ) from None


def _with_context(exc: KeelworkError, prefix: str) -> KeelworkError:
    message = f"{prefix}: {exc.message}"
    try:
        return type(exc)(message, exc.details)
    except TypeError:  # a subclass with its own constructor
        exc.message = message
        exc.args = (message,)
        return exc


def _store_error(what: str, engine: Engine, exc: SQLAlchemyError) -> StoreError:
    return store_error("registry store", what, engine, exc)


# --------------------------------------------------------------------------- opening
def default_storage_url(project_dir: Path) -> str:
    """The embedded default: ``sqlite:///<project>/.keel/keel.db``."""
    return f"sqlite:///{Path(project_dir).absolute() / '.keel' / 'keel.db'}"


def open_registry(project_dir: Path, storage_url: str | None = None, *,
                  audit: AuditSink | bool = True) -> SqlRegistry:
    """Open (creating if needed) the registry of a project.

    Args:
        project_dir: The project directory; artifacts live in ``<project_dir>/.keel/artifacts``.
        storage_url: SQLAlchemy URL of the metadata store; default :func:`default_storage_url`.
        audit: ``True``: record changes in the store's own audit log, in the same transaction;
            ``False``: record nothing; a sink: record there, after each commit.

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
            log = project_audit_log(engine, project_dir)
            log.ensure_schema()
            sink = log
    except BaseException:
        engine.dispose()
        raise
    return SqlRegistry(engine, ArtifactStore(Path(project_dir).absolute() / ".keel" / "artifacts"),
                       sink)


__all__ = [
    "TRACKED_PACKAGES",
    "SqlRegistry",
    "capture_environment",
    "default_actor",
    "default_storage_url",
    "git_state",
    "open_registry",
]

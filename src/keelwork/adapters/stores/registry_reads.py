"""Reading the model registry: models, versions, references, aliases and their history.

:class:`RegistryReads` is the read half of :class:`~keelwork.adapters.stores.registry_store.
SqlRegistry` (which adds registration and alias moves).
"""

from __future__ import annotations

import difflib
from contextlib import AbstractContextManager
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.engine import Connection

from keelwork.adapters.stores.artifacts import ArtifactStore
from keelwork.adapters.stores.registry_rows import aware, to_version
from keelwork.adapters.stores.schema import alias_history, model_aliases, model_versions, models
from keelwork.adapters.stores.transactions import connection
from keelwork.core.registry import (
    DEFAULT_ALIAS,
    AliasChange,
    ModelRef,
    ModelSummary,
    ModelVersion,
    check_version,
    parse_model_ref,
)
from keelwork.errors import ModelNotFoundError


class RegistryReads:
    """Reads of the registry tables (and where a version's artifact is).

    Attributes:
        engine: The metadata store.
        artifacts: Where artifact blobs live.
    """

    engine: Engine
    artifacts: ArtifactStore

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
                         created_at=aware(r["created_at"]), updated_at=aware(r["updated"]))
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

    def alias_revision(self) -> int:
        """A number that grows with every alias change of any model (0: none yet).

        One primary-key read, for pollers: a server re-resolves its champions when it moved,
        whoever moved the alias (``keel models alias``, a promote, a rollback, a registration
        with ``--alias``).
        """
        with self._db("reading the alias revision") as conn:
            value = conn.execute(select(func.max(alias_history.c.id))).scalar()
        return int(value or 0)

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
                            r["reason"], aware(r["changed_at"])) for r in rows]

    def _db(self, what: str) -> AbstractContextManager[Connection]:
        return connection(self.engine, "registry store", what)

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
        return [to_version(name, r, tuple(by_version.get(r["version"], ()))) for r in rows]

    def _no_version(self, conn: Connection, model_id: int, name: str,
                    version: int) -> ModelNotFoundError:
        numbers = list(conn.execute(select(model_versions.c.version)
                                    .where(model_versions.c.model_id == model_id)
                                    .order_by(model_versions.c.version)).scalars())
        have = f"versions {numbers[0]}..{numbers[-1]}" if numbers else "no versions"
        return ModelNotFoundError(f"Model '{name}' has no version {version} ({have}).")




__all__ = ["RegistryReads"]

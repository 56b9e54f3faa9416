"""Dataset snapshots: immutable, content-addressed Parquet on disk plus their versions in SQL.

Files under ``root`` (by default ``<project>/.keel/datasets``)::

    <sha256>/<layout>/manifest.json          parts, rows, bucket ranges, file hashes
    <sha256>/<layout>/part-00000.parquet     the rows, in the layout's order
    tmp/<random>/                            snapshots in progress (renamed into place whole)

``sha256`` is the content hash of :mod:`keelwork.core.datasets` (rows, not file bytes).
``layout`` is ``rows`` without a subject column, else ``subject-<16 hex digits of the column
name's hash>``: rows sorted by the subject key's erasure bucket, parts cut only at bucket
boundaries, and each part's and row group's bucket range in the manifest, so that the rows of
one data subject live in one known part (see docs/design/erasure-in-snapshots.md).

Tables (own ``MetaData``, schema kind ``datasets``)::

    datasets          id (PK), name (unique), created_at, created_by
    dataset_versions  id (PK), dataset_id -> datasets, version, sha256, uri, rows, size,
                      schema, profile (JSON), subject_column, source, created_at, created_by;
                      unique (dataset_id, version)

A snapshot is built in memory: the rows are sorted to hash them and to lay them out, so a file
must fit in memory a few times over (1M rows x 4 columns, a 35 MB CSV: about 2 s).

Versions: snapshotting content equal to the *latest* version of the name (same subject column)
returns that version and writes nothing, so a pipeline that snapshots before every training run
gets one version per distinct content. Content equal to an older version, or under another name,
gets a new version row; its bytes are stored once.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from datetime import UTC
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.engine import Connection, RowMapping

from keelwork.adapters.stores.artifacts import hash_file
from keelwork.adapters.stores.dataset_files import (
    Progress,
    check_subject,
    layout_of,
    read_part,
    write_parts,
)
from keelwork.adapters.stores.dataset_sealing import (
    CODEC,
    Erased,
    can_seal,
    redacted,
    schema_text,
    seal_part,
)
from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.registry_store import default_actor, default_storage_url
from keelwork.adapters.stores.schema import create_tables, stamp_schema
from keelwork.adapters.stores.subject_keys import keys_for, seal_for
from keelwork.adapters.stores.transactions import (
    connection,
    retrying_transaction,
)
from keelwork.core.datasets import (
    DatasetProfile,
    DatasetRef,
    DatasetVersion,
    canonicalize,
    check_dataset_name,
    compute_profile,
    content_sha256,
    parse_dataset_ref,
    subject_hash,
    utc_now,
)
from keelwork.errors import KeelworkError, RegistryError

DATASETS_SCHEMA_KIND = "datasets"
DATASETS_SCHEMA_VERSION = 1
T = TypeVar("T")
_ATTEMPTS = 30

metadata = MetaData()

datasets = Table(
    "datasets", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(256), nullable=False),
)

dataset_versions = Table(
    "dataset_versions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset_id", Integer, ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("uri", Text, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("schema", JSON, nullable=False),
    Column("profile", JSON, nullable=False),
    Column("subject_column", Text, nullable=True),
    Column("source", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(256), nullable=False),
    UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_dataset_version"),
    Index("ix_dataset_versions_sha256", "sha256"),
)


def ensure_schema(engine: Engine) -> None:
    """Create the dataset tables if missing and check/stamp their schema version.

    Raises:
        StoreError: the database is unreachable or holds a newer schema than this keelwork knows.
    """
    create_tables(engine, metadata, "dataset")
    stamp_schema(engine, DATASETS_SCHEMA_KIND, DATASETS_SCHEMA_VERSION)


class DatasetStore:
    """Snapshots of data files: Parquet parts under ``root``, versions in SQL.

    ``user`` is who takes a snapshot when a call names no one (the ``user`` setting); default
    the OS user.
    """

    def __init__(self, engine: Engine, root: Path, *, part_rows: int = 1_000_000,
                 row_group_rows: int = 65_536, user: str | None = None) -> None:
        self.engine = engine
        self.root = Path(root)
        self.user = user
        self.part_rows = part_rows
        self.row_group_rows = row_group_rows

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> DatasetStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ snapshot
    def snapshot_table(self, table: Any, name: str, subject_column: str | None = None, *,
                       source: str, created_by: str | None = None,
                       progress: Progress | None = None) -> DatasetVersion:
        """Record a table read from a data file as the next version of dataset ``name``.

        Reading the file is the snapshot use-case's
        (:func:`keelwork.service.datasets.snapshot_file`).

        Args:
            table: The rows, an Arrow table.
            name: The dataset name (created on first snapshot).
            subject_column: The column naming the data subject of each row; the rows are then
                laid out so that one subject's rows can be erased without rewriting the rest.
            created_by: Who takes it; default the store's ``user``, else the OS user.
            source: Where the rows come from (the file's absolute path), recorded.
            progress: Called as parts are written.

        Returns:
            The new version, or the latest one when its content (and subject column) is equal.

        Raises:
            DataFileError: the table lacks the subject column (or it holds no identifiers).
            RegistryError: the name is invalid.
            StoreError: the database failed.
        """
        check_dataset_name(name)
        table = canonicalize(table, source=source)
        if subject_column is not None:
            check_subject(table, subject_column, source)
        sha = content_sha256(table)
        # Rows naming a subject are sealed under its snapshot key when the project's key
        # store can seal (module dataset_sealing); else stored in clear (erased by rewriting).
        keys = seal_for(self.engine) if subject_column is not None else None
        if keys is not None and not can_seal(table.schema):
            keys = None
        profile = compute_profile(table, redact=redacted(table.schema, subject_column,
                                                         sealed=keys is not None))
        layout = layout_of(subject_column, sealed=keys is not None)
        final = self.root / sha / layout
        created = False
        if (final / "manifest.json").is_file() and '"erasures"' in (
                final / "manifest.json").read_text(encoding="utf-8"):
            raise RegistryError(f"'{source}' holds the same rows as a snapshot a data subject "
                                "was erased from: the source still holds that subject. Erase "
                                "it from the source first (keel erase --subject).")
        if not (final / "manifest.json").is_file():
            seal = None if keys is None or subject_column is None else (
                lambda rows: seal_part(rows, subject_column, sha, keys))
            created = write_parts(
                self.root, table, sha, subject_column, final, progress,
                part_rows=self.part_rows, row_group_rows=self.row_group_rows, transform=seal,
                extra=None if seal is None else {"sealed": {
                    "codec": CODEC, "schema": schema_text(table.schema)}})
        row: dict[str, Any] = {
            "sha256": sha, "uri": f"{sha}/{layout}", "rows": table.num_rows,
            "size": sum(p.stat().st_size for p in final.glob("part-*.parquet")),
            "schema": [[n, str(t)] for n, t in zip(table.column_names, table.schema.types,
                                                   strict=True)],
            "profile": profile.as_dict(), "subject_column": subject_column, "source": source,
            "created_at": utc_now(), "created_by": created_by or default_actor(self.user),
        }
        try:
            number = self._retrying(lambda conn: self._insert(conn, name, row))
        except BaseException:
            if created:
                with suppress(OSError, KeelworkError):
                    self._remove_unreferenced(row["uri"])
            raise
        return self.get(name, number)

    def _insert(self, conn: Connection, name: str, row: dict[str, Any]) -> int:
        dataset_id = conn.execute(select(datasets.c.id).where(datasets.c.name == name)).scalar()
        if dataset_id is None:
            dataset_id = conn.execute(datasets.insert().values(
                name=name, created_at=row["created_at"], created_by=row["created_by"],
            )).inserted_primary_key[0]  # type: ignore[index]
        else:
            # Lock the dataset first: concurrent snapshots queue here instead of racing.
            conn.execute(datasets.update().where(datasets.c.id == dataset_id)
                         .values(name=datasets.c.name))
        latest = conn.execute(
            select(dataset_versions.c.version, dataset_versions.c.sha256,
                   dataset_versions.c.subject_column, dataset_versions.c.uri)
            .where(dataset_versions.c.dataset_id == dataset_id)
            .order_by(dataset_versions.c.version.desc()).limit(1)).first()
        if latest is not None and (latest.sha256, latest.subject_column, latest.uri) == (
                row["sha256"], row["subject_column"], row["uri"]):
            return int(latest.version)
        number = 1 if latest is None else int(latest.version) + 1
        conn.execute(dataset_versions.insert().values(dataset_id=dataset_id, version=number,
                                                      **row))
        return number

    def _remove_unreferenced(self, uri: str) -> None:
        with self._db("checking snapshot references") as conn:
            used = conn.execute(select(dataset_versions.c.id)
                                .where(dataset_versions.c.uri == uri).limit(1)).first()
        if used is None:
            trash = self.root / "tmp" / f"rm-{uuid.uuid4().hex}"
            (self.root / uri).rename(trash)
            shutil.rmtree(trash, ignore_errors=True)

    # ------------------------------------------------------------------ read
    def list_versions(self, name: str | None = None) -> list[DatasetVersion]:
        """Every version (of ``name``, or of every dataset), by name then version.

        Raises:
            RegistryError: ``name`` is given and no dataset has it.
        """
        with self._db("listing snapshots") as conn:
            query = self._select()
            if name is not None:
                self._dataset_id(conn, name)
                query = query.where(datasets.c.name == name)
            rows = conn.execute(query.order_by(datasets.c.name, dataset_versions.c.version)
                                ).mappings().all()
        return [_to_version(r) for r in rows]

    def get(self, name: str, version: int) -> DatasetVersion:
        """One version of ``name``.

        Raises:
            RegistryError: no such dataset or version.
        """
        with self._db("reading a snapshot") as conn:
            found = conn.execute(self._select().where(
                datasets.c.name == name, dataset_versions.c.version == version)).mappings().first()
            if found is None:
                self._dataset_id(conn, name)
                numbers = list(conn.execute(
                    select(dataset_versions.c.version).join(datasets)
                    .where(datasets.c.name == name).order_by(dataset_versions.c.version)
                ).scalars())
                have = f"versions {numbers[0]}..{numbers[-1]}" if numbers else "no versions"
                raise RegistryError(f"Dataset '{name}' has no version {version} ({have}). "
                                    "List snapshots with 'keel data list'.")
        return _to_version(found)

    def latest(self, name: str) -> DatasetVersion | None:
        """The highest version of ``name``; ``None`` when no dataset has that name."""
        with self._db("reading a snapshot") as conn:
            found = conn.execute(self._select().where(datasets.c.name == name)
                                 .order_by(dataset_versions.c.version.desc()).limit(1)
                                 ).mappings().first()
        return None if found is None else _to_version(found)

    def resolve(self, ref: str | DatasetRef) -> DatasetVersion:
        """``name:3`` or ``name`` (its latest version).

        Raises:
            RegistryError: the reference is malformed, or names no snapshot.
        """
        parsed = parse_dataset_ref(ref) if isinstance(ref, str) else ref
        if parsed.version is not None:
            return self.get(parsed.name, parsed.version)
        found = self.latest(parsed.name)
        if found is None:
            with self._db("reading a snapshot") as conn:
                self._dataset_id(conn, parsed.name)
            raise RegistryError(f"Dataset '{parsed.name}' has no versions.")  # pragma: no cover
        return found

    def exists(self, ref: str) -> bool:
        """Whether ``ref`` (``name:3`` or ``name``) names a snapshot; malformed refs do not."""
        try:
            parsed = parse_dataset_ref(ref)
        except RegistryError:
            return False
        with self._db("checking a snapshot reference") as conn:
            query = select(dataset_versions.c.id).join(datasets).where(
                datasets.c.name == parsed.name)
            if parsed.version is not None:
                query = query.where(dataset_versions.c.version == parsed.version)
            return conn.execute(query.limit(1)).first() is not None

    def path_of(self, version: DatasetVersion) -> Path:
        """The directory holding a version's manifest and parts.

        Raises:
            RegistryError: the directory is gone (deleted from the store by hand?).
        """
        directory = self.root / version.uri
        if not (directory / "manifest.json").is_file():
            raise RegistryError(f"The files of snapshot {version.ref} are missing (looked in "
                                f"'{directory}'); snapshot the source again.")
        return directory

    def manifest(self, version: DatasetVersion) -> dict[str, Any]:
        """The manifest of a version: its parts with rows, bucket ranges and file hashes."""
        text = (self.path_of(version) / "manifest.json").read_text(encoding="utf-8")
        data: dict[str, Any] = json.loads(text)
        return data

    def read(self, ref: str | DatasetVersion, columns: list[str] | None = None, *,
             erased: Erased = "drop") -> Any:
        """The rows of a snapshot as one ``pyarrow.Table`` (parts concatenated in order).

        Sealed rows open with the key store of the store's database (``keys_for``); the rows
        of an erased subject (key gone) are left out, as an erasure that rewrites a part
        leaves them out, or with ``erased="null"`` kept with every field null.
        """
        import pyarrow as pa

        version = ref if isinstance(ref, DatasetVersion) else self.resolve(ref)
        directory, manifest = self.path_of(version), self.manifest(version)
        keys = keys_for(self.engine) if manifest.get("sealed") else None
        return pa.concat_tables([read_part(directory / p["file"], manifest, keys, columns,
                                           erased=erased)[0] for p in manifest["parts"]])

    def verify(self, ref: str | DatasetVersion) -> DatasetVersion:
        """Re-hash every part file and the rows themselves against the recorded hashes.

        Raises:
            RegistryError: a part is missing or altered, or the rows no longer hash to sha256.
        """
        version = ref if isinstance(ref, DatasetVersion) else self.resolve(ref)
        directory = self.path_of(version)
        for part in self.manifest(version)["parts"]:
            file = directory / part["file"]
            if not file.is_file() or hash_file(file)[0] != part["sha256"]:
                raise RegistryError(f"The part '{file}' of snapshot {version.ref} is missing or "
                                    "altered; snapshot the source again.")
        rows, manifest = self.read(version), self.manifest(version)
        if rows.num_rows < int(manifest["rows"]):  # sealed rows whose key no erasure destroyed
            raise RegistryError(
                f"{int(manifest['rows']) - rows.num_rows} sealed rows of snapshot {version.ref} "
                "do not open: their keys are not in the key store (is the project's attached?).")
        actual = content_sha256(canonicalize(rows, source=str(directory)))
        # After a subject's erasure the rows held are the manifest's current ones.
        expected = manifest.get("current_sha256", version.sha256)
        if actual != expected:
            raise RegistryError(f"The rows of snapshot {version.ref} hash to {actual}, not "
                                f"{expected}; snapshot the source again.")
        return version

    def locate_subject(self, ref: str | DatasetVersion, key: Any) -> list[tuple[Path, list[int]]]:
        """Which part files and row groups may hold the rows of subject ``key``.

        Only parts whose bucket range holds the key's bucket are named, so erasing a subject
        rewrites those parts and leaves every other file untouched.

        Raises:
            RegistryError: the snapshot was taken without a subject column.
        """
        version = ref if isinstance(ref, DatasetVersion) else self.resolve(ref)
        manifest = self.manifest(version)
        if manifest.get("subject_column") is None:
            raise RegistryError(f"Snapshot {version.ref} has no subject column; every part may "
                                "hold any subject. Snapshot with --subject-column to locate one.")
        bucket = subject_hash(key) >> (64 - int(manifest["bucket_bits"]))
        directory = self.path_of(version)
        return [(directory / p["file"],
                 [i for i, g in enumerate(p["row_groups"])
                  if g["bucket_min"] <= bucket <= g["bucket_max"]])
                for p in manifest["parts"] if p["bucket_min"] <= bucket <= p["bucket_max"]]

    # ------------------------------------------------------------------ internals
    def _select(self) -> Any:
        return select(dataset_versions, datasets.c.name).join(
            datasets, datasets.c.id == dataset_versions.c.dataset_id)

    def _dataset_id(self, conn: Connection, name: str) -> int:
        found = conn.execute(select(datasets.c.id).where(datasets.c.name == name)).scalar()
        if found is None:
            names = list(conn.execute(select(datasets.c.name).order_by(datasets.c.name))
                         .scalars())
            import difflib

            close = difflib.get_close_matches(name, names, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise RegistryError(
                f"No dataset named '{name}' has been snapshotted (datasets: "
                f"{', '.join(names[:20]) or 'none'}).{hint} See 'keel data list'; take one "
                "with 'keel data snapshot PATH --name NAME'.")
        return int(found)

    def _db(self, what: str) -> AbstractContextManager[Connection]:
        return connection(self.engine, "dataset store", what)

    def _retrying(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a transaction, again on a uniqueness conflict or a busy database."""
        return retrying_transaction(self.engine, work, store="dataset store",
                                    what="recording a snapshot")


def _to_version(r: RowMapping) -> DatasetVersion:
    created = r["created_at"]
    return DatasetVersion(
        name=r["name"], version=int(r["version"]), sha256=r["sha256"],
        schema=tuple((str(c), str(t)) for c, t in r["schema"]), rows=int(r["rows"]),
        created_at=created if created.tzinfo is not None else created.replace(tzinfo=UTC),
        created_by=r["created_by"], source=r["source"],
        profile=DatasetProfile.from_dict(r["profile"]), subject_column=r["subject_column"],
        size=int(r["size"]), uri=r["uri"])


def open_dataset_store(project_dir: Path, storage_url: str | None = None, *,
                       user: str | None = None) -> DatasetStore:
    """Open (creating tables if needed) the snapshot store of a project.

    Args:
        project_dir: The project; snapshots live in ``<project_dir>/.keel/datasets``.
        storage_url: SQLAlchemy URL of the metadata store; default the project's SQLite file.
        user: Who takes snapshots when a call names no one (the ``user`` setting).

    Returns:
        A store; close it (or use it as a context manager) when done.

    Raises:
        StoreError: the store is unreachable or written by a newer keelwork.
    """
    engine = make_engine(storage_url or default_storage_url(project_dir))
    try:
        ensure_schema(engine)
    except BaseException:
        engine.dispose()
        raise
    return DatasetStore(engine, Path(os.path.abspath(project_dir)) / ".keel" / "datasets",  # noqa: PTH100
                        user=user)


__all__ = [
    "DATASETS_SCHEMA_KIND",
    "DATASETS_SCHEMA_VERSION",
    "DatasetStore",
    "dataset_versions",
    "datasets",
    "ensure_schema",
    "metadata",
    "open_dataset_store",
]

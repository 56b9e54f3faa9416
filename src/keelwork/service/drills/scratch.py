"""A scratch copy of a project for the drills: keel.yaml, the project's files, the registry's
artifacts and a store of its own, in a temporary directory removed afterwards.

The store: a SQLite project's database is copied with the online backup API (registry,
aliases, references and all); a PostgreSQL project gets a new database on the same server
(:func:`~keelwork.adapters.stores.store_copy.create_scratch_database`), empty, so ``keel serve``
registers the models keel.yaml names. Its URL reaches the scratch keel.yaml through an
environment variable, so that no password is written to disk.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from keelwork.errors import DrillUnavailable
from keelwork.spec.model import ResolvedSpec
from keelwork.spec.settings import ENV_PREFIX, child_environment

#: The variable the scratch keel.yaml reads its store's URL from.
URL_VARIABLE = "KEEL_CHECK_SCRATCH_URL"
#: Longest the copy of a SQLite store may take.
COPY_TIMEOUT_S = 60.0
#: Largest copy of the project's files a drill makes.
MAX_COPY_BYTES = 1 << 30
#: Never copied: version control, environments, caches, and the store (copied apart).
_SKIPPED = {".git", ".keel", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache",
            ".pytest_cache", ".ruff_cache"}


@dataclass(frozen=True, slots=True)
class Scratch:
    """A scratch copy of a project.

    Attributes:
        root: Its directory.
        spec_path: Its keel.yaml.
        url: Its store.
        env: The environment its processes run with (the store's URL in it; settings that
            would reach the user's store or anchors removed).
        copied_store: Whether the user's store was copied (else the scratch store is empty).
    """

    root: Path
    spec_path: Path
    url: str
    env: dict[str, str]
    copied_store: bool

    def load(self) -> ResolvedSpec:
        """The scratch keel.yaml, loaded as its processes load it."""
        from keelwork.spec import load_spec

        return load_spec(self.spec_path, env=self.env)


@contextmanager
def scratch_project(resolved: ResolvedSpec, store_url: str) -> Iterator[Scratch]:
    """A scratch copy of ``resolved``'s project, removed when the block ends.

    Args:
        resolved: The user's keel.yaml.
        store_url: The user's store (read only).

    Raises:
        DrillUnavailable: the project is too large to copy, or no scratch database can be
            created on its PostgreSQL server.
    """
    from keelwork.adapters.stores.store_copy import (
        create_scratch_database,
        drop_database,
        is_postgres,
        sqlite_backup,
        sqlite_file,
    )
    from keelwork.errors import StoreError

    with tempfile.TemporaryDirectory(prefix="keel-drill-") as tmp:
        root = Path(tmp) / "project"
        _copy_tree(resolved.project_dir, root)
        artifacts = resolved.keel_dir / "artifacts"
        if artifacts.is_dir():
            shutil.copytree(artifacts, root / ".keel" / "artifacts", symlinks=True)
        source = sqlite_file(store_url)
        dropped: str | None = None
        if source is not None:
            url = f"sqlite:///{root / '.keel' / 'keel.db'}"
            if source.exists():
                try:
                    sqlite_backup(source, root / ".keel" / "keel.db", COPY_TIMEOUT_S)
                except StoreError as exc:
                    raise DrillUnavailable(f"no scratch copy: {exc.message}") from None
        elif is_postgres(store_url):
            try:
                url = dropped = create_scratch_database(store_url)
            except StoreError as exc:
                raise DrillUnavailable(f"no scratch database: {exc.message}") from None
        else:
            raise DrillUnavailable(f"a store of kind '{store_url.split(':', 1)[0]}' cannot "
                                     "be copied by this version")
        try:
            spec_path = root / resolved.path.name
            _write_spec(resolved.path, spec_path)
            env = child_environment(drop=(f"{ENV_PREFIX}STORAGE_URL",
                                          f"{ENV_PREFIX}AUDIT_ANCHOR"))
            env[URL_VARIABLE] = url
            yield Scratch(root, spec_path, url, env, source is not None and source.exists())
        finally:
            if dropped is not None:
                drop_database(dropped)


def _copy_tree(source: Path, dest: Path) -> None:
    total = 0

    def skip(folder: str, names: list[str]) -> set[str]:
        nonlocal total
        out = {n for n in names if n in _SKIPPED}
        for n in names:
            p = Path(folder) / n
            if n not in out and p.is_file() and not p.is_symlink():
                total += p.stat().st_size
        if total > MAX_COPY_BYTES:
            raise DrillUnavailable(f"the project's files pass {MAX_COPY_BYTES >> 20} MiB: "
                                     "too large for a scratch copy")
        return out

    shutil.copytree(source, dest, ignore=skip, symlinks=True)


def _write_spec(source: Path, dest: Path) -> None:
    """The user's keel.yaml with ``storage`` pointed at the scratch store (its spool and
    subject keys then default to the scratch directory)."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt", pure=True)
    data = yaml.load(source.read_text(encoding="utf-8"))
    storage = dict(data.get("storage") or {})
    for key in ("spool_dir", "subject_keys_url"):
        storage.pop(key, None)
    storage["url"] = "${" + URL_VARIABLE + "}"
    data["storage"] = storage
    with dest.open("w", encoding="utf-8") as f:
        yaml.dump(data, f)


__all__ = ["URL_VARIABLE", "Scratch", "scratch_project"]

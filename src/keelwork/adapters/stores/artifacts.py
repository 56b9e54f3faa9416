"""A content-addressed artifact store on the local file system.

Layout under ``root`` (by default ``<project>/.keel/artifacts``)::

    sha256/<hh>/<hash>/<original name>    a file or a whole directory, named as it was
    tmp/<random>/<original name>          copies in progress (renamed into place when complete)

The original name is kept because runtimes pick a loader by extension (``model.skops``,
``model.onnx``) and directory models (Hugging Face, MLflow) are opened by their folder.
A blob appears under ``sha256/`` only by one atomic ``rename`` of its finished copy, so a blob that
exists is always complete. Storing the same bytes twice stores them once.

Hashes are streamed (1 MiB chunks); no file is ever read into memory whole. A directory's hash
covers its sorted relative paths, each entry's type and each file's contents, so it does not
depend on the order the file system lists them in, on timestamps or on permissions.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from keelwork.errors import ArtifactError

_CHUNK = 1 << 20
_HEX = frozenset("0123456789abcdef")
# Domain tags: the hash of a directory can never equal the hash of a file's bytes.
_DIR_TAG = b"keelwork-dir-v1\0"


class StoredArtifact(NamedTuple):
    """The result of :meth:`ArtifactStore.put`: ``(sha256, size, uri, created)``."""

    sha256: str
    size: int
    uri: str
    created: bool


def hash_file(path: Path) -> tuple[str, int]:
    """Stream ``path`` through SHA-256; return ``(hex digest, size in bytes)``.

    Raises:
        ArtifactError: the file cannot be read.
    """
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise ArtifactError(f"The artifact file '{path}' cannot be read: {exc.strerror or exc}. "
                            "Check that it exists and is readable.") from None
    return digest.hexdigest(), size


def hash_tree(root: Path) -> tuple[str, int]:
    """Hash a directory deterministically; return ``(hex digest, total bytes of its files)``.

    Symbolic links are followed (Hugging Face caches are made of them); a link loop or a link
    whose target is missing is an error.

    Raises:
        ArtifactError: an entry cannot be read, a link is broken or loops.
    """
    digest = hashlib.sha256(_DIR_TAG)
    total = 0
    for rel, kind in _walk(root):
        name = rel.encode("utf-8", "surrogateescape")
        if kind == "d":
            digest.update(b"d\0" + name + b"\0")
            continue
        file_hex, size = hash_file(root / rel)
        digest.update(b"f\0" + name + b"\0" + str(size).encode() + b"\0" + file_hex.encode())
        total += size
    return digest.hexdigest(), total


def hash_path(path: Path) -> tuple[str, int]:
    """:func:`hash_file` or :func:`hash_tree`, by what ``path`` is.

    Raises:
        ArtifactError: ``path`` does not exist or cannot be read.
    """
    if path.is_dir():
        return hash_tree(path)
    if path.is_file():
        return hash_file(path)
    raise _missing(path)


def _walk(root: Path) -> list[tuple[str, str]]:
    """Every entry below ``root`` as (relative POSIX path, "f" | "d"), sorted by path."""
    out: list[tuple[str, str]] = []
    seen: set[str] = {os.path.realpath(root)}

    def visit(directory: Path, prefix: str) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            raise ArtifactError(f"The artifact directory '{directory}' cannot be listed: "
                                f"{exc.strerror or exc}.") from None
        for entry in entries:
            rel = f"{prefix}{entry.name}"
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=True):
                real = os.path.realpath(path)
                if real in seen:
                    raise ArtifactError(f"The artifact directory '{root}' contains a symbolic "
                                        f"link loop at '{rel}'; remove the link.")
                seen.add(real)
                out.append((rel, "d"))
                visit(path, rel + "/")
                seen.discard(real)
            elif entry.is_file(follow_symlinks=True):
                out.append((rel, "f"))
            elif entry.is_symlink():
                raise ArtifactError(f"The artifact directory '{root}' contains a broken symbolic "
                                    f"link '{rel}'; fix or remove it.")
            else:
                raise ArtifactError(f"The artifact directory '{root}' contains '{rel}', which is "
                                    "neither a file nor a directory (a socket or device?); "
                                    "remove it.")

    visit(root, "")
    out.sort(key=lambda item: item[0])
    return out


def _missing(path: Path) -> ArtifactError:
    return ArtifactError(f"The artifact '{path}' does not exist. Check the path (relative paths "
                         "start at the current directory).")


class ArtifactStore:
    """Content-addressed blobs (files or directories) under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # ------------------------------------------------------------------ writing
    def put(self, path: Path) -> StoredArtifact:
        """Store the file or directory at ``path`` unless the same content is already stored.

        The source is hashed first (a duplicate costs one read, no copy); a new blob is copied
        to a temporary name, hashed again as copied, and renamed into place only when the two
        hashes agree, so a source that changes meanwhile is refused instead of stored wrong.

        Returns:
            The blob's hash, size, URI (relative to ``root``) and whether this call created it.

        Raises:
            ArtifactError: the source is missing or unreadable, or changed while being copied.
        """
        # abspath, not resolve(): keep a symlink's own name (model.onnx -> blobs/3f2a...).
        path = Path(os.path.abspath(path))  # noqa: PTH100
        if not path.exists():
            raise _missing(path)
        sha, size = hash_path(path)
        existing = self._entry(sha)
        if existing is not None:
            return StoredArtifact(sha, size, self.uri_of(existing), created=False)
        try:
            return self._store_new(path, sha, size)
        except OSError as exc:
            raise ArtifactError(f"Storing the artifact '{path}' in '{self.root}' failed: {exc}. "
                                "Check free disk space and the store's permissions.") from None

    def _store_new(self, path: Path, sha: str, size: int) -> StoredArtifact:
        tmp_dir = self.root / "tmp" / uuid.uuid4().hex
        tmp_dir.mkdir(parents=True)
        try:
            target = tmp_dir / path.name
            if path.is_dir():
                shutil.copytree(path, target, symlinks=False)
            else:
                shutil.copyfile(path, target)
            copied, _ = hash_path(target)
            if copied != sha:
                raise ArtifactError(f"The artifact '{path}' changed while it was being stored "
                                    "(its hash differs before and after copying). Register it "
                                    "again once whatever writes it has finished.")
            final = self._blob_dir(sha)
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                tmp_dir.rename(final)
            except OSError:
                if self._entry(sha) is None:  # not a concurrent put of the same bytes
                    raise
                return StoredArtifact(sha, size, self.uri_of(self._entry_or_raise(sha)),
                                      created=False)
            return StoredArtifact(sha, size, self.uri_of(final / path.name), created=True)
        finally:
            if tmp_dir.exists():
                shutil.rmtree(tmp_dir, ignore_errors=True)

    def remove(self, sha256: str) -> bool:
        """Delete a blob; return whether it existed. Callers check references first."""
        blob = self._blob_dir(_check_hex(sha256))
        if not blob.exists():
            return False
        # Rename first so that no reader ever sees a half-deleted blob under its real name.
        trash = self.root / "tmp" / f"rm-{uuid.uuid4().hex}"
        trash.parent.mkdir(parents=True, exist_ok=True)
        try:
            blob.rename(trash)
        except FileNotFoundError:
            return False
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def remove_if_unreferenced(self, sha256: str, is_referenced: Callable[[str], bool]) -> bool:
        """Delete the blob unless ``is_referenced(sha256)``; return whether it was deleted.

        The caller owns the references (the registry's metadata) and answers, at the last
        moment, whether any remain; this keeps the store free of database knowledge.
        """
        if is_referenced(sha256):
            return False
        return self.remove(sha256)

    # ------------------------------------------------------------------ reading
    def path_of(self, sha256: str) -> Path:
        """The stored file or directory for ``sha256``.

        Raises:
            ArtifactError: no blob has that hash (it was deleted from the store by hand?).
        """
        return self._entry_or_raise(_check_hex(sha256))

    def exists(self, sha256: str) -> bool:
        return self._entry(_check_hex(sha256)) is not None

    def verify(self, sha256: str) -> Path:
        """Re-hash the stored blob and check it still matches its name.

        Returns:
            The blob's path.

        Raises:
            ArtifactError: the blob is missing or its content no longer matches.
        """
        path = self.path_of(sha256)
        actual, _ = hash_path(path)
        if actual != sha256:
            raise ArtifactError(f"The stored artifact '{path}' is corrupt: its content hashes "
                                f"to {actual}, not {sha256}. Register the model again from the "
                                "original file.")
        return path

    def resolve_uri(self, uri: str) -> Path:
        """The path a URI returned by :meth:`put` stands for.

        Raises:
            ArtifactError: the URI is not inside this store, or the blob is gone.
        """
        parts = uri.split("/")
        if len(parts) != 4 or parts[0] != "sha256" or parts[3] in ("", ".", ".."):
            raise ArtifactError(f"The artifact URI {uri!r} is not a stored-blob URI "
                                "('sha256/<hh>/<hash>/<name>').")
        path = self._entry_or_raise(_check_hex(parts[2]))
        if path.name != parts[3]:
            raise ArtifactError(f"The artifact URI {uri!r} does not match the stored blob "
                                f"'{path}'.")
        return path

    def uri_of(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    # ------------------------------------------------------------------ internals
    def _blob_dir(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256

    def _entry(self, sha256: str) -> Path | None:
        blob = self._blob_dir(sha256)
        try:
            entries = list(blob.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return None
        return entries[0] if len(entries) == 1 else None

    def _entry_or_raise(self, sha256: str) -> Path:
        entry = self._entry(sha256)
        if entry is None:
            raise ArtifactError(f"No stored artifact has the hash {sha256} (looked in "
                                f"'{self._blob_dir(sha256)}'). It was removed from the store; "
                                "register the model again from the original file.")
        return entry


def _check_hex(sha256: str) -> str:
    if len(sha256) != 64 or not set(sha256) <= _HEX:
        raise ArtifactError(f"An artifact hash must be 64 lowercase hex digits; got {sha256!r}.")
    return sha256


__all__ = ["ArtifactStore", "StoredArtifact", "hash_file", "hash_path", "hash_tree"]

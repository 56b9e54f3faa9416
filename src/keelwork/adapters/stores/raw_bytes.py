"""The raw bytes of a project's stores, as the PII scan of ``keel check`` reads them: which
files hold stored data, and the text in them (whatever a ``strings`` of the file would show),
read in bounded chunks; never through the database, so that rows deleted but still on disk,
the WAL and the spool are seen as an attacker with the files would see them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

#: Under ``.keel``: model artifacts (not stored data) and key files (secrets, not scanned).
_NOT_STORES = {"artifacts", "pii.key", "subject.key", "subject_keys.db", "subject_keys.db-wal",
               "subject_keys.db-shm", "subject_keys.db-journal"}
#: A run of text: printable ASCII, tabs, newlines and UTF-8 bytes, at least 4 long.
_RUN = re.compile(rb"[\t\n\r\x20-\x7e\x80-\xf4]{4,}")
#: Bytes of a file read at once.
CHUNK = 1 << 20


def store_files(keel_dir: Path, spool_dir: Path, database: Path | None) -> list[Path]:
    """Every file that holds a project's stored data: the SQLite database and its WAL and
    journal (``database``; None for a server database), the spool, and everything else under
    ``.keel`` (datasets, snapshots, exported reports) except model artifacts and key files."""
    found: list[Path] = []
    if database is not None:
        found += [p for p in (database, Path(f"{database}-wal"), Path(f"{database}-journal"))
                  if p.is_file()]
    for folder in (spool_dir, keel_dir):
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder).parts
            if folder == keel_dir and rel[0] in _NOT_STORES:
                continue
            if path.is_file() and not path.is_symlink() and path not in found:
                found.append(path)
    return found


def text_runs(path: Path, max_bytes: int | None = None) -> Iterator[str]:
    """The runs of text in ``path``'s bytes, decoded as UTF-8 (bad bytes replaced), read
    ``CHUNK`` bytes at a time (at most ``max_bytes``). A run that reaches a chunk's end goes
    on into the next one; a run longer than ``CHUNK`` is given in pieces."""
    read = 0
    carry = b""
    with path.open("rb") as f:
        while max_bytes is None or read < max_bytes:
            block = f.read(CHUNK)
            if not block:
                break
            read += len(block)
            data = carry + block
            carry = b""
            for m in _RUN.finditer(data):
                if m.end() == len(data) and len(data) - m.start() < CHUNK:
                    carry = data[m.start():]  # it may go on in the next chunk
                else:
                    yield m.group().decode("utf-8", errors="replace")
    if len(carry) >= 4:
        yield carry.decode("utf-8", errors="replace")


__all__ = ["CHUNK", "store_files", "text_runs"]

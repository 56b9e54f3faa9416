"""The prediction log's local spool: append-only JSON-lines segments, fsynced per batch.

Layout::

    <spool_dir>/
      w-<pid>-<ns>/            one directory per running process, held by an flock on .lock
        .lock
        spool-000000000001.jsonl   closed segments are replayed in sequence order
        spool-000000000002.jsonl   the highest one may still be appended to
      rejected.jsonl           rows the store refused as data, with the reason

Each process appends only to its own directory, so several server processes may share one
``spool_dir``. A directory whose lock is free belonged to a process that died: the next process
to open the spool adopts its segments (renames them in front of its own) and replays them.

A batch is written with one ``write`` and fsynced before it is acknowledged. A line without its
newline at the end of a segment is a batch cut by a crash before the fsync returned, so it was
never acknowledged; it is moved to ``rejected.jsonl`` rather than lost silently.

No clear payload of a data subject at rest. A row that names a subject is normally sealed
under the subject's key before it is stored, and spooled sealed when the store then fails. When
the key store itself could not seal it (unreachable), its payload columns are sealed here under
a **segment key**: 256 random bits made with the segment, in ``spool-<seq>.key`` (mode 0600)
beside it, as ``~s1:<base64(nonce || AES-256-GCM)>``. Replay opens them and the log's writer
seals them under the subject's key before they are stored; once the segment is replayed its key
file is overwritten and deleted, so whatever remains of the segment's bytes (freed blocks, a
copy of the segment file) does not open. A value whose segment key is gone reads as erased.

Why a segment key rather than refusing to spool such rows (keeping metadata only): the spool
exists so that no acknowledged prediction is lost while the store is down, and a PostgreSQL key
store often goes down with the data store; dropping every subject's payloads for that time
would lose the very rows monitoring needs. What it does not do: while a segment is pending, its
key sits beside it, so someone who reads the live spool directory reads those payloads (as
they would read a SQLite store beside its key file). Rows without a subject are stored as the
store stores them (redacted by the contract's ``pii`` rules already).
"""

from __future__ import annotations

import base64
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from keelwork.adapters.stores.subject_keys import ERASED, PREFIX, SEALED_COLUMNS

log = logging.getLogger(__name__)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: one process per spool directory
    fcntl = None  # type: ignore[assignment]

#: A segment is closed once it grows past this, so that replay can delete finished ones.
SEGMENT_MAX_BYTES = 8 * 1024 * 1024

#: Marks a payload value sealed under its segment's key.
SPOOL_PREFIX = "~s1:"

_REQUIRED = frozenset({"id", "ts", "model", "version", "status", "latency_ms", "inputs",
                       "outputs", "request_meta"})


class Spool:
    """Append-only, fsynced, segmented spool of prediction rows (writer thread only).

    Args:
        directory: The spool directory (created on :meth:`open`).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.records = 0
        self.size = 0
        self._own: Path | None = None
        self._lock: IO[bytes] | None = None
        self._segments: list[Path] = []
        self._active: IO[bytes] | None = None
        self._seq = 0
        self._sizes: dict[Path, tuple[int, int]] = {}
        self._aeads: dict[Path, Any] = {}

    @property
    def pending(self) -> bool:
        """True while some spooled row is not yet replayed."""
        return bool(self._segments)

    def open(self) -> None:
        """Create this process's directory and adopt the segments of dead processes.

        Raises:
            OSError: the directory cannot be created.
        """
        if self._own is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        # Lock under a name adopters ignore, then rename: no one can adopt a live directory.
        tmp = self.directory / f"tmp-{os.getpid()}-{time.time_ns()}"
        tmp.mkdir()
        lock = _try_lock(tmp)
        if lock is None:  # pragma: no cover - nobody else knows this name
            raise OSError(f"could not lock the new spool directory {tmp}")
        own = self.directory / tmp.name.replace("tmp-", "w-", 1)
        tmp.rename(own)
        self._lock, self._own = lock, own
        for other in sorted(self.directory.glob("w-*")):
            if other == own or not other.is_dir():
                continue
            other_lock = _try_lock(other)
            if other_lock is None:
                continue  # a live process owns it
            try:
                for seg in sorted(other.glob("spool-*.jsonl")):
                    self._seq += 1
                    if _key_of(seg).exists():  # the key first: a segment never loses it
                        _key_of(seg).rename(own / f"spool-{self._seq:012d}.key")
                    seg.rename(own / f"spool-{self._seq:012d}.jsonl")
                for left in other.glob("spool-*.key"):  # keys of segments already replayed
                    _destroy_key(left)
                (other / ".lock").unlink(missing_ok=True)
                other.rmdir()
            except OSError as exc:
                log.warning("could not adopt the spool in %s: %s", other, exc)
            finally:
                other_lock.close()
        _fsync_dir(own)
        self._segments = sorted(own.glob("spool-*.jsonl"))
        for seg in self._segments:
            self._sizes[seg] = (_count_lines(seg), seg.stat().st_size)
        self.records = sum(n for n, _ in self._sizes.values())
        self.size = sum(b for _, b in self._sizes.values())
        if self._segments:
            log.warning("prediction spool holds %d record(s) from an earlier run; replaying",
                        self.records)

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Append ``rows`` as one write and fsync it.

        Raises:
            OSError: the write or the fsync failed (the segment is cut back to where it was).
        """
        if self._own is None:
            self.open()
        assert self._own is not None
        if self._active is None:
            self._seq += 1
            path = self._own / f"spool-{self._seq:012d}.jsonl"
            key = os.urandom(32)
            fd = os.open(_key_of(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, key)
                os.fsync(fd)
            finally:
                os.close(fd)
            self._aeads[path] = _aead(key)
            self._active = path.open("ab")
            self._segments.append(path)
            _fsync_dir(self._own)
        aead = self._aeads[Path(self._active.name)]
        data = b"".join(orjson.dumps(_seal(r, aead)) + b"\n" for r in rows)
        f = self._active
        start = f.tell()
        try:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        except OSError:
            try:  # never leave half a batch for the next one to be glued to
                f.truncate(start)
                f.seek(start)
            except OSError:
                self.rotate()
            raise
        self.records += len(rows)
        self.size += len(data)
        lines, size = self._sizes.get(self._segments[-1], (0, 0))
        self._sizes[self._segments[-1]] = (lines + len(rows), size + len(data))
        if f.tell() >= SEGMENT_MAX_BYTES:
            self.rotate()

    def rotate(self) -> None:
        """Close the segment being appended to; the next append starts a new one."""
        if self._active is not None:
            path = Path(self._active.name)
            self._active.close()
            self._active = None
            if path.stat().st_size == 0:
                path.unlink()
                _destroy_key(_key_of(path))
                self._segments.remove(path)
                self._sizes.pop(path, None)

    def segments(self) -> list[Path]:
        """Closed segments in replay order (call :meth:`rotate` first to close them all)."""
        active = Path(self._active.name) if self._active is not None else None
        return [s for s in self._segments if s != active]

    def read(self, segment: Path, chunk: int) -> Iterator[list[dict[str, Any]]]:
        """Yield the rows of ``segment`` in order, ``chunk`` at a time.

        Lines that do not parse (a batch cut by a crash) go to ``rejected.jsonl``.
        """
        rows: list[dict[str, Any]] = []
        aead = self._aeads.get(segment)
        if aead is None and _key_of(segment).exists():
            aead = _aead(_key_of(segment).read_bytes())
        with segment.open("rb") as f:
            for line in f:
                row = self._parse(line, segment)
                if row is not None:
                    rows.append(_open(row, aead))
                if len(rows) >= chunk:
                    yield rows
                    rows = []
        if rows:
            yield rows

    def remove(self, segment: Path) -> None:
        """Delete a fully replayed segment."""
        lines, size = self._sizes.pop(segment, (0, 0))
        segment.unlink()
        self._aeads.pop(segment, None)
        _destroy_key(_key_of(segment))
        if self._own is not None:
            _fsync_dir(self._own)
        self._segments.remove(segment)
        self.size = max(0, self.size - size)
        self.records = max(0, self.records - lines)

    def reject(self, row: dict[str, Any] | bytes, reason: str) -> None:
        """Keep a row the store refused (or a line that does not parse) in ``rejected.jsonl``."""
        entry = {"reason": reason, "at": time.time(),
                 "row": row if isinstance(row, dict) else row.decode("utf-8", "replace")}
        log.error("prediction record rejected (%s); kept in %s", reason,
                  self.directory / "rejected.jsonl")
        with (self.directory / "rejected.jsonl").open("ab") as f:
            f.write(orjson.dumps(entry) + b"\n")
            f.flush()
            os.fsync(f.fileno())

    def close(self) -> None:
        """Close the active segment and, when nothing is left, remove this process's directory."""
        self.rotate()
        own = self._own
        if own is not None and not self._segments:
            try:
                (own / ".lock").unlink(missing_ok=True)
                own.rmdir()
            except OSError:
                pass
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        self._own = None

    def _parse(self, line: bytes, segment: Path) -> dict[str, Any] | None:
        if not line.endswith(b"\n"):
            self.reject(line, f"truncated line at the end of {segment.name} (never acknowledged)")
            return None
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            self.reject(line, f"unreadable line in {segment.name}: {exc}")
            return None
        if not isinstance(row, dict) or not row.keys() >= _REQUIRED:
            self.reject(line, f"line in {segment.name} lacks prediction columns")
            return None
        row.setdefault("tenant", None)
        for key in ("subject_id", "guard", "answered_by", "model_latency_ms"):
            row.setdefault(key, None)
        return row


def _key_of(segment: Path) -> Path:
    return segment.with_suffix(".key")


def _aead(key: bytes) -> Any:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def _seal(row: dict[str, Any], aead: Any) -> dict[str, Any]:
    """``row``, its payloads sealed under the segment key when it names a subject and they are
    in clear (the key store could not seal them)."""
    if not row.get("subject_id") or (isinstance(v := row.get("inputs"), str)
                                     and v.startswith(PREFIX)):
        return row
    out = dict(row)
    for c in SEALED_COLUMNS:
        value = out.get(c)
        if isinstance(value, str):
            nonce = os.urandom(12)
            body = aead.encrypt(nonce, value.encode("utf-8", "surrogatepass"), c.encode())
            out[c] = SPOOL_PREFIX + base64.b64encode(nonce + body).decode("ascii")
    return out


def _open(row: dict[str, Any], aead: Any) -> dict[str, Any]:
    """``row`` with its segment-sealed payloads opened; erased when the key is gone."""
    from cryptography.exceptions import InvalidTag

    for c in SEALED_COLUMNS:
        value = row.get(c)
        if isinstance(value, str) and value.startswith(SPOOL_PREFIX):
            try:
                if aead is None:
                    raise ValueError(c)
                raw = base64.b64decode(value[len(SPOOL_PREFIX):], validate=True)
                row[c] = aead.decrypt(raw[:12], raw[12:], c.encode()).decode(
                    "utf-8", "surrogatepass")
            except (InvalidTag, ValueError):
                row[c] = ERASED[c]
    return row


def _destroy_key(path: Path) -> None:
    """Overwrite a segment key file with zeros, then delete it."""
    try:
        with path.open("r+b") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(0)
            f.write(b"\0" * size)
            f.flush()
            os.fsync(f.fileno())
        path.unlink()
    except FileNotFoundError:
        return


def _count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


def _try_lock(directory: Path) -> IO[bytes] | None:
    """Take the directory's lock without waiting; None when another process holds it."""
    f = (directory / ".lock").open("ab")
    if fcntl is None:
        return f
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        return None
    return f


def _fsync_dir(directory: Path) -> None:
    """Make a created / renamed / deleted file name durable (POSIX; a no-op elsewhere)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["SEGMENT_MAX_BYTES", "SPOOL_PREFIX", "Spool"]

"""Watch a directory and ingest every new data file once.

Why polling, not inotify / FSEvents: it needs no extra dependency (``watchdog``), behaves the
same on every OS, and works on network file systems and container volumes where change events
are not delivered. A file also has to be *complete* before it is read -- a writer may still be
appending -- which events cannot tell either: only a size and modification time that stay the
same between two polls can. Each poll costs one directory listing plus a ``stat`` per file; a
file is hashed only when its size or time changed.

"Once" is decided by the ledger, by content: a file whose bytes were already ingested (under
any name, by any process) is reported as ``already_ingested`` and adds nothing; a file that
was interrupted resumes where it stopped. A malformed file is recorded as ``failed`` with its
error and is not retried until it changes; a store outage is retried at the next poll.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from keelwork.errors import DataFileError, KeelworkError, StoreError
from keelwork.service.ingest.files import (
    FileResult,
    ProgressHook,
    check_source,
    hash_file,
    run_file,
)
from keelwork.types import ChunkHandler, IngestLedger

log = logging.getLogger("keelwork.ingest.watch")

#: Files the watcher picks up by default.
DEFAULT_PATTERNS = ("*.csv", "*.tsv", "*.jsonl", "*.ndjson", "*.parquet")
#: Names it never picks up: hidden files and files being written by keelwork or others.
IGNORED = (".*", "*.partial", "*.tmp", "*~")


@dataclass(slots=True)
class WatchStats:
    """What a watch did until it stopped."""

    polls: int = 0
    results: list[FileResult] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


Signature = tuple[int, int]


def watch(directory: Path, handler: ChunkHandler, ledger: IngestLedger, *,
          patterns: Sequence[str] = DEFAULT_PATTERNS, interval: float = 1.0,
          settle: float = 2.0, stop: threading.Event | None = None,
          max_polls: int | None = None, batch_size: int = 65536, commit_every: int = 1000,
          on_result: Callable[[FileResult], None] | None = None,
          on_error: Callable[[Path, KeelworkError], None] | None = None,
          progress: ProgressHook | None = None) -> WatchStats:
    """Poll ``directory`` and ingest each new, complete file with ``handler``.

    A file is complete when its size and modification time did not change between two polls,
    or, when first seen, if it was last modified more than ``settle`` seconds ago.

    Args:
        directory: The directory (not searched recursively).
        handler: The kind of ingestion (labels, predictions or scoring).
        ledger: The ledger (its schema is created if missing).
        patterns: Glob patterns of the file names to pick up.
        interval: Seconds between polls.
        settle: Age in seconds past which a file seen for the first time counts as complete.
        stop: Set it to stop after the current file (Ctrl-C stops a CLI watch as well).
        max_polls: Stop after this many polls (None: until ``stop``).
        batch_size: Records per read batch.
        commit_every: Records per transaction.
        on_result: Called with the result of each file.
        on_error: Called with each file that failed (malformed, or a store error).
        progress: Called after every committed chunk.

    Returns:
        What was done.

    Raises:
        DataFileError: ``directory`` is not a directory.
        StoreError: the store is unreachable when the watch starts.
    """
    if not directory.is_dir():
        raise DataFileError(f"{directory}: is not a directory; --watch needs the directory "
                            "new files arrive in.", path=str(directory))
    stop = stop or threading.Event()
    ledger.ensure_schema()
    stats = WatchStats()
    last: dict[Path, Signature] = {}
    handled: dict[Path, Signature] = {}
    while not stop.is_set() and (max_polls is None or stats.polls < max_polls):
        stats.polls += 1
        now = time.time()
        current = _listing(directory, patterns)
        for gone in set(last) - set(current):
            last.pop(gone, None)
            handled.pop(gone, None)
        for path, (signature, mtime) in sorted(current.items()):
            if stop.is_set():
                break
            previous = last.get(path)
            last[path] = signature
            if handled.get(path) == signature:
                continue
            if previous != signature and (previous is not None or now - mtime < settle):
                continue  # still being written, or too fresh to tell: look again next poll
            if _ingest_one(path, handler, ledger, stats, batch_size, commit_every, on_result,
                           on_error, progress):
                handled[path] = signature
        if not stop.is_set() and (max_polls is None or stats.polls < max_polls):
            stop.wait(interval)
    return stats


def _listing(directory: Path, patterns: Sequence[str]) -> dict[Path, tuple[Signature, float]]:
    out: dict[Path, tuple[Signature, float]] = {}
    try:
        entries = list(directory.iterdir())
    except OSError as exc:
        log.warning("cannot list %s: %s", directory, exc)
        return out
    for entry in entries:
        name = entry.name
        if any(fnmatch.fnmatch(name, p) for p in IGNORED):
            continue
        if not any(fnmatch.fnmatch(name, p) for p in patterns):
            continue
        try:
            st = entry.stat()
        except OSError:
            continue  # removed meanwhile
        if entry.is_file():
            out[entry] = ((st.st_size, st.st_mtime_ns), st.st_mtime)
    return out


def _ingest_one(path: Path, handler: ChunkHandler, ledger: IngestLedger, stats: WatchStats,
                batch_size: int, commit_every: int,
                on_result: Callable[[FileResult], None] | None,
                on_error: Callable[[Path, KeelworkError], None] | None,
                progress: ProgressHook | None) -> bool:
    """Ingest one file; return True when it is settled (done, or failed for good)."""
    try:
        file = check_source(path, batch_size, handler.read_types())
        handler.check_columns(file)
        result = run_file(ledger, handler, file, batch_size=batch_size,
                          commit_every=commit_every, progress=progress)
    except DataFileError as exc:
        stats.failed[str(path)] = exc.message
        log.log(_level(on_error), "not ingesting %s: %s", path, exc.message)
        try:
            ledger.fail(hash_file(path), handler.kind, handler.target, str(path), exc.message)
        except (DataFileError, StoreError) as store_exc:
            log.warning("could not record the failure of %s: %s", path, store_exc)
        if on_error is not None:
            on_error(path, exc)
        return True
    except StoreError as exc:  # the store is down or busy: try again at the next poll
        log.log(_level(on_error), "store error while ingesting %s (retrying next poll): %s",
                path, exc)
        if on_error is not None:
            on_error(path, exc)
        return False
    except KeelworkError as exc:  # e.g. the model failed: not retried until the file changes
        stats.failed[str(path)] = exc.message
        log.log(_level(on_error), "ingesting %s failed: %s", path, exc.message)
        if on_error is not None:
            on_error(path, exc)
        return True
    stats.results.append(result)
    if on_result is not None:
        on_result(result)
    return True


def _level(on_error: object) -> int:
    """A caller that handles errors reports them itself: log them quietly then."""
    return logging.INFO if on_error is not None else logging.WARNING


__all__ = ["DEFAULT_PATTERNS", "IGNORED", "WatchStats", "watch"]

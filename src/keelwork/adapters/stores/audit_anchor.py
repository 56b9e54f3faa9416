"""The audit log's anchor: its head, copied outside the database after every append.

The chain in the database detects an edited, deleted or reordered entry, but not a *truncated
tail* whose ``audit_head`` row was rewritten to match, nor an emptied log: both leave a valid,
shorter chain. A head kept elsewhere does: :meth:`AuditLog.verify
<keelwork.adapters.stores.audit_store.AuditLog.verify>` then requires the entry it names to
still be there, with its hash.

File format (JSON, replaced atomically)::

    {"kind": "keelwork.audit_anchor", "version": 1,
     "heads": {"<store>": {"kind": "keelwork.audit_head", "version": 1, "seq": 12,
                           "hash": "...", "count": 12}}}

``<store>`` is the database's URL without its password, so one project that points at another
store now and then (``$KEELWORK_STORAGE_URL``) keeps one head per store. Where the anchors are:

* ``<project>/.keel/audit-anchor.json``, always (outside a PostgreSQL store; beside an SQLite
  file, where it still catches a tamperer who edits the database but not the project);
* the ``audit_anchor`` setting (``$KEELWORK_AUDIT_ANCHOR``), when set: a second file, e.g. on
  another volume or a mounted write-once store, out of reach of whoever can write the project.
  The store does not read the setting: whoever opens the log passes it (:func:`project_anchors`).

A head only ever moves forward, under a file lock (several processes append), and only when the
entry it last named still carries the recorded hash: otherwise appends after a truncation would
carry the anchor along onto the shortened chain. Writing an anchor never fails an append (the
entry is committed by then): a failure is logged and the next append tries again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from keelwork.core.audit.chain import ChainHead
from keelwork.errors import AuditError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, one writer assumed
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

ANCHOR_KIND = "keelwork.audit_anchor"
ANCHOR_VERSION = 1
#: The project's own anchor, relative to the project directory.
PROJECT_ANCHOR = Path(".keel") / "audit-anchor.json"
#: A second anchor file (the external sink), when set.
ANCHOR_ENV = "KEELWORK_AUDIT_ANCHOR"


class AnchorFile:
    """One anchor file: per store, the latest head recorded there.

    Args:
        path: The JSON file (created with its directory on the first write).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"AnchorFile({str(self.path)!r})"

    def read(self, store: str) -> ChainHead | None:
        """The head recorded for ``store``; ``None`` when there is none (or no file).

        Raises:
            AuditError: the file exists but is not an anchor file.
        """
        return self._heads().get(store)

    def advance(self, store: str, head: ChainHead,
                still_holds: Callable[[ChainHead], bool]) -> bool:
        """Record ``head`` for ``store`` if it is newer and the recorded one still holds.

        Args:
            store: The store's key (its URL without the password).
            head: The head now committed.
            still_holds: Whether the store still has the recorded head's entry, unchanged.

        Returns:
            Whether the file now names ``head``.

        Raises:
            OSError: the file or its lock cannot be written.
            AuditError: the file exists but is not an anchor file.
        """
        with self._locked():
            heads = self._heads()
            recorded = heads.get(store)
            if recorded is not None and head.seq <= recorded.seq:
                return recorded.seq == head.seq and recorded.hash == head.hash
            if recorded is not None and recorded.seq > 0 and not still_holds(recorded):
                log.error("audit anchor %s not moved: entry %d no longer has the hash it "
                          "recorded (%s...); run 'keel audit verify'", self.path,
                          recorded.seq, recorded.hash[:12])
                return False
            heads[store] = head
            self._write(heads)
            return True

    def _heads(self) -> dict[str, ChainHead]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise AuditError(f"The audit anchor {self.path} cannot be read as JSON: {exc}."
                             ) from None
        return parse_anchor(data, str(self.path))

    def _write(self, heads: dict[str, ChainHead]) -> None:
        body = {"kind": ANCHOR_KIND, "version": ANCHOR_VERSION,
                "heads": {k: h.as_dict() for k, h in sorted(heads.items())}}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(body, fh, indent=1, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.path)
        with contextlib.suppress(OSError):  # some file systems cannot fsync a directory
            fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.with_name(f".{self.path.name}.lock").open("a+b") as lock:
            if fcntl is not None:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            yield


def parse_anchor(data: Any, where: str) -> dict[str, ChainHead]:
    """The heads of an anchor file's JSON, per store.

    Raises:
        AuditError: ``data`` is not an anchor file's content.
    """
    heads = data.get("heads") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("kind") != ANCHOR_KIND or \
            not isinstance(heads, dict):
        raise AuditError(f"The audit anchor {where} must be an object with kind "
                         f"'{ANCHOR_KIND}' and 'heads'; got {str(data)[:80]!r}.")
    return {str(store): ChainHead.from_dict(head) for store, head in heads.items()}


def project_anchors(project_dir: Path, extra: Path | None = None) -> list[AnchorFile]:
    """The anchors a project keeps: its own file, and ``extra`` if given (the caller passes
    the ``audit_anchor`` setting, ``KEELWORK_AUDIT_ANCHOR``)."""
    files = [AnchorFile(Path(project_dir).absolute() / PROJECT_ANCHOR)]
    if extra is not None:
        files.append(AnchorFile(Path(extra).expanduser().absolute()))
    return files


__all__ = ["ANCHOR_ENV", "ANCHOR_KIND", "PROJECT_ANCHOR", "AnchorFile", "parse_anchor",
           "project_anchors"]

"""The PII scan of the stores: the raw bytes of every file that holds the project's stored
data (the SQLite database with its WAL and journal, the spool, datasets, snapshots and
exported reports under ``.keel``; :func:`~keelwork.adapters.stores.raw_bytes.store_files`)
read as text and scanned with keelwork's own PII engine (:mod:`keelwork.core.pii`).

Counts come out per entity, never with a value: everything the engine finds in each file
(keelwork's own metadata has URLs and names in it: reported, not failed), and what it finds in
the *values of the fields keel.yaml says are redacted* -- a field whose ``contract.inputs[].pii``
/ ``outputs[].pii`` is ``redact``, ``pseudonymise`` or ``drop``, and, when
``guards.pii_redaction`` is on, every field of the contract. Those values are found twice: in
the logged payloads read through the store (whole, however the file splits them; PostgreSQL
too), and as the JSON ``"field": "value"`` pairs in the files' bytes (rows deleted but still on
disk, the WAL, the spool, where they are JSON inside JSON). Any finding in a redacted field
fails the item: personal data reached the disk that keel.yaml says never does.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from keelwork.service.check_item import CheckItem
from keelwork.spec.model import ResolvedSpec, pii_settings

NAME = "pii_scan"
#: Longest text handed to the engine at once (it fails closed past its own bound).
PIECE = 8000
#: Bytes read of one file at most.
MAX_FILE_BYTES = 512 << 20


def pii_scan(resolved: ResolvedSpec, store_url: str, *, timeout_s: float = 60.0) -> CheckItem:
    """Scan the project's stores (see the module's docstring).

    Args:
        resolved: The user's keel.yaml.
        store_url: The user's store (its logged payloads are read through it; a SQLite file is
            read as bytes too; a server's files are not on this machine).
        timeout_s: Bound on the whole scan; past it the item is not checked (unless
            something was found already: then it fails).

    Returns:
        pass, fail with counts per entity, field and file, or not_checked with the reason.
    """
    from keelwork.adapters.stores.raw_bytes import store_files
    from keelwork.adapters.stores.store_copy import sqlite_file

    settings = pii_settings(resolved.spec.guards)
    fields = [*resolved.spec.contract.inputs, *resolved.spec.contract.outputs]
    watched = sorted({f.name for f in fields if settings is not None
                      or f.pii in ("redact", "pseudonymise", "drop")})
    scan = _Scan(settings.entities if settings is not None else None, watched,
                 time.monotonic() + timeout_s)
    database = sqlite_file(store_url)
    files = store_files(resolved.keel_dir, resolved.spool_dir, database)
    if watched:
        scan.rows(store_url)
    for path in files:
        if scan.stopped is not None:
            break
        scan.file(path, _shown(path, resolved))
    leaked = {f: dict(c) for f, c in scan.by_field.items() if c}
    raw = {f: dict(c) for f, c in scan.by_field_raw.items() if c}
    facts: dict[str, Any] = {
        "files": {f: dict(c) for f, c in scan.by_file.items()},
        "files_scanned": len(scan.by_file), "text_chars_scanned": scan.chars,
        "payloads_read": scan.payloads, "redacted_fields": watched,
        "found_in_redacted_fields": leaked, "found_in_redacted_fields_raw": raw,
        "entities": list(scan.analyzer.entities)}
    if leaked or raw:
        where = "; ".join(f"{f}: " + ", ".join(f"{n} {e}" for e, n in sorted(c.items()))
                          for f, c in sorted((leaked or raw).items()))
        return CheckItem(NAME, "fail", f"personal data in fields keel.yaml redacts ({where}"
                         + ("" if leaked else "; in the files' bytes only: deleted rows, the "
                            "WAL or the spool") + ")",
                         "the values were stored before redaction was set, or bypassed it: "
                         "erase them (keel erase --subject ID, keel retention apply)", facts)
    if scan.stopped is not None:
        return CheckItem(NAME, "not_checked", f"the scan ran past {timeout_s:.0f} s (stopped "
                         f"in {scan.stopped}, {len(scan.by_file)} of {len(files)} files "
                         "read)", "run keel check where the stores are smaller, or apply "
                         "retention", facts)
    if database is None:
        return CheckItem(NAME, "not_checked", f"{scan.payloads} logged payloads read through "
                         "the database server hold nothing in redacted fields, but its files "
                         f"are not on this machine ({len(files)} local files scanned)",
                         "scan the server's data directory", facts)
    total = sum(sum(c.values()) for c in scan.by_file.values())
    return CheckItem(NAME, "pass", f"{len(files)} store files and {scan.payloads} logged "
                     f"payloads scanned: nothing in the {len(watched)} fields keel.yaml "
                     f"redacts ({total} findings elsewhere, by entity in facts)" if watched
                     else f"{len(files)} store files scanned; keel.yaml redacts no field "
                     f"({total} findings, by entity in facts)", facts=facts)


class _Scan:
    """One scan's analyzer, bound and counts (entities only: values are never kept)."""

    def __init__(self, entities: list[str] | None, watched: list[str],
                 deadline: float) -> None:
        from keelwork.core.pii.engine import PiiAnalyzer

        self.analyzer = PiiAnalyzer(entities, max_chars=PIECE, time_budget_s=1.0)
        self.watched = frozenset(watched)
        self.pair = _pairs(watched)
        self.deadline = deadline
        self.stopped: str | None = None
        self.chars = self.payloads = 0
        self.by_file: dict[str, Counter[str]] = {}
        self.by_field: dict[str, Counter[str]] = {}
        self.by_field_raw: dict[str, Counter[str]] = {}

    def entities(self, text: str) -> set[str]:
        from keelwork.core.pii.spans import UNSCANNED

        return {s.entity for i in range(0, len(text), PIECE)
                for s in self.analyzer.analyze(text[i:i + PIECE]) if s.entity != UNSCANNED}

    def rows(self, url: str) -> None:
        """The logged payloads, read through the store: a value split across the file's pages
        (a long one, on SQLite's overflow pages) is whole here."""
        from keelwork.adapters.stores.store_copy import payload_texts

        for text in payload_texts(url):
            if time.monotonic() > self.deadline:
                self.stopped = "the prediction log"
                return
            self.payloads += 1
            for name, value in _fields(_json(text), self.watched):
                self.by_field.setdefault(name, Counter()).update(self.entities(value))

    def file(self, path: Path, shown: str) -> None:
        from keelwork.adapters.stores.raw_bytes import text_runs
        from keelwork.core.pii.spans import UNSCANNED

        counts: Counter[str] = Counter()
        for run in text_runs(path, MAX_FILE_BYTES):
            if time.monotonic() > self.deadline:
                self.stopped = shown
                break
            self.chars += len(run)
            for i in range(0, len(run), PIECE):
                counts.update(s.entity for s in self.analyzer.analyze(run[i:i + PIECE]))
            if self.pair is not None:
                # JSON inside JSON (the spool's rows hold the payload as text) unescaped once
                for m in self.pair.finditer(run.replace('\\"', '"')):
                    self.by_field_raw.setdefault(m.group(1), Counter()).update(
                        self.entities(_unescape(m.group(2))))
        counts.pop(UNSCANNED, None)
        self.by_file[shown] = counts


def _json(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except ValueError:  # sealed (per-subject encryption) or not JSON: nothing to read
        return None


def _fields(data: Any, names: frozenset[str]) -> list[tuple[str, str]]:
    """``(field, value as text)`` of every scalar under a key in ``names``, at any depth."""
    out: list[tuple[str, str]] = []
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for k, v in item.items():
                if k in names and isinstance(v, str | int | float) and not isinstance(v, bool):
                    out.append((k, str(v)))
                else:
                    stack.append(v)
        elif isinstance(item, list):
            stack.extend(item)
    return out


def _pairs(names: list[str]) -> re.Pattern[str] | None:
    """``"name": "value"`` of any of ``names`` in JSON text (value still escaped)."""
    if not names:
        return None
    alt = "|".join(re.escape(n) for n in names)
    return re.compile(r'"(' + alt + r')"\s*:\s*"((?:[^"\\]|\\.)*)"')


def _unescape(value: str) -> str:
    import json

    try:
        out = json.loads(f'"{value}"')
    except ValueError:
        return value
    return out if isinstance(out, str) else value


def _shown(path: Path, resolved: ResolvedSpec) -> str:
    try:
        return str(path.relative_to(resolved.project_dir))
    except ValueError:
        return str(path)


__all__ = ["NAME", "pii_scan"]

"""The PII scan of the stores: the raw bytes of every file that holds the project's stored
data (the SQLite database with its WAL and journal, the spool, datasets, snapshots and
exported reports under ``.keel``; :func:`~keelwork.adapters.stores.raw_bytes.store_files`)
read as text and scanned with keelwork's own PII engine (:mod:`keelwork.core.pii`).

Two counts come out, per entity and never with a value: everything the engine finds in each
file (keelwork's own metadata has URLs and names in it: reported, not failed), and what it
finds in the *values of the fields keel.yaml says are redacted* -- a field whose
``contract.inputs[].pii`` / ``outputs[].pii`` is ``redact``, ``pseudonymise`` or ``drop``, and,
when ``guards.pii_redaction`` is on, every field of the contract -- found as the JSON
``"field": "value"`` pairs the prediction log and the label store write (and the spool, where
they are JSON inside JSON). Any finding
of the second kind fails the item: personal data reached the disk that keel.yaml says never
does.
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
        store_url: The user's store (a SQLite file is read as bytes; a server's files are not
            on this machine).
        timeout_s: Bound on the whole scan; past it the item is not checked (unless
            something was found already: then it fails).

    Returns:
        pass, fail with counts per entity, field and file, or not_checked with the reason.
    """
    from keelwork.adapters.stores.raw_bytes import store_files, text_runs
    from keelwork.adapters.stores.store_copy import sqlite_file
    from keelwork.core.pii.engine import PiiAnalyzer
    from keelwork.core.pii.spans import UNSCANNED

    settings = pii_settings(resolved.spec.guards)
    fields = [*resolved.spec.contract.inputs, *resolved.spec.contract.outputs]
    watched = sorted({f.name for f in fields if settings is not None
                      or f.pii in ("redact", "pseudonymise", "drop")})
    pair = _pairs(watched)
    analyzer = PiiAnalyzer(settings.entities if settings is not None else None,
                           max_chars=PIECE, time_budget_s=1.0)
    database = sqlite_file(store_url)
    files = store_files(resolved.keel_dir, resolved.spool_dir, database)
    by_file: dict[str, Counter[str]] = {}
    by_field: dict[str, Counter[str]] = {}
    deadline = time.monotonic() + timeout_s
    stopped: str | None = None
    scanned = chars = 0
    for path in files:
        counts: Counter[str] = Counter()
        for run in text_runs(path, MAX_FILE_BYTES):
            if time.monotonic() > deadline:
                stopped = str(path)
                break
            chars += len(run)
            for i in range(0, len(run), PIECE):
                counts.update(s.entity for s in analyzer.analyze(run[i:i + PIECE]))
            if pair is not None:
                # JSON inside JSON (the spool's rows hold the payload as text) unescaped once
                for m in pair.finditer(run.replace('\\"', '"')):
                    value = _unescape(m.group(2))
                    found = {s.entity for i in range(0, len(value), PIECE)
                             for s in analyzer.analyze(value[i:i + PIECE])
                             if s.entity != UNSCANNED}
                    by_field.setdefault(m.group(1), Counter()).update(found)
        scanned += 1
        counts.pop(UNSCANNED, None)
        by_file[_shown(path, resolved)] = counts
        if stopped:
            break
    leaked = {f: dict(c) for f, c in by_field.items() if c}
    facts: dict[str, Any] = {
        "files": {f: dict(c) for f, c in by_file.items()}, "files_scanned": scanned,
        "text_chars_scanned": chars,
        "redacted_fields": watched, "found_in_redacted_fields": leaked,
        "entities": list(analyzer.entities)}
    if leaked:
        where = "; ".join(f"{f}: " + ", ".join(f"{n} {e}" for e, n in sorted(c.items()))
                          for f, c in sorted(leaked.items()))
        return CheckItem(NAME, "fail", f"personal data in fields keel.yaml redacts ({where})",
                         "the values were stored before redaction was set, or bypassed it: "
                         "erase them (keel erase --subject ID, keel retention apply)",
                         facts)
    if stopped is not None:
        return CheckItem(NAME, "not_checked", f"the scan ran past {timeout_s:.0f} s (stopped "
                         f"in {stopped}, {scanned} of {len(files)} files read)",
                         "run keel check where the stores are smaller, or apply retention",
                         facts)
    if database is None:
        return CheckItem(NAME, "not_checked", "the store is a database server: its files are "
                         f"not on this machine ({len(files)} local files scanned, nothing in "
                         "redacted fields)", "scan the server's data directory", facts)
    total = sum(sum(c.values()) for c in by_file.values())
    return CheckItem(NAME, "pass", f"{len(files)} store files scanned: nothing in the "
                     f"{len(watched)} fields keel.yaml redacts ({total} findings elsewhere, "
                     "by entity in facts)" if watched else f"{len(files)} store files scanned; "
                     f"keel.yaml redacts no field ({total} findings, by entity in facts)",
                     facts=facts)


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

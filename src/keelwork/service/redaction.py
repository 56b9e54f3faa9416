"""The PII policy of a keel.yaml as a :class:`~keelwork.core.redaction.Redactor` for the
gateway: modes from ``contract.inputs[].pii`` / ``outputs[].pii`` and
``guards.pii_redaction``, the entity scanner of :mod:`keelwork.core.pii`, and the project's
pseudonymisation key (``.keel/pii.key``, created on first use, mode 0600; servers of one store
must share it for their tokens to join).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from keelwork.core.redaction import Mode, Redactor, Scanner, no_scan
from keelwork.errors import KeelworkError
from keelwork.spec.model import KeelSpec, pii_settings

KEY_FILE = Path(".keel") / "pii.key"


def project_secret(project: Path, relative: Path) -> bytes:
    """A 32-byte project secret kept in ``project/relative`` (created, mode 0600, when
    missing).

    Raises:
        KeelworkError: the file exists but holds no key.
    """
    path = project / relative
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    except ValueError:
        raise KeelworkError(f"'{path}' is not a key (64 hex digits); restore it from a "
                            "backup.") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it meanwhile: use theirs
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key.hex() + "\n")
    return key


def scanner(key: bytes, entities: list[str] | None = None) -> Scanner:
    """The entity scanner of :mod:`keelwork.core.pii` for ``entities`` (None: every built-in
    one); whole texts are replaced without it."""
    import importlib

    try:
        pii = importlib.import_module("keelwork.core.pii")
    except ImportError:
        return no_scan
    made: Scanner = pii.scanner(key, entities)
    return made


def build_redactor(spec: KeelSpec, project: Path) -> Redactor | None:
    """The redactor of ``spec`` (None: nothing is ever redacted)."""
    settings = pii_settings(spec.guards)
    fields = [*spec.contract.inputs, *spec.contract.outputs]
    if settings is None and not any(f.pii not in (None, "keep") for f in fields):
        return None
    key = project_secret(project, KEY_FILE)
    text_default: Mode | None = settings.text if settings is not None else None
    return Redactor(
        inputs={f.name: f.pii for f in spec.contract.inputs if f.pii is not None},
        outputs={f.name: f.pii for f in spec.contract.outputs if f.pii is not None},
        text_fields=frozenset(f.name for f in fields if f.type == "text"),
        text_default=text_default,
        scan=scanner(key, settings.entities if settings is not None else None), key=key,
        input_order=tuple(f.name for f in spec.contract.inputs),
        output_order=tuple(f.name for f in spec.contract.outputs))


def pii_stats(redactor: Redactor) -> dict[str, Any]:
    """What /metrics exports of ``redactor`` (:meth:`GatewayMetrics.watch_pii`): texts
    scanned, entities found by entity, and fields stored whole because their scan failed, by
    reason: the engine's (``too_long``, ``timeout``, ``recogniser_error``) and ``other`` (the
    scanner raised for another reason, or none is installed)."""
    analyzer = getattr(redactor.scan, "analyzer", None)
    counters: dict[str, Any] = (analyzer.counters.snapshot() if analyzer is not None
                                else {"scanned": 0, "found": {}, "failed": {}})
    failed = {str(k): int(v) for k, v in counters["failed"].items()}
    failed["other"] = max(0, redactor.failures - sum(failed.values()))
    return {"scanned": counters["scanned"], "found": dict(counters["found"]), "failed": failed}


#: A prediction id as keelwork makes them (a UUID): never scanned, so it still joins.
_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
RecordScrubber = Callable[[Mapping[str, Any]], dict[str, Any]]


def record_scrubber(spec: KeelSpec, project: Path,
                    redactor: Redactor | None = None) -> RecordScrubber | None:
    """What label records (``POST /v1/feedback``, ``keel ingest --labels``, their dead
    letters) keep when keel.yaml redacts PII: every text value scanned, in arrays and objects
    too (a label may be either), except prediction ids in keelwork's own form (None: nothing
    to redact). ``redactor``: the server's (its counts
    are the ones /metrics exports); default: one built from ``spec``."""
    redactor = redactor if redactor is not None else build_redactor(spec, project)
    if redactor is None or pii_settings(spec.guards) is None:
        return None
    made = redactor

    def scrub(record: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v if isinstance(v, str) and _ID.match(v) else made.loose(v, "redact")
                for k, v in record.items()}

    return scrub


def model_sees_redacted(spec: KeelSpec) -> bool:
    """Whether the model gets the redacted instances (``pii_redaction.model_sees``)."""
    settings = pii_settings(spec.guards)
    return settings is not None and settings.model_sees == "redacted"


__all__ = ["KEY_FILE", "RecordScrubber", "build_redactor", "model_sees_redacted", "pii_stats",
           "project_secret", "record_scrubber", "scanner"]

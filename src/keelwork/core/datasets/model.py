"""Dataset names, references (``name`` / ``name:version``) and the snapshot record."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from keelwork.core.datasets.profile import DatasetProfile
from keelwork.errors import RegistryError

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_SNAPSHOT_REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}:[1-9][0-9]{0,17}$")
_NAME_RULE = ("must start with a letter or digit and hold only letters, digits, '_', '.', '-' "
              "(at most 128 characters)")


@dataclass(frozen=True, slots=True)
class DatasetRef:
    """``name`` (the latest version) or ``name:version``."""

    name: str
    version: int | None = None

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}:{self.version}"


def check_dataset_name(name: str) -> str:
    """Return ``name`` when it is a valid dataset name.

    Raises:
        RegistryError: it is not.
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise RegistryError(f"The dataset name {name!r} is invalid: a dataset name {_NAME_RULE}.")
    return name


def parse_dataset_ref(text: str) -> DatasetRef:
    """Parse ``name`` or ``name:3``.

    Raises:
        RegistryError: the reference is malformed; the message shows the accepted forms.
    """
    forms = "use NAME (its latest version) or NAME:VERSION, e.g. 'churn-train:3'"
    text = text.strip() if isinstance(text, str) else ""
    if not text:
        raise RegistryError(f"A dataset reference must not be empty; {forms}.")
    name, colon, number = text.partition(":")
    if not _NAME_RE.match(name):
        raise RegistryError(f"The dataset reference {text!r} has an invalid name {name!r}: a "
                            f"dataset name {_NAME_RULE}; {forms}.")
    if not colon:
        return DatasetRef(name)
    if not number.isdigit() or int(number) < 1:
        raise RegistryError(f"The dataset reference {text!r} has an invalid version {number!r}: "
                            f"a version is an integer >= 1; {forms}.")
    return DatasetRef(name, int(number))


def looks_like_snapshot_ref(text: str | None) -> bool:
    """True for ``name:3``: the form a model's ``dataset_version`` uses to name a snapshot.

    A bare name stays free text (it may be anything: a date, a bucket path's last part).
    """
    return bool(text) and bool(_SNAPSHOT_REF_RE.match(str(text).strip()))


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    """One immutable snapshot: ``name:version`` -> content ``sha256`` (see the module doc)."""

    name: str
    version: int
    sha256: str
    schema: tuple[tuple[str, str], ...]
    rows: int
    created_at: datetime
    created_by: str
    source: str
    profile: DatasetProfile
    subject_column: str | None = None
    size: int = 0
    uri: str = ""

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    def as_dict(self, *, profile: bool = True) -> dict[str, Any]:
        """A JSON-compatible view (timestamps in ISO 8601)."""
        out: dict[str, Any] = {
            "name": self.name, "version": self.version, "ref": self.ref, "sha256": self.sha256,
            "rows": self.rows, "schema": [{"column": c, "type": t} for c, t in self.schema],
            "created_at": self.created_at.isoformat(), "created_by": self.created_by,
            "source": self.source, "subject_column": self.subject_column, "size": self.size,
            "uri": self.uri}
        if profile:
            out["profile"] = self.profile.as_dict()
        return out


def utc_now() -> datetime:
    """The current time in UTC (the one clock snapshots are stamped with)."""
    return datetime.now(UTC)


__all__ = [
    "DatasetRef",
    "DatasetVersion",
    "check_dataset_name",
    "looks_like_snapshot_ref",
    "parse_dataset_ref",
    "utc_now",
]

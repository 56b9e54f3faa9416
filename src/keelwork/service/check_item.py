"""One item of the launch checklist (``keel check``): what :mod:`keelwork.service.launch_check`
and the drills of :mod:`keelwork.service.drills` return."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class CheckItem:
    """One item of the checklist.

    Attributes:
        name: The item.
        status: ``pass``, ``fail`` or ``not_checked``.
        detail: What was found.
        fix: What to do about a failure (or how to get the item checked).
        facts: Machine-readable findings (``--json``).
    """

    name: str
    status: str
    detail: str
    fix: str = ""
    facts: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


__all__ = ["CheckItem"]

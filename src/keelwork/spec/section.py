"""The base of every keel.yaml section: unknown keys are errors, values are frozen.

Also the one rule for user-chosen names (models, transforms, entities, flags' targets).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


class Section(BaseModel):
    """A keel.yaml section: ``extra="forbid"``, frozen, fields settable by alias or name."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def check_name(value: str, what: str) -> str:
    """``value`` if it is a valid name, else a pydantic error naming ``what`` and the value."""
    if not _NAME_RE.match(value):
        raise PydanticCustomError(
            "name_format",
            "{what} must start with a letter or digit and hold only letters, digits, "
            "'_', '.', '-' (at most 128); got {got}",
            {"what": what, "got": repr(value)},
        )
    return value


__all__ = ["Section", "check_name"]

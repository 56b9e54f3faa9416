"""Per-field accuracy of structured answers (an extraction model's record of fields) against
their labels (pure).

A label that is an object names the fields it knows the truth of; each such field of the
answer is right or wrong on its own, so one document gives one verdict per labelled field and
a field the label leaves out is not scored. Values are compared after normalising what does
not change their meaning:

- numbers (not booleans) are equal within 1e-9 (relative) or 1e-9 (absolute): ``4.11`` and
  ``4.110`` agree, ``4.11`` and ``4.12`` do not;
- text is compared case-folded, with only its letters and digits kept: ``"#BLR_WF 20"`` and
  ``"blrwf20"`` agree, ``"Amazon Web Services, Inc."`` and ``"Amazon Web Services"`` do not;
- a number and its text agree when the text reads as that number (``"319.00"`` and ``319``);
- a missing answer (None) is wrong wherever the label has a value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _text(value: Any) -> str:
    return "".join(c for c in str(value).casefold() if c.isalnum())


def same(answer: Any, truth: Any) -> bool:
    """Whether ``answer`` is ``truth`` after normalisation (see the module docstring)."""
    if truth is None:
        return answer is None
    if answer is None:
        return False
    a, t = _number(answer), _number(truth)
    if a is not None and t is not None and (not isinstance(answer, str)
                                            or not isinstance(truth, str)):
        return math.isclose(a, t, rel_tol=1e-9, abs_tol=1e-9)
    return _text(answer) == _text(truth)


@dataclass
class FieldTally:
    """Right and labelled counts per field, in the order fields were first seen."""

    right: dict[str, int] = field(default_factory=dict)
    labelled: dict[str, int] = field(default_factory=dict)

    def add(self, answer: Mapping[str, Any], label: Mapping[str, Any]) -> None:
        """Score one answer against its label, field by field (the label's fields)."""
        for name, truth in label.items():
            self.labelled[name] = self.labelled.get(name, 0) + 1
            self.right[name] = self.right.get(name, 0) + int(same(answer.get(name), truth))

    def as_dict(self) -> dict[str, Any]:
        """``{fields: {name: {labelled, right, accuracy}}, overall: {...}}``; accuracy is
        None where nothing is labelled."""
        fields = {n: {"labelled": k, "right": self.right[n], "accuracy": self.right[n] / k}
                  for n, k in self.labelled.items()}
        total = sum(self.labelled.values())
        right = sum(self.right.values())
        return {"fields": fields, "overall": {"labelled": total, "right": right,
                                              "accuracy": right / total if total else None}}


__all__ = ["FieldTally", "same"]

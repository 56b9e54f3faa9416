"""``keel review import``: verdicts completed in Label Studio or Argilla come back as labels.

The file is what those tools export of the tasks/records ``keel review export`` wrote
(:mod:`keelwork.core.review_formats` reads it). Each verdict goes through
:func:`keelwork.service.review.verdict`, the function behind ``keel review label`` and the
review page, so it is checked, linked to the logged prediction, attributed (the tool's user:
``label-studio:<email or id>``, ``argilla:<user id>``) and audited (``via``: the format and who
imported it).

Every record is handled on its own and reported: ``labelled``, ``already`` (that reviewer's
verdict was imported before: importing the same file twice changes nothing), ``skipped`` (no
verdict in it yet) or ``refused`` with why (a prediction not in the queue, erased or expired
from the log, a label the contract refuses, a malformed record). A refused record never stops
the others, and nothing already recorded is undone: fix the file and import it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from keelwork.adapters.stores.audit_store import AuditLog
from keelwork.core.review_formats import parse_verdicts
from keelwork.errors import ErrorDetail, KeelworkError, SpecError
from keelwork.service.review import verdict
from keelwork.spec.model import ResolvedSpec


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """What became of one verdict of the file."""

    where: str
    prediction_id: str | None
    reviewer: str | None
    outcome: str
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"where": self.where, "prediction_id": self.prediction_id,
                "reviewer": self.reviewer, "outcome": self.outcome, "message": self.message}


def import_verdicts(resolved: ResolvedSpec, engine: Engine, audit: AuditLog, fmt: str,
                    text: str, *, imported_by: str) -> list[ImportOutcome]:
    """Record every verdict of a Label Studio or Argilla file (see the module docstring).

    Args:
        fmt: ``label-studio`` or ``argilla``.
        text: The file's text (JSON array, one object, or JSON Lines).
        imported_by: Who runs the import (in each verdict's audit entry).

    Raises:
        SpecError: the format is unknown or the text is not JSON (nothing is recorded then).
    """
    try:
        parsed = parse_verdicts(fmt, text, resolved.spec.contract.outputs)
    except ValueError as exc:
        raise SpecError(f"Cannot import the file: {exc}",
                        [ErrorDetail("file", "review_import", None, str(exc))]) from None
    out: list[ImportOutcome] = []
    for v in parsed:
        pid = v.prediction_id
        if v.problem is not None:
            out.append(ImportOutcome(v.where, pid, v.reviewer, "refused", v.problem))
            continue
        if v.skipped is not None or pid is None or v.reviewer is None:
            out.append(ImportOutcome(v.where, pid, v.reviewer, "skipped", v.skipped or ""))
            continue
        try:
            verdict(resolved, engine, audit, pid, v.reviewer, v.label,
                    via=f"import:{fmt} by {imported_by}")
        except KeelworkError as exc:
            rules = {d.rule for d in exc.details}
            outcome = "already" if "review_twice" in rules else "refused"
            out.append(ImportOutcome(v.where, pid, v.reviewer, outcome, exc.message))
            continue
        out.append(ImportOutcome(v.where, pid, v.reviewer, "labelled"))
    return out


__all__ = ["ImportOutcome", "import_verdicts"]

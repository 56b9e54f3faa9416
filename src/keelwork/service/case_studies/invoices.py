"""The document-automation case study: invoices, an extraction model, the review of its
low-confidence fields, and accuracy before and after review.

- :func:`load_invoices` reads a folder of invoices (``NAME.pdf`` through ``pdftotext
  -layout``, or ``NAME.txt``) with their gold fields (``NAME.json``, invoice2data's format:
  a list of one object), as tests/fixtures/invoices holds them.
- :func:`confidence_floors` reads the acceptance rule from the output contract: a
  ``<field>_confidence`` output with a ``min`` is the confidence below which that field
  breaks the contract, which flags the answer (guard ``output_contract``) and, with
  ``review.guards: [output_contract]``, queues it for review.
- :func:`correction` is the **simulated** reviewer: it corrects exactly the fields whose
  confidence is under their floor, to the gold value, and keeps the model's value elsewhere
  (a reviewer who checks what was flagged, and nothing else, without mistakes).
- :func:`outcome` scores the model's answers (before) and the records after review (after)
  against the gold fields, per field, and counts the review work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from keelwork.adapters.data.pdf_text import pdf_text
from keelwork.core.extraction.invoices import FIELDS
from keelwork.core.monitors.fields import FieldTally, same
from keelwork.errors import DataFileError
from keelwork.spec.contract import ContractSection


@dataclass(frozen=True, slots=True)
class Invoice:
    """One document: its name, its layout text and its gold fields (those it has)."""

    name: str
    text: str
    gold: dict[str, Any]


def load_invoices(folder: str | Path) -> list[Invoice]:
    """Every invoice of ``folder`` with a ``NAME.json`` of gold fields, by name.

    Raises:
        DataFileError: a gold file is malformed, a document is missing, or pdftotext is not
            installed or fails.
    """
    out: list[Invoice] = []
    for gold_path in sorted(Path(folder).glob("*.json"), key=lambda p: p.name.lower()):
        try:
            body = orjson.loads(gold_path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise DataFileError(f"{gold_path} is not JSON: {exc}", path=str(gold_path)) from None
        if not (isinstance(body, list) and body and isinstance(body[0], Mapping)):
            raise DataFileError(f"{gold_path} must hold a list of one object (invoice2data's "
                                "format).", path=str(gold_path))
        gold = {f: body[0][f] for f in FIELDS if body[0].get(f) is not None}
        pdf, txt = gold_path.with_suffix(".pdf"), gold_path.with_suffix(".txt")
        if pdf.is_file():
            text = pdf_text(pdf)
        elif txt.is_file():
            text = txt.read_text(encoding="utf-8")
        else:
            raise DataFileError(f"{gold_path} has no document beside it ({pdf.name} or "
                                f"{txt.name}).", path=str(gold_path))
        out.append(Invoice(gold_path.stem, text, gold))
    return out


def confidence_floors(contract: ContractSection) -> dict[str, float]:
    """``{field: floor}`` from the outputs ``<field>_confidence`` that have a ``min``."""
    names = {f.name for f in contract.outputs}
    return {f.name.removesuffix("_confidence"): float(f.min) for f in contract.outputs
            if f.name.endswith("_confidence") and f.min is not None
            and f.name.removesuffix("_confidence") in names}


def values(answer: Mapping[str, Any]) -> dict[str, Any]:
    """The field values of an answer, without their confidences."""
    return {f: answer.get(f) for f in FIELDS}


def flagged(answer: Mapping[str, Any], floors: Mapping[str, float]) -> list[str]:
    """The fields of ``answer`` whose confidence is under their floor (or missing)."""
    out = []
    for field, floor in floors.items():
        c = answer.get(f"{field}_confidence")
        if not isinstance(c, int | float) or c < floor:
            out.append(field)
    return out


def correction(answer: Mapping[str, Any], gold: Mapping[str, Any],
               floors: Mapping[str, float]) -> dict[str, Any]:
    """The simulated reviewer's record: the flagged fields set to their gold value (where the
    gold has one), the other fields as the model answered them."""
    record = values(answer)
    for field in flagged(answer, floors):
        if field in gold:
            record[field] = gold[field]
    return record


def outcome(answers: Sequence[Mapping[str, Any]], finals: Sequence[Mapping[str, Any]],
            golds: Sequence[Mapping[str, Any]], *, reviewed: Sequence[bool],
            floors: Mapping[str, float]) -> dict[str, Any]:
    """Accuracy of the model alone and after review, per field, and the review work.

    Args:
        answers: The model's answers, one per document.
        finals: The records after review (the reviewer's label where reviewed, else the
            answer's values).
        golds: The gold fields of each document.
        reviewed: Whether each document was reviewed.
        floors: The confidence floors (which fields were flagged).

    Returns:
        ``{documents, gold_fields, before, after (FieldTally.as_dict), reviewed_documents,
        flagged_fields, flagged_wrong, corrected_fields, confident_errors}``.
    """
    before, after = FieldTally(), FieldTally()
    flagged_n = flagged_wrong = corrected = confident_errors = 0
    for answer, final, gold, done in zip(answers, finals, golds, reviewed, strict=True):
        before.add(answer, gold)
        after.add(final, gold)
        marked = set(flagged(answer, floors))
        for field, truth in gold.items():
            wrong = not same(answer.get(field), truth)
            if field in marked and done:
                flagged_n += 1
                flagged_wrong += wrong
                corrected += wrong and same(final.get(field), truth)
            elif wrong and field not in marked:
                confident_errors += 1
    return {"documents": len(answers), "gold_fields": sum(len(g) for g in golds),
            "before": before.as_dict(), "after": after.as_dict(),
            "reviewed_documents": sum(bool(r) for r in reviewed),
            "flagged_fields": flagged_n, "flagged_wrong": flagged_wrong,
            "corrected_fields": corrected, "confident_errors": confident_errors}


__all__ = ["Invoice", "confidence_floors", "correction", "flagged", "load_invoices",
           "outcome", "values"]

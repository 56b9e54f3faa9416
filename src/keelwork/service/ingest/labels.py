"""Ingesting labels files (kind ``labels``): parse each chunk, dead-letter the bad rows.

The rules of applying labels (duplicates, relabels, unknown ids) belong to the label store:
:mod:`keelwork.adapters.stores.label_writes`; this module reads files into it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from keelwork.adapters.stores.label_writes import apply_labels, reconcile_labels
from keelwork.core.ingest import Checkpoint, ChunkOutcome, DeadLetter
from keelwork.core.label_rows import LabelColumns, LabelRow, label_index, parse_label
from keelwork.errors import DataFileError, ErrorDetail
from keelwork.types import IngestLedger, IngestSource


@dataclass(frozen=True, slots=True)
class _LabelChunk:
    valid: list[tuple[int | None, LabelRow]]
    letters: list[DeadLetter]


class LabelsHandler:
    """Ingests labels files (:class:`~keelwork.types.ChunkHandler`).

    One label per record; records without a usable id or label are dead-lettered.

    Args:
        columns: Which columns hold the id, the label and (optionally) the time.
        check_labels: More rules for the label values, e.g. the output contract's
            (:class:`~keelwork.core.label_check.LabelChecker`); a label that breaks them is
            dead-lettered with the problems, as ``POST /v1/feedback`` refuses it.
        scrub: keel.yaml's PII policy for label records
            (:func:`keelwork.service.redaction.record_scrubber`), applied to every row
            before it is stored or dead-lettered.
    """

    kind = "labels"
    target = ""

    def __init__(self, columns: LabelColumns | None = None,
                 check_labels: Callable[[list[Any]], list[ErrorDetail]] | None = None, *,
                 scrub: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
        self.columns = columns or LabelColumns()
        self.check_labels = check_labels
        self.scrub = scrub

    def read_types(self) -> dict[str, Any]:
        """Ids as text (``007`` stays ``007``); labels as the file has them."""
        import pyarrow as pa

        return {self.columns.id: pa.string()}

    def check_columns(self, file: IngestSource) -> None:
        """Refuse a file without the id or label column, before anything is written.

        Raises:
            DataFileError: a required column is missing.
        """
        for name in self.columns.required():
            if name not in file.columns:
                raise DataFileError(
                    f"{file.path}: a labels file must have a '{name}' column; got the columns "
                    f"{', '.join(repr(c) for c in file.columns) or '(none)'}. Name the columns "
                    "with --id-column / --label-column.", path=str(file.path), line=1,
                    column=name)

    def begin(self, file: IngestSource, ledger: IngestLedger, checkpoint: Checkpoint) -> None:
        """Reconcile labels that earlier runs left unknown."""
        ledger.transaction("reconcile unknown labels",
                           lambda conn: reconcile_labels(conn, None, datetime.now(UTC)))

    def prepare(self, file: IngestSource, first_row: int, rows: list[dict[str, Any]],
                checkpoint: Checkpoint) -> _LabelChunk:
        """Parse a chunk: valid labels, and dead letters for the rest."""
        if self.scrub is not None:  # keel.yaml's PII policy: before anything is stored
            rows = [self.scrub(r) for r in rows]
        valid: list[tuple[int | None, LabelRow]] = []
        letters: list[DeadLetter] = []
        broken: dict[int, list[ErrorDetail]] = {}
        if self.check_labels is not None:
            label = self.columns.label
            for d in self.check_labels([r.get(label) for r in rows]):
                at = label_index(d.path)
                broken.setdefault(at, []).append(ErrorDetail(
                    label, d.rule, d.got, d.message.replace(f"'{d.path}'", f"'{label}'", 1)))
        for offset, record in enumerate(rows):
            row = first_row + offset
            parsed, details = parse_label(record, self.columns)
            if parsed is not None and offset in broken:
                parsed, details = None, broken[offset]
            if parsed is None:
                letters.append(DeadLetter.of(str(file.path), row, file.line_of(row), details,
                                             record))
            else:
                valid.append((row, parsed))
        return _LabelChunk(valid, letters)

    def write(self, conn: Connection, chunk: _LabelChunk, file: IngestSource) -> ChunkOutcome:
        """Apply a parsed chunk inside the ledger's transaction."""
        result = apply_labels(conn, chunk.valid, str(file.path))
        result.counts.dead_lettered = len(chunk.letters)
        result.counts.read = len(chunk.valid) + len(chunk.letters)
        return ChunkOutcome(result.counts, chunk.letters, result.unknown_ids)

    def end(self, file: IngestSource, ledger: IngestLedger, checkpoint: Checkpoint) -> None:
        """Nothing to do at the end of a labels file."""



__all__ = ["LabelsHandler"]

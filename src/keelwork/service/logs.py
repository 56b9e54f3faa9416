"""The prediction log as use-cases: read it (tail, follow, export) and feed it from files.

The store is the ``--project`` rule's (:func:`keelwork.service.projects.storage_url`). Reading
never creates a database or a table. Exports stream in batches (constant memory) into
``FILE.partial``, renamed to ``FILE`` at the end (:mod:`keelwork.adapters.data.atomic`); the
formats live in :mod:`keelwork.adapters.data.prediction_export`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keelwork.errors import DataFileError, StoreError
from keelwork.service.projects import spec_storage_url, storage_url
from keelwork.spec.durations import UNIT_SECONDS
from keelwork.spec.settings import env_name

if TYPE_CHECKING:
    from keelwork.adapters.stores.prediction_store import PredictionReader
    from keelwork.core.predictions import PredictionRecord
    from keelwork.service.ingest import ChunkHandler, FileResult, Ledger, ScoreHandler
    from keelwork.service.ingest.files import SourceFile
    from keelwork.spec.model import ResolvedSpec
    from keelwork.spec.settings import Settings

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")


def parse_when(text: str, now: float) -> float:
    """Turn ``--since`` / ``--until`` into unix seconds.

    Args:
        text: An ISO 8601 date or time (``2024-05-01``, ``2024-05-01T12:30:00+02:00``; UTC when
            no offset is given) or a duration before ``now`` (``90s``, ``30m``, ``1h``, ``2d``,
            ``1w``).
        now: Unix seconds that durations count back from.

    Returns:
        Unix seconds.

    Raises:
        ValueError: ``text`` is neither.
    """
    m = _RELATIVE.match(text)
    if m:
        return now - float(m.group(1)) * UNIT_SECONDS[m.group(2)]
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"must be an ISO date or time (2024-05-01, 2024-05-01T12:30:00+02:00) "
                         f"or a duration before now (30m, 1h, 2d); got {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


# --------------------------------------------------------------------------- reading the log
@contextmanager
def open_log(project: Path, settings: Settings) -> Iterator[PredictionReader]:
    """A reader of the project's prediction log.

    Raises:
        StoreError: the SQLite file does not exist, or the store holds no prediction log.
    """
    from sqlalchemy.engine import make_url

    from keelwork.adapters.stores.engine import make_engine
    from keelwork.adapters.stores.prediction_store import PredictionReader

    url = storage_url(project, settings)
    parsed = make_url(url) if "://" in url else None
    shown = parsed.render_as_string(hide_password=True) if parsed else url
    if parsed is not None and parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:" and not Path(db).exists():
            raise StoreError(f"No prediction log at {db}: the file does not exist. Serve the "
                             f"project first, pass --project DIR or set "
                             f"{env_name('storage_url')}.")
    engine = make_engine(url)
    try:
        reader = PredictionReader(engine)
        if not reader.has_log():
            raise StoreError(f"The store {shown} holds no prediction log (no 'predictions' "
                             "table); is this the project's storage URL?")
        yield reader
    finally:
        engine.dispose()


def follow(reader: PredictionReader, after: tuple[float, str] | None, *, model: str | None,
           status: str | None) -> Iterator[PredictionRecord]:
    """The records newer than ``after`` (``(ts, id)`` of the last one shown), oldest first."""
    from keelwork.adapters.stores.prediction_store import row_to_record

    for rows in reader.iter_row_batches(model=model, after=after, status=status):
        for row in rows:
            yield row_to_record(row)


def export_log(reader: PredictionReader, out: Path, fmt: str, *, since: float | None,
               until: float | None, model: str | None, with_labels: bool, batch_size: int,
               progress: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Export predictions (with inputs, outputs and metadata) to Parquet or CSV.

    Args:
        reader: The project's log.
        out: The file (written as ``OUT.partial``, renamed at the end).
        fmt: ``parquet`` or ``csv``.
        since: From this time (unix seconds), or None.
        until: Up to this time (exclusive), or None.
        model: Only this model, or None.
        with_labels: Join each prediction to its current label.
        batch_size: Rows per batch read.
        progress: ``progress(rows_written)`` after each batch.

    Returns:
        ``(rows written, rows with a label)``.
    """
    from keelwork.adapters.data.atomic import atomic_path
    from keelwork.adapters.data.prediction_export import CsvSink, ParquetSink

    labels = _label_reader(reader) if with_labels else None
    written = labelled = 0
    with atomic_path(out) as partial:
        sink = (ParquetSink(partial, with_labels) if fmt == "parquet"
                else CsvSink(partial, with_labels))
        try:
            for rows in reader.iter_row_batches(since, until, model=model,
                                                batch_size=batch_size):
                if labels is not None:
                    labelled += join_labels(rows, labels)
                sink.write(rows)
                written += len(rows)
                if progress is not None:
                    progress(written)
        finally:
            sink.close()
    return written, labelled


def count(reader: PredictionReader, since: float | None, until: float | None,
          model: str | None) -> int:
    """How many predictions :func:`export_log` with these bounds writes."""
    return int(reader.count(since, until, model=model))


def _label_reader(reader: PredictionReader) -> Any:
    from keelwork.adapters.stores.label_store import LabelStore

    return LabelStore(reader.engine)


def join_labels(rows: list[dict[str, Any]], labels: Any) -> int:
    """Add the label columns to ``rows`` in place; returns how many rows have a label."""
    found = labels.current([r["id"] for r in rows])
    for r in rows:
        label = found.get(r["id"])
        r["label"] = None if label is None else json.dumps(label.label)
        r["label_ts"] = None if label is None else label.ts
        r["label_source"] = None if label is None else label.source
    return len(found)


# --------------------------------------------------------------------------- ingest and score
def file_handler(kind: str, id_column: str, label_column: str, ts_column: str,
                 resolved: ResolvedSpec | None = None) -> ChunkHandler:
    """The handler for files of ``kind`` (``labels`` or ``predictions``); labels are checked
    against the project's output contract (keel.yaml's ``contract.outputs``) when it has one,
    as the feedback route checks them."""
    from keelwork.core.label_check import LabelChecker
    from keelwork.core.label_rows import LabelColumns
    from keelwork.service.ingest import LabelsHandler, PredictionsHandler
    from keelwork.service.redaction import build_redactor, record_scrubber

    if kind == "predictions":  # records loaded get the PII policy the server applies
        return PredictionsHandler(build_redactor(resolved.spec, resolved.project_dir)
                                  if resolved is not None else None)
    from keelwork.spec.fairness_checks import label_attributes

    outputs = resolved.spec.contract.outputs if resolved is not None else []
    checker = LabelChecker(outputs, label_attributes(resolved.spec) if resolved else ())
    scrub = (record_scrubber(resolved.spec, resolved.project_dir) if resolved is not None
             else None)
    return LabelsHandler(LabelColumns(id=id_column, label=label_column, ts=ts_column or None),
                         checker.check if checker.active else None, scrub=scrub)


class LedgerScope:
    """Opens the project's store as an ingest ledger for the duration of a ``with`` block."""

    def __init__(self, url: str, project: Path | None = None) -> None:
        self.url, self.project = url, project
        self.engine: Any = None

    def __enter__(self) -> Ledger:
        from keelwork.adapters.stores.engine import make_engine
        from keelwork.service.ingest import Ledger

        self.engine = make_engine(self.url)
        if self.project is not None:  # predictions it loads with a subject are sealed
            from keelwork.service.payload_keys import project_keys

            project_keys(self.project, self.engine, seal=True)
        return Ledger(self.engine)

    def __exit__(self, *_exc: object) -> None:
        if self.engine is not None:
            self.engine.dispose()


def open_ledger(project: Path, url: str | None = None, *,
                settings: Settings) -> LedgerScope:
    """The project's ingest ledger (a context manager).

    Raises:
        DataFileError: the project directory does not exist.
    """
    if not project.is_dir():
        raise DataFileError(f"The project directory '{project}' does not exist; pass an "
                            "existing directory with --project.", path=str(project))
    return LedgerScope(url or storage_url(project, settings), project)


def write_dead_letters(ledger: Ledger, results: list[FileResult], out: Path) -> int:
    """All dead letters of the given files, as JSON lines, via a temporary name.

    Returns:
        How many were written.

    Raises:
        DataFileError: the file cannot be written.
    """
    from keelwork.adapters.data.atomic import atomic_path

    written = 0
    try:
        with atomic_path(out) as partial, partial.open("w", encoding="utf-8") as fh:
            for r in results:
                for d in ledger.dead_letters(r.file_sha, r.kind, r.target):
                    fh.write(json.dumps(d.to_dict(), ensure_ascii=False, default=str) + "\n")
                    written += 1
    except OSError as exc:
        raise DataFileError(f"{out}: cannot be written: {exc.strerror or exc}.",
                            path=str(out)) from None
    return written


def load_project_spec(spec: Path | None, project: Path) -> ResolvedSpec | None:
    """``spec`` loaded, else ``DIR/keel.yaml`` when it exists, else None."""
    from keelwork.spec import load_spec

    if spec is not None:
        return load_spec(spec)
    default = project / "keel.yaml"
    return load_spec(default) if default.is_file() else None


@dataclass
class ScoreJob:
    """What :func:`prepare_score` readied: the checked files, the model loaded, the store."""

    handler: ScoreHandler
    files: list[SourceFile]
    project_dir: Path
    url: str
    target: str

    def close(self) -> None:
        """Unload the model."""
        self.handler.model.runtime.unload()


def prepare_score(data: list[Path], model: str, resolved: ResolvedSpec | None, project: Path, *,
                  spec_given: bool, id_column: str | None, predict_batch_size: int,
                  out: Path | None, settings: Settings) -> ScoreJob:
    """Check every file against the contract, then load the model: ready to score.

    Every file is checked before the store is opened or the model loaded.

    Raises:
        DataFileError: a file is unreadable or cannot fit the contract; ``out`` has an
            unknown format.
        RegistryError: the model reference resolves to nothing.
    """
    from keelwork.adapters.stores.registry_store import open_registry
    from keelwork.service.ingest import ScoreHandler, load_scoring_model
    from keelwork.service.ingest.files import check_source
    from keelwork.service.ingest.output import check_out_path
    from keelwork.service.ingest.scoring import check_columns, contract_read_types

    project_dir = resolved.project_dir if resolved is not None and spec_given else project
    url = (spec_storage_url(resolved, settings) if resolved is not None
           else storage_url(project_dir, settings))
    validator = None
    subject_field = None
    log_inputs = True
    redactor, model_redacted = None, False
    if resolved is not None:
        from keelwork.core.contracts import compile_contract
        from keelwork.service.redaction import build_redactor, model_sees_redacted

        contract = resolved.spec.contract
        validator = compile_contract(contract) if contract.inputs else None
        subject_field = contract.subject_field
        log_inputs = resolved.spec.storage.log_inputs
        redactor = build_redactor(resolved.spec, resolved.project_dir)
        model_redacted = model_sees_redacted(resolved.spec)
    if out is not None:
        check_out_path(out)
    types = contract_read_types(validator, id_column)
    checked = [check_source(path, types=types) for path in data]
    for file in checked:
        check_columns(file, validator, id_column)
    with open_registry(project_dir, url, user=settings.user,
                       audit_anchor=settings.audit_anchor) as registry:
        scoring = load_scoring_model(registry, model, resolved)
    try:
        handler = ScoreHandler(scoring, validator, id_column=id_column,
                               subject_field=subject_field,
                               predict_batch_size=predict_batch_size, log_inputs=log_inputs,
                               out=out, redactor=redactor,
                               model_redacted=model_redacted)
    except BaseException:
        scoring.runtime.unload()
        raise
    return ScoreJob(handler, checked, project_dir, url, str(scoring.target))


__all__ = ["LedgerScope", "ScoreJob", "count", "export_log", "file_handler", "follow",
           "join_labels", "load_project_spec", "open_ledger", "open_log", "parse_when",
           "prepare_score", "write_dead_letters"]


def show_prediction(reader: PredictionReader, prediction_id: str
                    ) -> tuple[PredictionRecord, dict[str, Any] | None]:
    """One logged prediction and its stored explanation (None: not explained).

    Raises:
        ModelNotFoundError: no prediction ``prediction_id`` is in the log.
    """
    from keelwork.adapters.stores.explanation_store import ExplanationStore, read_prediction
    from keelwork.errors import ErrorDetail, ModelNotFoundError

    record = read_prediction(reader.engine, prediction_id)
    if record is None:
        raise ModelNotFoundError(f"No prediction {prediction_id!r} is in the log.",
                                 [ErrorDetail("prediction_id", "unknown_prediction",
                                              prediction_id)])
    return record, ExplanationStore(reader.engine).get(prediction_id)

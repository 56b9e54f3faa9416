"""The ``keel drift`` use-case: a current data file against reference data or a saved profile.

:func:`compare_files` reads both files, profiles them (the reference unless it is a saved
profile), compares every column (:func:`~keelwork.core.monitors.drift.drift_report`) and, for
free-text columns, their descriptors and embeddings; it returns the typed
:class:`~keelwork.core.monitors.report.DriftReport`, which holds both profiles for its charts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keelwork.core.monitors.profile import TableProfile
from keelwork.core.monitors.report import DriftReport, MissingTextColumn
from keelwork.errors import DataFileError, MonitorError

#: How the reference was obtained, as ``keel drift`` says it.
SAVED, PROFILED = "saved profile", "profiled now"


@dataclass(frozen=True, slots=True)
class FileDrift:
    """A file comparison: the report, and how the reference was obtained (:data:`SAVED` or
    :data:`PROFILED`)."""

    report: DriftReport
    how: str


def load_reference_profile(path: Path) -> tuple[TableProfile, str]:
    """A saved profile (JSON with the profile kind) or a data file profiled now.

    Raises:
        DataFileError: the file is unreadable.
        MonitorError: JSON that is not a keelwork reference profile.
    """
    from keelwork.adapters.data import read_table
    from keelwork.core.monitors import PROFILE_KIND, profile_table

    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataFileError(f"{path}: not a readable JSON profile ({exc}).",
                                path=str(path)) from None
        if not isinstance(data, dict) or data.get("kind") != PROFILE_KIND:
            raise MonitorError(f"{path} is JSON but not a keelwork reference profile (kind "
                               f"{PROFILE_KIND!r}); save one with --save-reference.")
        return TableProfile.from_dict(data), SAVED
    return profile_table(read_table(path)), PROFILED


def compare_files(reference: Path, current: Path, *, text: Sequence[str] = (),
                  embed: bool = True, threshold: float | None = None,
                  on_phase: Callable[[str], Any] | None = None,
                  on_reference: Callable[[TableProfile], None] | None = None,
                  on_note: Callable[[str], None] | None = None) -> FileDrift:
    """Per-column drift of ``current`` against ``reference``.

    Args:
        reference: Reference data (CSV/Parquet/JSONL) or a saved profile (.json).
        current: The data to compare.
        text: Free-text columns, compared by descriptors (and embeddings with ``embed``);
            they need the reference as a data file.
        embed: Compare text embeddings too (needs keelwork[text]; without it, a note).
        threshold: The minimum effect size for every column (None: each method's own).
        on_phase: Told each phase as it starts (``comparing``, ``comparing text columns``).
        on_reference: Given the reference profile once it is made (to save it).
        on_note: Told what is left out, in a sentence (no embedder).

    Returns:
        The report and how the reference was obtained.

    Raises:
        MonitorError: ``text`` with a saved profile, or a text column not in the reference.
        DataFileError: a file is missing or unreadable.
    """
    from keelwork.adapters.data import read_table
    from keelwork.core.monitors import profile_table

    phase = on_phase or (lambda _p: None)
    if text and reference.suffix == ".json":
        raise MonitorError("--text needs the reference texts: give the reference as a data "
                           "file (CSV/Parquet/JSONL), not a saved profile.")
    ref_table = None
    if text:
        ref_table = read_table(reference)
        _check_text_columns(text, ref_table, str(reference), "--text")
        ref_profile, how = profile_table(ref_table.drop_columns(list(text))), PROFILED
    else:
        ref_profile, how = load_reference_profile(reference)
    if on_reference is not None:
        on_reference(ref_profile)
    phase("comparing")
    report = compare_to_profile(ref_profile, read_table(current), reference_table=ref_table,
                                text=text, embed=embed, threshold=threshold, on_phase=phase,
                                on_note=on_note)
    return FileDrift(report, how)


def compare_tables(reference: Any, current: Any, *, text: Sequence[str] = (),
                   embed: bool = True, threshold: float | None = None,
                   on_note: Callable[[str], None] | None = None) -> DriftReport:
    """Per-column drift of ``current`` against ``reference``: :func:`compare_files` on tables
    in memory (``Project.drift``).

    Args:
        reference: The reference rows (``pyarrow.Table``) or a saved profile
            (:class:`~keelwork.core.monitors.profile.TableProfile`).
        current: The rows to compare (``pyarrow.Table``).
        text: Free-text columns, compared by descriptors (and embeddings with ``embed``);
            they need the reference rows.
        embed: Compare text embeddings too (needs keelwork[text]; without it, a note).
        threshold: The minimum effect size for every column (None: each method's own).
        on_note: Told what is left out, in a sentence (no embedder).

    Returns:
        The report.

    Raises:
        MonitorError: ``text`` with a saved profile, or a text column not in the reference.
    """
    from keelwork.core.monitors import profile_table

    if isinstance(reference, TableProfile):
        if text:
            raise MonitorError("text= needs the reference texts: give the reference as rows "
                               "(a DataFrame, an Arrow table or a data file), not a saved "
                               "profile.")
        return compare_to_profile(reference, current, text=text, embed=embed,
                                  threshold=threshold, on_note=on_note)
    _check_text_columns(text, reference, "the reference", "text=")
    ref_profile = profile_table(reference.drop_columns(list(text)) if text else reference)
    return compare_to_profile(ref_profile, current, reference_table=reference, text=text,
                              embed=embed, threshold=threshold, on_note=on_note)


def compare_to_profile(reference: TableProfile, current: Any, *,
                       reference_table: Any = None, text: Sequence[str] = (),
                       embed: bool = True, threshold: float | None = None,
                       on_phase: Callable[[str], Any] | None = None,
                       on_note: Callable[[str], None] | None = None) -> DriftReport:
    """Per-column drift of the ``current`` table against a reference profile, and of its
    ``text`` columns against the same columns of ``reference_table``."""
    from keelwork.core.monitors import drift_report, profile_table

    cur_profile = profile_table(current, reference=reference)
    added = [c for c in current.column_names if c not in reference.columns and c not in text]
    report = drift_report(reference, cur_profile, floor=threshold, added=added)
    if text:
        (on_phase or (lambda _p: None))("comparing text columns")
        report = _with_text_drift(report, text, reference_table, current,
                                  _embedder(embed, on_note))
    return report


def _check_text_columns(columns: Sequence[str], table: Any, where: str, option: str) -> None:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise MonitorError(f"{option} names {', '.join(map(repr, missing))}, not a column of "
                           f"{where} (columns: {', '.join(table.column_names)}).")


def _embedder(embed: bool, on_note: Callable[[str], None] | None) -> Any:
    if not embed:
        return None
    from keelwork.errors import MissingExtraError

    try:
        from keelwork.adapters.embedders import WordLlamaEmbedder

        return WordLlamaEmbedder()
    except MissingExtraError as exc:
        if on_note is not None:
            on_note(f"no embedding drift: {exc.message}")
        return None


def _with_text_drift(report: DriftReport, columns: Sequence[str], ref_table: Any,
                     cur_table: Any, embedder: Any) -> DriftReport:
    """``report`` with each text column's verdicts (a missing one is a schema change)."""
    from keelwork.core.monitors import build_text_reference, text_drift

    for col in columns:
        ref = build_text_reference(col, ref_table.column(col), embedder=embedder)
        if col in cur_table.column_names:
            report = report.with_columns(text_drift(ref, cur_table.column(col),
                                                    embedder=embedder))
        else:
            report = report.with_columns([MissingTextColumn.of(col)])
    return report


__all__ = ["PROFILED", "SAVED", "FileDrift", "compare_files", "compare_tables",
           "compare_to_profile", "load_reference_profile"]

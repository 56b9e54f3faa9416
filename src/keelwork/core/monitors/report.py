"""Typed reports: a drift report (:class:`DriftReport`), a monitor report (:class:`MonitorReport`).

A report is what a person reads and what is stored: ``to_dict()`` is its JSON form (``keel drift
--json``/``--out``, the ``drift`` of every stored monitor window, ``keel monitor run --json``),
``to_html()`` a self-contained page (:mod:`keelwork.core.reports`), and ``_repr_html_`` shows it
inline in Jupyter.

A drift report's summary is computed in one place, :func:`summarise`, from its per-column
verdicts (:class:`ColumnDrift`), however they were gathered: profiled columns, then free-text
descriptors and embeddings appended (:meth:`DriftReport.with_columns`).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

#: ``kind`` and ``version`` stamped on drift reports.
REPORT_KIND = "keelwork.drift-report"
REPORT_VERSION = 1
#: ``kind`` and ``version`` stamped on monitor reports.
MONITOR_REPORT_KIND = "keelwork.monitor-report"
MONITOR_REPORT_VERSION = 1
#: Height of the inline frame a report is shown in, in Jupyter.
_FRAME_HEIGHT_PX = 640


@dataclass(frozen=True, slots=True)
class ColumnDrift:
    """The verdict on one column: ``status`` is ``drift``, ``no_drift``, or why it was not
    compared; ``drift`` is True/False, or None when not compared."""

    column: str
    kind: str
    status: str
    drift: bool | None
    reason: str
    method: str | None = None
    score: float | None = None
    threshold: float | None = None
    floor: float | None = None
    noise: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def detectable(self) -> bool:
        """Above the noise but below the minimum effect size (not an alarm)."""
        return bool(self.details.get("detectable"))

    def as_dict(self) -> dict[str, Any]:
        """A JSON-compatible view (every float finite or ``None``)."""
        return {"column": self.column, "kind": self.kind, "status": self.status,
                "drift": self.drift, "method": self.method, "score": _num(self.score),
                "threshold": _num(self.threshold), "floor": _num(self.floor),
                "noise": _num(self.noise), "reason": self.reason,
                "metrics": {k: _num(v) for k, v in self.metrics.items()}, **self.details}


@dataclass(frozen=True, slots=True)
class MissingTextColumn(ColumnDrift):
    """A free-text column of the reference absent from the current data: a schema change,
    counted as drift. It was never measured, so its view holds no method or metrics."""

    @classmethod
    def of(cls, column: str) -> MissingTextColumn:
        """The verdict on the absent text column ``column``."""
        return cls(column, "text", status="missing", drift=True, reason=(
            f"Text column {column!r} is in the reference but not in the current data: a "
            f"schema change, counted as drift."))

    def as_dict(self) -> dict[str, Any]:
        """A JSON-compatible view: column, kind, status, drift, score (None) and reason."""
        return {"column": self.column, "kind": self.kind, "status": self.status,
                "drift": self.drift, "score": None, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class DriftSummary:
    """What a drift report's columns add up to (see :func:`summarise`)."""

    columns: int
    drifted: tuple[str, ...]
    detectable: tuple[str, ...]
    not_compared: tuple[str, ...]
    #: Drifted columns over compared ones (0.0 when none was compared).
    share_drifted: float
    #: Schema changes: reference columns absent from the current data (counted as drift) ...
    missing: tuple[str, ...]
    #: ... and current columns the reference does not have (not compared).
    added: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The ``summary`` of the report's JSON."""
        return {"columns": self.columns, "drifted": list(self.drifted),
                "detectable": list(self.detectable), "not_compared": list(self.not_compared),
                "share_drifted": self.share_drifted,
                "schema": {"missing": list(self.missing), "added": list(self.added)}}


def summarise(columns: Sequence[ColumnDrift], added: Sequence[str] = ()) -> DriftSummary:
    """The one summary of a drift report's verdicts.

    Args:
        columns: Every column's verdict.
        added: Columns of the current data that the reference does not have.

    Returns:
        Counts and names: drifted (a missing column counts), detectable, not compared, the
        share drifted among compared columns, and the schema changes.
    """
    drifted = tuple(c.column for c in columns if c.drift)
    compared = [c for c in columns if c.drift is not None]
    return DriftSummary(
        columns=len(columns), drifted=drifted,
        detectable=tuple(c.column for c in columns if c.detectable),
        not_compared=tuple(c.column for c in columns if c.drift is None),
        share_drifted=len(drifted) / len(compared) if compared else 0.0,
        missing=tuple(c.column for c in columns if c.status == "missing" and c.drift),
        added=tuple(added))


@dataclass(frozen=True, slots=True)
class DriftReport:
    """Per-column drift of current data against a reference
    (:func:`~keelwork.core.monitors.drift.drift_report` makes one).

    Attributes:
        reference_rows: Rows of the reference.
        current_rows: Rows of the current data.
        columns: One verdict per reference column, then any appended (text, embeddings).
        added: Current columns the reference does not have.
        notes: What could not be computed, in sentences (e.g. a text column's failure).
        reference_profile: The reference profile, when at hand: :meth:`to_html` then charts
            every column's distributions. Not part of the JSON.
        current_profile: The current profile, built against ``reference_profile``.
    """

    reference_rows: int
    current_rows: int
    columns: tuple[ColumnDrift, ...]
    added: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    reference_profile: Any = field(default=None, compare=False, repr=False)
    current_profile: Any = field(default=None, compare=False, repr=False)

    @property
    def summary(self) -> DriftSummary:
        """The report's summary (:func:`summarise`)."""
        return summarise(self.columns, self.added)

    @property
    def drifted(self) -> tuple[str, ...]:
        """The drifted columns (a missing one counts)."""
        return self.summary.drifted

    def __bool__(self) -> bool:
        """False when a column drifted, as every report of the Python API is falsy when its
        check fails (``if not project.drift(ref, cur): ...``)."""
        return not self.drifted

    def column(self, name: str) -> ColumnDrift:
        """The verdict on column ``name``.

        Raises:
            KeyError: no such column in the report.
        """
        for c in self.columns:
            if c.column == name:
                return c
        raise KeyError(name)

    def with_columns(self, more: Iterable[ColumnDrift]) -> DriftReport:
        """This report with ``more`` verdicts appended (the summary follows)."""
        return replace(self, columns=(*self.columns, *more))

    def with_note(self, note: str) -> DriftReport:
        """This report with one more note."""
        return replace(self, notes=(*self.notes, note))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``kind``, ``version``, ``rows`` (reference/current), ``summary``,
        ``columns`` (one :meth:`ColumnDrift.as_dict` each) and ``notes`` when there are some."""
        out: dict[str, Any] = {
            "kind": REPORT_KIND, "version": REPORT_VERSION,
            "rows": {"reference": self.reference_rows, "current": self.current_rows},
            "summary": self.summary.to_dict(),
            "columns": [c.as_dict() for c in self.columns],
        }
        if self.notes:
            out["notes"] = list(self.notes)
        return out

    def to_html(self, *, title: str = "Drift report", reference_name: str = "reference",
                current_name: str = "current") -> str:
        """A self-contained HTML page of the report (with distribution charts when the report
        holds both profiles), as ``keel drift --html`` writes.

        Args:
            title: The page title.
            reference_name: What the reference data is called on the page.
            current_name: What the current data is called on the page.

        Returns:
            The page: one HTML document with its styles and charts inline, no external URL.
        """
        from keelwork.core.reports import render_drift_html

        return render_drift_html(self.to_dict(), title=title, reference_name=reference_name,
                                 current_name=current_name,
                                 reference_profile=self.reference_profile,
                                 current_profile=self.current_profile)

    def _repr_html_(self) -> str:
        return inline_frame(self.to_html())


@dataclass(frozen=True, slots=True)
class MonitorReport:
    """A monitoring run over the prediction log, window by window (``keel monitor run``).

    Attributes:
        model: The monitored model.
        model_version: The version whose predictions were monitored (None: every version).
        window: The window spec (``1h``, ``1000p``, ...).
        generated_at: When the run ended (ISO 8601).
        reference: The reference compared with (``id``, ``model_version``, ``rows``,
            ``source``, ``created_at``, ``note``).
        windows: One entry per window, as stored in ``monitor_results`` (each window's
            ``drift`` is a :meth:`DriftReport.to_dict`).
    """

    model: str
    model_version: int | None
    window: str
    generated_at: str
    reference: dict[str, Any]
    windows: tuple[dict[str, Any], ...] = ()

    @property
    def drifted(self) -> bool:
        """Whether a window, or a segment of one, drifted."""
        return any(window_drifted(w) for w in self.windows)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (kind ``keelwork.monitor-report``)."""
        return {"kind": MONITOR_REPORT_KIND, "version": MONITOR_REPORT_VERSION,
                "model": self.model, "model_version": self.model_version,
                "window": self.window, "generated_at": self.generated_at,
                "reference": self.reference, "windows": list(self.windows)}

    def to_html(self) -> str:
        """A self-contained HTML page, as ``keel monitor run --html`` writes.

        Returns:
            The page: time series over the windows, then each window.
        """
        from keelwork.core.reports import render_monitor_html

        return render_monitor_html(self.to_dict())

    def _repr_html_(self) -> str:
        return inline_frame(self.to_html())


def window_drifted(window: Mapping[str, Any]) -> bool:
    """Whether a stored monitor window, or a segment of it, drifted."""
    drift = window.get("drift") or {}
    return bool((drift.get("summary") or {}).get("drifted")) or any(
        s["summary"]["drifted"] for s in window.get("segments", []))


def inline_frame(page: str) -> str:
    """A page in an inline frame, so that its styles stay off the notebook around it."""
    return (f'<iframe srcdoc="{html.escape(page, quote=True)}" '
            f'style="width:100%;height:{_FRAME_HEIGHT_PX}px;border:0"></iframe>')


def _num(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


__all__ = [
    "MONITOR_REPORT_KIND",
    "MONITOR_REPORT_VERSION",
    "REPORT_KIND",
    "REPORT_VERSION",
    "ColumnDrift",
    "DriftReport",
    "DriftSummary",
    "MissingTextColumn",
    "MonitorReport",
    "inline_frame",
    "summarise",
    "window_drifted",
]

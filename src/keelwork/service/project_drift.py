"""Comparing two tables for drift: the use-case behind ``Project.drift``.

The same steps as ``keel drift`` for numeric and categorical columns: profile the reference,
profile the current table against it, compare with calibrated thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keelwork.service.project_reports import html_page, html_table


@dataclass(frozen=True)
class DriftResult:
    """The drift of a current table against a reference, column by column.

    Attributes:
        data: What ``keel drift --json`` prints: ``rows``, ``summary`` (``drifted``,
            ``not_compared``, ``share_drifted``, ``schema``) and ``columns``.
    """

    data: dict[str, Any] = field(repr=False)

    @property
    def drifted(self) -> list[str]:
        """The columns that drifted."""
        return list(self.data["summary"]["drifted"])

    def __bool__(self) -> bool:
        return not self.drifted

    def to_dict(self) -> dict[str, Any]:
        """The report as ``keel drift --json`` prints it."""
        return self.data

    def to_html(self) -> str:
        """One row per column: verdict, method, score and threshold."""
        s = self.data["summary"]
        verdict = f"{len(s['drifted'])} of {s['columns']} column(s) drifted"
        rows = [{**c, "verdict": {True: "drift", False: "ok"}.get(c.get("drift"),
                                                                  c.get("status"))}
                for c in self.data["columns"]]
        return html_page("Drift", verdict, not s["drifted"], html_table(
            rows, ("column", "kind", "verdict", "method", "score", "threshold")))

    def _repr_html_(self) -> str:
        return self.to_html()


def compare_tables(reference: Any, current: Any, *, threshold: float | None = None
                   ) -> DriftResult:
    """Per-column drift of ``current`` against ``reference`` (both ``pyarrow.Table``).

    Raises:
        MonitorError: the tables cannot be compared.
    """
    from keelwork.core.monitors import drift_report, profile_table

    ref_profile = profile_table(reference)
    cur_profile = profile_table(current, reference=ref_profile)
    added = [c for c in current.column_names if c not in ref_profile.columns]
    return DriftResult(drift_report(ref_profile, cur_profile, floor=threshold,
                                    added=added).to_dict())


__all__ = ["DriftResult", "compare_tables"]

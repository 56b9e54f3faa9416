"""Monitoring's domain: mergeable reference profiles and per-column drift.

Pure logic on in-memory tables; pyarrow and numpy are imported inside the functions, so
importing this package loads neither.

- :mod:`~keelwork.core.monitors.profile`: :func:`profile_table`, :class:`TableProfile`,
  :class:`ColumnProfile` (fixed-layout histograms and category counts that merge exactly).
- :mod:`~keelwork.core.monitors.drift`: :func:`drift_report`, :func:`column_drift` and the
  default method and threshold per column type (documented there, with the reasoning).
"""

from __future__ import annotations

from keelwork.core.monitors.drift import (
    DEFAULT_METHOD,
    FLOORS,
    METHODS,
    REPORT_KIND,
    REPORT_VERSION,
    ColumnDrift,
    column_drift,
    drift_report,
)
from keelwork.core.monitors.profile import (
    DEFAULT_BINS,
    DEFAULT_MAX_CATEGORIES,
    DEFAULT_MAX_NEW,
    PROFILE_KIND,
    PROFILE_VERSION,
    ColumnProfile,
    ProfileError,
    TableProfile,
    column_from_dict,
    profile_table,
)

__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_MAX_CATEGORIES",
    "DEFAULT_MAX_NEW",
    "DEFAULT_METHOD",
    "FLOORS",
    "METHODS",
    "PROFILE_KIND",
    "PROFILE_VERSION",
    "REPORT_KIND",
    "REPORT_VERSION",
    "ColumnDrift",
    "ColumnProfile",
    "ProfileError",
    "TableProfile",
    "column_drift",
    "column_from_dict",
    "drift_report",
    "profile_table",
]

"""Monitoring's domain: mergeable reference profiles and per-column drift.

Pure logic on in-memory tables; pyarrow and numpy are imported inside the functions, so
importing this package loads neither.

- :mod:`~keelwork.core.monitors.profile`: :func:`profile_table`, :class:`TableProfile`,
  :class:`ColumnProfile` (fixed-layout histograms and category counts that merge exactly).
- :mod:`~keelwork.core.monitors.drift`: :func:`drift_report`, :func:`column_drift` and the
  default method and threshold per column type (documented there, with the reasoning).
- :mod:`~keelwork.core.monitors.text`: text columns as descriptors (length, words,
  out-of-vocabulary rate, ...) compared like numeric columns, plus embedding drift
  (:mod:`~keelwork.core.monitors.embedding`: MMD with a permutation threshold and a floor).
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
from keelwork.core.monitors.embedding import embedding_drift
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
from keelwork.core.monitors.text import (
    DESCRIPTORS,
    TextReference,
    build_text_reference,
    text_drift,
)

__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_MAX_CATEGORIES",
    "DEFAULT_MAX_NEW",
    "DEFAULT_METHOD",
    "DESCRIPTORS",
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
    "TextReference",
    "build_text_reference",
    "column_drift",
    "column_from_dict",
    "drift_report",
    "embedding_drift",
    "profile_table",
    "text_drift",
]

"""Monitoring's domain: mergeable reference profiles and per-column drift.

Pure logic on in-memory tables; pyarrow and numpy are imported inside the functions, so
importing this package loads neither.

- :mod:`~keelwork.core.monitors.profile`: :func:`profile_table`, :class:`TableProfile`,
  :class:`ColumnProfile` (fixed-layout histograms and category counts that merge exactly).
- :mod:`~keelwork.core.monitors.drift`: :func:`drift_report`, :func:`column_drift` and the
  default method and threshold per column type (documented there, with the reasoning).
- :mod:`~keelwork.core.monitors.report`: the typed reports, :class:`DriftReport` (its one
  summary, :func:`summarise`) and :class:`MonitorReport`, with ``to_dict``/``to_html``.
- :mod:`~keelwork.core.monitors.quality`: realised quality from labels (classification,
  regression, label coverage and delay); :mod:`~keelwork.core.monitors.cbpe`: performance
  estimated without labels (confidence-based, isotonic calibration), binary or, in
  :mod:`~keelwork.core.monitors.cbpe_multiclass`, one-vs-rest for three or more classes.
- :mod:`~keelwork.core.monitors.text`: text columns as descriptors (length, words,
  out-of-vocabulary rate, ...) compared like numeric columns, plus embedding drift
  (:mod:`~keelwork.core.monitors.embedding`: MMD with a permutation threshold and a floor).
"""

from __future__ import annotations

from keelwork.core.monitors.cbpe import (
    CALIBRATOR_KIND,
    CBPE_KIND,
    Calibrator,
    CBPEReference,
    estimate_performance,
    fit_calibrator,
    fit_cbpe,
)
from keelwork.core.monitors.drift import (
    DEFAULT_METHOD,
    FLOORS,
    METHODS,
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
from keelwork.core.monitors.quality import (
    COVERAGE_STATES,
    classification_metrics,
    label_coverage,
    regression_metrics,
)
from keelwork.core.monitors.report import (
    REPORT_KIND,
    REPORT_VERSION,
    ColumnDrift,
    DriftReport,
    DriftSummary,
    MonitorReport,
    summarise,
)
from keelwork.core.monitors.text import (
    DESCRIPTORS,
    TextReference,
    build_text_reference,
    text_drift,
)

__all__ = [
    "CALIBRATOR_KIND",
    "CBPE_KIND",
    "COVERAGE_STATES",
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
    "CBPEReference",
    "Calibrator",
    "ColumnDrift",
    "ColumnProfile",
    "DriftReport",
    "DriftSummary",
    "MonitorReport",
    "ProfileError",
    "TableProfile",
    "TextReference",
    "build_text_reference",
    "classification_metrics",
    "column_drift",
    "column_from_dict",
    "drift_report",
    "embedding_drift",
    "estimate_performance",
    "fit_calibrator",
    "fit_cbpe",
    "label_coverage",
    "profile_table",
    "regression_metrics",
    "summarise",
    "text_drift",
]

"""Fairness of a classifier's answers across the groups of protected fields.

Pure logic on counts; nothing here reads a store or imports numpy.

- :mod:`~keelwork.core.fairness.groups`: :class:`GroupTally` (per field and group, the
  confusion counts of labelled answers against one positive class, bounded in groups), the
  per-group rates (selection rate, TPR, FPR, precision) and the disparities between groups,
  defined as Fairlearn defines them (``MetricFrame(...).by_group``,
  ``demographic_parity_difference``/``_ratio``, ``equalized_odds_difference``/``_ratio``).
- :mod:`~keelwork.core.fairness.intervals`: Wilson score intervals, made simultaneous over a
  field's groups (Bonferroni), and the intervals of the disparities they imply.
- :mod:`~keelwork.core.fairness.verdict`: :func:`fairness_report`: every field's groups,
  disparities, intervals and whether each disparity alerts: only when its whole interval lies
  beyond the threshold, so a small group's noisy gap does not page.
"""

from __future__ import annotations

from keelwork.core.fairness.groups import GroupCounts, GroupTally
from keelwork.core.fairness.verdict import FairnessRules, fairness_report

__all__ = ["FairnessRules", "GroupCounts", "GroupTally", "fairness_report"]

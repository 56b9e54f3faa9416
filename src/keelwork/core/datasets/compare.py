"""``keel data diff``: schema changes and per-column distribution shifts between snapshots."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from keelwork.core.datasets.model import DatasetVersion
from keelwork.core.datasets.profile import CategoryStats, ColumnProfile, NumericStats, _num

#: Population stability index from which a column counts as shifted (the usual rule of thumb).
PSI_ALERT = 0.2
_EPS = 1e-4


@dataclass(frozen=True, slots=True)
class SchemaChange:
    """A column ``added``, ``removed`` or ``type_changed`` between two snapshots."""

    column: str
    change: str
    before: str | None
    after: str | None


@dataclass(frozen=True, slots=True)
class ColumnShift:
    """How one column's distribution moved. ``mean_shift`` is in standard deviations of
    *before*; ``psi`` / ``js`` compare histograms (or category shares); ``js`` is the
    Jensen-Shannon distance in [0, 1]."""

    column: str
    kind: str
    null_rate_before: float
    null_rate_after: float
    mean_before: float | None = None
    mean_after: float | None = None
    std_before: float | None = None
    std_after: float | None = None
    mean_shift: float | None = None
    psi: float | None = None
    js: float | None = None
    new_categories: tuple[str, ...] = ()
    missing_categories: tuple[str, ...] = ()

    @property
    def shifted(self) -> bool:
        return (self.psi is not None and self.psi >= PSI_ALERT) or bool(
            self.new_categories or self.missing_categories)


@dataclass(frozen=True, slots=True)
class DatasetDiff:
    """``keel data diff``: schema changes, row counts and per-column shifts, *before* -> *after*."""

    before: str
    after: str
    same_content: bool
    rows_before: int
    rows_after: int
    schema_changes: tuple[SchemaChange, ...]
    columns: tuple[ColumnShift, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-compatible view."""
        return {
            "before": self.before, "after": self.after, "same_content": self.same_content,
            "rows": {"before": self.rows_before, "after": self.rows_after,
                     "change": self.rows_after - self.rows_before},
            "schema_changes": [{"column": s.column, "change": s.change, "before": s.before,
                                "after": s.after} for s in self.schema_changes],
            "columns": [{
                "column": c.column, "kind": c.kind, "null_rate_before": c.null_rate_before,
                "null_rate_after": c.null_rate_after, "mean_before": _num(c.mean_before),
                "mean_after": _num(c.mean_after), "std_before": _num(c.std_before),
                "std_after": _num(c.std_after), "mean_shift": _num(c.mean_shift),
                "psi": _num(c.psi), "js": _num(c.js), "new_categories": list(c.new_categories),
                "missing_categories": list(c.missing_categories), "shifted": c.shifted,
            } for c in self.columns],
        }


def diff(a: DatasetVersion, b: DatasetVersion) -> DatasetDiff:
    """Compare two snapshots: schema, row counts and, for columns in both, their distributions.

    Args:
        a: The *before* snapshot.
        b: The *after* snapshot.

    Returns:
        The differences; ``same_content`` when both have one content hash.
    """
    before, after = dict(a.schema), dict(b.schema)
    changes = [SchemaChange(c, "removed", t, None) for c, t in a.schema if c not in after]
    changes += [SchemaChange(c, "added", None, t) for c, t in b.schema if c not in before]
    changes += [SchemaChange(c, "type_changed", before[c], t) for c, t in b.schema
                if c in before and before[c] != t]
    shifts = []
    for name, _ in a.schema:
        pa_, pb = a.profile.column(name), b.profile.column(name)
        if name in after and pa_ is not None and pb is not None:
            shifts.append(column_shift(pa_, pb))
    return DatasetDiff(a.ref, b.ref, a.sha256 == b.sha256, a.rows, b.rows, tuple(changes),
                       tuple(shifts))


def column_shift(a: ColumnProfile, b: ColumnProfile) -> ColumnShift:
    """The shift of one column between two profiles (see :class:`ColumnShift`)."""
    shift = ColumnShift(a.name, b.kind if a.kind == b.kind else f"{a.kind}->{b.kind}",
                        a.null_rate, b.null_rate)
    if a.numeric is not None and b.numeric is not None:
        sa, sb = a.numeric, b.numeric
        psi, js = _distances(*_histogram_masses(sa, sb))
        moved = (sb.mean - sa.mean) / sa.std if sa.std > 0 else (
            0.0 if sb.mean == sa.mean else math.inf)
        return _replace(shift, mean_before=sa.mean, mean_after=sb.mean, std_before=sa.std,
                        std_after=sb.std, mean_shift=moved, psi=psi, js=js)
    if a.categories is not None and b.categories is not None and "redacted" not in (
            a.kind, b.kind) and ("categorical" in (a.kind, b.kind) or a.lengths is None
                                 or b.lengths is None):
        ca, cb = a.categories, b.categories
        seen_a, seen_b = {v for v, _ in ca.top}, {v for v, _ in cb.top}
        new = tuple(v for v, _ in cb.top if v not in seen_a) if ca.complete else ()
        gone = tuple(v for v, _ in ca.top if v not in seen_b) if cb.complete else ()
        psi, js = _distances(*_category_masses(ca, a.count, cb, b.count))
        return _replace(shift, psi=psi, js=js, new_categories=new, missing_categories=gone)
    if a.lengths is not None and b.lengths is not None:
        la, lb = a.lengths, b.lengths
        psi, js = _distances(*_histogram_masses(la, lb))
        return _replace(shift, mean_before=la.mean, mean_after=lb.mean, std_before=la.std,
                        std_after=lb.std, psi=psi, js=js)
    return shift


def _replace(shift: ColumnShift, **changes: Any) -> ColumnShift:
    from dataclasses import replace

    return replace(shift, **changes)


def _histogram_masses(a: NumericStats, b: NumericStats) -> tuple[list[float], list[float]]:
    """Both histograms' shares on one grid.

    Profiles on the shared lattice (:func:`~keelwork.core.datasets.profile.lattice_edges`) are
    compared on the coarser grid, widened to cover both: every grid point is an edge of each
    histogram or outside its range, so no mass is spread. Other profiles (stored before the
    lattice, or a range too wide for it) use ``a``'s edges plus ``b``'s ends with linear CDFs.
    """
    import numpy as np

    grid = _common_grid(np.asarray(a.edges), np.asarray(b.edges))
    if grid is None:
        grid = np.unique(np.concatenate([a.edges, [b.edges[0], b.edges[-1]]]))

    def masses(s: NumericStats) -> list[float]:
        cdf = np.concatenate([[0.0], np.cumsum(s.counts)]) / max(sum(s.counts), 1)
        return [float(m) for m in np.diff(np.interp(grid, s.edges, cdf, left=0.0, right=1.0))]

    return masses(a), masses(b)


def _common_grid(a: Any, b: Any) -> Any:
    """The coarser lattice covering both edge sets, or None when they are not nested."""
    import numpy as np

    if len(a) < 2 or len(b) < 2:
        return None
    widths = []
    for edges in (a, b):
        steps = np.diff(edges)
        if not np.allclose(steps, steps[0], rtol=1e-12, atol=0.0):
            return None
        widths.append(float(steps[0]))
    (fine, wf), (coarse, wc) = sorted(zip((a, b), widths, strict=True), key=lambda p: p[1])
    ratio = wc / wf
    offset = (coarse[0] - fine[0]) / wf
    if (abs(ratio - round(ratio)) > 1e-9 or round(ratio) & (round(ratio) - 1)
            or abs(offset - round(offset)) > 1e-6):
        return None  # not powers of two on one lattice
    first = min(coarse[0], coarse[0] - math.ceil((coarse[0] - fine[0]) / wc - 1e-9) * wc)
    last = max(coarse[-1], coarse[0] + math.ceil((fine[-1] - coarse[0]) / wc - 1e-9) * wc)
    return first + wc * np.arange(round((last - first) / wc) + 1, dtype=np.float64)


def _category_masses(a: CategoryStats, a_count: int, b: CategoryStats,
                     b_count: int) -> tuple[list[float], list[float]]:
    labels = list(dict.fromkeys([v for v, _ in a.top] + [v for v, _ in b.top]))

    def masses(s: CategoryStats, count: int) -> list[float]:
        known = dict(s.top)
        shares = [known.get(v, 0) / count if count else 0.0 for v in labels]
        return [*shares, max(0.0, 1.0 - sum(shares)) if count else 0.0]  # the rest: "other"

    return masses(a, a_count), masses(b, b_count)


def _distances(p: Sequence[float], q: Sequence[float]) -> tuple[float | None, float | None]:
    """(PSI, Jensen-Shannon distance base 2) of two share vectors; ``None`` when one is empty."""
    import numpy as np

    ps, qs = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    if ps.sum() <= 0 or qs.sum() <= 0:
        return None, None
    ps, qs = ps / ps.sum(), qs / qs.sum()
    pc_, qc = np.clip(ps, _EPS, None), np.clip(qs, _EPS, None)
    psi = float(np.sum((qc - pc_) * np.log(qc / pc_)))
    m = (ps + qs) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(ps > 0, ps * np.log2(ps / m), 0.0).sum()
        kl_q = np.where(qs > 0, qs * np.log2(qs / m), 0.0).sum()
    return psi, float(math.sqrt(max(0.0, (kl_p + kl_q) / 2)))


__all__ = [
    "PSI_ALERT",
    "ColumnShift",
    "DatasetDiff",
    "SchemaChange",
    "column_shift",
    "diff",
]

"""Per-column drift between a reference profile and a current one.

Every metric is computed from the two profiles (:mod:`keelwork.core.monitors.profile`), never
from rows, so a reference is profiled once and reused, and a current window may be a merge of
smaller ones.

Metrics (``score``: larger is more drift, 0 is none):

- ``wasserstein`` (numeric): earth mover's distance between the binned distributions (values
  uniform within a bin), divided by the reference's standard deviation: "how many reference
  standard deviations the mass moved on average".
- ``ks`` (numeric): Kolmogorov-Smirnov statistic, the largest CDF gap, read at the bin edges
  (a lower bound of the exact statistic, within one bin's mass).
- ``psi`` (both): population stability index, ``sum((q - p) * ln(q / p))`` with half a count
  added to every bin so empty bins stay finite.
- ``js`` (both): Jensen-Shannon *distance* (square root of the divergence, base 2: in [0, 1]).
- ``chisquare`` (categorical): Cohen's effect size ``w = sqrt(sum((q - p)^2 / p))``, the
  chi-square statistic divided by the sample size, so it does not grow with ``n``.

Defaults, and why:

- Numeric: ``wasserstein``, floor 0.1 (a tenth of a reference standard deviation). It sees
  shifts of location *and* scale, it is in units a person can read, and unlike PSI/JS it knows
  how *far* mass moved, not only that it left its bin. A constant reference has no standard
  deviation: such a column is compared with ``js`` over below / equal / above the constant.
- Categorical: ``js``, floor 0.1. Bounded, symmetric, and finite when a category is new or
  gone (PSI and chi-square need smoothing there and then depend on it).
- Other floors: ``ks`` 0.1, ``psi`` 0.2 (the customary "significant shift" line), ``chisquare``
  0.1 (Cohen's "small" effect).

Thresholds: a column drifts when its score exceeds ``max(floor, noise)``. ``noise`` is the
99th percentile of the score when *both* samples are drawn from the reference distribution at
the actual sizes (a parametric bootstrap on the reference profile, 500 draws, fixed seed so a
report is reproducible). A p-value test alone flags everything at large ``n``, since any real
difference, however tiny, becomes "significant" (evidently #50, whylogs #684); the floor is a
minimum effect size, so 100k-row windows of the same population stay quiet. At small ``n`` the
floor alone would flag sampling noise; the bootstrap term then dominates, so a single row or a
few dozen never raise a false alarm at more than about a 1 % rate per column.

A column below the threshold whose score still exceeds the noise level is marked
``detectable``: the change is real but smaller than the minimum effect size (a slow trend shows
here windows before it becomes drift). It is not an alarm and not counted as drifted.

A column that cannot be compared gets a status saying why, ``drift: None`` and no score:
``no_reference`` (the reference has no values), ``empty`` (the window has no rows),
``no_values`` (the window's values are all null).

A reference column absent from the current data is a schema change, not a column that could
not be compared: status ``missing`` with ``drift: True`` (it counts among ``drifted`` and fails
``--fail-on-drift``), unless the caller says its absence is expected (``missing_ok``: ground
truth before labels arrive). Columns only in the current data are reported as ``added`` in the
summary's ``schema``; they have no reference to drift from.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keelwork.core.monitors.profile import (
    ColumnProfile,
    ProfileError,
    TableProfile,
    profile_table,
)
from keelwork.core.monitors.report import REPORT_KIND, REPORT_VERSION, ColumnDrift, DriftReport

METHODS: Mapping[str, tuple[str, ...]] = {
    "numeric": ("wasserstein", "ks", "psi", "js"),
    "categorical": ("js", "chisquare", "psi"),
}
DEFAULT_METHOD: Mapping[str, str] = {"numeric": "wasserstein", "categorical": "js"}
#: The minimum score that counts as drift, per method (see the module docstring).
FLOORS: Mapping[str, float] = {"wasserstein": 0.1, "ks": 0.1, "psi": 0.2, "js": 0.1,
                               "chisquare": 0.1}
#: Percentile of the bootstrap null distribution used as the noise threshold.
NOISE_QUANTILE = 0.99
REPLICATES = 500
SEED = 20240601


def drift_report(reference_profile: TableProfile, current: Any, *,
                 methods: Mapping[str, str] | None = None,
                 floor: float | None = None, missing_ok: Collection[str] = (),
                 added: Sequence[str] = ()) -> DriftReport:
    """Compare every reference column with the current data.

    Args:
        reference_profile: The reference, from :func:`profile_table`.
        current: A :class:`TableProfile` built against the reference (``reference=``), or a
            table (pyarrow Table, pandas DataFrame, mapping) to profile against it.
        methods: Method per column name or per kind (``"numeric"``/``"categorical"``); a
            column name wins over its kind. Unlisted columns use :data:`DEFAULT_METHOD`.
        floor: The minimum effect size for every column (keel.yaml's
            ``monitoring.drift.threshold``); None: each method's own (:data:`FLOORS`).
        missing_ok: Reference columns whose absence is expected (not a schema change).
        added: Columns of the current data that the reference does not have.

    Returns:
        The report: one :class:`~keelwork.core.monitors.report.ColumnDrift` per reference
        column, its summary (``drifted`` and ``not_compared`` column names, ``share_drifted``,
        the ``missing`` and ``added`` columns) and both profiles (for its charts);
        :meth:`~keelwork.core.monitors.report.DriftReport.to_dict` is its JSON.

    Raises:
        ProfileError: a method is unknown for its column's kind, or a current profile was not
            built against this reference.
    """
    cur = current if isinstance(current, TableProfile) else profile_table(
        current, reference=reference_profile)
    chosen = dict(methods or {})
    results = []
    for name, ref in reference_profile.columns.items():
        method = chosen.get(name) or chosen.get(ref.kind)
        got = cur.columns.get(name)
        if got is None and name in missing_ok:
            results.append(ColumnDrift(name, ref.kind, status="missing", drift=None, reason=(
                f"Column {name!r} is not in the current data yet.")))
            continue
        results.append(column_drift(ref, got, method=method, floor=floor))
    return DriftReport(reference_profile.rows, cur.rows, tuple(results), added=tuple(added),
                       reference_profile=reference_profile, current_profile=cur)


def column_drift(ref: ColumnProfile, cur: ColumnProfile | None, *,
                 method: str | None = None, floor: float | None = None) -> ColumnDrift:
    """The drift verdict for one column.

    Args:
        ref: The reference column profile.
        cur: The current column profile, built against ``ref``'s layout (None: the column is
            missing from the current data).
        method: One of :data:`METHODS` for the column's kind; None for the default.
        floor: The minimum effect size in the method's unit; None: :data:`FLOORS`. The
            threshold is the larger of it and the sampling noise.

    Returns:
        The verdict, with every metric of the kind in ``metrics``.

    Raises:
        ProfileError: ``method`` does not apply to the kind, or the layouts differ.
    """
    kind = ref.kind
    method = method or DEFAULT_METHOD[kind]
    if method not in METHODS[kind]:
        raise ProfileError(f"The drift method for {kind} column {ref.name!r} must be one of "
                           f"{', '.join(METHODS[kind])}; got {method!r}.")
    if cur is None:
        return ColumnDrift(ref.name, kind, status="missing", drift=True, reason=(
            f"Column {ref.name!r} is in the reference but not in the current data: a schema "
            f"change, counted as drift."))
    if not ref.same_layout(cur):
        raise ProfileError(f"The current profile of column {ref.name!r} must be built against "
                           f"the reference (profile_table(..., reference=...)); its layout "
                           f"differs.")
    details = {"rows": {"reference": ref.rows, "current": cur.rows},
               "null_share": {"reference": _share(ref.nulls, ref.rows),
                              "current": _share(cur.nulls, cur.rows)}}
    if kind == "categorical":
        details.update(_category_changes(ref, cur))
    if ref.finite == 0:
        return ColumnDrift(ref.name, kind, status="no_reference", drift=None, details=details,
                           reason=(
            f"The reference holds no values for column {ref.name!r} ({ref.rows} rows, "
            f"{ref.nulls} null); there is nothing to compare against."))
    if cur.rows == 0:
        return ColumnDrift(ref.name, kind, status="empty", drift=None, details=details,
                           reason="The current window holds no rows.")
    if cur.finite == 0:
        return ColumnDrift(ref.name, kind, status="no_values", drift=None, details=details, reason=(
            f"The current window's {cur.rows} rows of column {ref.name!r} hold no values "
            f"({cur.nulls} null, {cur.non_finite} non-finite); the reference had "
            f"{ref.finite} of {ref.rows}."))
    return _compare(ref, cur, method, details, floor)


# --------------------------------------------------------------------------- comparison
def _compare(ref: ColumnProfile, cur: ColumnProfile, method: str,
             details: dict[str, Any], floor_override: float | None) -> ColumnDrift:
    import numpy as np

    r, c = _aligned(ref, cur)
    n_ref = int(r.sum())
    # wasserstein is in reference standard deviations: undefined for a constant reference or
    # one whose spread is beyond float64 (std inf, or unknown in an older stored profile).
    unscaled = ref.std == 0 or not math.isfinite(ref.std)
    metrics = {m: float(_metric(m, r, c, ref, cur)) for m in METHODS[ref.kind]
               if not (m == "wasserstein" and unscaled)}
    note = ""
    if method == "wasserstein" and ref.std == 0:
        method = "js"
        note = (f" The reference is constant ({ref.minimum:g}), so it has no spread to measure "
                f"distance in; compared with js over below / equal / above it.")
    elif method == "wasserstein" and unscaled:
        method = "js"
        note = (f" The reference's spread of column {ref.name!r} is beyond float64 (values "
                f"from {ref.minimum:g} to {ref.maximum:g}), so a distance in its standard "
                f"deviations is undefined; compared with js over its bins.")
    score = metrics[method]
    floor = FLOORS[method] if floor_override is None else floor_override
    # Under no drift the window is a sample of the reference distribution; new bins have no
    # reference mass, so the null draws use the reference's bins only.
    p0 = r[: len(_ref_bins(ref))] / n_ref
    rng = np.random.default_rng(SEED)
    nr = rng.multinomial(n_ref, p0, size=REPLICATES)
    nc = rng.multinomial(int(c.sum()), p0, size=REPLICATES)
    noise = float(np.quantile(_metric(method, nr, nc, ref, None), NOISE_QUANTILE))
    v = Verdict.of(method, score, floor, noise, "sampling")
    threshold, drift = v.threshold, v.drift
    reason = f"{v.head}.{note}{v.tail}"
    details = {**details, "detectable": v.detectable}
    return ColumnDrift(ref.name, ref.kind, status="drift" if drift else "no_drift",
                       drift=bool(drift), reason=reason, method=method, score=score,
                       threshold=threshold, floor=floor, noise=noise, metrics=metrics,
                       details=details)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A score against ``max(floor, noise)``, and how to say it (shared by every drift test).

    ``head`` is "<name> = <score> > threshold <t> (set by <the floor or the noise>)"; callers
    add their own details and end the sentence, then ``tail`` (empty unless ``detectable``).
    """

    threshold: float
    drift: bool
    detectable: bool
    head: str
    tail: str

    @classmethod
    def of(cls, name: str, score: float, floor: float, noise: float,
           noise_kind: str) -> Verdict:
        """Judge ``score``; ``noise_kind`` names how the noise level was found."""
        threshold = max(floor, noise)
        drift = score > threshold
        by = "the minimum effect size" if floor >= noise else (
            f"the {NOISE_QUANTILE:.0%} {noise_kind}-noise level at these sizes")
        head = (f"{name} = {score:.4g} {'>' if drift else '<='} threshold {threshold:.4g} "
                f"(set by {by})")
        # Real but small: the sample says the distribution moved, the size says it moved
        # little. Not an alarm, but worth showing: a slow trend reaches the floor one window
        # at a time.
        detectable = not drift and score > noise
        tail = (f" The change is real (above the {noise_kind} noise {noise:.3g}) but smaller "
                f"than the minimum effect size {floor:g}." if detectable else "")
        return cls(threshold, bool(drift), bool(detectable), head, tail)


def _ref_bins(ref: ColumnProfile) -> tuple[int, ...]:
    if ref.kind == "numeric":
        return ref.counts
    return (*ref.counts, ref.other, *(n for _, n in ref.new))


def _aligned(ref: ColumnProfile, cur: ColumnProfile) -> tuple[Any, Any]:
    """Both profiles' counts over the same bins (categorical: vocabulary, other, new labels)."""
    import numpy as np

    if ref.kind == "numeric":
        return np.asarray(ref.counts, dtype=np.float64), np.asarray(cur.counts, dtype=np.float64)
    ref_new, cur_new = dict(ref.new), dict(cur.new)
    labels = [k for k, _ in ref.new] + sorted(k for k in cur_new if k not in ref_new)
    r = [*ref.counts, ref.other, *(ref_new.get(k, 0) for k in labels)]
    c = [*cur.counts, cur.other, *(cur_new.get(k, 0) for k in labels)]
    return np.asarray(r, dtype=np.float64), np.asarray(c, dtype=np.float64)


def _category_changes(ref: ColumnProfile, cur: ColumnProfile) -> dict[str, Any]:
    known = set(ref.vocabulary) | {k for k, _ in ref.new}
    new = [{"category": k, "count": n} for k, n in cur.new if k not in known]
    # Absent labels are named only where at least 5 rows were expected, else a small window
    # would list every rare label as missing.
    total = ref.finite
    missing = [k for k, n_ref, n_cur in zip(ref.vocabulary, ref.counts, cur.counts, strict=True)
               if n_cur == 0 and total and n_ref * cur.finite / total >= 5]
    out: dict[str, Any] = {"new_categories": new, "missing_categories": missing}
    if not ref.closed:
        out["note"] = ("The reference had more categories than were counted by name, so labels "
                       "outside its vocabulary are summed in 'other' rather than named as new.")
    return out


# --------------------------------------------------------------------------- metrics
def _metric(method: str, r: Any, c: Any, ref: ColumnProfile, cur: ColumnProfile | None) -> Any:
    """``method`` between count arrays ``r`` and ``c`` (shape ``(k,)`` or ``(draws, k)``)."""
    import numpy as np

    if method == "js" and ref.kind == "numeric" and ref.std == 0:
        r, c = _around_constant(r), _around_constant(c)
    p = r / r.sum(axis=-1, keepdims=True)
    q = c / c.sum(axis=-1, keepdims=True)
    if method == "ks":
        return np.abs(np.cumsum(p - q, axis=-1)).max(axis=-1)
    if method == "js":
        m = (p + q) / 2
        div = (_xlog2(p, m) + _xlog2(q, m)) / 2
        return np.sqrt(np.clip(div, 0.0, 1.0))
    ps, qs = _smooth(r), _smooth(c)
    if method == "psi":
        return ((qs - ps) * np.log(qs / ps)).sum(axis=-1)
    if method == "chisquare":
        return np.sqrt(((q - ps) ** 2 / ps).sum(axis=-1))
    return _wasserstein(p, q, ref, cur)


def _wasserstein(p: Any, q: Any, ref: ColumnProfile, cur: ColumnProfile | None) -> Any:
    import numpy as np

    edges = np.asarray(ref.edges)
    gap = np.cumsum(p - q, axis=-1)[..., :-1]  # CDF difference at each edge
    assert ref.minimum is not None and ref.maximum is not None  # ref.finite > 0 here
    lo, hi = ref.minimum, ref.maximum
    if cur is not None and cur.minimum is not None and cur.maximum is not None:
        lo, hi = min(lo, cur.minimum), max(hi, cur.maximum)
    # Below the lowest edge and above the highest both CDFs are 0 (resp. 1) at lo (resp. hi).
    xs = np.concatenate([[min(lo, edges[0])], edges, [max(hi, edges[-1])]])
    zero = np.zeros((*gap.shape[:-1], 1))
    gaps = np.concatenate([zero, gap, zero], axis=-1)
    a, b, w = gaps[..., :-1], gaps[..., 1:], np.diff(xs)
    same = a * b >= 0
    total = np.abs(a) + np.abs(b)
    # The gap is linear within a bin; where it changes sign, integrate the two triangles.
    area = np.where(same, total / 2,
                    np.divide(a * a + b * b, 2 * total, out=np.zeros_like(total),
                              where=total > 0))
    return (area * w).sum(axis=-1) / ref.std


def _around_constant(counts: Any) -> Any:
    """Numeric counts folded to below / equal / above a constant reference's value."""
    import numpy as np

    return np.stack([counts[..., 0], counts[..., 1:-1].sum(axis=-1), counts[..., -1]], axis=-1)


def _smooth(counts: Any) -> Any:
    k = counts.shape[-1]
    return (counts + 0.5) / (counts.sum(axis=-1, keepdims=True) + 0.5 * k)


def _xlog2(x: Any, m: Any) -> Any:
    import numpy as np

    ratio = np.divide(x, m, out=np.ones_like(x), where=x > 0)
    return (x * np.log2(ratio)).sum(axis=-1)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


__all__ = [
    "DEFAULT_METHOD",
    "FLOORS",
    "METHODS",
    "NOISE_QUANTILE",
    "REPORT_KIND",
    "REPORT_VERSION",
    "ColumnDrift",
    "DriftReport",
    "column_drift",
    "drift_report",
]

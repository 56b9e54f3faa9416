"""Drift between two samples of embedding vectors: kernel MMD with a permutation test.

:func:`embedding_drift` compares a reference sample of vectors with a current one and returns
the same :class:`~keelwork.core.monitors.drift.ColumnDrift` verdict as the column monitors
(``kind="embedding"``, ``method="mmd"``), so text drift reports read like any other.

Statistic: the *unbiased* squared maximum mean discrepancy (Gretton et al., 2012) with a
Gaussian (RBF) kernel ``k(x, y) = exp(-||x - y||^2 / h)``. ``h`` is the median squared distance
between reference vectors (the median heuristic), computed on the reference alone so every
window is measured with the same kernel. The unbiased estimator is used because its expectation
is the population MMD^2 at any sample size: the floor below then means the same effect whatever
the window's size (the biased one is inflated by about ``(1/m + 1/n)`` times the kernel's
spread). It may come out slightly negative under no drift; that is not an error.

Scale: when the reference's distances concentrate (high dimension), a mean shift ``delta``
gives ``MMD^2 ~= exp(-1) * ||delta||^2 / tr(Sigma)``: ``e * MMD^2`` is about the share of the
reference's total variance that the shift represents. The kernel is bounded, so so is the score
(``0 <= MMD^2 <= 2``).

Threshold, as for the columns (see :mod:`~keelwork.core.monitors.drift`): drift when
``MMD^2 > max(floor, noise)``. ``noise`` is the 99th percentile of the statistic over
``permutations`` random relabellings of the pooled sample (a permutation test at the 1 %
level: exact under "same distribution", with no distributional assumption). ``floor``
(:data:`FLOOR`) is a minimum effect size so that a trivial but real difference between two very
large samples is not an alarm; above the noise but below the floor is marked ``detectable``.

Bounded cost: both samples are capped at ``max_samples`` vectors (a seeded random subset), the
pooled kernel matrix is computed once (``(m + n)^2`` entries) and all permutations are
evaluated together as one matrix product. 1,000 x 1,000 vectors of 256 dimensions with 200
permutations take a few tenths of a second.

Domain classifier (reported in ``metrics["classifier_auc"]``, not used for the verdict): each
sample is split in halves; the MMD *witness* fitted on one half (mean kernel similarity to the
current half minus that to the reference half, i.e. a kernel nearest-mean classifier) scores the
other half, and the held-out ROC AUC is averaged over the two directions. 0.5 means the samples
cannot be told apart, 1.0 that they separate fully; it is a readable effect size that costs
nothing beyond the kernel matrix already computed. A trained classifier (logistic regression on
the vectors) would be stronger for some shifts but needs a model library and tuning in core;
the witness is the classifier the MMD test itself implies.

Written by hand because no maintained library offers an MMD permutation test without a deep
learning framework (alibi-detect needs TensorFlow or PyTorch; torch-two-sample needs torch).
Pure logic: numpy is imported inside the functions.
"""

from __future__ import annotations

from typing import Any

from keelwork.core.monitors.drift import NOISE_QUANTILE, ColumnDrift, Verdict
from keelwork.errors import MonitorError

METHOD = "mmd"
KIND = "embedding"
#: Minimum unbiased MMD^2 that counts as drift: about a mean shift worth 0.5 % of the
#: reference's total variance (``e * 0.002``), e.g. 0.07 standard deviations in every
#: direction, four times the permutation noise of 1,000 vs 1,000 vectors. On real review
#: embeddings (Amazon fine foods, wordllama) random splits stay at |MMD^2| <= 0.0002, a window of
#: complaints only reaches ~0.004 and a window of one product type ~0.05; see
#: ``benchmarks/text_drift_real.py``.
FLOOR = 0.002
#: Random relabellings in the permutation test.
PERMUTATIONS = 200
#: Vectors kept from each sample (a seeded random subset beyond it).
MAX_SAMPLES = 1000
SEED = 20240601


def embedding_drift(reference: Any, current: Any, *, column: str = "embedding",
                    seed: int = SEED, permutations: int = PERMUTATIONS,
                    max_samples: int = MAX_SAMPLES, floor: float = FLOOR) -> ColumnDrift:
    """The drift verdict between two samples of vectors.

    Args:
        reference: Reference vectors, an array-like of shape ``(m, d)``.
        current: Current vectors, shape ``(n, d)`` (``(0, d)`` or an empty list: no rows).
        column: Name reported in the verdict (text drift uses ``"<column>:embedding"``).
        seed: Seeds the subsampling, the permutations and the classifier's split, so a verdict
            is reproducible.
        permutations: Relabellings in the permutation test (>= 20).
        max_samples: Vectors kept from each sample (>= 2).
        floor: The minimum MMD^2 that counts as drift (:data:`FLOOR`).

    Returns:
        A :class:`ColumnDrift` with ``kind="embedding"``: status ``drift``/``no_drift``, or
        ``no_reference`` (fewer than two reference vectors), ``empty`` (no current vectors),
        ``too_few`` (one current vector: the unbiased statistic needs two), never NaN.

    Raises:
        MonitorError: an input is not a 2-d numeric array, the dimensions differ, a value is
            not finite, or an option is out of range.
    """
    import numpy as np

    if permutations < 20 or max_samples < 2 or not floor >= 0:
        raise MonitorError(f"Embedding drift needs permutations >= 20, max_samples >= 2 and "
                           f"floor >= 0; got {permutations}, {max_samples}, {floor}.")
    ref = _matrix(reference, "reference", column)
    cur = _matrix(current, "current", column, dim=ref.shape[1] if ref.shape[0] else None)
    details: dict[str, Any] = {"rows": {"reference": int(ref.shape[0]),
                                        "current": int(cur.shape[0])}}
    if ref.shape[0] < 2:
        return ColumnDrift(column, KIND, status="no_reference", drift=None, details=details,
                           reason=(f"The reference holds {ref.shape[0]} vector(s) for "
                                   f"{column!r}; at least 2 are needed to compare against."))
    if cur.shape[0] == 0:
        return ColumnDrift(column, KIND, status="empty", drift=None, details=details,
                           reason="The current window holds no vectors.")
    if cur.shape[0] < 2:
        return ColumnDrift(column, KIND, status="too_few", drift=None, details=details,
                           reason=(f"The current window holds 1 vector for {column!r}; the "
                                   f"MMD needs at least 2."))
    rng = np.random.default_rng(seed)
    ref = _subsample(ref, max_samples, rng)
    cur = _subsample(cur, max_samples, rng)
    m, n = ref.shape[0], cur.shape[0]
    details["sampled"] = {"reference": m, "current": n}
    pooled = np.concatenate([ref, cur])
    sq = _sq_distances(pooled)
    h = _bandwidth(sq, m)
    kernel = np.exp(-sq / h) if h > 0 else np.ones_like(sq)
    np.fill_diagonal(kernel, 0.0)  # the unbiased statistic leaves out k(x, x)

    labels = np.zeros((m + n, permutations + 1), dtype=np.float64)
    labels[m:, 0] = 1.0
    for j in range(1, permutations + 1):
        labels[rng.permutation(m + n)[:n], j] = 1.0
    stats = _mmd2(kernel, labels, m, n)
    score = float(stats[0])
    # "higher": an order statistic, so "score > noise" is exactly "p <= 1 %" (interpolating
    # between the top relabellings makes the test about 1.5 % at 200 of them).
    noise = float(np.quantile(stats[1:], NOISE_QUANTILE, method="higher"))
    # The p-value counts the observed labelling among the relabellings (never exactly 0).
    p_value = float((1 + np.sum(stats[1:] >= score)) / (permutations + 1))
    auc = _witness_auc(kernel, m, n, rng)
    v = Verdict.of("mmd^2", score, floor, noise, "permutation")
    reason = f"{v.head}; held-out classifier AUC {auc:.3f}.{v.tail}"
    details.update(bandwidth=h, permutations=permutations, p_value=p_value,
                   detectable=v.detectable)
    return ColumnDrift(column, KIND, status="drift" if v.drift else "no_drift", drift=v.drift,
                       reason=reason, method=METHOD, score=score, threshold=v.threshold,
                       floor=floor, noise=noise,
                       metrics={"mmd2": score, "classifier_auc": auc}, details=details)


# --------------------------------------------------------------------------- internals
def _matrix(values: Any, which: str, column: str, *, dim: int | None = None) -> Any:
    import numpy as np

    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MonitorError(f"The {which} vectors of {column!r} must be a 2-d array of numbers; "
                           f"got {type(values).__name__} ({exc}).") from exc
    if arr.size == 0 and dim is not None:
        return arr.reshape(0, dim)
    if arr.size == 0 and arr.ndim < 2:
        return arr.reshape(0, 0)
    if arr.ndim != 2:
        raise MonitorError(f"The {which} vectors of {column!r} must be a 2-d array (rows x "
                           f"dimensions); got shape {arr.shape}.")
    if dim is not None and arr.shape[1] != dim:
        raise MonitorError(f"The {which} vectors of {column!r} must have the reference's "
                           f"{dim} dimensions; got {arr.shape[1]}.")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise MonitorError(f"The {which} vectors of {column!r} must be finite; row "
                           f"{int(np.flatnonzero(bad)[0])} holds NaN or infinity "
                           f"({int(bad.sum())} such rows).")
    return arr


def _subsample(arr: Any, cap: int, rng: Any) -> Any:
    if arr.shape[0] <= cap:
        return arr
    return arr[rng.choice(arr.shape[0], cap, replace=False)]


def _sq_distances(x: Any) -> Any:
    import numpy as np

    # Centre first: ||a||^2 + ||b||^2 - 2ab loses precision when the vectors sit far from 0.
    x = x - x.mean(axis=0)
    norms = np.einsum("ij,ij->i", x, x)
    sq = norms[:, None] + norms[None, :] - 2.0 * (x @ x.T)
    return np.maximum(sq, 0.0)


def _bandwidth(sq: Any, m: int) -> float:
    """Median squared distance between distinct reference vectors (pooled if they coincide)."""
    import numpy as np

    ref = sq[:m, :m][np.triu_indices(m, k=1)]
    h = float(np.median(ref))
    if h <= 0:
        # A (nearly) constant reference has no spread of its own; borrow the pooled one so a
        # window that differs still registers.
        pooled = sq[np.triu_indices(sq.shape[0], k=1)]
        positive = pooled[pooled > 0]
        h = float(np.median(positive)) if positive.size else 0.0
    return h


def _mmd2(kernel: Any, labels: Any, m: int, n: int) -> Any:
    """Unbiased MMD^2 for every column of 0/1 ``labels`` (1 = current) at once."""
    import numpy as np

    cur = labels
    ref = 1.0 - labels
    kc = kernel @ cur
    within_cur = np.einsum("ij,ij->j", cur, kc)
    between = np.einsum("ij,ij->j", ref, kc)
    total = kernel.sum()
    within_ref = total - within_cur - 2.0 * between
    return (within_ref / (m * (m - 1)) + within_cur / (n * (n - 1))
            - 2.0 * between / (m * n))


def _witness_auc(kernel: Any, m: int, n: int, rng: Any) -> float:
    """Held-out AUC of the kernel mean-difference classifier, averaged over two folds."""
    import numpy as np

    ref_idx, cur_idx = rng.permutation(m), m + rng.permutation(n)
    folds_r = (ref_idx[: m // 2], ref_idx[m // 2:])
    folds_c = (cur_idx[: n // 2], cur_idx[n // 2:])
    aucs = []
    for fit, test in ((0, 1), (1, 0)):
        fr, fc, tr, tc = folds_r[fit], folds_c[fit], folds_r[test], folds_c[test]
        if not (len(fr) and len(fc) and len(tr) and len(tc)):
            continue
        test_idx = np.concatenate([tr, tc])
        witness = (kernel[np.ix_(test_idx, fc)].mean(axis=1)
                   - kernel[np.ix_(test_idx, fr)].mean(axis=1))
        aucs.append(_auc(witness[len(tr):], witness[: len(tr)]))
    return float(np.mean(aucs)) if aucs else 0.5


def _auc(positive: Any, negative: Any) -> float:
    """Mann-Whitney AUC: the chance a positive scores above a negative (ties count half)."""
    import numpy as np

    scores = np.concatenate([positive, negative])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # Average ranks over ties so identical scores are neither for nor against.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    p, q = len(positive), len(negative)
    return float((ranks[:p].sum() - p * (p + 1) / 2) / (p * q))


__all__ = ["FLOOR", "MAX_SAMPLES", "METHOD", "PERMUTATIONS", "embedding_drift"]

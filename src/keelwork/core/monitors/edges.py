"""The bin edges of a numeric reference column (the layout every later window is counted in).

Quantiles of the reference at ``0, 1/B, ..., (B-1)/B`` and at :data:`TAIL_QUANTILES`, a float
just above its maximum, and a bin of its own for every value that holds more than ``1/B`` of
the reference (see :mod:`keelwork.core.monitors.profile` for the error bound this keeps).

Pure logic: numpy is imported inside the function.
"""

from __future__ import annotations

from typing import Any

#: Quantiles added to the ``1/B`` grid so the tail bins are narrow.
TAIL_QUANTILES = (0.001, 0.005, 0.01, 0.025, 0.975, 0.99, 0.995, 0.999)


def reference_edges(finite: Any, bins: int) -> Any:
    """The sorted, distinct edges for the finite values ``finite`` (a non-empty float64 array)
    of a reference column, with ``bins`` quantile bins."""
    import numpy as np

    # Extra tail quantiles keep the outermost bins narrow: within a bin values are taken as
    # uniform, which over a long tail would overstate distances such as Wasserstein.
    probs = np.union1d(np.arange(bins) / bins, TAIL_QUANTILES)
    top = np.nextafter(finite.max(), np.inf)
    edges = np.unique(np.append(np.quantile(finite, probs), top))
    # A value holding more than one bin's share (the mode of a column of whole hours) gets a
    # bin of its own, [v, v + ulp): inside a wider bin a shift off it would move no count.
    distinct, repeats = np.unique(finite, return_counts=True)
    heavy = distinct[repeats > finite.size / bins]
    if heavy.size:
        edges = np.unique(np.concatenate([edges, heavy, np.nextafter(heavy, np.inf)]))
    return edges


__all__ = ["TAIL_QUANTILES", "reference_edges"]

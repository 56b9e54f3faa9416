"""What binary and multi-class CBPE share: the reference's chunk statistics and the alert rule.

A CBPE reference of either kind (:class:`~keelwork.core.monitors.cbpe.CBPEReference`,
:class:`~keelwork.core.monitors.cbpe_multiclass.MulticlassCBPEReference`) is a
:class:`ChunkedReference`: the metrics realised on the labelled reference, and how much each
metric's estimate moved across consecutive reference chunks. Both are fitted, stored and judged
the same way; the module docstring of :mod:`~keelwork.core.monitors.cbpe` gives the reasons.

Pure logic; numpy is imported inside the functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from keelwork.errors import MonitorError

#: The metrics CBPE estimates, in report order.
METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
#: Standard deviations below the reference value at which a metric alerts.
ALERT_SIGMAS = 3.0
#: Reference chunks when no ``chunk_size`` is given (NannyML's default chunker makes 10).
DEFAULT_CHUNKS = 10
#: Labels drawn per window for the bands.
DEFAULT_SAMPLES = 200
#: The band's coverage: its ends are the 2.5% and 97.5% quantiles of the draws.
BAND_COVERAGE = 0.95
# Draws are made in batches of at most this many labels, so memory stays bounded.
_BATCH_CELLS = 2_000_000


def opt_float(value: Any) -> float | None:
    """``value`` as a float, None kept."""
    return None if value is None else float(value)


def chunk_size_of(n: int, chunk_size: int | None) -> int:
    """The rows per reference chunk: ``chunk_size``, default a tenth of the ``n`` rows.

    Raises:
        MonitorError: not an integer >= 1 giving at least two full chunks.
    """
    size = chunk_size if chunk_size is not None else n // DEFAULT_CHUNKS
    if isinstance(size, bool) or not isinstance(size, int) or size < 1 or n // size < 2:
        raise MonitorError(f"chunk_size must be an integer >= 1 giving at least two full "
                           f"chunks of the {n} reference rows; got {chunk_size!r}"
                           f"{' (a tenth of the reference)' if chunk_size is None else ''}.")
    return size


def chunk_deviation(per_chunk: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """Per metric, the deviation (``ddof=1``) of its estimate across chunks; None where fewer
    than two chunks had it defined."""
    import numpy as np

    out: dict[str, float | None] = {}
    for m in METRICS:
        values = [v for c in per_chunk if (v := c[m]) is not None]
        out[m] = float(np.std(values, ddof=1)) if len(values) >= 2 else None
    return out


def check_samples(samples: Any) -> None:
    """Raises:
        MonitorError: ``samples`` is not an integer >= 0.
    """
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 0:
        raise MonitorError(f"samples must be an integer >= 0; got {samples!r}.")


@dataclass(frozen=True, slots=True, kw_only=True)
class ChunkedReference:
    """The reference statistics every CBPE reference holds.

    Attributes:
        n: Reference rows.
        metrics: The metrics realised on the whole reference (None where undefined).
        chunk_size: Rows per reference chunk.
        chunks: Full chunks the deviations were measured on.
        chunk_std: Per metric, the standard deviation (``ddof=1``) of its estimate across
            reference chunks; None where fewer than two chunks had it defined.
    """

    n: int
    metrics: dict[str, float | None]
    chunk_size: int
    chunks: int
    chunk_std: dict[str, float | None] = field(default_factory=dict)

    def stats_dict(self) -> dict[str, Any]:
        """The statistics' part of a stored reference (``n`` to ``chunk_std``)."""
        return {"n": self.n, "metrics": dict(self.metrics), "chunk_size": self.chunk_size,
                "chunks": self.chunks, "chunk_std": dict(self.chunk_std)}

    @staticmethod
    def stats_from(data: Mapping[str, Any]) -> dict[str, Any]:
        """The constructor arguments of :meth:`stats_dict`'s part of ``data``.

        Raises:
            KeyError, TypeError, ValueError, AttributeError: a field is missing or malformed
                (callers say which reference was).
        """
        return {"n": int(data["n"]),
                "metrics": {m: opt_float(data["metrics"].get(m)) for m in METRICS},
                "chunk_size": int(data["chunk_size"]), "chunks": int(data["chunks"]),
                "chunk_std": {m: opt_float(data["chunk_std"].get(m)) for m in METRICS}}

    def alerts(self, estimates: Mapping[str, float | None], n: int,
               ) -> dict[str, Any]:
        """The alert rule on a window of ``n`` predictions: ``reference``, ``alert_limit``,
        ``alert`` (None where it cannot be judged) and ``alerted``.

        A metric alerts below the reference value minus :data:`ALERT_SIGMAS` chunk
        deviations, widened by ``sqrt(chunk_size / n)`` for a window smaller than a chunk and
        never narrowed for a larger one.
        """
        widen = math.sqrt(max(1.0, self.chunk_size / n)) if n else math.inf
        limits: dict[str, float | None] = {}
        alert: dict[str, bool | None] = {}
        for m in METRICS:
            value, std = self.metrics.get(m), self.chunk_std.get(m)
            limits[m] = (value - ALERT_SIGMAS * std * widen
                         if value is not None and std is not None and n else None)
            est, limit = estimates[m], limits[m]
            alert[m] = None if est is None or limit is None else bool(est < limit)
        return {"reference": dict(self.metrics), "alert_limit": limits, "alert": alert,
                "alerted": [m for m in METRICS if alert[m]]}



def draws_per_batch(labels_per_draw: int) -> int:
    """How many label draws to make at once so that a batch holds a bounded number of labels."""
    return max(1, _BATCH_CELLS // max(labels_per_draw, 1))

__all__ = [
    "ALERT_SIGMAS",
    "BAND_COVERAGE",
    "DEFAULT_CHUNKS",
    "DEFAULT_SAMPLES",
    "METRICS",
    "ChunkedReference",
    "check_samples",
    "chunk_deviation",
    "chunk_size_of",
    "draws_per_batch",
    "opt_float",
]

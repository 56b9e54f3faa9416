"""The Prometheus metrics keelwork exports that other rooms name: one home for their names.

The gateway's metrics (:mod:`keelwork.adapters.metrics`) are made with these names and
buckets; the SLO rules (:mod:`keelwork.core.slo`) query them, and ``keel spec validate``
checks a latency SLO against the buckets. Keeping them here, below both, means a renamed
metric or a changed bucket cannot leave the rules querying something nobody exports.
"""

from __future__ import annotations

from typing import Final

#: Counter of prediction requests, labels ``model``, ``version``, ``status``.
REQUESTS: Final = "keelwork_requests_total"
#: Histogram of end-to-end request latency in seconds, label ``model``.
REQUEST_DURATION: Final = "keelwork_request_duration_seconds"

#: The ``status`` values of :data:`REQUESTS`: ``ok`` and ``fallback`` answered; ``invalid``
#: refused by the contract (the client's fault); ``overloaded`` refused at the concurrency
#: limit; ``error`` failed (model error, timeout, broken output contract).
STATUSES: Final = ("ok", "fallback", "invalid", "overloaded", "error")

#: Upper bounds (seconds) of the latency histograms' buckets.
LATENCY_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                          1.0, 2.5, 5.0, 10.0)


def bucket_label(seconds: float) -> str:
    """The ``le`` label value prometheus-client writes for a bucket bound (``0.05``, ``1.0``)."""
    return repr(float(seconds))

"""Traffic rollups: per model and version, logged requests counted per time bucket by outcome,
with a latency histogram of the answered ones (pure).

The dashboard must show a day of traffic, latency percentiles and the SLOs' budgets over their
whole window without reading a million rows per page view. A :class:`Rollup` holds what the
prediction log says in a few thousand numbers: per ``(model, version)``, per minute for the
last :attr:`Rollup.minute_horizon_s` and per hour beyond, the requests by :data:`OUTCOMES` and
the answered ones per latency bin (edges :func:`latency_edges`). It is fed grouped rows
(one per bucket, outcome and bin, with a count) and folds minutes into hours as they age.

Outcomes are counted as ``keelwork_requests_total`` and the SLO evaluation count them
(:meth:`keelwork.adapters.stores.prediction_store.PredictionReader.slo_counts`): answered
(``ok``, ``fallback``), errors (``error``, and bad input the model refused), overloaded
(refused at the concurrency limit), invalid (refused by the contract: the client's fault),
other (a status keelwork does not write itself); shadow calls are not requests.

Percentiles are read from the histogram as Prometheus' ``histogram_quantile`` reads one
(linear inside the bin), on finer bins than the exported metric (six per decade), so a
percentile is within a bin's width (at most 50%, usually under 25%) of the exact value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from keelwork.core.slo.evaluate import SloCounts
from keelwork.spec.metric_names import LATENCY_BUCKETS

#: What a logged request counts for, in the order of a bucket's first numbers.
OUTCOMES = ("answered", "errors", "overloaded", "invalid", "other")
_N_OUT = len(OUTCOMES)
#: Six bins per decade from 0.1 ms to 70 s, in milliseconds.
FINE_MS = tuple(round(m * 10.0 ** e, 6) for e in range(-1, 5)
                for m in (1.0, 1.5, 2.0, 3.0, 5.0, 7.0))
MINUTE = 60
HOUR = 3600


#: The statuses and guards :func:`outcome` tells apart. A store may group by their index
#: (small integers sort faster than text); any other status reads as ``"other"`` and any other
#: guard as none, which :func:`outcome` counts the same (a test checks it).
STATUSES_TOLD = ("ok", "fallback", "error", "rejected")
GUARDS_TOLD = ("shadow", "input", "concurrency")


def told(status: str, guard: str | None) -> tuple[str, str | None]:
    """``(status, guard)`` as :data:`STATUSES_TOLD` and :data:`GUARDS_TOLD` keep them."""
    return (status if status in STATUSES_TOLD else "other",
            guard if guard in GUARDS_TOLD else None)


def outcome(status: str, guard: str | None) -> str | None:
    """What a logged request counts for (see the module docstring); None: a shadow call."""
    if guard == "shadow":
        return None
    if status in ("ok", "fallback"):
        return "answered"
    if status == "error":
        return "errors"
    if status == "rejected":
        if guard == "input":
            return "errors"
        if guard == "concurrency":
            return "overloaded"
        return "invalid"
    return "other"


def latency_edges(extra_ms: Iterable[float] = ()) -> tuple[float, ...]:
    """Upper bounds (ms) of the latency bins: :data:`FINE_MS`, the exported histogram's
    buckets and ``extra_ms`` (the latency SLOs' thresholds, so that "within the threshold" is
    an exact count). The last bin, past the largest edge, is open."""
    edges = set(FINE_MS) | {round(b * 1000.0, 6) for b in LATENCY_BUCKETS}
    edges |= {round(float(x), 6) for x in extra_ms if x > 0}
    return tuple(sorted(edges))


@dataclass
class Totals:
    """Counts of one series over some span: requests by outcome and the latency bins."""

    edges: tuple[float, ...]
    outcomes: list[int] = field(default_factory=lambda: [0] * _N_OUT)
    bins: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.bins:
            self.bins = [0] * (len(self.edges) + 1)

    @classmethod
    def of(cls, edges: tuple[float, ...], rows: Sequence[Sequence[int]]) -> Totals:
        """The sum of buckets' numbers (outcomes, then bins), column by column."""
        if not rows:
            return cls(edges)
        sums = [sum(column) for column in zip(*rows, strict=True)]
        return cls(edges, sums[:_N_OUT], sums[_N_OUT:])

    def count(self, name: str) -> int:
        return self.outcomes[OUTCOMES.index(name)]

    @property
    def requests(self) -> int:
        """Every request (answered, failed, refused, other)."""
        return sum(self.outcomes)

    @property
    def answered(self) -> int:
        return self.outcomes[0]

    def error_share(self) -> float | None:
        """Failed over the requests that count (not the contract's refusals); None: none."""
        events = self.answered + self.count("errors") + self.count("overloaded")
        return None if events == 0 else self.count("errors") / events

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile of the answered requests' latency in ms; None without any.

        Past the last edge the quantile is that edge (as Prometheus answers the ``+Inf``
        bucket with the highest finite bound)."""
        total = sum(self.bins)
        if total == 0:
            return None
        rank = q * total
        seen = 0
        for i, n in enumerate(self.bins):
            if n and seen + n >= rank:
                if i == len(self.edges):
                    return self.edges[-1]
                lo = 0.0 if i == 0 else self.edges[i - 1]
                return lo + (self.edges[i] - lo) * (rank - seen) / n
            seen += n
        return self.edges[-1]

    def within(self, threshold_ms: float) -> int:
        """Answered requests within ``threshold_ms`` (exact when it is an edge)."""
        return sum(n for edge, n in zip(self.edges, self.bins, strict=False)
                   if edge <= threshold_ms + 1e-9)

    def slo_counts(self, latency_ms: float | None) -> SloCounts:
        """These counts as the SLO evaluation reads them."""
        fast = self.within(latency_ms) if latency_ms is not None else 0
        return SloCounts(self.answered, self.count("errors"), self.count("overloaded"), fast)


Key = tuple[str, int]


class Rollup:
    """Bucketed counts per ``(model, version)`` (see the module docstring).

    Args:
        edges: The latency bins' upper bounds (:func:`latency_edges`).
        minute_horizon_s: How far back buckets stay per minute; older ones are per hour.
        horizon_s: How far back anything is kept.
        max_series: Most ``(model, version)`` pairs kept; rows of more are counted in
            :attr:`dropped` (a bound on memory whatever the log holds).
    """

    def __init__(self, edges: tuple[float, ...], *, minute_horizon_s: int = 86_400,
                 horizon_s: int = 86_400, max_series: int = 512) -> None:
        self.edges = edges
        self.minute_horizon_s = minute_horizon_s
        self.horizon_s = max(horizon_s, minute_horizon_s)
        self.max_series = max_series
        self.minutes: dict[Key, dict[int, list[int]]] = {}
        self.hours: dict[Key, dict[int, list[int]]] = {}
        self.dropped = 0
        self._width = _N_OUT + len(edges) + 1

    def add(self, model: str, version: int, minute: int, status: str, guard: str | None,
            latency_bin: int | None, n: int, *, now: float) -> None:
        """Count ``n`` requests of one grouped row.

        Args:
            model: The model.
            version: Its version.
            minute: Start of the row's minute (unix seconds, a multiple of 60).
            status: The logged status.
            guard: The logged guard.
            latency_bin: Index of the latency bin (:func:`latency_edges`), for answered rows.
            n: How many requests.
            now: The time the rollup is kept relative to (old rows go to hours or away).
        """
        what = outcome(status, guard)
        if what is None or minute < now - self.horizon_s:
            return
        key = (model, version)
        if key not in self.minutes:
            if len(self.minutes) >= self.max_series:
                self.dropped += n
                return
            self.minutes[key], self.hours[key] = {}, {}
        if minute >= now - self.minute_horizon_s:
            start, table = minute, self.minutes[key]
        else:
            start, table = minute - minute % HOUR, self.hours[key]
        row = table.get(start)
        if row is None:
            row = table[start] = [0] * self._width
        row[OUTCOMES.index(what)] += n
        if what == "answered" and latency_bin is not None:
            row[_N_OUT + latency_bin] += n

    def compact(self, now: float) -> None:
        """Fold minutes older than the minute horizon into hours; forget what is past the
        horizon."""
        edge = now - self.minute_horizon_s
        for key, table in self.minutes.items():
            hours = self.hours[key]
            for start in [s for s in table if s < edge]:
                row = table.pop(start)
                h = start - start % HOUR
                into = hours.get(h)
                if into is None:
                    hours[h] = row
                else:
                    for i, v in enumerate(row):
                        into[i] += v
            for start in [s for s in hours if s + HOUR <= now - self.horizon_s]:
                del hours[start]

    def keys(self) -> list[Key]:
        """Every ``(model, version)`` with counts, sorted."""
        return sorted(k for k in self.minutes if self.minutes[k] or self.hours[k])

    def totals(self, key: Key, since: float, until: float) -> Totals:
        """The counts of ``key`` in buckets starting in ``[since, until)`` (an hour bucket
        counts when its start is in the span: spans past the minute horizon are to the
        hour)."""
        return Totals.of(self.edges, [
            row for table in (self.minutes.get(key, {}), self.hours.get(key, {}))
            for start, row in table.items() if since <= start < until])

    def series(self, key: Key, since: float, step_s: int, steps: int) -> list[Totals]:
        """``steps`` consecutive spans of ``step_s`` seconds from ``since`` (sparklines)."""
        spans: list[list[list[int]]] = [[] for _ in range(steps)]
        for table in (self.minutes.get(key, {}), self.hours.get(key, {})):
            for start, row in table.items():
                i = int((start - since) // step_s)
                if 0 <= i < steps:
                    spans[i].append(row)
        return [Totals.of(self.edges, rows) for rows in spans]


def merged(parts: Sequence[Totals]) -> Totals:
    """The sum of several :class:`Totals` of the same edges."""
    return Totals.of(parts[0].edges, [[*p.outcomes, *p.bins] for p in parts])


__all__ = ["FINE_MS", "GUARDS_TOLD", "OUTCOMES", "STATUSES_TOLD", "Rollup", "Totals",
           "latency_edges", "merged", "outcome", "told"]

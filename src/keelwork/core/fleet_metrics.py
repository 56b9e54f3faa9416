"""The fleet's Prometheus values summed from snapshots: pure arithmetic, no I/O.

A snapshot is what one serving process publishes of its own metrics (counters, gauges,
histograms), as plain JSON-able data::

    {family name: {"type": "counter" | "gauge" | "histogram", "help": str,
                   "samples": [[sample name, [[label, value], ...], value], ...]}}

Sums follow prometheus-client's multi-process mode, so that a fleet's scrape means what a
``--workers`` scrape means:

- counters and histograms (buckets, counts, sums) add up over every process that ever served:
  a process that died leaves its counts in the sums (:func:`fold` keeps them in one retired
  snapshot), so the fleet's counters never go down;
- gauges add up over the live processes only (``livesum``): a dead process's queue is no
  queue.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: One family of a snapshot (see the module's docstring).
Family = dict[str, Any]
#: A process's metrics, by family name.
Snapshot = dict[str, Family]

#: The family types whose values only grow while a process lives (kept after it dies).
MONOTONE = frozenset({"counter", "histogram"})

_Key = tuple[str, tuple[tuple[str, str], ...]]


def _samples(family: Mapping[str, Any]) -> dict[_Key, float]:
    out: dict[_Key, float] = {}
    for name, labels, value in family.get("samples", ()):
        key = (str(name), tuple((str(k), str(v)) for k, v in labels))
        out[key] = out.get(key, 0.0) + float(value)
    return out


def _family(kind: str, help_text: str, values: Mapping[_Key, float]) -> Family:
    return {"type": kind, "help": help_text,
            "samples": [[name, [list(pair) for pair in labels], value]
                        for (name, labels), value in sorted(values.items())]}


def add(snapshots: Iterable[Mapping[str, Family]], *, gauges: bool = True) -> Snapshot:
    """The sum of ``snapshots``, sample by sample (same name, same labels); ``gauges=False``
    leaves the gauges out (what stays of processes that died)."""
    kinds: dict[str, tuple[str, str]] = {}
    sums: dict[str, dict[_Key, float]] = {}
    for snap in snapshots:
        for name, family in snap.items():
            kind = str(family.get("type", "untyped"))
            if not gauges and kind not in MONOTONE:
                continue
            kinds.setdefault(name, (kind, str(family.get("help", ""))))
            into = sums.setdefault(name, {})
            for key, value in _samples(family).items():
                into[key] = into.get(key, 0.0) + value
    return {name: _family(*kinds[name], values) for name, values in sorted(sums.items())}


def subtract(current: Mapping[str, Family], base: Mapping[str, Family]) -> Snapshot:
    """``current`` less ``base`` for the counters and histograms (gauges are ``current``'s):
    what a process counted since ``base`` was taken from it."""
    out: Snapshot = {}
    for name, family in current.items():
        kind = str(family.get("type", "untyped"))
        values = _samples(family)
        if kind in MONOTONE and name in base:
            gone = _samples(base[name])
            values = {k: v - gone.get(k, 0.0) for k, v in values.items()}
        out[name] = _family(kind, str(family.get("help", "")), values)
    return out


def fleet_view(own: Mapping[str, Family], live: Iterable[Mapping[str, Family]],
               gone: Iterable[Mapping[str, Family]]) -> Snapshot:
    """What a scrape of any process of the fleet answers: its ``own`` values, the ``live``
    processes' and the counters and histograms of those ``gone`` (dead ones, the retired sum)."""
    return add([own, *live, add(gone, gauges=False)])


def fold(retired: Mapping[str, Family] | None, dead: Iterable[Mapping[str, Family]]) -> Snapshot:
    """The retired sum with ``dead`` processes' counters and histograms added (their gauges
    dropped): one snapshot keeps what every dead process counted."""
    return add([retired or {}, *dead], gauges=False)


__all__ = ["MONOTONE", "Family", "Snapshot", "add", "fleet_view", "fold", "subtract"]

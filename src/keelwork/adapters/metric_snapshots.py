"""prometheus-client's metrics to and from the plain snapshots of
:mod:`keelwork.core.fleet_metrics` (what a process publishes of its values to the store), and
the registry view that exports a fleet's sums."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from keelwork.core.fleet_metrics import Snapshot

#: Sample suffixes left out of snapshots: creation times are per process, not summable.
_SKIPPED = ("_created",)
#: The family types a snapshot carries (what prometheus-client's Counter, Gauge and Histogram
#: export).
_TYPES = frozenset({"counter", "gauge", "histogram"})


def snapshot_of(collectors: Iterable[Any]) -> Snapshot:
    """The values of ``collectors`` (prometheus-client metrics: Counter, Gauge, Histogram) as a
    snapshot; sample creation times are left out."""
    out: Snapshot = {}
    for collector in collectors:
        for family in collector.collect():
            if family.type not in _TYPES:
                continue
            samples = [[s.name, sorted(s.labels.items()), float(s.value)]
                       for s in family.samples if not s.name.endswith(_SKIPPED)]
            out[family.name] = {"type": family.type, "help": family.documentation,
                                "samples": samples}
    return out


def families_of(snapshot: Snapshot) -> list[Metric]:
    """``snapshot`` as prometheus-client metric families, ready for ``generate_latest``."""
    families = []
    for name, family in snapshot.items():
        metric = Metric(name, str(family.get("help", "")), str(family.get("type", "untyped")))
        for sample_name, labels, value in family.get("samples", ()):
            metric.add_sample(str(sample_name), {str(k): str(v) for k, v in labels},
                              float(value))
        families.append(metric)
    return families


class SnapshotView:
    """What a scrape exports from a fleet's summed ``snapshot``: its families, then those only
    this process computes (``registry``'s collectors' families the snapshot does not hold)."""

    def __init__(self, registry: CollectorRegistry, snapshot: Snapshot) -> None:
        self._registry = registry
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        yield from families_of(self._snapshot)
        for family in self._registry.collect():
            if family.name not in self._snapshot:
                yield family


__all__ = ["SnapshotView", "families_of", "snapshot_of"]

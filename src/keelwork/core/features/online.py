"""Features at serving time: the latest entity values from the online store, then the transforms.

:meth:`OnlineFeatures.enrich` is what the gateway calls on each batch of validated records. Its
cost per batch: one store query per entity (all the batch's keys at once) plus the transforms
(one function call per record per row transform, one per batch transform). A key the store does
not know, a missing key field or a value older than the entity's ``ttl`` gives ``None`` for its
features, never an error; only a store failure raises (:class:`~keelwork.errors.StoreError`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

from keelwork.core.features.pipeline import FeaturePipeline
from keelwork.core.features.registry import TransformRegistry
from keelwork.core.features.values import canonical_key
from keelwork.errors import ErrorDetail, InvalidInputError
from keelwork.spec.features import FeaturesSection
from keelwork.types import EntityLookup


class OnlineFeatures:
    """Entity lookups plus transforms for request records: the serving twin of a training build.

    Args:
        section: The ``features`` section of keel.yaml.
        store: The online store (:class:`keelwork.adapters.stores.features.FeatureStore`).
        pipeline: The compiled transforms (compiled from ``section`` when omitted).
        registry: Where the transform functions are registered, when ``pipeline`` is omitted.

    Raises:
        SpecError: a transform names no registered function.
    """

    def __init__(self, section: FeaturesSection, store: EntityLookup, *,
                 pipeline: FeaturePipeline | None = None,
                 registry: TransformRegistry | None = None) -> None:
        self.section = section
        self.store = store
        self.pipeline = pipeline if pipeline is not None else FeaturePipeline(section, registry)

    @property
    def active(self) -> bool:
        """False when the spec declares no entity and no transform (enrich copies records)."""
        return bool(self.section.entities) or len(self.pipeline) > 0

    @property
    def uses_store(self) -> bool:
        """True when :meth:`enrich` queries the store (then run it off the event loop)."""
        return bool(self.section.entities)

    def enrich(self, records: Sequence[Any], *, now: float | None = None) -> list[dict[str, Any]]:
        """Add the entity features and the transform outputs to each record.

        Args:
            records: Object records (the request's instances); they are not modified.
            now: Unix seconds the ``ttl`` counts back from; default: the current time.

        Returns:
            New dicts: each record's fields plus every feature field. Entity features replace a
            field of the same name sent by the client: served values come from the store.

        Raises:
            InvalidInputError: a record is not an object, or a transform failed on it.
            StoreError: the online store failed.
        """
        rows: list[dict[str, Any]] = []
        for i, r in enumerate(records):
            if not isinstance(r, Mapping):
                raise InvalidInputError(
                    f"instances[{i}] must be an object (field: value) to add features to; got "
                    f"{type(r).__name__}.", [ErrorDetail(f"instances[{i}]", "record_type",
                                                         type(r).__name__)])
            rows.append(dict(r))
        if self.section.entities and rows:
            at = time.time() if now is None else now
            for e in self.section.entities:
                keys = [canonical_key(r.get(e.key)) for r in rows]
                found = self.store.lookup(e.name, keys, max_age_s=e.ttl_seconds, now=at)
                pairs = list(zip(e.features, e.outputs, strict=True))
                for r, values in zip(rows, found, strict=True):
                    if values is None:
                        for _, out in pairs:
                            r[out] = None
                    else:
                        for feature, out in pairs:
                            r[out] = values.get(feature)
        return self.pipeline.apply_records(rows, copy=False)

    async def aenrich(self, records: Sequence[Any], *,
                      now: float | None = None) -> list[dict[str, Any]]:
        """:meth:`enrich` for an event loop: the store query runs in a worker thread.

        Args:
            records: Object records.
            now: Unix seconds the ``ttl`` counts back from; default: the current time.

        Returns:
            As :meth:`enrich`.

        Raises:
            InvalidInputError: a record is not an object, or a transform failed on it.
            StoreError: the online store failed.
        """
        if not self.uses_store:
            return self.enrich(records, now=now)
        return await asyncio.to_thread(self.enrich, records, now=now)


__all__ = ["OnlineFeatures"]

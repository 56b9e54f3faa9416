"""One feature definition for training and serving.

keel.yaml's ``features`` section declares transforms (registered Python functions, applied in
order) and entities (features looked up by key). The same definitions run on both paths:

* training (``keel features build``): :class:`TrainingSetBuilder` joins each entity's history
  point-in-time (:class:`EntityIndex`: the latest value at or before each row's event time,
  within ``ttl``), then applies the :class:`FeaturePipeline` to the table;
* serving: :class:`OnlineFeatures` looks the latest values up in the online store, then applies
  the same :class:`FeaturePipeline` to the request records.

Register transforms with :func:`feature_transform` (``from keelwork.core.features import
feature_transform``); importing this package loads neither numpy nor pyarrow.
"""

from keelwork.core.features.online import OnlineFeatures
from keelwork.core.features.pipeline import DEFAULT_BATCH_ROWS, FeaturePipeline
from keelwork.core.features.pit import EntityIndex, TrainingSetBuilder
from keelwork.core.features.registry import (
    DEFAULT_REGISTRY,
    RegisteredTransform,
    TransformRegistry,
    feature_transform,
)
from keelwork.core.features.values import canonical_key, micros_of

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "DEFAULT_REGISTRY",
    "EntityIndex",
    "FeaturePipeline",
    "OnlineFeatures",
    "RegisteredTransform",
    "TrainingSetBuilder",
    "TransformRegistry",
    "canonical_key",
    "feature_transform",
    "micros_of",
]

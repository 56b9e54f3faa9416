"""keel.yaml's ``features:`` section: entity features and transforms, one definition for
training (``keel features build``) and serving (the gateway's online lookup).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from keelwork.spec.durations import UNIT_SECONDS
from keelwork.spec.section import Section, check_name


class TransformSpec(Section):
    """One feature transform: a registered Python function applied to some fields of a row."""

    name: str = Field(description="Name of this step (unique), used in messages.")
    fn: str = Field(description="Name under which the function is registered with "
                    "@feature_transform (from keelwork.core.features) in one of "
                    "features.modules.")
    inputs: list[str] = Field(min_length=1, description="Fields passed to the function, in "
                              "order: request/training fields, entity features or outputs of "
                              "earlier transforms.")
    output: str = Field(description="Field the result is written to (replaces a field of the "
                        "same name).")
    params: dict[str, Any] = Field(default_factory=dict,
                                   description="Keyword arguments passed to the function.")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v, "a transform name")


class EntitySpec(Section):
    """Features of one entity: looked up online at serving, joined point-in-time for training."""

    name: str = Field(description="Entity feature group name (unique).")
    key: str = Field(description="Field holding the entity key, in requests, training rows and "
                     "the source table alike. Keys compare as text: 42 and '42' are one key.")
    timestamp: str = Field(default="event_time", description="Column of the source giving when "
                           "each value became known.")
    features: list[str] = Field(min_length=1, description="Columns of the source to serve.")
    source: str = Field(description="Offline history of the values (Parquet/CSV/JSONL path, "
                        "relative to keel.yaml).")
    ttl: str | None = Field(default=None, pattern=r"^\d+[smhd]$",
                            description="Values older than this (relative to the row's or the "
                            "request's time) count as missing. Default: they never expire.")
    prefix: str = Field(default="", description="Prefix of the output field names "
                        "(prefix + feature).")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v, "an entity name")

    @property
    def ttl_seconds(self) -> float | None:
        """``ttl`` in seconds, or None when values never expire."""
        if self.ttl is None:
            return None
        return float(int(self.ttl[:-1]) * UNIT_SECONDS[self.ttl[-1]])

    @property
    def outputs(self) -> list[str]:
        """Names of the fields this entity adds to a row, in ``features`` order."""
        return [self.prefix + f for f in self.features]


class FeaturesSection(Section):
    """Feature definitions applied identically for training (keel features build) and serving."""

    modules: list[str] = Field(default_factory=list, description="Python files (relative to "
                               "keel.yaml) or module names that register transform functions.")
    event_timestamp: str = Field(default="event_time", description="Column of training rows "
                                 "giving when the prediction would have been made; entity "
                                 "values are joined as of that time.")
    entities: list[EntitySpec] = Field(default_factory=list)
    transforms: list[TransformSpec] = Field(default_factory=list, description="Applied in "
                                            "order, after the entity features are added.")

    @model_validator(mode="after")
    def _consistent(self) -> FeaturesSection:
        # Transforms run in order and may rewrite a field (in place, or an entity feature, to
        # fill a gap): each input is the field's value when that step runs, so no order rule.
        for group in ("entities", "transforms"):
            seen: set[str] = set()
            for item in getattr(self, group):
                if item.name in seen:
                    raise PydanticCustomError("duplicate_name", "{group} name {name} appears "
                                              "twice", {"group": group, "name": repr(item.name)})
                seen.add(item.name)
        produced: dict[str, str] = {}
        for e in self.entities:
            for out in e.outputs:
                if out in (e.key, e.timestamp):
                    raise PydanticCustomError(
                        "feature_is_key", "entities[{name}]: the feature field {out} is also "
                        "its key or timestamp column", {"name": e.name, "out": repr(out)})
                if out in produced:
                    raise PydanticCustomError(
                        "duplicate_feature", "the feature field {out} would be written by "
                        "entity {name} and by {other} (set 'prefix' to tell them apart)",
                        {"out": repr(out), "name": repr(e.name), "other": produced[out]})
                produced[out] = f"entity {e.name!r}"
        return self



__all__ = ["EntitySpec", "FeaturesSection", "TransformSpec"]

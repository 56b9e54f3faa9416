"""keel.yaml's ``contract:`` section: the data contract of a model's inputs and outputs.

One :class:`FieldSpec` per field; the same object is checked per request
(:mod:`keelwork.core.contracts.record`) and per table (:mod:`keelwork.core.contracts.batch`).
A field that contradicts itself (``min`` above ``max``, a category field without categories,
...) is refused here, before any data is read.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from keelwork.spec.section import Section

FieldType = Literal["float", "integer", "boolean", "string", "category", "text", "tensor"]


class FieldSpec(Section):
    """One input or output field of the data contract."""

    name: str
    type: FieldType
    required: bool = True
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    categories: list[str | int | bool] | None = None
    min_length: Annotated[int, Field(ge=0)] | None = None
    max_length: Annotated[int, Field(ge=0)] | None = None
    shape: list[int] | None = Field(default=None, description="Tensor shape, -1 = any size.")
    dtype: Literal["float32", "float64", "int32", "int64", "bool"] | None = None
    allow_nan: bool = False
    description: str = ""
    pii: Literal["redact", "pseudonymise", "drop", "keep"] | None = Field(
        default=None, description="What is stored of this field (prediction log, error "
        "bodies): 'redact' (text: entities replaced by their type; other types: the whole "
        "value), 'pseudonymise' (keyed HMAC tokens instead), 'drop' (not stored), 'keep'. "
        "Default: guards.pii_redaction.text for text fields when redaction is on, else keep.")

    @model_validator(mode="after")
    def _consistent(self) -> FieldSpec:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise PydanticCustomError(
                "range_order", "min ({min}) is greater than max ({max})",
                {"min": self.min, "max": self.max})
        if (self.min_length is not None and self.max_length is not None
                and self.min_length > self.max_length):
            raise PydanticCustomError(
                "length_order", "min_length ({lo}) is greater than max_length ({hi})",
                {"lo": self.min_length, "hi": self.max_length})
        if self.type == "category" and not self.categories:
            raise PydanticCustomError(
                "categories_missing", "a 'category' field needs a non-empty 'categories' list", {})
        if self.type != "tensor" and self.shape is not None:
            raise PydanticCustomError(
                "shape_not_tensor", "'shape' applies to 'tensor' fields only; got type {t}",
                {"t": repr(self.type)})
        if (self.type not in ("float", "integer", "tensor")
                and (self.min is not None or self.max is not None)):
            raise PydanticCustomError(
                "range_not_numeric", "'min'/'max' apply to numeric fields; got type {t}",
                {"t": repr(self.type)})
        return self


class ContractSection(Section):
    inputs: list[FieldSpec] = Field(default_factory=list)
    outputs: list[FieldSpec] = Field(default_factory=list)
    extra_fields: Literal["reject", "ignore", "keep"] = "reject"
    subject_field: str | None = Field(
        default=None, description="Input field that identifies the data subject (for GDPR).")
    output_policy: Literal["warn", "strict"] = Field(
        default="warn", description="What an answer that breaks 'outputs' gets: 'warn' "
        "answers, logs the violation (guard 'output_contract'), counts it and says so in the "
        "response's 'warnings'; 'strict' refuses it with a 500 naming the contract.")

    @model_validator(mode="after")
    def _unique(self) -> ContractSection:
        for group in ("inputs", "outputs"):
            seen: set[str] = set()
            for f in getattr(self, group):
                if f.name in seen:
                    raise PydanticCustomError(
                        "duplicate_field", "{group} name {name} appears twice",
                        {"group": group, "name": repr(f.name)})
                seen.add(f.name)
        return self



__all__ = ["ContractSection", "FieldSpec", "FieldType"]

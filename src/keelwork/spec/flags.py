"""Feature flags for models: which version of a model answers which requests.

In keel.yaml (or sent to the admin API, same shape)::

    flags:
      - name: eu-on-v3
        model: sentiment
        rules:
          - {tenants: [acme], serve: challenger}          # a tenant gets the challenger
          - {headers: {x-region: [eu]}, serve: "3"}         # a region gets version 3
          - {percentage: 10, serve: challenger}            # 10 % of users, sticky by key
        default: null                                      # everyone else: the champion

A rule matches when *all* of the conditions it names hold; the first matching rule wins.
``serve`` names an alias or a version of ``model`` (``challenger``, ``3``, ``@challenger``).
``percentage`` buckets requests by a hash of the flag name and the sticky key (the
``sticky_header`` value, else the tenant), so a user keeps their answer while the percentage is
unchanged and raising it only adds users.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

FLAG_KIND = "keelwork.model-flag"
FLAG_VERSION = 1

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_REF_RE = re.compile(r"^@?[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FlagRule(_Frozen):
    """One targeting rule: conditions (all must hold) and the model reference to serve."""

    tenants: list[str] | None = Field(default=None, description="Tenant ids that match.")
    headers: dict[str, list[str]] | None = Field(
        default=None, description="Header name -> values that match (names case-insensitive).")
    percentage: Annotated[float, Field(ge=0, le=100)] | None = Field(
        default=None, description="Share of sticky keys that match, 0-100.")
    serve: str = Field(description="Alias or version of the flag's model to serve.")

    @field_validator("serve")
    @classmethod
    def _ref(cls, v: str) -> str:
        if not _REF_RE.match(v):
            raise PydanticCustomError("flag_ref", "serve must be an alias or a version; got "
                                      "{got}", {"got": repr(v)})
        return v.lstrip("@")

    @field_validator("headers")
    @classmethod
    def _lower(cls, v: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        return None if v is None else {k.lower(): list(vals) for k, vals in v.items()}

    @model_validator(mode="after")
    def _has_condition(self) -> FlagRule:
        if self.tenants is None and self.headers is None and self.percentage is None:
            raise PydanticCustomError("flag_rule_empty", "a rule needs at least one condition "
                                      "(tenants, headers or percentage)", {})
        return self


class FlagSpec(_Frozen):
    """One flag: the rules choosing a version of ``model`` per request."""

    name: str
    model: str = Field(description="The served model name the flag applies to.")
    enabled: bool = True
    rules: list[FlagRule] = Field(default_factory=list)
    default: str | None = Field(default=None, description="Served when no rule matches "
                                "(None: the usual resolution, the champion).")
    sticky_header: str = Field(default="x-keel-user",
                               description="Header whose value keeps a user in one bucket.")

    @field_validator("name", "model")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise PydanticCustomError("name_format", "flag and model names hold letters, "
                                      "digits, '_', '.', '-'; got {got}", {"got": repr(v)})
        return v

    @field_validator("default")
    @classmethod
    def _default_ref(cls, v: str | None) -> str | None:
        if v is not None and not _REF_RE.match(v):
            raise PydanticCustomError("flag_ref", "default must be an alias or a version; got "
                                      "{got}", {"got": repr(v)})
        return None if v is None else v.lstrip("@")

    @field_validator("sticky_header")
    @classmethod
    def _header(cls, v: str) -> str:
        return v.lower()

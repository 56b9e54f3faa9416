"""The keel.yaml model and its loader (pydantic; no I/O beyond reading the spec file)."""

from keelwork.spec.loader import json_schema, load_spec, parse_spec
from keelwork.spec.model import KeelSpec, ModelSection, ResolvedSpec

__all__ = ["KeelSpec", "ModelSection", "ResolvedSpec", "json_schema", "load_spec", "parse_spec"]

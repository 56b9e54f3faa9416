"""Which running component enforces each keel.yaml field, and which test proves it.

A field that is accepted and then ignored misleads (:mod:`keelwork.spec.enforcement` refuses the
ones not enforced yet). This module keeps the other half honest: :func:`schema_leaves` walks the
model of :class:`keelwork.spec.model.KeelSpec` and lists every field a user can set, and
:data:`ENFORCED_BY` names, for each, the module that reads it *and acts on it* and the test
file that sets it and asserts the effect. ``tests/unit/spec/test_enforced_by.py`` fails when a
field has no row (a new field must come with its component, its test and its row), when a row
names a path that is no longer a field, a module that does not exist, or a test that does not
mention the field.

Paths are written as in keel.yaml, list items as ``name[]``: ``models[].batching.max_wait_ms``.
A field that is either a switch or a section (``guards.pii_redaction: true`` or
``{text: drop}``) is a leaf itself and has leaves under it. Components and tests are named as
strings: this module sits in the spec layer and imports no other layer.

The rows live in two modules by section: :mod:`keelwork.spec.enforced_by_serving` (what a
request meets) and :mod:`keelwork.spec.enforced_by_watching` (what watches the service).
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True, slots=True)
class Enforcer:
    """Who enforces one keel.yaml field.

    Attributes:
        component: Dotted module that reads the field and acts on it (not one that only
            passes it on or mentions it).
        test: Repository-relative test file that sets the field and asserts its effect.
        note: How the value reaches the component, where that is not obvious.
    """

    component: str
    test: str
    note: str = ""


def _parts(annotation: Any) -> tuple[list[tuple[type[BaseModel], str]], bool]:
    """The sections inside ``annotation`` (with ``[]`` per list around them) and whether it
    also admits a plain value (a switch, a number, a string...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, "")], False
    if annotation is type(None):
        return [], False
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _parts(args[0])
    if origin in (list, tuple, set, frozenset) and args:
        models, plain = _parts(args[0])
        return [(m, "[]" + suffix) for m, suffix in models], plain
    if origin in (typing.Union, types.UnionType):
        found: list[tuple[type[BaseModel], str]] = []
        plain = False
        for arg in args:
            models, p = _parts(arg)
            found += models
            plain |= p
        return found, plain
    return [], True


def model_leaves(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every settable field under ``model``, as keel.yaml paths (aliases where a field has one).

    A field is a leaf when it admits a plain value; a field that holds sections contributes the
    leaves of each (a list of sections as ``name[]``); a field that is both is both.
    """
    out: list[str] = []
    for name, info in model.model_fields.items():
        path = prefix + (info.alias or name)
        models, plain = _parts(info.annotation)
        if plain or not models:
            out.append(path)
        for sub, suffix in models:
            out += model_leaves(sub, f"{path}{suffix}.")
    return out


def schema_leaves() -> list[str]:
    """Every leaf of the keel.yaml schema, in the model's order."""
    from keelwork.spec.model import KeelSpec

    return model_leaves(KeelSpec)


def path_parts(leaf: str) -> tuple[str, ...]:
    """``models[].batching.enabled`` -> ``("models", "batching", "enabled")``: the form of
    :data:`keelwork.spec.enforcement.NOT_ENFORCED`'s keys."""
    return tuple(p.removesuffix("[]") for p in leaf.split("."))


def refused(leaf: str) -> str | None:
    """Why ``leaf`` is refused at validate time (it or a section above it is not enforced
    yet), or None."""
    from keelwork.spec.enforcement import NOT_ENFORCED

    parts = path_parts(leaf)
    for path, why in NOT_ENFORCED.items():
        if parts[:len(path)] == path:
            return why
    return None


_FIELDS_TEST = "tests/integration/test_spec_storage_server_fields.py"

#: Fields that ask nothing of a running component: what they name, and who shows them.
DESCRIPTIVE: dict[str, Enforcer] = {
    "kind": Enforcer("keelwork.spec.loader", _FIELDS_TEST,
                     "the schema admits only 'keel.yaml'; 'keel spec validate' refuses another"),
    "version": Enforcer("keelwork.spec.loader", _FIELDS_TEST,
                        "the schema admits only this version; 'keel spec validate' refuses "
                        "another"),
    "service.name": Enforcer("keelwork.interfaces.http.app", _FIELDS_TEST,
                             "the OpenAPI title; also the 'service' label of alerts and cost "
                             "metrics and the Grafana dashboard's title"),
    "service.description": Enforcer("keelwork.interfaces.http.app", _FIELDS_TEST,
                                    "the OpenAPI document's description"),
    "contract.inputs[].description": Enforcer("keelwork.interfaces.http.openapi", _FIELDS_TEST,
                                              "the field's description in the request "
                                              "schema"),
}

#: Fields found accepted but read by nothing: each should move to
#: :data:`keelwork.spec.enforcement.NOT_ENFORCED` (refused at validate time) or gain its
#: component. Their coverage test is an expected (strict) failure until then.
UNENFORCED_FOUND: dict[str, str] = {}


def _all_rows() -> dict[str, Enforcer]:
    from keelwork.spec.enforced_by_serving import SERVING
    from keelwork.spec.enforced_by_watching import WATCHING

    return {path: Enforcer(*row) for path, row in {**SERVING, **WATCHING}.items()}


#: keel.yaml path -> the component that enforces it and the test that proves it.
ENFORCED_BY: dict[str, Enforcer] = _all_rows()

__all__ = ["DESCRIPTIVE", "ENFORCED_BY", "UNENFORCED_FOUND", "Enforcer", "model_leaves",
           "path_parts", "refused", "schema_leaves"]

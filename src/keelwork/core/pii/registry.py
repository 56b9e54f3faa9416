"""Which recogniser finds which entity: the built-ins, then ``keelwork.pii_recognisers`` plug-ins.

A plug-in is an entry point named by the entity it finds, whose value is a class or a factory
called with no arguments that returns a :class:`keelwork.types.PiiRecogniser`::

    [project.entry-points."keelwork.pii_recognisers"]
    DE_TAX_ID = "my_package.pii:GermanTaxIdRecogniser"

Built-in modules are imported, and entry points read and loaded, only when an entity is asked
for, so ``import keelwork`` stays light.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import Any, cast

from keelwork.errors import PiiConfigError
from keelwork.types import PiiRecogniser

ENTRY_POINT_GROUP = "keelwork.pii_recognisers"

#: entity -> "module:attribute" of the class that finds it.
BUILTIN_ENTITIES: dict[str, str] = {
    "EMAIL_ADDRESS": "keelwork.core.pii.structured:EmailRecogniser",
    "PHONE_NUMBER": "keelwork.core.pii.phones:PhoneRecogniser",
    "CREDIT_CARD": "keelwork.core.pii.structured:CardRecogniser",
    "IBAN_CODE": "keelwork.core.pii.structured:IbanRecogniser",
    "US_SSN": "keelwork.core.pii.structured:SsnRecogniser",
    "IP_ADDRESS": "keelwork.core.pii.structured:IpRecogniser",
    "URL": "keelwork.core.pii.structured:UrlRecogniser",
    "DATE_OF_BIRTH": "keelwork.core.pii.dates:DateOfBirthRecogniser",
    "PERSON": "keelwork.core.pii.names:NameRecogniser",
    "LOCATION": "keelwork.core.pii.names:NameRecogniser",
}
#: What ``entities=None`` scans for: every built-in entity.
DEFAULT_ENTITIES: tuple[str, ...] = tuple(BUILTIN_ENTITIES)


def _plugins() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def known_entities() -> tuple[str, ...]:
    """Every entity that can be scanned for now: built-ins first, then plug-ins by name."""
    extra = sorted(name for name in _plugins() if name not in BUILTIN_ENTITIES)
    return (*BUILTIN_ENTITIES, *extra)


def check_entities(entities: Iterable[str]) -> tuple[str, ...]:
    """The names, de-duplicated in order, once each is known (without loading any plug-in).

    Raises:
        PiiConfigError: a name is neither built in nor a ``keelwork.pii_recognisers`` entry
            point; the message lists the valid names.
    """
    names = tuple(dict.fromkeys(entities))
    plugins: dict[str, EntryPoint] | None = None
    for name in names:
        if name in BUILTIN_ENTITIES:
            continue
        plugins = _plugins() if plugins is None else plugins
        if name not in plugins:
            raise PiiConfigError(
                f"Unknown PII entity {name!r}; valid entities: {', '.join(known_entities())}. "
                f"Others register under the {ENTRY_POINT_GROUP!r} entry-point group.",
                entity=name)
    return names


def load_recognisers(entities: Iterable[str]) -> list[PiiRecogniser]:
    """One recogniser instance per distinct class or plug-in that finds ``entities``.

    Raises:
        PiiConfigError: an unknown entity, or a plug-in that cannot be imported, is not
            callable, or builds something without ``entities`` and ``find``.
    """
    names = check_entities(entities)
    targets: dict[str, list[str]] = {}
    for name in names:
        targets.setdefault(BUILTIN_ENTITIES.get(name, f"plugin:{name}"), []).append(name)
    out: list[PiiRecogniser] = []
    for target, wanted in targets.items():
        if target.startswith("plugin:"):
            out.append(_load_plugin(wanted[0]))
        else:
            module, _, attr = target.partition(":")
            out.append(cast(PiiRecogniser, getattr(importlib.import_module(module), attr)()))
    return out


def _load_plugin(name: str) -> PiiRecogniser:
    ep = _plugins()[name]
    try:
        factory: Any = ep.load()
        recogniser = factory()
    except Exception as exc:
        raise PiiConfigError(
            f"The PII recogniser plug-in {name!r} ({ep.value}) cannot be loaded: "
            f"{type(exc).__name__}: {exc}", entity=name) from exc
    if not (callable(getattr(recogniser, "find", None))
            and isinstance(getattr(recogniser, "entities", None), tuple)):
        raise PiiConfigError(
            f"The PII recogniser plug-in {name!r} ({ep.value}) must build an object with "
            f"'entities' (a tuple) and 'find(text)'; got {type(recogniser).__name__}.",
            entity=name)
    return cast(PiiRecogniser, recogniser)

"""``guards.pii_redaction.entities``: known names pass, an unknown one is a spec error with its
line; the spec's list of built-in entities is the engine's."""

from __future__ import annotations

import pytest

from keelwork.core.pii.registry import BUILTIN_ENTITIES
from keelwork.errors import SpecError
from keelwork.spec.loader import parse_spec
from keelwork.spec.model import pii_settings
from keelwork.spec.pii import BUILTIN_PII_ENTITIES

BASE = ("service: {name: s, owners: [a@example.com]}\n"
        "models: [{name: m, runtime: python, artifact: 'a:b'}]\n")


def test_the_spec_knows_exactly_the_engines_built_in_entities() -> None:
    assert tuple(BUILTIN_ENTITIES) == BUILTIN_PII_ENTITIES


def test_known_entities_are_accepted() -> None:
    spec = parse_spec(BASE + "guards:\n  pii_redaction: {entities: [EMAIL_ADDRESS, IBAN_CODE]}\n",
                      env={})
    settings = pii_settings(spec.guards)
    assert settings is not None and settings.entities == ["EMAIL_ADDRESS", "IBAN_CODE"]


def test_an_unknown_entity_is_an_error_with_its_line_and_the_valid_names() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(BASE + "guards:\n  pii_redaction:\n    entities: [EMAIL, PERSON]\n", env={})
    [detail] = err.value.details
    assert detail.path.startswith("guards.pii_redaction")
    assert detail.line == 5
    assert "unknown PII entity 'EMAIL'" in detail.message and "EMAIL_ADDRESS" in detail.message

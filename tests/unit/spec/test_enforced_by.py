"""Every keel.yaml field names the component that enforces it and the test that proves it
(:mod:`keelwork.spec.enforced_by`): a field with no row, a stale row, a module that does not
exist or a test that never mentions the field fails here."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

import pytest
from pydantic import Field

from keelwork.spec.enforced_by import (
    DESCRIPTIVE,
    ENFORCED_BY,
    UNENFORCED_FOUND,
    Enforcer,
    model_leaves,
    refused,
    schema_leaves,
)
from keelwork.spec.model import GuardsSection, KeelSpec, ModelSection
from keelwork.spec.section import Section

ROOT = Path(__file__).resolve().parents[3]
LEAVES = schema_leaves()
ROWS: dict[str, Enforcer] = {**ENFORCED_BY, **DESCRIPTIVE}


def uncovered(leaves: list[str], rows: dict[str, Enforcer]) -> list[str]:
    """The leaves that no row covers and that validation does not refuse."""
    return [leaf for leaf in leaves if leaf not in rows and refused(leaf) is None]


def test_the_walk_sees_lists_aliases_and_switches_that_are_sections() -> None:
    assert len(LEAVES) == len(set(LEAVES)) > 150
    assert "models[].batching.max_wait_ms" in LEAVES
    assert "alerts.smtp.from" in LEAVES  # the alias keel.yaml spells, not `sender`
    # `pii_redaction: true` or `{text: drop}`: a leaf with leaves
    assert {"guards.pii_redaction", "guards.pii_redaction.text"} <= set(LEAVES)
    # a section that is only a section (or null) is not itself a leaf
    assert not {"service", "models", "guards.rate_limit", "review"} & set(LEAVES)
    assert "flags[].rules[].serve" in LEAVES


@pytest.mark.parametrize("leaf", [
    pytest.param(leaf, marks=pytest.mark.xfail(strict=True, reason=UNENFORCED_FOUND[leaf]))
    if leaf in UNENFORCED_FOUND else leaf for leaf in LEAVES])
def test_every_field_has_a_row_or_is_refused(leaf: str) -> None:
    assert not uncovered([leaf], ROWS), (
        f"keel.yaml field {leaf!r} names no enforcing component: add a row to "
        "keelwork.spec.enforced_by_serving/_watching (component + test), or refuse it in "
        "keelwork.spec.enforcement.NOT_ENFORCED")


def test_no_stale_or_double_rows() -> None:
    leaves = set(LEAVES)
    stale = sorted(p for p in [*ROWS, *UNENFORCED_FOUND] if p not in leaves)
    assert not stale, f"rows for paths that are not keel.yaml fields: {stale}"
    assert not set(ENFORCED_BY) & set(DESCRIPTIVE)
    assert not set(UNENFORCED_FOUND) & set(ROWS)
    assert not [p for p in ROWS if refused(p) is not None], "refused fields need no row"


def _module_file(dotted: str) -> Path | None:
    spec = importlib.util.find_spec(dotted)
    return Path(spec.origin) if spec is not None and spec.origin else None


@pytest.mark.parametrize("component", sorted({e.component for e in ENFORCED_BY.values()}))
def test_every_component_is_a_module_outside_the_spec(component: str) -> None:
    assert not component.startswith("keelwork.spec"), \
        f"{component}: the spec describes, a running component enforces"
    path = _module_file(component)
    assert path is not None and path.is_file(), f"{component} is not a module"
    assert ROOT / "src" in path.parents, f"{component} is not in this repository's src/"


@pytest.mark.parametrize("leaf", sorted(ROWS))
def test_every_test_file_exists_and_names_the_field(leaf: str) -> None:
    row = ROWS[leaf]
    path = ROOT / row.test
    assert row.test.startswith("tests/") and path.is_file(), f"{leaf}: no file {row.test}"
    last = leaf.rsplit(".", 1)[-1].removesuffix("[]")
    assert last in path.read_text(encoding="utf-8"), f"{row.test} never mentions {last!r}"


def test_descriptive_fields_name_who_shows_them() -> None:
    for leaf, row in DESCRIPTIVE.items():
        assert row.note, f"{leaf}: say what uses it"
        assert _module_file(row.component) is not None


# ------------------------------------------------------------------ the check can fail
class _Shiny(Section):
    sparkle: bool = False


class _Guards(GuardsSection):
    made_up_limit: int = 3
    shiny: bool | _Shiny = False


class _Model(ModelSection):
    warp_speed: float = Field(default=1.0)


class _Spec(KeelSpec):
    guards: _Guards = Field(default_factory=_Guards)
    models: list[_Model] = Field(min_length=1)  # type: ignore[assignment]
    mood: Literal["calm", "loud"] = "calm"


def test_a_field_added_without_a_row_is_reported() -> None:
    leaves = model_leaves(_Spec)
    assert uncovered(leaves, ROWS) == sorted(
        ["models[].warp_speed", "guards.made_up_limit", "guards.shiny", "guards.shiny.sparkle",
         "mood", *UNENFORCED_FOUND], key=leaves.index)


def test_a_removed_field_leaves_a_stale_row() -> None:
    leaves = set(model_leaves(KeelSpec)) - {"guards.pii_redaction.entities"}
    assert "guards.pii_redaction.entities" in ROWS
    assert [p for p in ROWS if p not in leaves] == ["guards.pii_redaction.entities"]


def test_refused_fields_are_exempt_and_only_they(monkeypatch: pytest.MonkeyPatch) -> None:
    from keelwork.spec import enforcement

    monkeypatch.setattr(enforcement, "NOT_ENFORCED", {("server", "port"): "not yet",
                                                      ("review",): "not yet"})
    assert refused("server.port") == refused("review.budget_per_day") == "not yet"
    assert refused("server.host") is None
    assert uncovered(["server.port", "review.interval"], {}) == []
    assert uncovered(["server.host"], {}) == ["server.host"]

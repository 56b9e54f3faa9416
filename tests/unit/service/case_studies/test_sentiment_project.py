"""The story's project files: a keel.yaml keel loads (every field enforced), the tests file
``keel test`` reads, and the reference with its labels."""

from __future__ import annotations

import json
from pathlib import Path

from keelwork.service.case_studies.sentiment_project import (
    CANARY_MIN_ACCURACY,
    CANARY_STEPS,
    HOME_MIN_ACCURACY,
    MODEL,
    write_project,
)
from keelwork.service.case_studies.tweets import Sizes, Tweet
from keelwork.service.model_tests import load_tests
from keelwork.spec import load_spec

SIZES = Sizes(train=10, reference=2, window=7, canary=2, test=3, review_budget=9)
REFERENCE = [Tweet("@united late again", "negative", "airline"),
             Tweet("@united thanks!", "positive", "airline")]


def test_keel_yaml_loads_with_the_story_settings(tmp_path: Path) -> None:
    spec_path = write_project(tmp_path / "p", REFERENCE, SIZES)
    spec = load_spec(spec_path).spec
    [model] = spec.models
    assert model.name == MODEL and model.runtime == "sklearn" and model.tests
    assert [f.name for f in spec.contract.inputs] == ["text"]
    assert spec.contract.outputs[0].categories == ["negative", "positive"]
    assert spec.monitoring.windows == ["7p"]             # one window per traffic window
    assert spec.monitoring.labels.column == "label"
    assert spec.review is not None and spec.review.budget_per_day == 9
    assert spec.rollout.steps == list(CANARY_STEPS)
    assert spec.rollout.gates.min_accuracy == CANARY_MIN_ACCURACY


def test_the_tests_file_is_what_keel_test_reads(tmp_path: Path) -> None:
    spec_path = write_project(tmp_path / "p", REFERENCE, SIZES)
    tests, digest = load_tests(load_spec(spec_path), MODEL)
    kinds = {t.name: t.kind for t in tests.tests}
    assert kinds == {"obvious_tweets": "minimum", "typos_keep_the_label": "invariance",
                     "airline_accuracy": "slice"}
    [floor] = [t for t in tests.tests if t.kind == "slice"]
    assert floor.min == HOME_MIN_ACCURACY and len(digest) == 64


def test_the_reference_holds_the_held_out_tweets_with_labels(tmp_path: Path) -> None:
    write_project(tmp_path / "p", REFERENCE, SIZES)
    rows = [json.loads(line) for line in
            (tmp_path / "p" / "reference.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows == [{"text": t.text, "label": t.label} for t in REFERENCE]

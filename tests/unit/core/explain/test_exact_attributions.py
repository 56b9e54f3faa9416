"""Exact attributions (keelwork.core.explain.exact): they add up to the model's own output minus
the expected value (to 1e-6), per original feature through a ColumnTransformer, and equal
shap's where shap computes the same thing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("pandas")

import pandas as pd
from sklearn.base import is_regressor
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from keelwork.core.explain.exact import column_groups, explain_exact

FEATURES = ["age", "hours", "job"]


def _data(n: int = 300) -> tuple[Any, Any, Any]:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"age": rng.normal(40, 10, n), "hours": rng.normal(40, 5, n),
                       "job": rng.choice(["a", "b", "c"], n)})
    label = ((df.age > 40) ^ (df.job == "a")).astype(int)
    target = df.age * 0.5 - df.hours * 0.2 + (df.job == "b") * 3 + rng.normal(0, 1, n)
    return df, label, target


def _pipeline(final: Any) -> Any:
    return make_pipeline(ColumnTransformer([("num", StandardScaler(), ["age", "hours"]),
                                            ("cat", OneHotEncoder(), ["job"])]), final)


def _truth(model: Any, x: Any, output: str, cls: Any) -> Any:
    if output == "decision_function" or (output == "raw" and hasattr(
            model[-1], "decision_function") and not isinstance(model[-1],
                                                               RandomForestClassifier)):
        return model.decision_function(x)
    if output == "raw":  # a forest's raw output is its class probability
        return model.predict_proba(x)[:, list(model.classes_).index(cls)]
    return model.predict(x)


@pytest.mark.parametrize("final", [
    LogisticRegression(), LinearRegression(), GradientBoostingClassifier(n_estimators=30),
    RandomForestClassifier(n_estimators=20, random_state=0),
    GradientBoostingRegressor(n_estimators=30), RandomForestRegressor(n_estimators=10)],
    ids=lambda m: type(m).__name__)
def test_attributions_sum_to_the_output_minus_the_expected_value(final: Any) -> None:
    if "Forest" in type(final).__name__ or "Boosting" in type(final).__name__:
        pytest.importorskip("shap", reason="tree models need shap (the explain extra)")
    df, label, target = _data()
    y = target if is_regressor(final) else label
    model = _pipeline(final).fit(df, y)
    x, background = df.iloc[:20], df.iloc[100:200]
    explained = explain_exact(model, x, background, FEATURES)
    assert explained is not None
    for i, e in enumerate(explained):
        assert e.features == FEATURES
        truth = np.asarray(_truth(model, x.iloc[[i]], e.output, e.output_class)).ravel()[0]
        assert sum(e.values) == pytest.approx(truth - e.expected_value, abs=1e-6)
        base = np.asarray(_truth(model, background, e.output, e.output_class)).mean()
        assert e.expected_value == pytest.approx(base, abs=1e-6)


def test_linear_equals_shap_linear_explainer() -> None:
    shap = pytest.importorskip("shap", reason="shap is the explain extra")
    df, label, _ = _data()
    num = df[["age", "hours"]].to_numpy()
    model = LogisticRegression().fit(num, label)
    ours = explain_exact(model, num[:10], num[100:200], ["age", "hours"])
    theirs = shap.LinearExplainer(model, num[100:200]).shap_values(num[:10])
    assert ours is not None
    assert np.array([e.values for e in ours]) == pytest.approx(theirs, abs=1e-9)


def test_one_hot_columns_sum_to_their_original_feature() -> None:
    df, label, _ = _data()
    model = _pipeline(LogisticRegression()).fit(df, label)
    groups = column_groups(model[:-1], 3)
    assert groups == [0, 1, 2, 2, 2]
    explained = explain_exact(model, df.iloc[:5], df.iloc[100:200], FEATURES)
    assert explained is not None
    xt = model[:-1].transform(df.iloc[:5])
    bt = model[:-1].transform(df.iloc[100:200])
    phi = model[-1].coef_[0] * (np.asarray(xt) - np.asarray(bt).mean(axis=0))
    assert [e.values[2] for e in explained] == pytest.approx(phi[:, 2:].sum(axis=1))


def test_preprocessing_that_mixes_features_has_no_exact_method() -> None:
    df, label, _ = _data()
    num = df[["age", "hours"]]
    model = make_pipeline(PCA(n_components=2), LogisticRegression()).fit(num, label)
    assert explain_exact(model, num.iloc[:3], num.iloc[10:20], ["age", "hours"]) is None


def test_a_model_with_no_exact_method_returns_none() -> None:
    from sklearn.neighbors import KNeighborsClassifier

    df, label, _ = _data()
    num = df[["age", "hours"]].to_numpy()
    model = KNeighborsClassifier().fit(num, label)
    assert explain_exact(model, num[:3], num[10:20], ["age", "hours"]) is None


def test_tree_attributions_match_the_model_on_values_near_thresholds() -> None:
    pytest.importorskip("shap", reason="tree models need shap (the explain extra)")
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(50, 15, (400, 2)), 2)  # many values a float32 step from a split
    model = GradientBoostingClassifier(n_estimators=30, random_state=0).fit(
        x, (x[:, 0] - 2 * x[:, 1] > -50).astype(int))
    explained = explain_exact(model, x[:50], x[200:300], ["a", "b"])
    assert explained is not None
    margins = model.decision_function(x[:50])
    assert [sum(e.values) + e.expected_value for e in explained] == pytest.approx(
        list(margins), abs=1e-6)

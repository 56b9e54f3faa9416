"""Exact attributions of scikit-learn models: linear models and tree ensembles.

A model is either an estimator or a ``Pipeline`` whose last step is one. The steps before it
(the preprocessing) must map each transformed column to one original feature: a
``ColumnTransformer`` whose transformers each act column by column (scalers, imputers,
one-hot and ordinal encoders, binning, passthrough) or take a single column, possibly nested
in pipelines. The attribution of an original feature is then the sum of its transformed
columns' attributions -- exact, since SHAP values add up over a partition of the features
when each group's columns move together. Anything else returns None, and the caller falls back
to the permutation explainer (:mod:`keelwork.core.explain.attribution`).

Which output is explained (documented in docs/explain.md):

- linear regressors: the prediction; linear classifiers: ``decision_function`` (the log-odds
  of logistic regression) of the positive class (binary) or of the predicted class;
  attributions ``coef * (x - mean(B))`` in the transformed space;
- tree ensembles (TreeSHAP, interventional, the ``shap`` package): the raw output of the
  model -- a regressor's prediction, gradient boosting's log-odds, a forest's class
  probability -- of the positive class (one output) or of the predicted class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from keelwork.core.explain.attribution import Explanation

#: Transformers that map each input column to one output column of its own.
COLUMNWISE = frozenset({
    "StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler", "SimpleImputer",
    "OrdinalEncoder", "PowerTransformer", "QuantileTransformer"})
#: Module prefixes of the estimators explained exactly.
_LINEAR = ("sklearn.linear_model",)
_LINEAR_SVM = frozenset({"LinearSVC", "LinearSVR"})
_TREES = ("sklearn.ensemble", "sklearn.tree", "xgboost", "lightgbm", "catboost")


def split(model: Any) -> tuple[Any | None, Any]:
    """(preprocessing or None, final estimator) of a model or a Pipeline."""
    steps = getattr(model, "steps", None)
    if not steps:
        return None, model
    final = steps[-1][1]
    return (model[:-1] if len(steps) > 1 else None), final


def kind_of(final: Any) -> str | None:
    """``linear``, ``tree`` or None (no exact method)."""
    module = type(final).__module__
    if (module.startswith(_LINEAR) or type(final).__name__ in _LINEAR_SVM) and hasattr(
            final, "coef_"):
        return "linear"
    if module.startswith(_TREES):
        return "tree"
    return None


def column_groups(pre: Any | None, n_in: int) -> list[int] | None:
    """The original feature of each column ``pre`` outputs (None: not one each)."""
    if pre is None:
        return list(range(n_in))
    return _groups(pre, n_in)


def _groups(step: Any, n_in: int) -> list[int] | None:
    if step is None or (isinstance(step, str) and step == "passthrough"):
        return list(range(n_in))
    name = type(step).__name__
    if name == "Pipeline":
        mapping: list[int] | None = list(range(n_in))
        for _, sub in step.steps:
            assert mapping is not None
            inner = _groups(sub, len(mapping))
            if inner is None:
                return None
            mapping = [mapping[j] for j in inner]
        return mapping
    if name == "ColumnTransformer":
        return _column_transformer(step, n_in)
    if name == "OneHotEncoder":
        if any(c is not None for c in (getattr(step, "infrequent_categories_", None) or [])):
            return None
        drop = getattr(step, "drop_idx_", None)
        out: list[int] = []
        for j, cats in enumerate(step.categories_):
            dropped = drop is not None and drop[j] is not None
            out.extend([j] * (len(cats) - int(dropped)))
        return out
    if name == "KBinsDiscretizer" and getattr(step, "encode", "") == "ordinal":
        return list(range(n_in))
    if name in COLUMNWISE and not getattr(step, "add_indicator", False):
        return list(range(n_in))
    return None


def _column_transformer(ct: Any, n_in: int) -> list[int] | None:
    names = [str(n) for n in getattr(ct, "feature_names_in_", [])]
    slices = ct.output_indices_
    width = max((s.stop for s in slices.values()), default=0)
    out: list[int | None] = [None] * width
    for tname, trans, cols in ct.transformers_:
        where = slices.get(tname)
        if where is None or where.stop == where.start:
            continue
        idx = _indices(cols, names, n_in)
        if idx is None:
            return None
        local = ([0] * (where.stop - where.start) if len(idx) == 1
                 else _groups(trans, len(idx)))
        if local is None or len(local) != where.stop - where.start:
            return None
        for k, j in enumerate(local):
            out[where.start + k] = idx[j]
    if any(o is None for o in out):
        return None
    return [int(o) for o in out if o is not None]


def _indices(cols: Any, names: list[str], n_in: int) -> list[int] | None:
    if isinstance(cols, slice):
        return list(range(n_in))[cols]
    if isinstance(cols, (str, int, np.integer)):
        cols = [cols]
    arr = list(cols) if not callable(cols) else None
    if arr is None:
        return None
    if arr and all(isinstance(c, (bool, np.bool_)) for c in arr):
        return [i for i, c in enumerate(arr) if c]
    out: list[int] = []
    for c in arr:
        if isinstance(c, str):
            if c not in names:
                return None
            out.append(names.index(c))
        elif isinstance(c, (int, np.integer)):
            out.append(int(c))
        else:
            return None
    return out


def dense(x: Any) -> np.ndarray[Any, Any]:
    if hasattr(x, "toarray"):
        x = x.toarray()
    return np.asarray(x, dtype=float)


def _grouped(phi: np.ndarray[Any, Any], groups: Sequence[int], n: int) -> list[float]:
    return [float(v) for v in np.bincount(np.asarray(groups), weights=phi, minlength=n)]


def explain_exact(model: Any, x: Any, background: Any, features: Sequence[str]
                  ) -> list[Explanation] | None:
    """Exact attributions of each row of ``x`` (None: the model has no exact method here).

    Args:
        model: A fitted estimator or Pipeline.
        x: The instances, as the model takes them (array or DataFrame).
        background: The background rows, in the same form.
        features: The names of the model's input columns.

    Raises:
        MissingExtraError: never; a tree model without ``shap`` installed returns None.
    """
    pre, final = split(model)
    kind = kind_of(final)
    if kind is None:
        return None
    groups = column_groups(pre, len(features))
    if groups is None:
        return None
    xt = dense(pre.transform(x) if pre is not None else x)
    bt = dense(pre.transform(background) if pre is not None else background)
    if xt.shape[1] != len(groups):
        return None
    if kind == "linear":
        return linear_attributions(model, final, x, background, xt, bt, groups,
                                   list(features))
    return _tree(final, xt, bt, groups, list(features))


def linear_attributions(model: Any, final: Any, x: Any, background: Any,
                        xt: np.ndarray[Any, Any], bt: np.ndarray[Any, Any], groups: list[int],
                        features: list[str]) -> list[Explanation] | None:
    """``coef * (x - mean(background))`` of a linear ``final`` step in ``model``'s transformed
    space (``xt``, ``bt``), summed per original feature by ``groups``; None for a
    multi-output regressor."""
    coef = np.atleast_2d(np.asarray(final.coef_, dtype=float))
    classes = getattr(final, "classes_", None)
    if classes is None:
        if coef.shape[0] != 1:
            return None  # multi-output regression
        out_x = np.asarray(model.predict(x), dtype=float).reshape(-1, 1)
        out_b = np.asarray(model.predict(background), dtype=float).reshape(-1, 1)
        output = "prediction"
    else:
        out_x = np.asarray(model.decision_function(x), dtype=float).reshape(len(xt), -1)
        out_b = np.asarray(model.decision_function(background), dtype=float).reshape(
            len(bt), -1)
        output = "decision_function"
    mean = bt.mean(axis=0)
    result = []
    for i in range(len(xt)):
        k = 0 if coef.shape[0] == 1 else int(np.argmax(out_x[i]))
        cls = None if classes is None else (classes[1] if coef.shape[0] == 1 else classes[k])
        phi = coef[k] * (xt[i] - mean)
        result.append(Explanation(
            features=features, values=_grouped(phi, groups, len(features)),
            expected_value=float(out_b[:, k].mean()), output_value=float(out_x[i, k]),
            output=output, output_class=_plain(cls), method="linear"))
    return result


def _tree(final: Any, xt: np.ndarray[Any, Any], bt: np.ndarray[Any, Any], groups: list[int],
          features: list[str]) -> list[Explanation] | None:
    try:
        import shap
    except ImportError:
        return None
    # scikit-learn's trees route float32 values (their thresholds sit between float32
    # neighbours); shap routes what it is given, so a float64 value between the two sides of
    # a threshold would take another leaf than the model's (off by a leaf's value).
    xt, bt = xt.astype(np.float32).astype(float), bt.astype(np.float32).astype(float)
    try:
        explainer = shap.TreeExplainer(final, data=bt, model_output="raw",
                                       feature_perturbation="interventional")
        sv = np.asarray(explainer.shap_values(xt, check_additivity=False), dtype=float)
    except Exception:  # a model TreeSHAP does not take: the permutation explainer answers
        return None
    expected = np.atleast_1d(np.asarray(explainer.expected_value, dtype=float))
    if sv.ndim == 2:
        sv = sv[:, :, None]
    classes = getattr(final, "classes_", None)
    n_out = sv.shape[2]
    result = []
    for i in range(len(xt)):
        if n_out == 1:
            k = 0
            cls = None if classes is None else classes[-1]
        else:
            k = int(np.argmax(expected + sv[i].sum(axis=0)))
            cls = None if classes is None else classes[k]
        phi = sv[i, :, k]
        result.append(Explanation(
            features=features, values=_grouped(phi, groups, len(features)),
            expected_value=float(expected[k]), output_value=float(expected[k] + phi.sum()),
            output="raw" if classes is not None else "prediction", output_class=_plain(cls),
            method="tree"))
    return result


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


__all__ = ["COLUMNWISE", "column_groups", "dense", "explain_exact", "kind_of",
           "linear_attributions", "split"]

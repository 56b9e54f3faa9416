"""Per-prediction feature attributions (SHAP values), pure: no I/O, no web, no store.

- :mod:`keelwork.core.explain.attribution`: :class:`Explanation` and the bounded permutation
  explainer any model with a numeric output can use;
- :mod:`keelwork.core.explain.exact`: exact attributions of scikit-learn linear models
  (``coef * (x - E[x])``) and tree ensembles (TreeSHAP, the ``shap`` package), per original
  feature when the model is a Pipeline with a ColumnTransformer.
"""

"""What an explanation is, and the bounded permutation explainer.

Attributions are SHAP values against a background sample ``B`` (interventional: a feature
left out takes the values of the background rows): for each instance ``x``,
``sum(values) == f(x) - mean(f(B))`` where ``f`` is the explained output.

The permutation explainer walks random feature orders; along one order, switching the features
from the background's values to ``x``'s one by one, each step's change of the mean output is the
feature's contribution. The steps of one order telescope to ``f(x) - mean(f(B))``, so the
average over any number of orders keeps that sum exactly; more orders only lower the variance.
Its cost, ``orders x (features + 1) x background rows`` model rows, is bounded by the caller.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Evaluates a batch of records to one number each (the explained output).
OutputFn = Callable[[list[dict[str, Any]]], "np.ndarray[Any, Any]"]


@dataclass(frozen=True, slots=True)
class Explanation:
    """The attributions of one instance.

    Attributes:
        features: The original input features, in order.
        values: One attribution per feature, in the unit of the explained output.
        expected_value: The mean explained output over the background rows.
        output_value: The explained output for this instance
            (``expected_value + sum(values)``).
        output: Which output is explained: ``prediction`` (a regressor's value),
            ``decision_function`` (a linear classifier's margin: log-odds for logistic
            regression), ``raw`` (a tree ensemble's raw output: log-odds for gradient
            boosting, the class probability for forests) or ``probability``.
        output_class: The class whose output is explained (classifiers), else None.
        method: ``linear``, ``tree`` or ``permutation``.
        evaluations: Model rows evaluated (the permutation explainer; 0 for exact methods).
    """

    features: list[str]
    values: list[float]
    expected_value: float
    output_value: float
    output: str
    output_class: Any = None
    method: str = "permutation"
    evaluations: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``attributions`` maps each feature to its value)."""
        return {"method": self.method, "output": self.output, "output_class": self.output_class,
                "expected_value": self.expected_value, "output_value": self.output_value,
                "attributions": dict(zip(self.features, self.values, strict=True)),
                "evaluations": self.evaluations, **self.extra}

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> Explanation:
        attributions = dict(body["attributions"])
        known = {"method", "output", "output_class", "expected_value", "output_value",
                 "attributions", "evaluations"}
        return cls(features=list(attributions), values=[float(v) for v in attributions.values()],
                   expected_value=float(body["expected_value"]),
                   output_value=float(body["output_value"]), output=str(body["output"]),
                   output_class=body.get("output_class"), method=str(body["method"]),
                   evaluations=int(body.get("evaluations", 0)),
                   extra={k: v for k, v in body.items() if k not in known})


def plan(n_features: int, n_background: int, max_evaluations: int) -> tuple[int, int]:
    """(orders, background rows) that fit ``max_evaluations`` model rows.

    As many orders as fit with the whole background; when not even one does, fewer background
    rows (at least one: the bound is then ``n_features + 1``).
    """
    per_order = n_features + 1
    rows = max(1, min(n_background, max_evaluations // per_order))
    return max(1, max_evaluations // (per_order * rows)), rows


def permutation_shap(f: OutputFn, x: Mapping[str, Any], background: Sequence[Mapping[str, Any]],
                     features: Sequence[str], *, max_evaluations: int, seed: int = 0,
                     deadline: float | None = None) -> tuple[list[float], float, float, int]:
    """Permutation SHAP values of ``x`` (antithetic orders: each order and its reverse).

    Args:
        f: The explained output of a batch of records.
        x: The instance.
        background: The background records (``len >= 1``).
        features: The features to attribute (the others keep ``x``'s values throughout).
        max_evaluations: Model rows evaluated at most.
        seed: Seed of the orders (the same call gives the same values).
        deadline: ``time.monotonic()`` value past which TimeoutError is raised.

    Returns:
        (values, expected value, output value, evaluations).

    Raises:
        TimeoutError: the deadline passed (the service answers 504).
    """
    if not background:
        raise ValueError("the permutation explainer needs at least one background row")
    d = len(features)
    orders, rows = plan(d, len(background), max_evaluations)
    rng = np.random.default_rng(seed)
    bg = [dict(background[i]) for i in
          (sorted(rng.choice(len(background), rows, replace=False))
           if rows < len(background) else range(len(background)))]
    for b in bg:  # features not attributed keep x's values
        for k, v in x.items():
            if k not in features:
                b[k] = v
    totals = np.zeros(d)
    evaluations = 0
    base_mean = out_mean = 0.0
    order = np.arange(d)
    for o in range(orders):
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError("the explanation's deadline passed")
        order = rng.permutation(d) if o % 2 == 0 else order[::-1]
        batch: list[dict[str, Any]] = []
        current = [dict(b) for b in bg]
        batch.extend(dict(r) for r in current)
        for j in order:
            name = features[int(j)]
            for r in current:
                r[name] = x[name]
            batch.extend(dict(r) for r in current)
        out = np.asarray(f(batch), dtype=float).reshape(d + 1, rows)
        evaluations += len(batch)
        means = out.mean(axis=1)
        steps = np.diff(means)
        for pos, j in enumerate(order):
            totals[j] += steps[pos]
        base_mean, out_mean = float(means[0]), float(means[-1])
    values = totals / orders
    return [float(v) for v in values], base_mean, out_mean, evaluations


def mean_abs(bodies: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The global view of some explanations: mean |attribution| per feature.

    Args:
        bodies: Explanations as :meth:`Explanation.to_dict` gives them.

    Returns:
        ``{"explained": n, "mean_abs": {feature: value}}``, features by decreasing value; a
        feature missing from an explanation counts as 0 there.
    """
    totals: dict[str, float] = {}
    for body in bodies:
        for name, value in dict(body.get("attributions") or {}).items():
            totals[str(name)] = totals.get(str(name), 0.0) + abs(float(value))
    n = len(bodies)
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])
    return {"explained": n, "mean_abs": {k: v / n for k, v in ranked} if n else {}}


#: Total variation between two views' shares past which reliance counts as shifted.
RELIANCE_SHIFT = 0.2


def reliance_drift(reference: Mapping[str, float], window: Mapping[str, float]
                   ) -> dict[str, Any]:
    """How far a window's reliance moved from the reference's.

    Each view (feature -> mean |attribution|) becomes shares of its total; the distance is
    their total variation, ``0.5 * sum(|share_w - share_r|)`` over every feature of either:
    0 when the model leans on its features in the same proportions, 1 when on none of the
    same. Scale (a window whose attributions are all larger) does not count, proportions do.

    Returns:
        ``distance``, ``threshold`` (:data:`RELIANCE_SHIFT`), ``shifted``, and each view's
        ``top`` feature; ``distance`` None when either view is all zero.
    """
    def shares(view: Mapping[str, float]) -> dict[str, float] | None:
        total = sum(abs(float(v)) for v in view.values())
        return {str(k): abs(float(v)) / total for k, v in view.items()} if total > 0 else None

    r, w = shares(reference), shares(window)
    top = {"reference_top": max(r, key=lambda k: r[k]) if r else None,
           "window_top": max(w, key=lambda k: w[k]) if w else None}
    if r is None or w is None:
        return {"distance": None, "threshold": RELIANCE_SHIFT, "shifted": None, **top}
    distance = 0.5 * sum(abs(w.get(k, 0.0) - r.get(k, 0.0)) for k in r.keys() | w.keys())
    return {"distance": distance, "threshold": RELIANCE_SHIFT,
            "shifted": distance > RELIANCE_SHIFT, **top}


__all__ = ["RELIANCE_SHIFT", "Explanation", "OutputFn", "mean_abs", "permutation_shap", "plan",
           "reliance_drift"]

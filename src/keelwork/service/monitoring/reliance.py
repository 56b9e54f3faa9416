"""What a model relies on over its reference data: the baseline of the explanations' global view.

When a monitoring reference is built, some of its rows are explained with the method the
server's ``POST :explain`` uses for the model, and their mean |attribution| per feature is
stored with the reference. Each monitoring window that holds explained predictions then says
how far its own view moved from it (:func:`keelwork.core.explain.attribution.reliance_drift`):
a shift in what the model leans on.

- A model with an exact explainer (linear models, tree ensembles, linear text pipelines: see
  :mod:`keelwork.core.explain`): up to :data:`ROWS` rows against a background of up to
  :data:`BACKGROUND` other rows.
- Any other model of records (a Python function, ONNX, a kernel or neural scikit-learn model):
  the permutation explainer, with the server's own settings (``explain.max_evaluations`` and
  the background of ``explain.background_rows`` reference rows, the same sample), over up to
  :data:`PERMUTATION_ROWS` rows and :data:`PERMUTATION_BUDGET_S` seconds: whatever was
  explained by then, at least :data:`MIN_ROWS` rows, or no baseline.
- A text model without an exact explainer (occlusion) gets no baseline; its windows say it
  was not measured.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from keelwork.core.explain.attribution import mean_abs, permutation_shap
from keelwork.spec.explain import ExplainSection

log = logging.getLogger("keelwork.monitor")

#: Reference rows explained for the baseline, at most.
ROWS = 200
#: Background rows the explained rows are measured against, at most.
BACKGROUND = 100
#: Reference rows the permutation explainer explains for the baseline, at most.
PERMUTATION_ROWS = 40
#: Seconds the permutation baseline may take (a registration must not wait minutes).
PERMUTATION_BUDGET_S = 15.0
#: Rows a permutation baseline needs; fewer explained in the budget: no baseline.
MIN_ROWS = 10


def reference_reliance(runtime: Any, instances: Sequence[Any], *,
                       explain: ExplainSection | None = None,
                       label: str = "the model") -> dict[str, Any] | None:
    """``{explained, mean_abs, method}`` over a fixed-seed sample of ``instances`` on the
    loaded ``runtime``, or None when no baseline is measured (see the module docstring;
    ``explain``: keel.yaml's section, None: exact explainers only). Explaining that fails is
    logged, never raised: the reference is built without it."""
    if not instances:
        return None
    order = np.random.default_rng(0).permutation(len(instances))
    try:
        exact, applies = _exact(runtime, instances, order)
        if exact is not None or not applies or explain is None:
            return exact
        return _permutation(runtime, instances, order, explain, label)
    except Exception as exc:  # a baseline is a bonus: the reference stands without it
        log.warning("no reliance baseline for the reference: explaining its rows failed: %s: %s",
                    type(exc).__name__, exc)
        return None


def _exact(runtime: Any, instances: Sequence[Any], order: Any,
           ) -> tuple[dict[str, Any] | None, bool]:
    """(the exact baseline or None, whether the permutation explainer is what the server
    would use instead: records without an exact method)."""
    hook = getattr(runtime, "explain_input", None)
    if not callable(hook):
        return None, True
    rows = [instances[int(i)] for i in order[:ROWS]]
    background = [instances[int(i)] for i in order[ROWS:ROWS + BACKGROUND]] or rows
    model, x, names, mode = hook(rows)
    if mode == "text":
        from keelwork.core.explain.text import explain_linear_text

        got = explain_linear_text(model, x)
        return _view(got), False  # otherwise occlusion: no baseline
    from keelwork.core.explain.exact import explain_exact

    _, bx, _, _ = hook(background)
    got = explain_exact(model, x, bx, names)
    return _view(got), got is None


def _permutation(runtime: Any, instances: Sequence[Any], order: Any, explain: ExplainSection,
                 label: str) -> dict[str, Any] | None:
    from keelwork.core.explain.outputs import background_sample, output_fn

    if not all(isinstance(i, dict) for i in instances):
        return None  # the permutation explainer takes records
    background = [instances[i] for i in
                  background_sample(len(instances), explain.background_rows)]
    features = [f for f in instances[0] if f in background[0]]
    deadline = time.monotonic() + PERMUTATION_BUDGET_S
    bodies: list[dict[str, Any]] = []
    for i in order[:PERMUTATION_ROWS]:
        inst = instances[int(i)]
        f, _output, _cls = output_fn(runtime, label, inst)
        try:
            values, _expected, _value, _evals = permutation_shap(
                f, inst, background, features, max_evaluations=explain.max_evaluations,
                deadline=deadline)
        except TimeoutError:
            break
        bodies.append({"attributions": dict(zip(features, values, strict=True))})
    if len(bodies) < MIN_ROWS:
        log.warning("no reliance baseline for the reference: %d row(s) explained by the "
                    "permutation explainer in %.0f s (%d needed)", len(bodies),
                    PERMUTATION_BUDGET_S, MIN_ROWS)
        return None
    return {**mean_abs(bodies), "method": "permutation"}


def _view(got: Any) -> dict[str, Any] | None:
    if not got:
        return None
    return {**mean_abs([e.to_dict() for e in got]), "method": got[0].method}


__all__ = ["BACKGROUND", "MIN_ROWS", "PERMUTATION_BUDGET_S", "PERMUTATION_ROWS", "ROWS",
           "reference_reliance"]

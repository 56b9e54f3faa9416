"""What a model relies on over its reference data: the baseline of the explanations' global view.

When a monitoring reference is built, up to :data:`ROWS` reference rows are explained with the
model's exact explainer (linear models, tree ensembles, linear text pipelines: see
:mod:`keelwork.core.explain`) against a background of up to :data:`BACKGROUND` other rows, and
their mean |attribution| per feature is stored with the reference. Each monitoring window that
holds explained predictions then says how far its own view moved from it
(:func:`keelwork.core.explain.attribution.reliance_drift`): a shift in what the model leans on.
A model without an exact explainer gets no baseline (the permutation explainer over hundreds of
rows would make every registration slow); its windows say it was not measured.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from keelwork.core.explain.attribution import mean_abs

log = logging.getLogger("keelwork.monitor")

#: Reference rows explained for the baseline, at most.
ROWS = 200
#: Background rows the explained rows are measured against, at most.
BACKGROUND = 100


def reference_reliance(runtime: Any, instances: Sequence[Any]) -> dict[str, Any] | None:
    """``{explained, mean_abs, method}`` over a fixed-seed sample of ``instances`` on the
    loaded ``runtime``, or None when the model has no exact explainer (or explaining fails:
    logged, never raised -- the reference is built without it)."""
    hook = getattr(runtime, "explain_input", None)
    if not callable(hook) or not instances:
        return None
    rng = np.random.default_rng(0)
    order = rng.permutation(len(instances))
    rows = [instances[int(i)] for i in order[:ROWS]]
    background = [instances[int(i)] for i in order[ROWS:ROWS + BACKGROUND]] or rows
    try:
        model, x, names, mode = hook(rows)
        if mode == "text":
            from keelwork.core.explain.text import explain_linear_text

            got = explain_linear_text(model, x)
        else:
            from keelwork.core.explain.exact import explain_exact

            _, bx, _, _ = hook(background)
            got = explain_exact(model, x, bx, names)
    except Exception as exc:  # a baseline is a bonus: the reference stands without it
        log.warning("no reliance baseline for the reference: explaining its rows failed: %s: %s",
                    type(exc).__name__, exc)
        return None
    if not got:
        return None
    return {**mean_abs([e.to_dict() for e in got]), "method": got[0].method}


__all__ = ["BACKGROUND", "ROWS", "reference_reliance"]

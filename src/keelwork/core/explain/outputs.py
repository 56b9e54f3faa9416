"""What the explainers attribute, and which reference rows they measure it against.

Shared by ``POST :explain`` (:mod:`keelwork.service.explain`) and the reliance baseline of a
monitoring reference (:mod:`keelwork.service.monitoring.reliance`), so that a window's
explanations and the baseline they are compared with mean the same thing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keelwork.errors import ErrorDetail, NotExplainable


def background_sample(count: int, n: int) -> list[int]:
    """Which of ``count`` reference rows form the background of ``n`` rows: a fixed-seed
    uniform sample, in row order (every row when ``count <= n``)."""
    if count <= n:
        return list(range(count))
    return [int(i) for i in np.sort(np.random.default_rng(0).choice(count, n, replace=False))]


def output_fn(runtime: Any, label: str, inst: Any) -> tuple[Any, str, Any]:
    """(the explained output of a batch of instances, its name, its class) for ``inst`` on
    ``runtime`` (``label``: the model, for the error): the probability of its predicted
    class, or a regressor's prediction.

    Raises:
        NotExplainable: the model answers something that is not a number.
    """
    classes = runtime.signature.classes
    if classes is not None and (proba := runtime.predict_proba([inst])) is not None:
        k = int(np.argmax(proba[0]))

        def f(batch: list[Any], k: int = k) -> np.ndarray[Any, Any]:
            return np.asarray(runtime.predict_proba(batch), dtype=float)[:, k]

        return f, "probability", classes[k]
    first = runtime.predict([inst])[0]
    if isinstance(first, bool) or not isinstance(first, (int, float)):
        raise NotExplainable(
            f"The model {label} answers {type(first).__name__} values and has no class "
            "probabilities: there is no number to attribute.",
            [ErrorDetail("model", "explain_output", label)])

    def g(batch: list[Any]) -> np.ndarray[Any, Any]:
        return np.asarray(runtime.predict(batch), dtype=float)

    return g, "prediction", None


__all__ = ["background_sample", "output_fn"]

"""Token attributions of text models: exact for linear text pipelines, occlusion otherwise.

Linear text models (a scikit-learn ``Pipeline`` of a vectorizer -- ``CountVectorizer``,
``TfidfVectorizer``, possibly with transformers after it -- and a linear model) are explained
exactly in the vectorizer's terms: each term ``j`` of the text gets ``coef_j * (x_j - e_j)``,
where ``e`` is the empty text's vector (zero for counts and TF-IDF), so the attributions add up
to the output of the text minus the output of the empty text (the ``expected_value`` here:
what the model answers when there is nothing to read). Terms are the model's own tokens (after
its lowercasing, stop words and n-grams); only terms present in the text are listed.

Any other text model is explained by occlusion: each word is removed from the text in turn and
the change of the explained output (the probability of the predicted class, or a regressor's
prediction) is its attribution. Occlusion values are not additive (a word's effect can depend
on another's): they do not add up to ``output_value - expected_value``. Its cost is one model
row per word plus two (the text, the empty text); past ``max_evaluations`` neighbouring words
are occluded together. Attributions are keyed ``word@offset`` (the word's first character in
the text), so repeated words stay apart.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from keelwork.core.explain.attribution import Explanation
from keelwork.core.explain.exact import dense, kind_of, linear_attributions, split

#: What occlusion removes: a run of word characters.
WORD = re.compile(r"\w+")
#: Evaluates texts to one number each (the explained output).
TextFn = Callable[[list[str]], "np.ndarray[Any, Any]"]


def explain_linear_text(model: Any, texts: Sequence[str]) -> list[Explanation] | None:
    """Exact term attributions of each text (None: ``model`` is not a linear text pipeline,
    or its vectorizer cannot name its terms).

    Raises:
        Exception: whatever the model raises on these texts.
    """
    pre, final = split(model)
    if pre is None or kind_of(final) != "linear":
        return None
    try:
        names = [str(n) for n in pre.get_feature_names_out()]
        xt = dense(pre.transform(list(texts)))
        bt = dense(pre.transform([""]))
    except (AttributeError, TypeError, ValueError):
        return None
    if xt.shape[1] != len(names):
        return None
    got = linear_attributions(model, final, list(texts), [""], xt, bt,
                              list(range(len(names))), names)
    if got is None:
        return None
    out = []
    for e, row in zip(got, xt, strict=True):
        present = np.flatnonzero((row != bt[0]) & (np.asarray(e.values) != 0.0))
        out.append(Explanation(
            features=[names[j] for j in present], values=[e.values[j] for j in present],
            expected_value=e.expected_value, output_value=e.output_value, output=e.output,
            output_class=e.output_class, method="linear_text"))
    return out


def word_spans(text: str, groups: int | None = None) -> list[tuple[int, int]]:
    """The ``(start, end)`` of each word of ``text``; with ``groups``, at most that many
    spans, each covering neighbouring words (from the first word's start to the last's end).
    """
    spans = [(m.start(), m.end()) for m in WORD.finditer(text)]
    if groups is None or len(spans) <= groups:
        return spans
    groups = max(1, groups)
    bounds = np.linspace(0, len(spans), groups + 1).round().astype(int)
    return [(spans[a][0], spans[b - 1][1]) for a, b in itertools.pairwise(bounds.tolist())
            if b > a]


def occlusion(f: TextFn, text: str, *, max_evaluations: int,
              deadline: float | None = None) -> tuple[list[str], list[float], float, float,
                                                       int, list[list[int]]]:
    """Occlusion attributions of ``text``.

    Args:
        f: The explained output of a batch of texts.
        text: The text.
        max_evaluations: Model rows evaluated at most (>= 3: the text, the empty text and
            one span).
        deadline: ``time.monotonic()`` value past which TimeoutError is raised.

    Returns:
        (keys ``word@offset``, values, expected value (the empty text's output), output
        value, evaluations, spans ``[start, end]``).

    Raises:
        TimeoutError: the deadline passed before the model ran.
    """
    if deadline is not None and time.monotonic() > deadline:
        raise TimeoutError("the explanation's deadline passed")
    spans = word_spans(text, max(1, max_evaluations - 2))
    batch = [text, ""] + [text[:a] + text[b:] for a, b in spans]
    out = np.asarray(f(batch), dtype=float).reshape(-1)
    value, empty = float(out[0]), float(out[1])
    values = [value - float(v) for v in out[2:]]
    keys = [f"{text[a:b]}@{a}" for a, b in spans]
    return keys, values, empty, value, len(batch), [[a, b] for a, b in spans]


__all__ = ["WORD", "TextFn", "explain_linear_text", "occlusion", "word_spans"]

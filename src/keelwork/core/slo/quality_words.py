"""The plain words of quality-SLO alerts: summary, description, runbook link (pure).

The request SLOs' words are Prometheus templates (:func:`keelwork.core.slo.rules.
alert_annotations`); quality SLOs are evaluated by the server only, so their words are written
with the numbers in, and say what the metric did ("the accuracy of model credit was under
85%"), over which windows (ending ``expected_delay`` ago for the metrics judged against
labels), and how long the budget lasts.
"""

from __future__ import annotations

from keelwork.core.slo.objectives import Alert, SloSet, format_duration, window_words
from keelwork.core.slo.rules import runbook_link

#: What the events of each metric are (for the no-data alert).
EVENT_NOUNS = {"accuracy": "labelled answers", "f1": "labelled answers",
               "mae": "labelled answers", "violation_rate": "requests",
               "null_rate": "answered requests with the counted inputs",
               "label_coverage": "predictions",
               "drift": "predictions in slices with a drift result of the feature (is keel "
                        "serve's monitoring running, with a reference?)"}


def _what(metric: str, model: str, thr: float) -> str:
    return {
        "accuracy": f"the accuracy of model {model} was under {100 * (1 - thr):.4g}%",
        "f1": f"the F1 of model {model} was under {1 - thr:.4g}",
        "mae": f"the mean absolute error of model {model} was over {thr:.4g}",
        "violation_rate": f"more than {100 * thr:.4g}% of the requests to model {model} were "
                          "refused by the input contract",
        "null_rate": f"more than {100 * thr:.4g}% of the counted input values of model "
                     f"{model} were null",
        "label_coverage": f"fewer than {100 * (1 - thr):.4g}% of the predictions of model "
                          f"{model} had their label",
        "drift": f"more than {100 * thr:.4g}% of the predictions of model {model} were served "
                 "in drifted slices",
    }[metric]


def lag_words(lag_s: int) -> str:
    """How the windows of a lagging SLO end (empty when they end now)."""
    if lag_s <= 0:
        return ""
    return (f" up to {format_duration(lag_s)} ago (labels are expected "
            f"{format_duration(lag_s)} after their prediction)")


def quality_annotations(slos: SloSet, a: Alert, runbook_base: str, *, model: str,
                        sentence: str = "") -> dict[str, str]:
    """``summary``, ``description`` and ``runbook_url`` of a quality alert that fires.

    Args:
        slos: The service's SLOs.
        a: A burn or no-data alert of a quality SLO.
        runbook_base: Folder path or URL of the runbooks.
        model: The model it fires for.
        sentence: Burn alerts: the budget sentence (:func:`~keelwork.core.slo.objectives.
            describe_burn`).
    """
    o, link = a.objective, runbook_link(runbook_base, a.name)
    ind = o.indicator
    assert ind is not None
    ending = lag_words(ind.lag_s)
    if a.kind == "burn":
        t = a.tier
        assert t is not None and o.budget is not None
        return {
            "summary": f"{o.title} SLO of {slos.service}/{model}: the error budget burns "
                       f"{t.burn_rate:g}x too fast",
            "description": f"{o.statement}: over the {format_duration(t.long_s)} and the "
                           f"{format_duration(t.short_s)}{ending}, "
                           f"{_what(ind.metric, model, t.threshold(o.budget))}; {sentence}. "
                           f"Runbook: {link}",
            "runbook_url": link}
    return {
        "summary": f"No data for the {o.title} SLO of {slos.service}/{model}",
        "description": f"model {model} has no {EVENT_NOUNS[ind.metric]} in the "
                       f"{window_words(slos.window_s)} window{ending}: the SLO is unknown, not "
                       "met (no traffic, no labels yet, or labels that name no logged "
                       f"prediction). Runbook: {link}",
        "runbook_url": link}


__all__ = ["EVENT_NOUNS", "lag_words", "quality_annotations"]

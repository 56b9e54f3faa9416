"""One Markdown runbook per SLO alert: what fired, what it means, the first three commands,
who owns it. The alerts' ``runbook_url`` annotations point at these files."""

from __future__ import annotations

from keelwork.core.slo.objectives import (
    FLOOR_FOR_S,
    NO_DATA_FOR_S,
    Alert,
    SloSet,
    format_duration,
    window_words,
)
from keelwork.core.slo.quality_words import EVENT_NOUNS, lag_words

_HOW = {
    "accuracy": "Each labelled answer is an event, bad when the predicted class is not the "
                "label.",
    "f1": "A true positive counts 2 events, a false positive or negative 1 event and 1 bad, "
          "so bad over events is exactly 1 - F1 over any window.",
    "mae": "Each labelled answer is an event and its absolute error its 'bad' part: bad over "
           "events is the mean absolute error, and the burn rate is the MAE over the "
           "objective.",
    "violation_rate": "Each request is an event (answered, failed or refused), bad when the "
                      "input contract refused it.",
    "null_rate": "Each counted input value of an answered request is an event, bad when it "
                 "is null or missing.",
    "label_coverage": "Each answered prediction is an event, bad while it has no label.",
    "drift": "Each prediction of a time slice that keel serve's monitoring compared with the "
             "reference is an event, bad when the slice's feature drifted.",
}


def _model_arg(slos: SloSet, a: Alert | None = None) -> tuple[str, str]:
    """The model to put in the commands, and a note when it depends on the alert."""
    models = slos.models_of(a.objective) if a is not None else slos.models
    if len(models) == 1:
        return models[0], ""
    return "MODEL", (f"\nMODEL is the alert's `model` label (one of: "
                     f"{', '.join(models)}).\n")


def _quality_meaning(slos: SloSet, a: Alert) -> str:
    o = a.objective
    ind = o.indicator
    assert ind is not None and o.budget is not None
    ending = lag_words(ind.lag_s)
    head = (f"A quality SLO, evaluated by `keel serve` itself (Prometheus cannot see labels). "
            f"The objective is {o.statement}, over {window_words(slos.window_s)} windows"
            f"{ending}. {_HOW[ind.metric]}")
    if ind.lag_s:
        head += (" Windows are over prediction time: a label counts into the windows of its "
                 "prediction whenever it arrives, so a late label can still change them.")
    if a.kind == "burn":
        t = a.tier
        assert t is not None
        return (f"{head}\n\nOver the {format_duration(t.long_s)} and the "
                f"{format_duration(t.short_s)}{ending}, the bad share of the events was over "
                f"{t.threshold(o.budget):.4g}: {t.burn_rate:g}x the budget of "
                f"{o.budget:.4g}. It needs at least {slos.min_events} events in the long "
                "window (`slos.min_events`); while a faster tier of the same SLO fires, this "
                "one is held back. The alert's text says how much of the budget is spent.")
    return (f"{head}\n\nNo {EVENT_NOUNS[ind.metric]} over the whole window{ending}: the "
            f"SLO is unknown, not met. Usual causes: no traffic, labels not sent yet (`keel "
            "ingest --labels`, POST /v1/feedback), or labels naming ids that are not in the "
            "log.")


def _meaning(slos: SloSet, a: Alert) -> str:
    o = a.objective
    if o.indicator is not None:
        return _quality_meaning(slos, a)
    if a.kind == "burn":
        t = a.tier
        assert t is not None and o.budget is not None
        share = 100 * t.budget_share(slos.window_s)
        return (
            f"The objective is {o.statement}, over {window_words(slos.window_s)} windows. "
            f"Its error budget is {100 * o.budget:.4g}% of the events.\n\n"
            f"More than {100 * t.threshold(o.budget):.4g}% of the events were bad over the "
            f"last {format_duration(t.long_s)} and still are over the last "
            f"{format_duration(t.short_s)}: the budget burns at least {t.burn_rate:g}x as fast "
            f"as the window allows, so {share:.3g}% of the whole budget went in "
            f"{format_duration(t.long_s)}; at that rate all of it lasts "
            f"{slos.window_s / 3600 / t.burn_rate:.3g} h. The alert's text says how much is "
            "spent and how long the rest lasts at the current rate.\n\n"
            f"It needs at least {slos.min_events} events in {format_duration(t.long_s)} "
            "(`slos.min_events`). While a faster tier of the same SLO fires, this one is "
            "inhibited (`inhibit_rules.yml` of `keel slo rules`).")
    if a.kind == "floor":
        return (f"The objective is {o.statement}. The model answered fewer requests per "
                f"second than that for {format_duration(FLOOR_FOR_S)} (over 5-minute "
                "rates): traffic fell away (clients, a load balancer, DNS) or requests fail "
                "or are refused before they are answered.")
    return (f"Prometheus has had none of the metrics of this SLO ({o.title}) for the model "
            f"for {format_duration(NO_DATA_FOR_S)}. The SLO is unknown, not met: missing "
            "data is never counted as good. Usual causes: the server is down or not scraped "
            "(check the target in Prometheus), the scrape's labels changed, or the model was "
            "never called since the server started (its series appear with the first "
            "request).")


def _commands(slos: SloSet, a: Alert) -> list[tuple[str, str]]:
    model, _ = _model_arg(slos, a)
    since = format_duration(a.tier.long_s) if a.tier else "1h"
    ind = a.objective.indicator
    if ind is not None and ind.lag_s:
        since = format_duration(ind.lag_s + (a.tier.long_s if a.tier else 3600))
    latency = a.objective.threshold_s is not None
    status = " --status error"
    if latency or a.kind == "floor" or ind is not None:
        status = " --status rejected" if ind is not None and ind.metric == "violation_rate" else ""
    tail = f"keel log tail --model {model}{status} -n 50"
    return [
        ("What failed, and why (the latest requests, with their errors and latency):", tail),
        (f"Whether the inputs changed (drift and quality over the last {since}):",
         f"keel monitor run --model {model} --window 1h --since {since}"),
        ("Whether a rollout or a new champion started it; if so, roll back:",
         f"keel rollout status {model}\n"
         f"keel rollback {model} --reason \"{a.name}\""),
    ]


def _owners(slos: SloSet) -> str:
    lines = [f"- Owners (`service.owners`): {', '.join(slos.owners)}"]
    if slos.on_call:
        lines.append(f"- On call (`service.on_call.contact`): {slos.on_call}")
    if slos.escalation:
        lines.append(f"- Escalation (`service.on_call.escalation`): {slos.escalation}")
    return "\n".join(lines)


def runbook(slos: SloSet, a: Alert) -> str:
    """The Markdown runbook of one alert."""
    _, note = _model_arg(slos, a)
    steps = "\n".join(f"{i}. {why}\n\n   ```bash\n"
                      + "\n".join(f"   {line}" for line in cmd.splitlines()) + "\n   ```\n"
                      for i, (why, cmd) in enumerate(_commands(slos, a), start=1))
    tier = f", tier `{a.tier_label}`"
    return (
        f"# {a.name}\n\n"
        f"Service `{slos.service}`, SLO `{a.objective.key}`{tier}, severity "
        f"`{a.severity}`. Generated by `keel runbook` from keel.yaml; regenerate it after "
        "changing `slos`.\n\n"
        f"## What fired\n\n{_meaning(slos, a)}\n\n"
        f"## First three commands\n\nRun them in the project (the folder of keel.yaml).\n"
        f"{note}\n{steps}\n"
        f"## Who owns it\n\n{_owners(slos)}\n")


def runbooks(slos: SloSet) -> dict[str, str]:
    """Per alert name, its runbook (file ``<name>.md``)."""
    return {a.name: runbook(slos, a) for a in slos.alerts()}

"""The SLOs of a keel.yaml as objects: objectives, burn tiers, their alerts, the budget math.

Pure: no Prometheus here, only what the rules (:mod:`keelwork.core.slo.rules`), the runbooks
and the OpenSLO export have in common. Terms, as in the SRE workbook:

- the *error budget* of an objective is the share of events allowed to be bad
  (``1 - availability``, ``error_rate``, 1% for a p99);
- the *burn rate* is the bad share observed divided by the budget: 1 spends the budget
  exactly over the SLO window, 14.4 spends 2% of a 30-day budget in an hour;
- a *tier* alerts while a long and a short window both burn faster than its rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from keelwork.core.slo.quality import LABELLED, METRIC_TITLES, QualityIndicator
from keelwork.spec.model import KeelSpec
from keelwork.spec.quality_slos import FLOOR_METRICS, QualitySlo, binary_positive, drift_slice
from keelwork.spec.slo_tier import SloTier
from keelwork.spec.slos import WORKBOOK_TIERS, WORKBOOK_WINDOW_S, SloSection, duration_seconds

_UNITS = (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))
_WORDS = {"d": "day", "h": "hour", "m": "minute", "s": "second"}


def format_duration(seconds: int) -> str:
    """A duration as Prometheus writes it, in its largest whole unit: 3600 -> ``1h``."""
    for unit, size in _UNITS:
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise ValueError(f"not a whole number of seconds: {seconds!r}")


def window_words(seconds: int) -> str:
    """``2592000`` -> ``30-day`` (as in "the 30-day error budget")."""
    text = format_duration(seconds)
    return f"{text[:-1]}-{_WORDS[text[-1]]}"


@dataclass(frozen=True)
class Tier:
    """One burn-rate alert: fires while both windows burn faster than ``burn_rate``."""

    name: str
    severity: Literal["page", "ticket"]
    long_s: int
    short_s: int
    burn_rate: float

    def threshold(self, budget: float) -> float:
        """The bad share over both windows above which the tier fires."""
        return self.burn_rate * budget

    def budget_share(self, window_s: int) -> float:
        """The share of the whole budget spent in ``long_s`` at exactly the tier's rate."""
        return self.burn_rate * self.long_s / window_s


def scale_tiers(window_s: int) -> tuple[Tier, ...]:
    """The workbook's tiers for an SLO window of ``window_s`` seconds.

    The workbook's windows are for 30 days; for another window they are scaled in proportion
    (to whole minutes, at least one) and the burn rates kept, so that each tier still fires on
    the same share of the budget (2%, 5%, 10%) and resets as fast relative to the window.
    """
    factor = window_s / WORKBOOK_WINDOW_S
    out = []
    for t in WORKBOOK_TIERS:
        long_s = max(60, round(duration_seconds(t.long_window) * factor / 60) * 60)
        short_s = max(60, round(duration_seconds(t.short_window) * factor / 60) * 60)
        if short_s >= long_s:  # only for windows of about a day: keep the short one shorter
            long_s = short_s + 60
        out.append(Tier(t.name, t.severity, long_s, short_s, t.burn_rate))
    return tuple(out)


def _tiers(tiers: list[SloTier]) -> tuple[Tier, ...]:
    return tuple(Tier(t.name, t.severity, duration_seconds(t.long_window),
                      duration_seconds(t.short_window), t.burn_rate) for t in tiers)


def tiers_of(slos: SloSection) -> tuple[Tier, ...]:
    """The tiers in effect: keel.yaml's ``slos.tiers``, else the workbook's, scaled."""
    if slos.tiers is None:
        return scale_tiers(slos.window_seconds)
    return _tiers(slos.tiers)


@dataclass(frozen=True)
class Objective:
    """One SLO of keel.yaml.

    ``budget`` is None for the throughput floor, which is a threshold (requests per second),
    not a ratio of events.
    """

    key: str
    title: str
    stem: str
    target: float
    budget: float | None
    statement: str
    threshold_s: float | None = None
    #: A quality SLO: what it counts (None: a request SLO).
    indicator: QualityIndicator | None = None
    #: A quality SLO of one model (None: every model).
    model: str | None = None
    #: Its own tiers (None: the service's).
    tiers: tuple[Tier, ...] | None = None

    @property
    def is_ratio(self) -> bool:
        return self.budget is not None


def objectives_of(slos: SloSection) -> tuple[Objective, ...]:
    """The objectives keel.yaml sets, in a fixed order."""
    out = []
    if slos.availability is not None:
        out.append(Objective(
            "availability", "Availability", "Availability", slos.availability,
            1.0 - slos.availability,
            f"{100 * slos.availability:.6g}% of requests answered (status neither error nor "
            "overloaded; requests refused by the contract are the client's and not counted)"))
    if slos.error_rate is not None:
        out.append(Objective(
            "error_rate", "Error rate", "ErrorRate", 1.0 - slos.error_rate, slos.error_rate,
            f"at most {100 * slos.error_rate:.6g}% of requests failing (status error: model "
            "errors, timeouts, answers breaking the output contract)"))
    if slos.latency_p99_ms is not None:
        out.append(Objective(
            "latency_p99", "Latency p99", "LatencyP99", 0.99, 0.01,
            f"99% of answered requests within {slos.latency_p99_ms:g} ms",
            threshold_s=slos.latency_p99_ms / 1000.0))
    if slos.throughput_rps is not None:
        out.append(Objective(
            "throughput", "Throughput", "Throughput", slos.throughput_rps, None,
            f"at least {slos.throughput_rps:g} answered requests per second per model"))
    return tuple(out)


def _statement(q: QualitySlo, positive: str | None, delay: str, slice_: str | None) -> str:
    pct = f"{100 * q.objective:.6g}%"
    of = f"input '{q.feature}'" if q.feature else "every input of the contract"
    how = (f"score over {q.threshold:g}" if q.threshold is not None
           else "by the monitor's verdict")
    return {
        "drift": f"at most {pct} of predictions served in {slice_} slices where "
                 f"'{q.feature}' drifted from the reference ({how})",
        "accuracy": f"at least {pct} of labelled answers right",
        "f1": f"an F1 of at least {q.objective:g} on labelled answers (positive class "
              f"{positive!r})",
        "mae": f"a mean absolute error of labelled answers of at most {q.objective:g}",
        "violation_rate": f"at most {pct} of requests refused by the input contract",
        "null_rate": f"at most {pct} of the values of {of} null",
        "label_coverage": f"at least {pct} of predictions labelled within the expected "
                          f"delay ({delay})",
    }[q.metric]


def quality_objectives(spec: KeelSpec) -> tuple[Objective, ...]:
    """The quality SLOs of ``spec`` (``slos.quality``), in keel.yaml's order."""
    contract, labels = spec.contract, spec.monitoring.labels
    inputs = tuple(f.name for f in contract.inputs)
    classes = next((tuple(str(c) for c in f.categories) for f in contract.outputs
                    if f.categories), None)
    positive = binary_positive(contract.outputs, labels.positive)
    fields = tuple(f.name for f in contract.outputs)
    outputs = fields if len(fields) > 1 and classes is None else None
    delay = duration_seconds(labels.expected_delay)
    slice_ = drift_slice(spec.monitoring.windows)
    out = []
    for q in spec.slos.quality:
        ind = QualityIndicator(
            q.metric, features=(q.feature,) if q.feature else inputs, input_names=inputs,
            classes=classes, positive=positive if q.metric == "f1" else None,
            lag_s=delay if q.metric in LABELLED else 0, threshold=q.threshold,
            slice=slice_ if q.metric == "drift" else None, outputs=outputs)
        floor = q.metric in FLOOR_METRICS
        budget = 1.0 - q.objective if floor else q.objective
        out.append(Objective(
            q.name, f"{METRIC_TITLES[q.metric]} ({q.name})", "Quality" + _camel(q.name),
            q.objective, budget, _statement(q, positive, labels.expected_delay, slice_),
            indicator=ind, model=q.model, tiers=_tiers(q.tiers) if q.tiers else None))
    return tuple(out)


@dataclass(frozen=True)
class Alert:
    """One alert the rules define: a burn tier, the no-data alert or the throughput floor."""

    name: str
    objective: Objective
    kind: Literal["burn", "no_data", "floor"]
    severity: Literal["page", "ticket"]
    tier: Tier | None = None

    @property
    def tier_label(self) -> str:
        if self.tier is not None:
            return self.tier.name
        return "no-data" if self.kind == "no_data" else "floor"


#: How long the metrics of an SLO must be missing before its no-data alert fires.
NO_DATA_FOR_S = 600
#: How long the throughput must stay under its floor before its alert fires.
FLOOR_FOR_S = 300
#: The rate window of the throughput floor.
FLOOR_RATE_S = 300


def _camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.replace("_", "-").replace(".", "-")
                   .split("-") if p)


@dataclass(frozen=True)
class SloSet:
    """Every SLO of one service, with what its alerts need to say and to whom."""

    service: str
    owners: tuple[str, ...]
    on_call: str | None
    escalation: str | None
    models: tuple[str, ...]
    batching_waits_ms: tuple[tuple[str, float], ...]
    window_s: int
    tiers: tuple[Tier, ...]
    min_events: int
    objectives: tuple[Objective, ...]
    #: The quality SLOs (``slos.quality``): evaluated by the server only.
    quality: tuple[Objective, ...] = ()

    @property
    def window(self) -> str:
        return format_duration(self.window_s)

    def tiers_for(self, o: Objective) -> tuple[Tier, ...]:
        """The tiers of ``o``: its own, else the service's."""
        return o.tiers if o.tiers is not None else self.tiers

    def models_of(self, o: Objective) -> tuple[str, ...]:
        """The models ``o`` judges."""
        return (o.model,) if o.model is not None else self.models

    def alerts(self) -> list[Alert]:
        """Every alert, per objective (request SLOs, then quality SLOs): its burn tiers
        (fastest first) and no-data, or the throughput floor and no-data."""
        out = []
        for o in (*self.objectives, *self.quality):
            ordered = sorted(self.tiers_for(o), key=lambda t: (t.severity != "page", t.long_s))
            if o.is_ratio:
                out += [Alert(f"Keelwork{o.stem}Burn{_camel(t.name)}", o, "burn", t.severity, t)
                        for t in ordered]
            else:
                out.append(Alert(f"Keelwork{o.stem}BelowFloor", o, "floor", "page"))
            out.append(Alert(f"Keelwork{o.stem}NoData", o, "no_data", "ticket"))
        return out


    def faster_pages(self, a: Alert) -> list[Alert]:
        """The page tiers of ``a``'s SLO that are faster than ``a`` (none unless ``a`` is a
        slower page tier).

        One incident makes one page: a burn fast enough for the fast tier also burns over the
        slower tiers' (lower) rates, and their short windows outlast the fast one's, so after
        the fast page resolved the slow one would page for the same incident (and at a burn's
        start, while the long windows hold little history, the slow one can cross its lower
        rate a few seconds first). So a slower page tier stays quiet while a faster one's long
        window burns over that tier's rate with its events (:meth:`page_hold_s` covers the
        start).
        """
        if a.kind != "burn" or a.severity != "page":
            return []
        pages = [b for b in self.alerts() if b.objective == a.objective and b.kind == "burn"
                 and b.severity == "page"]
        return pages[:pages.index(a)]

    def page_hold_s(self, a: Alert) -> int:
        """Seconds a slower page tier's condition must hold before it fires (its ``for``): the
        fastest page tier's short window, time for that tier to cross its rate first at the
        start of a fast burn. 0 for every other alert of a burn tier."""
        faster = self.faster_pages(a)
        if not faster:
            return 0
        assert faster[0].tier is not None
        return faster[0].tier.short_s


def slo_set(spec: KeelSpec) -> SloSet:
    """The SLOs of ``spec`` (empty ``objectives`` when keel.yaml sets none)."""
    on_call = spec.service.on_call
    return SloSet(
        service=spec.service.name, owners=tuple(spec.service.owners),
        on_call=on_call.contact if on_call else None,
        escalation=on_call.escalation if on_call else None,
        models=tuple(m.name for m in spec.models),
        batching_waits_ms=tuple((m.name, m.batching.max_wait_ms) for m in spec.models
                                if m.batching.enabled),
        window_s=spec.slos.window_seconds, tiers=tiers_of(spec.slos),
        min_events=spec.slos.min_events, objectives=objectives_of(spec.slos),
        quality=quality_objectives(spec))


# --------------------------------------------------------------------------- budget math
def burn_rate(bad_ratio: float, budget: float) -> float:
    """How many times faster than sustainable the budget burns at ``bad_ratio``."""
    return bad_ratio / budget


def budget_spent(period_bad_ratio: float, budget: float) -> float:
    """The share of the window's budget spent: the window's bad share over the budget.

    ``period_bad_ratio`` must be event-weighted (bad events over all events of the window),
    never an average of shorter windows' ratios: a quiet hour with one failure would weigh as
    much as a busy one.
    """
    return period_bad_ratio / budget


def hours_left(spent: float, burn: float, window_s: int) -> float:
    """Hours until the rest of the budget is gone at ``burn`` (0 or less: already gone)."""
    if burn <= 0:
        return float("inf")
    return (1.0 - spent) * (window_s / 3600.0) / burn


def burn_sentence(window_s: int, hours: str | None, spent: str) -> str:
    """The plain-words sentence of a burn alert, from its two numbers as text.

    ``hours`` None says the budget is already gone. The rules pass Prometheus template code
    for both numbers, the tests the numbers they expect: one sentence for both.
    """
    budget = f"the {window_words(window_s)} error budget"
    if hours is None:
        return f"{budget} is already gone; {spent}% spent"
    return f"at this rate {budget} is gone in {hours} h; {spent}% already spent"


def describe_burn(window_s: int, spent: float, burn: float) -> str:
    """:func:`burn_sentence` for numbers: "at this rate the 30-day error budget is gone in
    9.0 h; 23% already spent"."""
    left = hours_left(spent, burn, window_s)
    return burn_sentence(window_s, None if left <= 0 else f"{left:.1f}", f"{100 * spent:.0f}")

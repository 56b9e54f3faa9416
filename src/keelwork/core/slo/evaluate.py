"""The SLO alerts evaluated without Prometheus: the rules of :mod:`keelwork.core.slo.rules`
over event counts (pure).

A server that has SLOs and contacts evaluates them itself (``keelwork.service.slo_watch``)
over its prediction log. The conditions are the generated rules', read over counts instead of
series:

- a burn tier fires for a model while its long and its short window both hold a bad share over
  ``burn_rate x budget`` and the long window holds at least ``slos.min_events`` events; each
  share is event-weighted (bad events over all events of the model, every version and instance
  together), and a window without events has no share, so it never fires a tier nor reads as
  good;
- a faster tier firing inhibits the slower tiers of the same SLO and model (as the
  Alertmanager inhibit rules :func:`keelwork.core.slo.rules.inhibit_rules` do): one incident,
  one page; and as in the rules, a slower page tier needs every faster page tier's long window
  under that tier's rate and holds for the fastest page tier's short window before it fires
  (:meth:`~keelwork.core.slo.objectives.SloSet.faster_pages`);
- no data: a model without one event of the SLO over the whole SLO window, for
  :data:`~keelwork.core.slo.objectives.NO_DATA_FOR_S` (Prometheus: the series is absent);
- the throughput floor: answered requests over the last
  :data:`~keelwork.core.slo.objectives.FLOOR_RATE_S` under ``throughput_rps``, for
  :data:`~keelwork.core.slo.objectives.FLOOR_FOR_S`, for a model with data.

Labels and annotations are the rules' own (:func:`~keelwork.core.slo.rules.alert_labels`,
:func:`~keelwork.core.slo.rules.alert_annotations` with the numbers filled in), so a receiver
gets the same alert from either evaluator.

Quality SLOs (:mod:`keelwork.core.slo.quality`) go through the same conditions over their own
counts (:data:`QualityWindowCounts`, per SLO), each with its tiers and models, and their own
words (:mod:`keelwork.core.slo.quality_words`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from keelwork.core.slo.objectives import (
    FLOOR_FOR_S,
    FLOOR_RATE_S,
    NO_DATA_FOR_S,
    Alert,
    Objective,
    SloSet,
    budget_spent,
    describe_burn,
)
from keelwork.core.slo.quality import QualityCounts
from keelwork.core.slo.quality_words import quality_annotations
from keelwork.core.slo.rules import alert_annotations, alert_labels, windows_of


@dataclass(frozen=True, slots=True)
class SloCounts:
    """One model's logged requests in one window, by what they count for.

    ``answered`` are ``ok`` and ``fallback``; ``errors`` failed (model error, timeout, broken
    output contract, bad input the model refused); ``overloaded`` were refused at the
    concurrency limit; ``fast`` are the answered ones within the latency SLO's threshold.
    Requests the contract refused count for nothing (the client's fault).
    """

    answered: int = 0
    errors: int = 0
    overloaded: int = 0
    fast: int = 0

    @property
    def total(self) -> int:
        """Events of the availability and error-rate SLOs."""
        return self.answered + self.errors + self.overloaded

    def events(self, o: Objective) -> int:
        """The events of ``o`` (latency: the answered requests)."""
        return self.answered if o.threshold_s is not None else self.total

    def bad(self, o: Objective) -> int:
        """The bad events of ``o``."""
        if o.threshold_s is not None:
            return self.answered - self.fast
        if o.key == "availability":
            return self.errors + self.overloaded
        return self.errors

    def ratio(self, o: Objective) -> float | None:
        """The event-weighted bad share of ``o``; None without events (never "all good")."""
        n = self.events(o)
        return None if n == 0 else self.bad(o) / n


#: Per window (seconds), per model, the counts.
WindowCounts = Mapping[int, Mapping[str, SloCounts]]
#: Per quality SLO (its key), per window (seconds), per model, the counts.
QualityWindowCounts = Mapping[str, Mapping[int, Mapping[str, QualityCounts]]]
_NONE = SloCounts()
_NO_QUALITY: QualityWindowCounts = {}


def quality_windows(slos: SloSet, o: Objective) -> list[int]:
    """Every window (seconds) the alerts of quality SLO ``o`` read: its tiers' and the SLO
    window, shortest first."""
    return sorted({w for t in slos.tiers_for(o) for w in (t.long_s, t.short_s)}
                  | {slos.window_s})


def windows_needed(slos: SloSet) -> list[int]:
    """Every window (seconds) :func:`conditions` reads: the tiers', the SLO window's and the
    throughput floor's."""
    out = set(windows_of(slos))
    if any(not o.is_ratio for o in slos.objectives):
        out.add(FLOOR_RATE_S)
    return sorted(out)


@dataclass(frozen=True, slots=True)
class Firing:
    """An alert whose condition holds for one model, with its labels and words."""

    alert: Alert
    model: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]


def _counts(counts: WindowCounts, window_s: int, model: str) -> SloCounts:
    return counts.get(window_s, {}).get(model, _NONE)


@dataclass(frozen=True, slots=True)
class _Read:
    """The counts both kinds of SLO are read from."""

    requests: WindowCounts
    quality: QualityWindowCounts

    def tally(self, o: Objective, window_s: int, model: str) -> tuple[float, float]:
        """``(events, bad)`` of ``o`` for ``model`` over ``window_s``."""
        if o.indicator is not None:
            q = self.quality.get(o.key, {}).get(window_s, {}).get(model)
            return (q.events, q.bad) if q is not None else (0.0, 0.0)
        c = _counts(self.requests, window_s, model)
        return float(c.events(o)), float(c.bad(o))

    def ratio(self, o: Objective, window_s: int, model: str) -> float | None:
        events, bad = self.tally(o, window_s, model)
        return None if events <= 0 else bad / events


def _burn(slos: SloSet, a: Alert, model: str, read: _Read) -> float | None:
    """The short window's bad share when tier ``a`` holds, else None."""
    o, t = a.objective, a.tier
    assert t is not None and o.budget is not None
    long_r, short_r = read.ratio(o, t.long_s, model), read.ratio(o, t.short_s, model)
    thr = t.threshold(o.budget)
    if long_r is None or short_r is None or read.tally(o, t.long_s, model)[0] < slos.min_events:
        return None
    if not (long_r > thr and short_r > thr):
        return None
    for f in slos.faster_pages(a):  # that burn is the faster tier's page
        assert f.tier is not None
        f_ratio = read.ratio(o, f.tier.long_s, model)
        if (f_ratio is not None and f_ratio > f.tier.threshold(o.budget)
                and read.tally(o, f.tier.long_s, model)[0] >= slos.min_events):
            return None
    return short_r


def conditions(slos: SloSet, counts: WindowCounts, *,
               quality: QualityWindowCounts = _NO_QUALITY,
               runbook_base: str = "runbooks") -> list[Firing]:
    """The alerts whose condition holds now (before ``for`` and inhibition), per model.

    Args:
        slos: The service's SLOs.
        counts: The counts of every window of :func:`windows_needed`.
        quality: Per quality SLO, the counts of every window of :func:`quality_windows`.
        runbook_base: Folder path or URL of the runbooks (as for the rules).
    """
    out: list[Firing] = []
    whole = slos.window_s
    read = _Read(counts, quality)
    for a in slos.alerts():
        o = a.objective
        for model in slos.models_of(o):
            has_data = read.tally(o, whole, model)[0] > 0
            notes: dict[str, str] | None = None
            if a.kind == "no_data":
                if not has_data and o.indicator is not None:
                    notes = quality_annotations(slos, a, runbook_base, model=model)
                elif not has_data:
                    notes = alert_annotations(slos, a, runbook_base, model=model)
            elif a.kind == "floor":
                rate = _counts(counts, FLOOR_RATE_S, model).answered / FLOOR_RATE_S
                if has_data and rate < o.target:
                    notes = alert_annotations(slos, a, runbook_base, model=model,
                                              value=f"{rate:.2f}")
            else:
                short_ratio = _burn(slos, a, model, read)
                if short_ratio is not None:
                    assert o.budget is not None
                    period = read.ratio(o, whole, model) or 0.0
                    spent = budget_spent(period, o.budget)
                    sentence = describe_burn(whole, spent, short_ratio / o.budget)
                    notes = (quality_annotations(slos, a, runbook_base, model=model,
                                                 sentence=sentence)
                             if o.indicator is not None else
                             alert_annotations(slos, a, runbook_base, model=model,
                                               sentence=sentence))
            if notes is not None:
                labels = {"alertname": a.name, **alert_labels(slos, a), "model": model}
                out.append(Firing(a, model, labels, notes))
    return out


def inhibited(slos: SloSet, firing: list[Firing]) -> list[Firing]:
    """Those of ``firing`` a faster tier of the same SLO and model silences.

    Tiers are ordered as :meth:`SloSet.alerts` lists them (pages first, then by long window),
    the order :func:`~keelwork.core.slo.rules.inhibit_rules` inhibits in.
    """
    order = {a.name: i for i, a in enumerate(slos.alerts())}
    burning: dict[tuple[str, str], int] = {}
    for f in firing:
        if f.alert.kind == "burn":
            key = (f.alert.objective.key, f.model)
            burning[key] = min(burning.get(key, len(order)), order[f.alert.name])
    return [f for f in firing if f.alert.kind == "burn"
            and burning[(f.alert.objective.key, f.model)] < order[f.alert.name]]


def _held_for(slos: SloSet, a: Alert) -> int:
    if a.kind == "no_data":
        return NO_DATA_FOR_S
    return FLOOR_FOR_S if a.kind == "floor" else slos.page_hold_s(a)


@dataclass
class Evaluation:
    """One evaluation: what fires (to notify) and what fires but is inhibited (to leave as
    it is: an alert already told keeps its state, a new one waits)."""

    firing: list[Firing] = field(default_factory=list)
    inhibited: list[Firing] = field(default_factory=list)


@dataclass
class Evaluator:
    """The rules over successive counts: keeps when each condition started, for ``for``.

    Args:
        slos: The service's SLOs.
        runbook_base: Folder path or URL of the runbooks.
    """

    slos: SloSet
    runbook_base: str = "runbooks"
    #: Per alert fingerprint key (name, model): since when its condition holds.
    pending: dict[tuple[str, str], float] = field(default_factory=dict)

    def step(self, counts: WindowCounts, now: float, *,
             quality: QualityWindowCounts = _NO_QUALITY) -> Evaluation:
        """Evaluate at ``now`` (seconds since the epoch) over ``counts`` (and the quality
        SLOs' ``quality``)."""
        held = conditions(self.slos, counts, quality=quality, runbook_base=self.runbook_base)
        keys = {(f.alert.name, f.model) for f in held}
        self.pending = {k: since for k, since in self.pending.items() if k in keys}
        ready = []
        for f in held:
            since = self.pending.setdefault((f.alert.name, f.model), now)
            if now - since >= _held_for(self.slos, f.alert):
                ready.append(f)
        quiet = inhibited(self.slos, ready)
        silenced = {id(f) for f in quiet}  # by identity: a list lookup per alert is quadratic
        return Evaluation([f for f in ready if id(f) not in silenced], quiet)


__all__ = ["Evaluation", "Evaluator", "Firing", "QualityWindowCounts", "SloCounts",
           "WindowCounts", "conditions", "inhibited", "quality_windows", "windows_needed"]

"""Gate evaluation of one analysis interval: challenger against champion, per metric.

Each gate gives one of four results, recorded with the observed values and the threshold:

- ``pass`` / ``fail``: enough requests on the arms it needs (``min_requests`` each), and the
  challenger's value is within / beyond the threshold. A comparison gate fails only when the
  challenger is also worse than the champion in the same interval (a fault both arms share,
  e.g. a bad input stream, is not the challenger's doing and rolling back would not help);
  when the champion has no traffic (the 100 % step) the threshold alone decides.
- ``no_data``: too few requests to judge. It is its own state, never a pass and never a zero
  (Flagger #1098 counted a query without data as a pass).
- ``no_data`` on a configured gate while others have data (e.g. ``min_accuracy`` but no labels
  arrived) makes the interval *inconclusive*.

The interval's outcome: ``fail`` if any gate fails, else ``no_data`` if the challenger has too
few requests, else ``inconclusive`` if a configured gate had no data, else ``pass``. The
:func:`decide` rule turns it into an action: pass -> advance (promote after the last step),
fail -> hold and count (abort once ``max_failures`` consecutive failures are reached),
no_data -> hold (no count: waiting for traffic is not a fault), inconclusive -> pause for a human.
A shadow pauses after its last step passes (for a human's promote); an A/B rollout holds its
split instead of advancing or pausing until its sequential test decides
(:func:`keelwork.core.rollout.abtest.ab_action`).

Prediction drift between the arms: outputs are reduced to one value each (a number, or a label:
a string, a dict's ``label``/``prediction``/``class``, or its JSON text); numbers are compared with
the two-sample Kolmogorov-Smirnov statistic, labels with the total-variation distance of their
frequencies. Both lie in [0, 1], so one threshold (``max_prediction_drift``) reads the same.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from keelwork.core.rollout.state import Rollout
from keelwork.spec.model import CLASSIFICATION_GATES, REGRESSION_GATES

GateStatus = Literal["pass", "fail", "no_data"]
Outcome = Literal["pass", "fail", "no_data", "inconclusive"]
#: Outputs kept per arm per interval for the drift comparison (a bounded sample).
MAX_OUTPUTS = 2_000
MAX_LATENCIES = 20_000


@dataclass(slots=True)
class ArmStats:
    """What one arm did in one interval (the gateway fills it; the controller swaps it)."""

    requests: int = 0
    errors: int = 0
    violations: int = 0
    guard_hits: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)
    labelled: int = 0
    correct: int = 0
    #: Labelled answers whose output and label are both numbers (regression quality).
    regressed: int = 0
    abs_error: float = 0.0
    squared_error: float = 0.0
    #: Some labelled output or label is a non-integral number: exact-match accuracy is
    #: meaningless, the model is a regressor.
    continuous: bool = False
    #: The fairness gate's reading of the arm's labelled answers: the worst disparity
    #: difference, its interval's lower bound, and where (None: not read).
    fairness: tuple[float | None, float | None, str] | None = None

    def record(self, status: str, latency_ms: float, outputs: Sequence[Any] = (),
               guard: str | None = None) -> None:
        """Count one request (``status``: ok, fallback, error, rejected, timeout...)."""
        self.count(status, guard)
        if len(self.latencies_ms) < MAX_LATENCIES:
            self.latencies_ms.append(latency_ms)
        room = MAX_OUTPUTS - len(self.outputs)
        if room > 0 and outputs:
            self.outputs.extend(outputs[:room])

    def count(self, status: str, guard: str | None = None, n: int = 1) -> None:
        """Count ``n`` requests of ``status`` (errors, violations, guard hits), without
        their latencies and outputs."""
        self.requests += n
        if status in ("error", "timeout", "fallback"):
            self.errors += n
        if status == "rejected":
            self.violations += n
        if guard is not None:
            self.guard_hits += n

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "errors": self.errors,
                "violations": self.violations, "guard_hits": self.guard_hits,
                "p99_latency_ms": p99(self.latencies_ms), "labelled": self.labelled,
                "correct": self.correct, "mae": self.mae, "rmse": self.rmse}

    @property
    def mae(self) -> float | None:
        """Mean absolute error over the labelled numeric answers (None without any)."""
        return self.abs_error / self.regressed if self.regressed else None

    @property
    def rmse(self) -> float | None:
        """Root mean squared error over the labelled numeric answers (None without any)."""
        return math.sqrt(self.squared_error / self.regressed) if self.regressed else None

    def add_labelled(self, output: Any, label: Any) -> None:
        """Count one answer whose ground truth arrived (both as :func:`output_label` reads
        them): exact match for accuracy, absolute and squared error when both are numbers."""
        self.labelled += 1
        self.correct += int(output == label)
        if isinstance(output, float) and isinstance(label, float) and math.isfinite(
                output) and math.isfinite(label):
            self.regressed += 1
            err = output - label
            self.abs_error += abs(err)
            self.squared_error += err * err
            if not (output.is_integer() and label.is_integer()):
                self.continuous = True


    def add_fields(self, pairs: Sequence[tuple[float, float]]) -> None:
        """Count one answer of a multi-output regressor whose ground truth arrived: each
        labelled field's (answer, label) pair is one error (MAE and RMSE over every labelled
        field of every answer); exact match when every field matches."""
        self.labelled += 1
        self.correct += int(all(o == t for o, t in pairs))
        for o, t in pairs:
            self.regressed += 1
            self.abs_error += abs(o - t)
            self.squared_error += (o - t) ** 2
            self.continuous = self.continuous or not (o.is_integer() and t.is_integer())


def field_pairs(output: Any, label: Any) -> list[tuple[float, float]] | None:
    """A multi-output regressor's answer and label as (answer, label) pairs of numbers, one per
    field both hold: two lists of two or more numbers of one length (contract order), or two
    records (their common keys). None when they are not such a pair."""
    if isinstance(output, list) and isinstance(label, list):
        if len(output) < 2 or len(output) != len(label):
            return None
        pairs = list(zip(output, label, strict=True))
    elif isinstance(output, Mapping) and isinstance(label, Mapping):
        pairs = [(output[k], label[k]) for k in output if k in label]
    else:
        return None
    ok = [(float(o), float(t)) for o, t in pairs if _finite(o) and _finite(t)]
    return ok if ok and len(ok) == len(pairs) else None


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True, slots=True)
class GateResult:
    gate: str
    status: GateStatus
    challenger: float | None
    champion: float | None
    threshold: float
    why: str

    def as_dict(self) -> dict[str, Any]:
        return {"gate": self.gate, "status": self.status, "challenger": self.challenger,
                "champion": self.champion, "threshold": self.threshold, "why": self.why}


@dataclass(frozen=True, slots=True)
class Decision:
    """One interval's analysis: the outcome, the action it calls for, every gate's values."""

    outcome: Outcome
    action: str
    gates: tuple[GateResult, ...]
    champion: dict[str, Any]
    challenger: dict[str, Any]
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "action": self.action,
                "gates": [g.as_dict() for g in self.gates], "champion": self.champion,
                "challenger": self.challenger, "reason": self.reason}


def p99(values: Sequence[float]) -> float | None:
    """The 99th percentile (nearest rank), None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)])


def output_label(output: Any) -> Any:
    """The one value an output is judged by: a number, or a label (see the module docstring)."""
    return _summary(output)


def _summary(output: Any) -> Any:
    if isinstance(output, bool):
        return str(output)
    if isinstance(output, int | float):
        return float(output)
    if isinstance(output, str):
        return output
    if isinstance(output, Mapping):
        for key in ("label", "prediction", "class"):
            if key in output:
                return _summary(output[key])
    try:
        return json.dumps(output, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(output)


def ks_statistic(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sample Kolmogorov-Smirnov statistic (largest gap between the empirical CDFs)."""
    xa, xb = sorted(a), sorted(b)
    i = j = 0
    gap = 0.0
    while i < len(xa) and j < len(xb):
        x = min(xa[i], xb[j])
        while i < len(xa) and xa[i] <= x:
            i += 1
        while j < len(xb) and xb[j] <= x:
            j += 1
        gap = max(gap, abs(i / len(xa) - j / len(xb)))
    return gap


def prediction_drift(champion: Sequence[Any], challenger: Sequence[Any]) -> float | None:
    """Distance in [0, 1] between two arms' outputs (KS for numbers, TV for labels)."""
    if not champion or not challenger:
        return None
    a = [_summary(o) for o in champion]
    b = [_summary(o) for o in challenger]
    if all(isinstance(v, float) for v in a + b):
        return ks_statistic(a, b)
    ca, cb = Counter(map(str, a)), Counter(map(str, b))
    return 0.5 * sum(abs(ca[k] / len(a) - cb[k] / len(b)) for k in set(ca) | set(cb))


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def evaluate(rollout: Rollout, champion: ArmStats, challenger: ArmStats) -> list[GateResult]:
    """Every configured gate's result for one interval."""
    g = rollout.gates
    need = rollout.min_requests
    ch_ok = challenger.requests >= need
    # The champion is judged against only when it had traffic; at 100 % it has none.
    cp_ok = champion.requests >= need
    cp_any = champion.requests > 0
    out: list[GateResult] = []

    def gate(name: str, threshold: float | None, ch: float | None, cp: float | None,
             higher_is_worse: bool = True, needs_champion: bool = False) -> None:
        if threshold is None:
            return
        if not ch_ok or ch is None or (needs_champion and not cp_ok):
            why = (f"challenger {challenger.requests}/{need} requests" if not ch_ok
                   else f"champion {champion.requests}/{need} requests" if needs_champion
                   else "no values")
            out.append(GateResult(name, "no_data", ch, cp, threshold, why))
            return
        beyond = ch > threshold if higher_is_worse else ch < threshold
        worse = (cp is None or not cp_ok or (ch > cp if higher_is_worse else ch < cp))
        status: GateStatus = "fail" if beyond and worse else "pass"
        rel = ">" if higher_is_worse else "<"
        why = (f"{ch:.4g} {rel} {threshold:.4g}" + (f" (champion {cp:.4g})" if cp is not None
                                                    else "")) if status == "fail" else "within"
        out.append(GateResult(name, status, ch, cp, threshold, why))

    gate("error_rate", g.get("max_error_rate"), _rate(challenger.errors, challenger.requests),
         _rate(champion.errors, champion.requests) if cp_any else None)
    gate("p99_latency_ms", g.get("max_p99_latency_ms"), p99(challenger.latencies_ms),
         p99(champion.latencies_ms) if cp_any else None)
    gate("contract_violation_rate", g.get("max_contract_violation_rate"),
         _rate(challenger.violations, challenger.requests),
         _rate(champion.violations, champion.requests) if cp_any else None)
    # Any guard that fired on the arm's requests (contract, timeout, rate limit, injection...).
    gate("guard_hit_rate", g.get("max_guard_hit_rate"),
         _rate(challenger.guard_hits, challenger.requests),
         _rate(champion.guard_hits, champion.requests) if cp_any else None)
    drift = prediction_drift(champion.outputs, challenger.outputs) if cp_ok else None
    gate("prediction_drift", g.get("max_prediction_drift"), drift, None, needs_champion=True)
    _quality_gates(g, need, champion, challenger, gate, out)
    return out


#: Gates that need ground truth (``keel spec validate`` checks each fits the model's task).
LABEL_GATES = CLASSIFICATION_GATES + REGRESSION_GATES


def _quality_gates(g: Mapping[str, float | None], need: int, champion: ArmStats,
                   challenger: ArmStats, gate: Any, out: list[GateResult]) -> None:
    """The gates on labelled answers: accuracy (classification), MAE/RMSE (regression)."""
    def missing(name: str, threshold: float, ch: float | None, cp: float | None,
                why: str) -> None:
        out.append(GateResult(name, "no_data", ch, cp, threshold, why))

    if g.get("min_accuracy") is not None:
        threshold = float(g["min_accuracy"] or 0.0)
        acc_ch = _rate(challenger.correct, challenger.labelled)
        acc_cp = _rate(champion.correct, champion.labelled) if champion.labelled else None
        if challenger.continuous or champion.continuous:
            # Exact-match accuracy of real numbers is ~0 for any model: never a verdict.
            missing("accuracy", threshold, None, None,
                    "accuracy is not defined for continuous outputs (a regression model); "
                    "use max_mae, max_rmse or max_relative_mae_increase")
        elif challenger.labelled < need:
            missing("accuracy", threshold, acc_ch, acc_cp,
                    f"challenger {challenger.labelled}/{need} labelled predictions")
        else:
            gate("accuracy", g.get("min_accuracy"), acc_ch, acc_cp, higher_is_worse=False)
    for name, key, ch, cp in (("mae", "max_mae", challenger.mae, champion.mae),
                              ("rmse", "max_rmse", challenger.rmse, champion.rmse)):
        limit = g.get(key)
        if limit is None:
            continue
        if challenger.regressed < need:
            missing(name, float(limit), ch, cp,
                    f"challenger {challenger.regressed}/{need} labelled numeric predictions")
        else:
            gate(name, limit, ch, cp if champion.regressed >= need else None)
    _fairness_gate(g, champion, challenger, out)
    rel = g.get("max_relative_mae_increase")
    if rel is not None:
        ch, cp = challenger.mae, champion.mae
        if challenger.regressed < need or champion.regressed < need or ch is None or (
                cp is None):
            short = challenger if challenger.regressed < need else champion
            who = "challenger" if short is challenger else "champion"
            n = short.regressed
            missing("relative_mae_increase", float(rel), None, cp,
                    f"{who} {n}/{need} labelled numeric predictions")
            return
        # A perfect champion (MAE 0) makes any error an unbounded increase: capped, not inf.
        increase = (ch - cp) / cp if cp > 0 else (0.0 if ch == 0 else 1e9)
        status: GateStatus = "fail" if increase > rel else "pass"
        why = (f"MAE {ch:.4g} vs champion {cp:.4g}: {increase:+.1%} "
               f"{'>' if status == 'fail' else '<='} +{rel:.1%}")
        # challenger: the relative increase (the threshold's unit); champion: its own, 0.
        out.append(GateResult("relative_mae_increase", status, increase, 0.0, float(rel), why))


def _fairness_gate(g: Mapping[str, float | None], champion: ArmStats, challenger: ArmStats,
                   out: list[GateResult]) -> None:
    """``max_fairness_difference``: fails when the challenger's worst gap between protected
    groups exceeds it *with confidence* (its interval's lower bound does) and is larger than
    the champion's in the same step (or the champion has none to compare)."""
    limit = g.get("max_fairness_difference")
    if limit is None:
        return
    ch_value, ch_low, where = challenger.fairness or (None, None, "not measured")
    cp_value = champion.fairness[0] if champion.fairness else None
    if ch_value is None or ch_low is None:
        out.append(GateResult("fairness_difference", "no_data", None, cp_value, limit,
                              f"challenger: {where}"))
        return
    worse = cp_value is None or ch_value > cp_value
    status: GateStatus = "fail" if ch_low > limit and worse else "pass"
    why = (f"{where} {ch_value:.3f} (lower bound {ch_low:.3f}) > {limit:.4g}"
           + (f" (champion {cp_value:.3f})" if cp_value is not None else "")
           if status == "fail" else "within")
    out.append(GateResult("fairness_difference", status, ch_value, cp_value, limit, why))


def decide(rollout: Rollout, champion: ArmStats, challenger: ArmStats) -> Decision:
    """Analyse one interval and choose the action (see the module docstring)."""
    gates = tuple(evaluate(rollout, champion, challenger))
    failed = [g for g in gates if g.status == "fail"]
    missing = [g for g in gates if g.status == "no_data"]
    if failed:
        outcome: Outcome = "fail"
        last = rollout.failures + 1 >= rollout.max_failures
        action = "abort" if last else "hold"
        reason = (f"{', '.join(f'{g.gate} {g.why}' for g in failed)}; failure "
                  f"{rollout.failures + 1}/{rollout.max_failures}")
    elif challenger.requests < rollout.min_requests:
        outcome, action = "no_data", "hold"
        reason = (f"no data: the challenger had {challenger.requests} of the "
                  f"{rollout.min_requests} requests needed")
    elif missing:
        outcome, action = "inconclusive", "pause"
        reason = "inconclusive: no data for " + ", ".join(
            f"{g.gate} ({g.why})" for g in missing)
    else:
        outcome, action = "pass", "advance"
        reason = "every gate passed" if gates else "no gates configured; enough requests"
    if action == "advance" and rollout.strategy == "shadow" and (
            rollout.step >= len(rollout.steps) - 1):
        # A shadow ends in a human's promote: the analysis says it is safe, not better.
        # (A/B rollouts end when their sequential test decides: see the controller.)
        action, reason = "pause", reason + "; analysis complete, promote to make it champion"
    return Decision(outcome, action, gates, champion.as_dict(), challenger.as_dict(), reason)

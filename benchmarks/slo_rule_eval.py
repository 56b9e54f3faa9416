"""The embedded SLO engine's rule evaluation, per 1,000 series (issue 15's measure).

A "series" is one (alert, model) pair the server evaluates each round, as Prometheus would
evaluate one alerting rule's output series. The service has M models and the three request
SLOs (availability, error rate, p99 latency) with the workbook's three tiers plus no-data:
4 alerts per SLO, 12 series per model. Each round evaluates every condition over the counts of
every window (:func:`keelwork.core.slo.evaluate.Evaluator.step`), half the models burning so
that the firing path (annotations with the plain-words sentence) is exercised too. Counting the
prediction log is the store's work and is measured apart (SLO watch benchmarks); this is the
rule engine alone.

    python benchmarks/slo_rule_eval.py                 # 100, 500, 2000 models
"""

from __future__ import annotations

import argparse
import statistics
import time

from keelwork.core.slo.evaluate import Evaluator, SloCounts, windows_needed
from keelwork.core.slo.objectives import slo_set
from keelwork.spec.loader import parse_spec


def _spec(models: int) -> str:
    listed = "\n".join(f"  - {{name: m{i}, runtime: python, artifact: 'a:b'}}"
                       for i in range(models))
    return ("service: {name: bench, owners: [ops@example.com]}\n"
            f"models:\n{listed}\n"
            "slos: {availability: 0.999, error_rate: 0.01, latency_p99_ms: 250}\n")


def run(models: int, rounds: int) -> tuple[int, float]:
    slos = slo_set(parse_spec(_spec(models), env={}))
    series = len(slos.alerts()) * models
    windows = windows_needed(slos)
    counts = {w: {f"m{i}": (SloCounts(answered=9_000, errors=900, overloaded=0, fast=8_000)
                            if i % 2 else SloCounts(answered=10_000, errors=1, overloaded=0,
                                                    fast=9_990))
                  for i in range(models)} for w in windows}
    ev = Evaluator(slos)
    times = []
    for r in range(rounds):
        t0 = time.perf_counter()
        ev.step(counts, 1_000_000.0 + 30 * r)
        times.append(time.perf_counter() - t0)
    return series, statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="100,500,2000")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    print(f"{'models':>7} {'series':>7} {'ms per round':>13} {'ms per 1k series':>17}")
    for m in (int(v) for v in args.models.split(",")):
        series, seconds = run(m, args.rounds)
        print(f"{m:>7} {series:>7} {seconds * 1000:>13.1f} {seconds * 1e6 / series:>17.2f}")


if __name__ == "__main__":
    main()

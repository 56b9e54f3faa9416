"""``fairness.metrics`` and ``fairness.confidence`` from keel.yaml to the report: the metrics
choose the measures reported, the confidence the width of every interval (the same labelled
answers throughout)."""

from __future__ import annotations

from typing import Any

from keelwork.core.fairness import GroupTally
from keelwork.core.fairness.verdict import fairness_report
from keelwork.service.monitoring.fairness import fairness_settings
from keelwork.spec.loader import parse_spec

SPEC = """\
service: {name: s, owners: [a@b.co]}
models: [{name: m, runtime: sklearn}]
contract:
  inputs:
    - {name: sex, type: string}
  outputs:
    - {name: label, type: category, categories: [bad, good]}
fairness:
  protected: [sex]
  positive_label: good
  min_group_size: 20
"""


def _measures(extra: str) -> dict[str, dict[str, Any]]:
    tally = GroupTally(["sex"])
    for i in range(200):  # selection rate 0.40 for F, 0.55 for M; half the answers right
        tally.add({"sex": "F"}, i % 100 < 40, i % 2 == 0)
        tally.add({"sex": "M"}, i % 100 < 55, i % 2 == 0)
    rules = fairness_settings(parse_spec(SPEC + extra, env={})).rules
    (field,) = fairness_report(tally, rules)["fields"]
    return {m["measure"]: m for m in field["measures"]}


def test_metrics_choose_the_measures() -> None:
    parity = _measures("  metrics: [demographic_parity]\n")
    odds = _measures("  metrics: [equalized_odds]\n")
    assert {m.split("_")[0] for m in parity} == {"demographic"}
    assert {m.split("_")[0] for m in odds} == {"equalized"}


def test_confidence_sets_the_width_of_the_intervals() -> None:
    def width(confidence: float) -> float:
        lo, hi = _measures(f"  confidence: {confidence}\n")[
            "demographic_parity_difference"]["interval"]
        return float(hi - lo)

    assert width(0.5) < width(0.9) < width(0.999)

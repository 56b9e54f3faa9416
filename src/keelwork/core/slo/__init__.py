"""SLOs: objectives, burn tiers, Prometheus rules, their tests, runbooks, OpenSLO (pure).

keel.yaml's ``slos`` become Prometheus recording and alerting rules
(:mod:`keelwork.core.slo.rules`) with a ``promtool test rules`` file per SLO
(:mod:`keelwork.core.slo.promtest`), Alertmanager inhibit rules (:func:`inhibit_rules`), one
runbook per alert (:mod:`keelwork.core.slo.runbooks`) and OpenSLO documents
(:mod:`keelwork.core.slo.openslo`); a server without Prometheus evaluates the same rules over
event counts (:mod:`keelwork.core.slo.evaluate`). Writing them out is :mod:`keelwork.service.slos`.
"""

from __future__ import annotations

from keelwork.core.slo.objectives import (
    Alert,
    Objective,
    SloSet,
    Tier,
    budget_spent,
    burn_rate,
    describe_burn,
    hours_left,
    scale_tiers,
    slo_set,
)
from keelwork.core.slo.rules import inhibit_rules, rule_groups

__all__ = ["Alert", "Objective", "SloSet", "Tier", "budget_spent", "burn_rate", "describe_burn",
           "hours_left", "inhibit_rules", "rule_groups", "scale_tiers", "slo_set"]

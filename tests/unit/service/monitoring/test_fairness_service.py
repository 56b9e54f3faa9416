"""Fairness in the service: keel.yaml to settings, an arm's reading for the rollout gate from a
real store, and the bounded /metrics families."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

from keelwork.core.fairness import GroupTally
from keelwork.service.monitoring.fairness import (
    EXPORTED_GROUPS,
    arm_fairness,
    count_labelled,
    fairness_families,
    fairness_settings,
    live_fairness,
    window_fairness,
)
from keelwork.spec.loader import parse_spec

SPEC = """\
service: {name: s, owners: [a@b.co]}
models: [{name: m, runtime: sklearn}]
contract:
  inputs:
    - {name: age, type: integer}
    - {name: sex, type: string}
  outputs:
    - {name: label, type: category, categories: [bad, good]}
fairness:
  protected: [sex]
  positive_label: good
  min_group_size: 20
"""


def _rows(n: int, rate_f: float, rate_m: float) -> list[tuple[dict, str, str]]:
    out = []
    for i in range(n):
        sex = "F" if i % 2 else "M"
        rate = rate_f if sex == "F" else rate_m
        k = i // 2
        predicted = "good" if (k % 100) < rate * 100 else "bad"
        out.append(({"age": 30, "sex": sex}, predicted, "good" if k % 3 else "bad"))
    return out


def test_settings_and_an_arms_reading() -> None:
    settings = fairness_settings(parse_spec(SPEC))
    assert settings is not None and settings.positive == "good"
    assert settings.rules.protected == ("sex",) and settings.rules.min_group_size == 20
    value, low, where = arm_fairness(settings, 0.1, _rows(2000, 0.2, 0.6))
    assert value is not None and low is not None
    assert where == "sex equalized_odds_difference" or where.startswith("sex demographic")
    assert value >= 0.39 and 0.1 < low < value
    assert arm_fairness(settings, 0.1, _rows(10, 0.2, 0.6))[:2] == (None, None)
    assert fairness_settings(parse_spec(SPEC.split("fairness:")[0])) is None
    custom = fairness_settings(parse_spec(SPEC + "  metrics: [equalized_odds]\n"
                                              "  max_difference: 0.05\n  min_ratio: null\n"
                                              "  confidence: 0.9\n"))
    assert custom is not None
    assert (custom.rules.metrics, custom.rules.max_difference, custom.rules.min_ratio,
            custom.rules.confidence) == (("equalized_odds",), 0.05, None, 0.9)


def test_live_fairness_reads_each_versions_labelled_answers(tmp_path: Path) -> None:
    from keelwork.adapters.stores.engine import make_engine
    from keelwork.adapters.stores.label_store import LabelStore
    from prediction_fill import fill

    engine = make_engine(f"sqlite:///{tmp_path / 'keel.db'}")
    now = time.time()
    rows, labels = [], []
    for version, (rf, rm) in ((1, (0.5, 0.5)), (2, (0.1, 0.7)), (3, (0.1, 0.7))):
        for i, (inputs, predicted, truth) in enumerate(_rows(400, rf, rm)):
            pid = f"v{version}-{i}"
            label: object = truth
            if version == 3:  # sex sent with the label (fairness.label_fields), not the request
                label = {"label": truth, "sex": inputs.pop("sex")}
            rows.append({"id": pid, "ts": now - 60 + i * 0.01, "model": "m",
                         "version": version, "tenant": None, "subject_id": None,
                         "status": "ok", "guard": None, "answered_by": None,
                         "latency_ms": 1.0, "model_latency_ms": 1.0,
                         "inputs": json.dumps(inputs),
                         "outputs": json.dumps({"label": predicted}), "request_meta": "{}"})
            labels.append({"prediction_id": pid, "label": label, "ts": now})
    try:
        fill(engine, iter(rows))
        store = LabelStore(engine)
        store.ensure_schema()
        store.submit(labels)
        got = live_fairness(engine, parse_spec(SPEC), "m", (1, 2, 3), now - 3600, 0.1)
        assert got[1][0] is not None and got[1][0] < 0.1
        assert got[2][0] is not None and got[2][1] is not None and got[2][1] > 0.1
        assert got[3] == got[2]
        assert live_fairness(engine, parse_spec(SPEC), "m", (1,), now + 10, 0.1)[1][0] is None
    finally:
        engine.dispose()


def test_metrics_families_bound_a_fields_groups() -> None:
    settings = fairness_settings(parse_spec(SPEC))
    assert settings is not None
    tally: GroupTally | None = None
    for g in range(EXPORTED_GROUPS + 5):
        for i in range(40):
            tally = count_labelled(settings, tally, {"sex": f"s{g:02d}"},
                                   "good" if i % 2 else "bad", "good" if i % (g + 2) else "bad")
    body = {"fairness": window_fairness(settings, tally)}
    families = {f.name: f for f in fairness_families([SimpleNamespace(model="m", body=body)])}
    rates = families["keelwork_fairness_group_rate"].samples
    groups = {s.labels["group"] for s in rates}
    assert len(groups) == EXPORTED_GROUPS + 1 and "(other)" in groups
    assert {s.labels["rate"] for s in rates} == {"selection_rate", "tpr", "fpr", "precision"}
    measures = {s.labels["measure"] for s in families["keelwork_fairness_disparity"].samples}
    assert measures == {"demographic_parity_difference", "demographic_parity_ratio",
                        "equalized_odds_difference", "equalized_odds_ratio"}
    bounds = families["keelwork_fairness_disparity_bound"].samples
    assert len(bounds) == 2 * len(measures)
    alerts = families["keelwork_fairness_alert"].samples
    assert {s.value for s in alerts} <= {0.0, 1.0} and len(alerts) == len(measures)

